"""Stage 1 (PyTorch): the forward and backward passes written by hand.

The lab's first stage. Tensors only: no autograd anywhere, so every gradient
below is derived on paper (questions 14 to 17 of the lab). A batch is a
matrix with one sample a row, so ``Wh x`` becomes ``X @ Wh.T``.

    htilde = X Wh^T + bh      h = tanh(htilde)
    ytilde = h Wy^T + by      Yhat = softmax(ytilde)
    L = -mean_i sum_j Y_ij log Yhat_ij
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.torch_stages import _backend as backend


def load(params: Params, config: TrainConfig, device: torch.device | None = None) -> dict:
    """The kit's canonical parameters (``frameworks.init_params``) as plain tensors: Wh, bh, Wy, by."""
    return backend.from_canonical(params, config.dtype, device or torch.device("cpu"))


def forward(params: dict, X: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Yhat for a batch ``X`` (B, nx), and every intermediate the backward pass needs."""
    htilde = X @ params["Wh"].T + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    yhat = torch.softmax(ytilde, dim=1)
    outputs = {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}
    return yhat, outputs


def loss_accuracy(Ytilde: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of the batch, from the logits, and the fraction of rows whose argmax is right.

    ``-sum_j Y_j log softmax(ytilde)_j``, with ``log softmax(ytilde) = ytilde - logsumexp(ytilde)``
    (question 14's simplification): the same number as ``log(Yhat)``, but finite even where
    a probability underflows to 0.
    """
    L = -(Y * torch.log_softmax(Ytilde, dim=1)).sum(dim=1).mean()
    acc = (Ytilde.argmax(dim=1) == Y.argmax(dim=1)).to(Ytilde.dtype).mean()
    return L, acc


def backward(params: dict, outputs: dict, Y: torch.Tensor, *, reduction: str = "mean") -> dict:
    """Gradients of the batch loss, by the chain rule.

    ``reduction="mean"`` differentiates the mean loss (what ``loss_accuracy``
    reports); ``"sum"`` the summed loss, as the course's cheat-sheet writes it.
    """
    B = Y.shape[0] if reduction == "mean" else 1
    dytilde = (outputs["yhat"] - Y) / B  # dL/dytilde, softmax and cross-entropy together
    grads = {"Wy": dytilde.T @ outputs["h"], "by": dytilde.sum(dim=0)}
    dhtilde = (dytilde @ params["Wy"]) * (1 - outputs["h"] ** 2)  # tanh' = 1 - tanh^2
    grads["Wh"] = dhtilde.T @ outputs["X"]
    grads["bh"] = dhtilde.sum(dim=0)
    return grads


def sgd(params: dict, grads: dict, eta: float) -> dict:
    """One step of gradient descent."""
    return {name: params[name] - eta * grads[name] for name in params}


def gradients(params: dict, X: torch.Tensor, Y: torch.Tensor, *, reduction: str) -> tuple[torch.Tensor, dict]:
    """The mean loss of a batch and its gradients (of the mean, or of the summed loss)."""
    _, outputs = forward(params, X)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    return L, backward(params, outputs, Y, reduction=reduction)


def make_step(config: TrainConfig) -> Callable[[dict, torch.Tensor, torch.Tensor], dict]:
    """One training step: the gradients of the batch, then gradient descent."""

    def step(params: dict, X: torch.Tensor, Y: torch.Tensor) -> dict:
        _, grads = gradients(params, X, Y, reduction=config.loss_reduction)
        return sgd(params, grads, config.eta)

    return step


def evaluate(params: dict, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy of a whole set."""
    _, outputs = forward(params, X)
    return loss_accuracy(outputs["ytilde"], Y)


def trace(params: dict, X: torch.Tensor) -> dict:
    """The intermediates of the forward pass."""
    return forward(params, X)[1]


def export(params: dict) -> Params:
    """The tensors back as canonical float64 NumPy arrays."""
    return {name: backend.to_numpy(value) for name, value in params.items()}


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("torch/manual") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export)
