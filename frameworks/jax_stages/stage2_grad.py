"""Stage 2 (JAX): the same forward, gradients by ``jax.value_and_grad``.

The twin of ``torch_stages/stage2_autograd.py``. Where PyTorch records the
graph on tensors that ``requires_grad`` and fills ``.grad`` in place, JAX
transforms the loss *function*: ``jax.value_and_grad(loss)`` is a new function
returning the loss and its gradient with respect to the first argument, the
parameter dict. Nothing is stored on the arrays, so there is nothing to zero.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.jax_stages import _backend as backend


def init_params(params: Params, *, dtype: str = "float32", device: jax.Device | None = None) -> dict:
    """The kit's canonical init as JAX arrays (JAX needs no ``requires_grad``)."""
    return backend.from_canonical(params, dtype, device)


def forward(params: dict, X: jax.Array) -> tuple[jax.Array, dict]:
    """Stage 1's forward, unchanged: ``jax.grad`` differentiates any function built from it."""
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


def sgd(params: dict, grads: dict, eta: float) -> dict:
    """One step of gradient descent over the whole parameter tree."""
    return jax.tree.map(lambda p, g: p - eta * g, params, grads)


# The kit's contract: what frameworks.get("jax/grad") runs.


def loss(params: dict, X: jax.Array, Y: jax.Array, reduction: str) -> tuple[jax.Array, jax.Array]:
    """The loss to differentiate (mean, or summed as in the cheat-sheet), and the mean loss as aux."""
    _, outputs = forward(params, X)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    return (L if reduction == "mean" else L * Y.shape[0]), L


@partial(jax.jit, static_argnames="reduction")
def gradients(params: dict, X: jax.Array, Y: jax.Array, *, reduction: str) -> tuple[jax.Array, dict]:
    (_, L), grads = jax.value_and_grad(loss, has_aux=True)(params, X, Y, reduction)
    return L, grads


def prepare(params: Params, config: TrainConfig, device: jax.Device) -> dict:
    return init_params(params, dtype=config.dtype, device=device)


def make_step(config: TrainConfig):
    def step(params: dict, X: jax.Array, Y: jax.Array) -> dict:
        _, grads = gradients(params, X, Y, reduction=config.loss_reduction)
        return sgd(params, grads, config.eta)

    return step


def evaluate(params: dict, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    _, outputs = forward(params, X)
    return loss_accuracy(outputs["ytilde"], Y)


def trace(params: dict, X: jax.Array) -> dict:
    return forward(params, X)[1]


def export(params: dict) -> Params:
    return {name: backend.to_numpy(value) for name, value in params.items()}
