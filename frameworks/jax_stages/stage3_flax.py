"""Stage 3 (JAX): the model as a Flax NNX module, the loss from Optax.

The twin of ``torch_stages/stage3_nn.py``: ``nnx.Sequential(Linear, tanh,
Linear)`` outputs the logits and ``optax.softmax_cross_entropy`` applies
log-softmax itself, as ``nn.CrossEntropyLoss`` does. The update is still
written by hand.

Two differences from PyTorch, both handled here:

* a Flax ``Linear`` stores its kernel (in, out), the transpose of PyTorch's
  weight: loading goes through ``frameworks.convert`` (the one transpose);
* NNX modules are Python objects; to jit and scan the training step the model
  is split once into a static ``graphdef`` and a pytree of ``params``
  (``nnx.split``), and merged back inside the traced function. The hot loop
  then pays no Python overhead per step.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from frameworks import convert
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend


def init_model(params: Params, *, dtype: str = "float32", model: str = "lab") -> nnx.Sequential:
    """The MLP, loaded with the kit's canonical parameters."""
    nh, nx = params["Wh"].shape
    ny = params["Wy"].shape[0]
    rngs, jdtype = nnx.Rngs(0), backend.jax_dtype(dtype)  # the random init is overwritten below
    layers: list[Callable[..., Any]] = [
        nnx.Linear(nx, nh, dtype=jdtype, param_dtype=jdtype, rngs=rngs),
        nnx.tanh,
        nnx.Linear(nh, ny, dtype=jdtype, param_dtype=jdtype, rngs=rngs),
    ]
    if model == "double_softmax":
        layers.append(jax.nn.softmax)  # the trap: the loss softmaxes again
    mlp = nnx.Sequential(*layers)
    state = nnx.state(mlp, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree.map(lambda a: jnp.asarray(a, jdtype), convert.to_flax_params(params)))
    nnx.update(mlp, state)
    return mlp


def loss_accuracy(Ytilde: jax.Array, Y: jax.Array, *, reduction: str = "mean") -> tuple[jax.Array, jax.Array]:
    """Softmax cross-entropy of the logits (mean, or summed over the batch) and the accuracy."""
    losses = optax.softmax_cross_entropy(Ytilde, Y)
    L = losses.mean() if reduction == "mean" else losses.sum()
    acc = (Ytilde.argmax(axis=1) == Y.argmax(axis=1)).astype(Ytilde.dtype).mean()
    return L, acc


@struct.dataclass
class State:
    """The model split for jit: the static ``graphdef`` and the ``params`` pytree."""

    graphdef: Any = struct.field(pytree_node=False)
    params: nnx.State


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> State:
    """The kit's canonical parameters as the model, split once into ``graphdef`` and ``params``."""
    graphdef, flax_params = nnx.split(init_model(params, dtype=config.dtype, model=config.model), nnx.Param)
    return State(graphdef, jax.device_put(flax_params, device))


def loss(params: nnx.State, graphdef: Any, X: jax.Array, Y: jax.Array, reduction: str) -> tuple[jax.Array, jax.Array]:
    """The loss to differentiate: the model merged back inside the traced function; the mean loss as aux."""
    model = nnx.merge(graphdef, params)
    Ytilde = model(X)
    L, _ = loss_accuracy(Ytilde, Y, reduction=reduction)
    return L, loss_accuracy(Ytilde, Y)[0]


@partial(jax.jit, static_argnames="reduction")
def grads_of(state: State, X: jax.Array, Y: jax.Array, *, reduction: str) -> tuple[jax.Array, nnx.State]:
    """The mean loss and the gradients, a pytree shaped like ``state.params``."""
    (_, L), grads = jax.value_and_grad(loss, has_aux=True)(state.params, state.graphdef, X, Y, reduction)
    return L, grads


def sgd(params: nnx.State, grads: nnx.State, eta: float) -> nnx.State:
    """One step of gradient descent over the parameter pytree."""
    return jax.tree.map(lambda p, g: p - eta * g, params, grads)


def make_step(config: TrainConfig) -> Callable[[State, jax.Array, jax.Array], State]:
    """One training step: the gradients of the merged model, then gradient descent."""

    def step(state: State, X: jax.Array, Y: jax.Array) -> State:
        _, grads = grads_of(state, X, Y, reduction=config.loss_reduction)
        return State(state.graphdef, sgd(state.params, grads, config.eta))

    return step


def evaluate(state: State, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean loss and accuracy of a whole set."""
    return loss_accuracy(nnx.merge(state.graphdef, state.params)(X), Y)


def trace(state: State, X: jax.Array) -> dict:
    """The intermediates, layer by layer (for the first-divergence view)."""
    linear_h, tanh, linear_y = nnx.merge(state.graphdef, state.params).layers[:3]
    htilde = linear_h(X)
    h = tanh(htilde)
    ytilde = linear_y(h)
    return {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": jax.nn.softmax(ytilde, axis=1)}


def canonical(flax_params: nnx.State) -> Params:
    """Parameters (or gradients) of the model in the canonical layout."""
    return convert.from_flax_params(nnx.to_pure_dict(flax_params), check=False)


def gradients(state: State, X: jax.Array, Y: jax.Array, *, reduction: str) -> tuple[jax.Array, Params]:
    """The mean loss of a batch and its gradients, in the canonical layout."""
    L, grads = grads_of(state, X, Y, reduction=reduction)
    return L, canonical(grads)


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return canonical(state.params)


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/flax") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, has_model=True)
