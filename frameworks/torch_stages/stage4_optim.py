"""Stage 4 (PyTorch): the update by ``torch.optim.SGD``.

The model, loss and gradients of stage 3, unchanged; the optimizer owns the
learning rate and the update: ``zero_grad()``, ``backward()``, ``step()``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages import stage3_nn
from frameworks.torch_stages.stage3_nn import backward, evaluate, export, gradients, init_model, trace  # stage 3's


def init_optimizer(model: nn.Module, eta: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=eta)


class State(stage3_nn.State):
    """Stage 3's model and loss, and the optimizer."""

    def __init__(self, model: nn.Sequential, reduction: str, eta: float, arch: Architecture = LAB) -> None:
        super().__init__(model, reduction, arch)
        self.optimizer = init_optimizer(model, eta)


def load(params: Params, config: TrainConfig, device: torch.device | None = None) -> State:
    """The kit's canonical parameters as the model, with the config's loss and an optimizer over it."""
    model = init_model(params, dtype=config.dtype, device=device, model=config.model, arch=config.arch)
    return State(model.train(config.dropout_rng == "native"), config.loss_reduction, config.eta, config.arch)


def make_step(config: TrainConfig) -> Callable[..., State]:
    """One training step: ``zero_grad()``, ``backward()``, ``step()`` (the optimizer holds eta)."""

    def step(state: State, X: torch.Tensor, Y: torch.Tensor, masks: tuple = ()) -> State:
        state.optimizer.zero_grad()
        backward(state.model, state.loss, X, Y, masks)
        state.optimizer.step()
        return state

    return step


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("torch/optim") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, shares={"forward": "torch/nn", "gradients": "torch/nn"}, has_model=True)
