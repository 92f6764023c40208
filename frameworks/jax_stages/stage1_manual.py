"""Stage 1 (JAX): the forward and backward passes written by hand, in ``jax.numpy``.

The twin of ``torch_stages/stage1_manual.py``, line for line: ``torch`` becomes
``jnp``, ``dim`` becomes ``axis``. No ``jax.grad`` anywhere: every gradient is
derived on paper. The training step is pure (it returns new arrays), so the kit
jits it and runs a whole epoch as one ``lax.scan``. (For the lab's small networks and
its SGD, ``train`` runs this same math with the runs as the last axis, a sweep of one
run, ``sweep_manual.py``: a few fused loops a step instead of a score of tiny operations.)

    htilde = X Wh^T + bh      h = tanh(htilde)
    ytilde = h Wy^T + by      Yhat = softmax(ytilde)
    L = -mean_i sum_j Y_ij log Yhat_ij

A deeper network (``TrainConfig(hidden=..., activation=..., norm=..., dropout=...)``)
repeats the hidden layer, each with its own activation ``f`` and optionally a
LayerNorm before it and dropout after it; the backward pass is then a loop over
the layers, from the last to the first, of the same three lines (``layers.py``
holds each activation's derivative and LayerNorm's backward pass):

    dh = dz_next W_next             (the gradient reaching a layer's output)
    dz = dh * f'(z)                 dW = dz^T h_prev,  db = sum_i dz_i
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages import optimizers, sweep_manual
from frameworks.jax_stages.layers import ACTIVATIONS, DERIVATIVES, dropout, layer_norm, layer_norm_backward


@struct.dataclass
class Net:
    """The parameters (Wh, bh, Wy, by for the lab's network), the architecture they belong to (static: jit
    compiles one program an architecture), and the state of an optimizer other than the lab's SGD
    (``optimizers.py``; empty for the lab's)."""

    params: dict
    arch: Architecture = struct.field(pytree_node=False, default=LAB)
    opt: dict = struct.field(default_factory=dict)


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> Net:
    """The kit's canonical parameters (``frameworks.init_params``) as plain arrays: Wh, bh, Wy, by for the lab's
    network, W1, b1, ... for a deeper one; with the state of the config's optimizer."""
    arrays = backend.from_canonical(params, config.dtype, device)
    return Net(arrays, config.arch, optimizers.init_state(config, arrays))


def forward(params: dict, X: jax.Array, arch: Architecture = LAB, masks: tuple = ()) -> tuple[jax.Array, dict]:
    """Yhat for a batch ``X`` (B, nx), and every intermediate the backward pass needs.

    For the lab's network, the lab's four lines; each hidden layer in general (``masks``: dropout's
    kept units, one a layer, while training).
    """
    h, hidden = X, []
    for k, f in enumerate(arch.activations):
        p = {role: params[name] for role, name in arch.hidden_names(k).items()}  # W, b (gamma, beta)
        layer = {"in": h, "htilde": h @ p["W"].T + p["b"]}
        z = layer["htilde"]
        if arch.norm:
            layer["zhat"], layer["sigma"] = layer_norm(z)
            z = layer["norm"] = layer["zhat"] * p["gamma"] + p["beta"]
        h = layer["h"] = ACTIVATIONS[f](z)
        if masks:
            h = layer["dropout"] = dropout(h, masks[k], arch.dropout)
        layer["z"] = z
        hidden.append(layer)
    ytilde = h @ params["Wy"].T + params["by"]
    yhat = jax.nn.softmax(ytilde, axis=1)
    outputs = {"X": X, "layers": hidden, "h": h, "ytilde": ytilde, "yhat": yhat}
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


def backward(params: dict, outputs: dict, Y: jax.Array, arch: Architecture = LAB, masks: tuple = (), *,
             reduction: str = "mean") -> dict:
    """Gradients of the batch loss, by the chain rule, from the last layer to the first.

    ``reduction="mean"`` differentiates the mean loss (what ``loss_accuracy``
    reports); ``"sum"`` the summed loss, as the course's cheat-sheet writes it.
    For the lab's network the loop runs once: ``dhtilde = (dytilde Wy) * (1 - h^2)``.
    """
    B = Y.shape[0] if reduction == "mean" else 1
    dytilde = (outputs["yhat"] - Y) / B  # dL/dytilde, softmax and cross-entropy together
    grads = {"Wy": dytilde.T @ outputs["h"], "by": dytilde.sum(axis=0)}
    dh = dytilde @ params["Wy"]  # dL/dh of the last hidden layer
    for k in reversed(range(arch.depth)):
        layer, names = outputs["layers"][k], arch.hidden_names(k)
        if masks:
            dh = dropout(dh, masks[k], arch.dropout)  # the same mask and scale on the way back
        dz = dh * DERIVATIVES[arch.activations[k]](layer["z"], layer["h"])  # tanh' = 1 - tanh^2, ...
        if arch.norm:
            grads[names["gamma"]] = (dz * layer["zhat"]).sum(axis=0)
            grads[names["beta"]] = dz.sum(axis=0)
            dz = layer_norm_backward(dz * params[names["gamma"]], layer["zhat"], layer["sigma"])
        grads[names["W"]] = dz.T @ layer["in"]
        grads[names["b"]] = dz.sum(axis=0)
        if k:
            dh = dz @ params[names["W"]]
    return grads


def sgd(params: dict, grads: dict, eta: float) -> dict:
    """One step of gradient descent."""
    return {name: params[name] - eta * grads[name] for name in params}


@partial(jax.jit, static_argnames="reduction")
def gradients(net: Net, X: jax.Array, Y: jax.Array, *, reduction: str, masks: tuple = ()) -> tuple[
        jax.Array, dict]:
    """The mean loss of a batch and its gradients (of the mean, or of the summed loss)."""
    _, outputs = forward(net.params, X, net.arch, masks)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    return L, backward(net.params, outputs, Y, net.arch, masks, reduction=reduction)


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., Net]:
    """One training step: the gradients of the batch, then gradient descent (or the config's optimizer,
    schedule and clipping, written by hand in ``optimizers.py``)."""
    update = optimizers.updater(config, steps_per_epoch)  # None: the lab's SGD

    def step(net: Net, X: jax.Array, Y: jax.Array, masks: tuple = ()) -> Net:
        _, grads = gradients(net, X, Y, reduction=config.loss_reduction, masks=masks)
        if update is None:
            return Net(sgd(net.params, grads, config.eta), net.arch)
        params, opt = update(net.params, grads, net.opt)
        return Net(params, net.arch, opt)

    return step


def evaluate(net: Net, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean loss and accuracy of a whole set (no dropout)."""
    _, outputs = forward(net.params, X, net.arch)
    return loss_accuracy(outputs["ytilde"], Y)


def trace(net: Net, X: jax.Array) -> dict:
    """The intermediates of the forward pass, by their names (``Architecture.trace_names``)."""
    _, outputs = forward(net.params, X, net.arch)
    values = [value for layer in outputs["layers"] for value in
              (layer["htilde"], *([layer["norm"]] if net.arch.norm else []), layer["h"],
               *([layer["h"]] if net.arch.dropout else []))]  # evaluation: dropout is the identity
    return {"X": X, **dict(zip(net.arch.trace_names, (*values, outputs["ytilde"]))), "yhat": outputs["yhat"]}


def export(net: Net) -> Params:
    """The arrays back as canonical float64 NumPy arrays."""
    return {name: backend.to_numpy(value) for name, value in net.params.items()}


def save_optimizer(net: Net) -> dict | None:
    """The optimizer's step count and buffers, canonical (None for the lab's SGD)."""
    return optimizers.save(net.opt, lambda tree: {name: backend.to_numpy(value) for name, value in tree.items()})


def restore_optimizer(net: Net, saved: dict) -> Net:
    """``net`` with the optimizer's state of a checkpoint (:func:`save_optimizer`'s form)."""
    return Net(net.params, net.arch, optimizers.restore(net.opt, saved, lambda canonical, like: {
        name: jax.device_put(jnp.asarray(canonical[name], value.dtype), value.sharding)
        for name, value in like.items()}))


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/manual") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, save_optimizer=save_optimizer, restore_optimizer=restore_optimizer,
              runner=sweep_manual.runner)  # small networks, the lab's SGD: this math, runs last (a sweep of one)
