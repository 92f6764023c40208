"""Stage 1 (JAX): the forward and backward passes written by hand, in ``jax.numpy``.

The twin of ``torch_stages/stage1_manual.py``, line for line: ``torch`` becomes
``jnp``, ``dim`` becomes ``axis``. No ``jax.grad`` anywhere: every gradient is
derived on paper. The training step is pure (it returns new arrays), so the kit
jits it and runs a whole epoch as one ``lax.scan``.

    htilde = X Wh^T + bh      h = tanh(htilde)
    ytilde = h Wy^T + by      Yhat = softmax(ytilde)
    L = -mean_i sum_j Y_ij log Yhat_ij
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> dict:
    """The kit's canonical parameters (``frameworks.init_params``) as plain arrays: Wh, bh, Wy, by."""
    return backend.from_canonical(params, config.dtype, device)


def forward(params: dict, X: jax.Array) -> tuple[jax.Array, dict]:
    """Yhat for a batch ``X`` (B, nx), and every intermediate the backward pass needs."""
    htilde = X @ params["Wh"].T + params["bh"]
    h = jnp.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    yhat = jax.nn.softmax(ytilde, axis=1)
    outputs = {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}
    return yhat, outputs


def loss_accuracy(Ytilde: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy of the batch, from the logits, and the fraction of rows whose argmax is right.

    ``-sum_j Y_j log softmax(ytilde)_j``, with ``log softmax(ytilde) = ytilde - logsumexp(ytilde)``
    (question 14's simplification): the same number as ``log(Yhat)``, but finite even where
    a probability underflows to 0.
    """
    L = -(Y * jax.nn.log_softmax(Ytilde, axis=1)).sum(axis=1).mean()
    acc = (Ytilde.argmax(axis=1) == Y.argmax(axis=1)).astype(Ytilde.dtype).mean()
    return L, acc


def backward(params: dict, outputs: dict, Y: jax.Array, *, reduction: str = "mean") -> dict:
    """Gradients of the batch loss, by the chain rule.

    ``reduction="mean"`` differentiates the mean loss (what ``loss_accuracy``
    reports); ``"sum"`` the summed loss, as the course's cheat-sheet writes it.
    """
    B = Y.shape[0] if reduction == "mean" else 1
    dytilde = (outputs["yhat"] - Y) / B  # dL/dytilde, softmax and cross-entropy together
    grads = {"Wy": dytilde.T @ outputs["h"], "by": dytilde.sum(axis=0)}
    dhtilde = (dytilde @ params["Wy"]) * (1 - outputs["h"] ** 2)  # tanh' = 1 - tanh^2
    grads["Wh"] = dhtilde.T @ outputs["X"]
    grads["bh"] = dhtilde.sum(axis=0)
    return grads


def sgd(params: dict, grads: dict, eta: float) -> dict:
    """One step of gradient descent."""
    return {name: params[name] - eta * grads[name] for name in params}


@partial(jax.jit, static_argnames="reduction")
def gradients(params: dict, X: jax.Array, Y: jax.Array, *, reduction: str) -> tuple[jax.Array, dict]:
    """The mean loss of a batch and its gradients (of the mean, or of the summed loss)."""
    _, outputs = forward(params, X)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    return L, backward(params, outputs, Y, reduction=reduction)


def make_step(config: TrainConfig) -> Callable[[dict, jax.Array, jax.Array], dict]:
    """One training step: the gradients of the batch, then gradient descent."""

    def step(params: dict, X: jax.Array, Y: jax.Array) -> dict:
        _, grads = gradients(params, X, Y, reduction=config.loss_reduction)
        return sgd(params, grads, config.eta)

    return step


def evaluate(params: dict, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean loss and accuracy of a whole set."""
    _, outputs = forward(params, X)
    return loss_accuracy(outputs["ytilde"], Y)


def trace(params: dict, X: jax.Array) -> dict:
    """The intermediates of the forward pass."""
    return forward(params, X)[1]


def export(params: dict) -> Params:
    """The arrays back as canonical float64 NumPy arrays."""
    return {name: backend.to_numpy(value) for name, value in params.items()}


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/manual") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export)
