"""Stage 3 (PyTorch): the model as ``torch.nn`` modules, the loss as ``nn.CrossEntropyLoss``.

``Sequential(Linear, Tanh, Linear)`` outputs the logits ``ytilde``: no softmax
in the model, since ``CrossEntropyLoss`` applies log-softmax itself (a softmax
before it is the "double softmax" trap, ``TrainConfig(model="double_softmax")``).
The update is still written by hand, over ``model.parameters()``.
"""

from __future__ import annotations

import torch
from torch import nn

from frameworks import convert
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.torch_stages import _backend as backend


def init_model(params: Params, *, dtype: str = "float32", device: torch.device | None = None, model: str = "lab") -> nn.Module:
    """The MLP, loaded with the kit's canonical parameters (the lab's layout is ``Linear``'s)."""
    nh, nx = params["Wh"].shape
    ny = params["Wy"].shape[0]
    layers = [nn.Linear(nx, nh), nn.Tanh(), nn.Linear(nh, ny)]
    if model == "double_softmax":
        layers.append(nn.Softmax(dim=1))  # the trap: CrossEntropyLoss softmaxes again
    mlp = nn.Sequential(*layers).to(device=device or "cpu", dtype=backend.DTYPES[dtype])
    mlp.load_state_dict(convert.to_torch_state_dict(params))
    return mlp


def loss_accuracy(loss: nn.Module, Ytilde: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``loss(Ytilde, Y)`` (one-hot ``Y`` as class probabilities) and the accuracy."""
    L = loss(Ytilde, Y)
    acc = (Ytilde.argmax(dim=1) == Y.argmax(dim=1)).to(Ytilde.dtype).mean()
    return L, acc


def sgd(model: nn.Module, eta: float) -> None:
    with torch.no_grad():
        for param in model.parameters():
            param -= eta * param.grad
    model.zero_grad()


# The kit's contract: what frameworks.get("torch/nn") runs.


class State:
    """The model and its loss (``reduction`` "mean", or "sum" as in the cheat-sheet)."""

    def __init__(self, model: nn.Module, reduction: str) -> None:
        self.model = model
        self.loss = nn.CrossEntropyLoss(reduction=reduction)
        self.mean_loss = nn.CrossEntropyLoss()


def backward(state: State, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    Ytilde = state.model(X)
    L, _ = loss_accuracy(state.loss, Ytilde, Y)
    L.backward()
    return state.mean_loss(Ytilde.detach(), Y)


def gradients(state: State, X: torch.Tensor, Y: torch.Tensor, *, reduction: str) -> tuple[torch.Tensor, dict]:
    del reduction  # the state's loss already has it
    L = backward(state, X, Y)
    grads = convert.from_torch_state_dict({n: p.grad for n, p in state.model.named_parameters()}, check=False)
    state.model.zero_grad(set_to_none=True)
    return L, grads


def prepare(params: Params, config: TrainConfig, device: torch.device) -> State:
    model = init_model(params, dtype=config.dtype, device=device, model=config.model)
    return State(model, config.loss_reduction)


def make_step(config: TrainConfig):
    def step(state: State, X: torch.Tensor, Y: torch.Tensor) -> State:
        backward(state, X, Y)
        sgd(state.model, config.eta)
        return state

    return step


@torch.no_grad()
def evaluate(state: State, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return loss_accuracy(state.mean_loss, state.model(X), Y)


@torch.no_grad()
def trace(state: State, X: torch.Tensor) -> dict:
    """The intermediates, layer by layer (for the first-divergence view)."""
    linear_h, tanh, linear_y = state.model[:3]
    htilde = linear_h(X)
    h = tanh(htilde)
    ytilde = linear_y(h)
    return {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": torch.softmax(ytilde, dim=1)}


def export(state: State) -> Params:
    return convert.from_torch_state_dict(state.model.state_dict(), check=False)
