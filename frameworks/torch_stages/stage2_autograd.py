"""Stage 2 (PyTorch): the same forward, gradients by autograd.

The forward pass and the loss are stage 1's, unchanged: autograd records them
because the parameters are leaf tensors with ``requires_grad=True``, and
``L.backward()`` fills their ``.grad``. The update runs under ``torch.no_grad()`` (it is not
part of the model) and the gradients are zeroed for the next batch.
"""

from __future__ import annotations

import torch

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages.stage1_manual import forward, loss_accuracy  # stage 1's, unchanged


def init_params(params: Params, *, dtype: str = "float32", device: torch.device | None = None) -> dict:
    """The kit's canonical init as leaf tensors that record their gradient."""
    tensors = backend.from_canonical(params, dtype, device or torch.device("cpu"))
    return {name: value.requires_grad_(True) for name, value in tensors.items()}


def sgd(params: dict, eta: float) -> None:
    """One step of gradient descent, in place, then clear the gradients."""
    with torch.no_grad():
        for value in params.values():
            value -= eta * value.grad
            value.grad.zero_()


# The kit's contract: what frameworks.get("torch/autograd") runs.


def backward(params: dict, X: torch.Tensor, Y: torch.Tensor, *, reduction: str) -> torch.Tensor:
    """Forward, then ``backward()`` of the mean loss (or of the summed loss, ``reduction="sum"``)."""
    _, outputs = forward(params, X)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    (L if reduction == "mean" else L * Y.shape[0]).backward()
    return L.detach()


def gradients(params: dict, X: torch.Tensor, Y: torch.Tensor, *, reduction: str) -> tuple[torch.Tensor, dict]:
    L = backward(params, X, Y, reduction=reduction)
    grads = {name: value.grad.clone() for name, value in params.items()}
    for value in params.values():
        value.grad = None
    return L, grads


def prepare(params: Params, config: TrainConfig, device: torch.device) -> dict:
    return init_params(params, dtype=config.dtype, device=device)


def make_step(config: TrainConfig):
    def step(params: dict, X: torch.Tensor, Y: torch.Tensor) -> dict:
        backward(params, X, Y, reduction=config.loss_reduction)
        sgd(params, config.eta)
        return params

    return step


@torch.no_grad()
def evaluate(params: dict, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _, outputs = forward(params, X)
    return loss_accuracy(outputs["ytilde"], Y)


@torch.no_grad()
def trace(params: dict, X: torch.Tensor) -> dict:
    return forward(params, X)[1]


def export(params: dict) -> Params:
    return {name: backend.to_numpy(value) for name, value in params.items()}
