"""Stage 4 (PyTorch): the update by ``torch.optim.SGD``.

The model and loss of stage 3; the optimizer owns the learning rate and the
update: ``zero_grad()``, ``backward()``, ``step()``.
"""

from __future__ import annotations

import torch
from torch import nn

from frameworks import convert
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages import stage3_nn
from frameworks.torch_stages.stage3_nn import evaluate, export, init_model, loss_accuracy, trace


def init_optimizer(model: nn.Module, eta: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=eta)


# The kit's contract: what frameworks.get("torch/optim") runs.


class State(stage3_nn.State):
    """Stage 3's model and losses, and the optimizer."""

    def __init__(self, model: nn.Module, reduction: str, eta: float) -> None:
        super().__init__(model, reduction)
        self.optimizer = init_optimizer(model, eta)


def backward(state: State, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    state.optimizer.zero_grad()
    Ytilde = state.model(X)
    L, _ = loss_accuracy(state.loss, Ytilde, Y)
    L.backward()
    return state.mean_loss(Ytilde.detach(), Y)


def gradients(state: State, X: torch.Tensor, Y: torch.Tensor, *, reduction: str) -> tuple[torch.Tensor, dict]:
    del reduction  # the state's loss already has it
    L = backward(state, X, Y)
    grads = convert.from_torch_state_dict({n: p.grad for n, p in state.model.named_parameters()}, check=False)
    return L, grads


def prepare(params: Params, config: TrainConfig, device: torch.device) -> State:
    model = init_model(params, dtype=config.dtype, device=device, model=config.model)
    return State(model, config.loss_reduction, config.eta)


def make_step(config: TrainConfig):
    del config  # the optimizer holds eta

    def step(state: State, X: torch.Tensor, Y: torch.Tensor) -> State:
        backward(state, X, Y)
        state.optimizer.step()
        return state

    return step


__all__ = ["State", "backend", "evaluate", "export", "gradients", "init_optimizer", "make_step", "prepare", "trace"]
