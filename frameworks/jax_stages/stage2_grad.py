"""Stage 2 (JAX): the same forward, gradients by ``jax.value_and_grad``.

The twin of ``torch_stages/stage2_autograd.py``. Where PyTorch records the
graph on tensors that ``requires_grad`` and fills ``.grad`` in place, JAX
transforms the loss *function*: ``jax.value_and_grad(loss)`` is a new function
returning the loss and its gradient with respect to the first argument, the
parameter dict. Nothing is stored on the arrays, so there is nothing to zero.
The forward pass and the loss are stage 1's, unchanged.
"""

from __future__ import annotations

from functools import partial

import jax

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages.stage1_manual import evaluate, export, forward, loss_accuracy, trace  # stage 1's


def init_params(params: Params, *, dtype: str = "float32", device: jax.Device | None = None) -> dict:
    """The kit's canonical init as JAX arrays (JAX needs no ``requires_grad``)."""
    return backend.from_canonical(params, dtype, device)


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


__all__ = ["backend", "evaluate", "export", "forward", "gradients", "init_params", "loss", "loss_accuracy",
           "make_step", "prepare", "sgd", "trace"]
