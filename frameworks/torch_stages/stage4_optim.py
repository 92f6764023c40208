"""Stage 4 (PyTorch): the update by ``torch.optim.SGD``.

The model, loss and gradients of stage 3, unchanged; the optimizer owns the
learning rate and the update: ``zero_grad()``, ``backward()``, ``step()``.
Another optimizer of the config (``frameworks.optim``: Adam, AdamW, RMSprop,
Adagrad) is its ``torch.optim`` class, a schedule its ``torch.optim.lr_scheduler``
class, stepped after each epoch (or each batch), and clipping
``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` before ``step()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from frameworks import convert, optim
from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages import optimizers, stage3_nn
from frameworks.torch_stages.stage3_nn import backward, evaluate, export, gradients, init_model, trace  # stage 3's


def init_optimizer(model: nn.Module, eta: float, spec: optim.Optimizer | None = None) -> torch.optim.Optimizer:
    """``torch.optim``'s class of the spec, with its arguments (the lab's: plain ``SGD(lr=eta)``)."""
    if spec is None or spec == optim.SGD():
        return torch.optim.SGD(model.parameters(), lr=eta)
    arguments = {field: getattr(spec, field) for field in spec.__dataclass_fields__}
    return getattr(torch.optim, type(spec).__name__)(model.parameters(), lr=eta, **arguments)


def init_scheduler(optimizer: torch.optim.Optimizer, schedule: optim.Schedule | None) -> Any:
    """``torch.optim.lr_scheduler``'s class of the schedule spec (its arguments but ``interval``), or None."""
    if schedule is None:
        return None
    arguments = {field: getattr(schedule, field) for field in schedule.__dataclass_fields__ if field != "interval"}
    if isinstance(schedule, optim.SequentialLR):
        arguments["schedulers"] = [init_scheduler(optimizer, s) for s in schedule.schedulers]
    for field in ("milestones", "schedulers"):
        if field in arguments:
            arguments[field] = list(arguments[field])
    return getattr(lr_scheduler, type(schedule).__name__)(optimizer, **arguments)


def clip_gradients(model: nn.Module, rule: optim.Clip | None) -> None:
    if isinstance(rule, optim.ClipGradNorm):
        nn.utils.clip_grad_norm_(model.parameters(), rule.max_norm)
    elif isinstance(rule, optim.ClipGradValue):
        nn.utils.clip_grad_value_(model.parameters(), rule.clip_value)


class State(stage3_nn.State):
    """Stage 3's model and loss, the optimizer, its scheduler and the count of steps taken."""

    def __init__(self, model: nn.Sequential, reduction: str, config: TrainConfig, arch: Architecture = LAB) -> None:
        super().__init__(model, reduction, arch)
        self.optimizer = init_optimizer(model, config.eta, config.optimizer)
        self.scheduler = init_scheduler(self.optimizer, config.schedule)
        self.steps = 0
        self.config = config


def load(params: Params, config: TrainConfig, device: torch.device | None = None) -> State:
    """The kit's canonical parameters as the model, with the config's loss and an optimizer over it."""
    model = init_model(params, dtype=config.dtype, device=device, model=config.model, arch=config.arch)
    if config.compile:
        backend.compiled(model)  # opt-in torch.compile of the forward (and its backward)
    return State(model.train(config.dropout_rng == "native"), config.loss_reduction, config, config.arch)


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., State]:
    """One training step: ``zero_grad()``, ``backward()``, ``step()`` (the optimizer holds eta); the config's
    clipping before ``step()``, its scheduler's ``step()`` after each batch or after each epoch."""
    every = 1 if config.schedule is None or config.schedule.interval == "step" else steps_per_epoch

    def step(state: State, X: torch.Tensor, Y: torch.Tensor, masks: tuple = ()) -> State:
        state.optimizer.zero_grad()
        backward(state.model, state.loss, X, Y, masks)
        clip_gradients(state.model, config.clip)
        state.optimizer.step()
        state.steps += 1
        if state.scheduler is not None and state.steps % every == 0:
            with warnings.catch_warnings():  # SequentialLR restarts a scheduler with step(0), which PyTorch warns of
                warnings.simplefilter("ignore", UserWarning)
                state.scheduler.step()
        return state

    return step


def save_optimizer(state: State) -> dict | None:
    """``torch.optim``'s state in the canonical layout: each buffer of its ``state_dict`` by PyTorch's name (zeros
    where the optimizer has not made it yet), the parameters by the kit's names; None for the lab's SGD."""
    if optimizers.is_lab(state.config):
        return None
    named = dict(state.model.named_parameters())
    saved = state.optimizer.state_dict()["state"]  # keyed by the position in model.parameters()
    trees = {buffer: {name: saved.get(i, {}).get(buffer, torch.zeros_like(param)) for i, (name, param)
                      in enumerate(named.items())} for buffer in optimizers.init(state.config.optimizer, named)}
    return {"step": state.steps, "buffers": {buffer: convert.from_torch_state_dict(tree, check=False, arch=state.arch)
                                             for buffer, tree in trees.items()}}


def restore_optimizer(state: State, saved: dict) -> State:
    """The optimizer's ``state_dict`` rebuilt from a checkpoint, and the scheduler stepped to where the run was."""
    named = dict(state.model.named_parameters())
    trees = {buffer: convert.to_torch_state_dict(canonical, arch=state.arch)
             for buffer, canonical in saved["buffers"].items()}
    whole = state.optimizer.state_dict()
    step = saved["step"]
    for i, (name, param) in enumerate(named.items()):
        entry = {buffer: tree[name].to(dtype=param.dtype, device=param.device) for buffer, tree in trees.items()}
        if step:  # at step 0 the optimizer's own initial state is the one to keep (SGD: no buffer yet)
            whole["state"][i] = {**entry, "step": torch.tensor(float(step))}
    state.optimizer.load_state_dict(whole)
    state.steps = step
    if state.scheduler is not None:
        every = 1 if state.config.schedule.interval == "step" else saved.get("steps_per_epoch", 1)  # type: ignore[union-attr]
        with warnings.catch_warnings():  # stepped without optimizer.step(): PyTorch warns of the order
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(step // every):
                state.scheduler.step()
    return state


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("torch/optim") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, shares={"forward": "torch/nn", "gradients": "torch/nn"}, has_model=True,
              save_optimizer=save_optimizer, restore_optimizer=restore_optimizer)
