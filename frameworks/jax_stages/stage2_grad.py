"""Stage 2 (JAX): the same forward, gradients by ``jax.value_and_grad``.

The twin of ``torch_stages/stage2_autograd.py``. Where PyTorch records the
graph on tensors that ``requires_grad`` and fills ``.grad`` in place, JAX
transforms the loss *function*: ``jax.value_and_grad(loss)`` is a new function
returning the loss and its gradient with respect to the first argument, the
parameter dict. Nothing is stored on the arrays, so there is nothing to zero.
The forward pass and the loss are stage 1's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax

from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages import optimizers
from frameworks.jax_stages.stage1_manual import (  # stage 1's
    Net,
    evaluate,
    export,
    forward,
    loss_accuracy,
    restore_optimizer,
    save_optimizer,
    trace,
)


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> Net:
    """The kit's canonical parameters as arrays (JAX needs no ``requires_grad``)."""
    arrays = backend.from_canonical(params, config.dtype, device)
    return Net(arrays, config.arch, optimizers.init_state(config, arrays))


def loss(params: dict, X: jax.Array, Y: jax.Array, reduction: str = "mean", arch: Architecture = LAB,
         masks: tuple = ()) -> tuple[jax.Array, jax.Array]:
    """The loss to differentiate (mean, or summed as in the cheat-sheet), and the mean loss as aux."""
    _, outputs = forward(params, X, arch, masks)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    return (L if reduction == "mean" else L * Y.shape[0]), L


def sgd(params: dict, grads: dict, eta: float) -> dict:
    """One step of gradient descent over the whole parameter tree."""
    return jax.tree.map(lambda p, g: p - eta * g, params, grads)


@partial(jax.jit, static_argnames="reduction")
def gradients(net: Net, X: jax.Array, Y: jax.Array, *, reduction: str, masks: tuple = ()) -> tuple[jax.Array, dict]:
    """The mean loss of a batch and the gradients ``jax.value_and_grad`` returns."""
    (_, L), grads = jax.value_and_grad(loss, has_aux=True)(net.params, X, Y, reduction, net.arch, masks)
    return L, grads


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., Net]:
    """One training step: the gradients by ``jax.value_and_grad``, then gradient descent (or the config's
    optimizer, schedule and clipping, written by hand in ``optimizers.py``)."""
    update = optimizers.updater(config, steps_per_epoch)  # None: the lab's SGD

    def step(net: Net, X: jax.Array, Y: jax.Array, masks: tuple = ()) -> Net:
        _, grads = gradients(net, X, Y, reduction=config.loss_reduction, masks=masks)
        if update is None:
            return Net(sgd(net.params, grads, config.eta), net.arch)
        params, opt = update(net.params, grads, net.opt)
        return Net(params, net.arch, opt)

    return step


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/grad") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, save_optimizer=save_optimizer, restore_optimizer=restore_optimizer,
              shares={"forward": "jax/manual"})
