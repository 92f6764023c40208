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

A deeper network is the same ``Sequential``, longer (``nnx.LayerNorm``, the
activation, ``nnx.Dropout``, a hidden layer at a time). Two of Flax's defaults
are not PyTorch's and are set here: GELU exact (``approximate=False``) and
LayerNorm's eps 1e-5, with PyTorch's way of computing the variance.
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
from frameworks._arch import LAB, LAYER_NORM_EPS, LEAKY_SLOPE, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages import optimizers

#: Each activation as Flax applies it: GELU made exact (Flax's default is the tanh form).
ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "tanh": nnx.tanh, "relu": nnx.relu, "leaky_relu": partial(nnx.leaky_relu, negative_slope=LEAKY_SLOPE),
    "sigmoid": nnx.sigmoid, "gelu": partial(nnx.gelu, approximate=False),
    "gelu_tanh": partial(nnx.gelu, approximate=True), "silu": nnx.silu,
}


def init_model(params: Params, *, dtype: str = "float32", model: str = "lab", arch: Architecture = LAB,
               native_dropout: bool = False) -> nnx.Sequential:
    """The MLP, loaded with the kit's canonical parameters. ``native_dropout``: each ``Dropout`` draws its own
    masks from the key it is given (else the kit gives the masks and the layers stay deterministic)."""
    widths = [params["Wh" if arch.depth == 1 else f"W{k + 1}"].shape for k in range(arch.depth)]
    rngs, jdtype = nnx.Rngs(0), backend.jax_dtype(dtype)  # the random init is overwritten below
    layers: list[Callable[..., Any]] = []
    for (nh, nin), f in zip(widths, arch.activations):
        layers.append(nnx.Linear(nin, nh, dtype=jdtype, param_dtype=jdtype, rngs=rngs))
        if arch.norm:
            layers.append(nnx.LayerNorm(nh, epsilon=LAYER_NORM_EPS, use_fast_variance=False, dtype=jdtype,
                                        param_dtype=jdtype, rngs=rngs))
        layers.append(ACTIVATIONS[f])
        if arch.dropout:
            layers.append(nnx.Dropout(arch.dropout, deterministic=not native_dropout))
    ny, nh = params["Wy"].shape
    layers.append(nnx.Linear(nh, ny, dtype=jdtype, param_dtype=jdtype, rngs=rngs))
    if model == "double_softmax":
        layers.append(jax.nn.softmax)  # the trap: the loss softmaxes again
    mlp = nnx.Sequential(*layers)
    state = nnx.state(mlp, nnx.Param)
    flax_params = convert.to_flax_params(params, arch=arch)
    nnx.replace_by_pure_dict(state, jax.tree.map(lambda a: jnp.asarray(a, jdtype), flax_params))
    nnx.update(mlp, state)
    return mlp


def logits(model: nnx.Sequential, X: jax.Array, masks: tuple = (), key: jax.Array | None = None) -> jax.Array:
    """``model(X)``; given the kit's dropout masks, each ``Dropout`` layer applies the next one instead of
    drawing its own (the same inverted scaling, 1 / (1 - rate)); given a ``key`` instead, each draws its
    own masks from it (``dropout_rng="native"``)."""
    if not masks and key is None:
        return model(X)
    keep, keys = iter(masks), iter(jax.random.split(key, len(model.layers)) if key is not None else ())
    for layer in model.layers:
        if isinstance(layer, nnx.Dropout):
            X = X * next(keep) / (1 - layer.rate) if masks else layer(X, rngs=next(keys))
        else:
            X = layer(X)
    return X


def loss_accuracy(Ytilde: jax.Array, Y: jax.Array, *, reduction: str = "mean") -> tuple[jax.Array, jax.Array]:
    """Softmax cross-entropy of the logits (mean, or summed over the batch) and the accuracy."""
    losses = optax.softmax_cross_entropy(Ytilde, Y)
    L = losses.mean() if reduction == "mean" else losses.sum()
    acc = (Ytilde.argmax(axis=1) == Y.argmax(axis=1)).astype(Ytilde.dtype).mean()
    return L, acc


@struct.dataclass
class State:
    """The model split for jit: the static ``graphdef`` and the ``params`` pytree; ``key``, the dropout
    layers' random key (used only with ``dropout_rng="native"``); ``opt``, the state of an optimizer other
    than the lab's SGD (``optimizers.py``)."""

    graphdef: Any = struct.field(pytree_node=False)
    params: nnx.State
    key: jax.Array
    arch: Architecture = struct.field(pytree_node=False, default=LAB)
    opt: Any = struct.field(default_factory=dict)


def split(config: TrainConfig, params: Params, device: jax.Device | None) -> tuple[Any, nnx.State]:
    """The config's model, split once into ``graphdef`` and ``params`` (on ``device``)."""
    model = init_model(params, dtype=config.dtype, model=config.model, arch=config.arch,
                       native_dropout=native_dropout(config))
    graphdef, flax_params = nnx.split(model, nnx.Param)
    return graphdef, jax.device_put(flax_params, device)


def native_dropout(config: TrainConfig) -> bool:
    return bool(config.dropout) and config.dropout_rng == "native"


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> State:
    """The kit's canonical parameters as the model, split once into ``graphdef`` and ``params``."""
    graphdef, flax_params = split(config, params, device)
    key = backend.random_key(config.seed, device)
    return State(graphdef, flax_params, key, config.arch, optimizers.init_state(config, flax_params))


def loss(params: nnx.State, graphdef: Any, X: jax.Array, Y: jax.Array, reduction: str, masks: tuple = (),
         key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """The loss to differentiate: the model merged back inside the traced function; the mean loss as aux."""
    model = nnx.merge(graphdef, params)
    Ytilde = logits(model, X, masks, key)
    L, _ = loss_accuracy(Ytilde, Y, reduction=reduction)
    return L, loss_accuracy(Ytilde, Y)[0]


@partial(jax.jit, static_argnames="reduction")
def grads_of(state: State, X: jax.Array, Y: jax.Array, *, reduction: str, masks: tuple = (),
             key: jax.Array | None = None) -> tuple[jax.Array, nnx.State]:
    """The mean loss and the gradients, a pytree shaped like ``state.params``."""
    (_, L), grads = jax.value_and_grad(loss, has_aux=True)(state.params, state.graphdef, X, Y, reduction, masks, key)
    return L, grads


def sgd(params: nnx.State, grads: nnx.State, eta: float) -> nnx.State:
    """One step of gradient descent over the parameter pytree."""
    return jax.tree.map(lambda p, g: p - eta * g, params, grads)


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., State]:
    """One training step: the gradients of the merged model, then gradient descent (or the config's optimizer,
    schedule and clipping, written by hand in ``optimizers.py``, over the parameter pytree)."""
    native = native_dropout(config)
    update = optimizers.updater(config, steps_per_epoch)  # None: the lab's SGD

    def step(state: State, X: jax.Array, Y: jax.Array, masks: tuple = ()) -> State:
        key, dropout_key = jax.random.split(state.key) if native else (state.key, None)
        _, grads = grads_of(state, X, Y, reduction=config.loss_reduction, masks=masks, key=dropout_key)
        if update is None:
            return State(state.graphdef, sgd(state.params, grads, config.eta), key, state.arch)
        params, opt = update(state.params, grads, state.opt)
        return State(state.graphdef, params, key, state.arch, opt)

    return step


def evaluate(state: State, X: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean loss and accuracy of a whole set (in evaluation mode: no dropout)."""
    model = nnx.merge(state.graphdef, state.params)
    model.eval()
    return loss_accuracy(model(X), Y)


def trace(state: State, X: jax.Array) -> dict:
    """The intermediates, layer by layer (for the first-divergence view), in evaluation mode."""
    model = nnx.merge(state.graphdef, state.params)
    outputs, h = [], X
    for layer in model.layers[:len(state.arch.trace_names)]:
        h = h if isinstance(layer, nnx.Dropout) else layer(h)  # dropout is the identity in evaluation
        outputs.append(h)
    ytilde = outputs[-1]
    return {"X": X, **dict(zip(state.arch.trace_names, outputs)), "yhat": jax.nn.softmax(ytilde, axis=1)}


def canonical(flax_params: nnx.State, arch: Architecture = LAB) -> Params:
    """Parameters (or gradients) of the model in the canonical layout."""
    return convert.from_flax_params(nnx.to_pure_dict(flax_params), check=False, arch=arch)


def gradients(state: State, X: jax.Array, Y: jax.Array, *, reduction: str, masks: tuple = ()) -> tuple[
        jax.Array, Params]:
    """The mean loss of a batch and its gradients, in the canonical layout."""
    L, grads = grads_of(state, X, Y, reduction=reduction, masks=masks)
    return L, canonical(grads, state.arch)


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return canonical(state.params, state.arch)


def like_params(canonical_params: Params, like: nnx.State, arch: Architecture) -> nnx.State:
    """Canonical arrays as a pytree shaped like ``like`` (a tree of the model's parameters): its dtypes and
    placement, Flax's layout."""
    tree = jax.tree.map(lambda x: x, like)
    nnx.replace_by_pure_dict(tree, convert.to_flax_params(canonical_params, arch=arch))
    return jax.tree.map(lambda v, old: jax.device_put(jnp.asarray(v, old.dtype), old.sharding), tree, like)


def save_optimizer(state: State) -> dict | None:
    """The by-hand optimizer's step count and buffers, canonical (None for the lab's SGD)."""
    return optimizers.save(state.opt, lambda tree: canonical(tree, state.arch))


def restore_optimizer(state: State, saved: dict) -> State:
    """``state`` with the optimizer's state of a checkpoint (:func:`save_optimizer`'s form)."""
    opt = optimizers.restore(state.opt, saved, lambda c, like: like_params(c, like, state.arch))
    return State(state.graphdef, state.params, state.key, state.arch, opt)


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/flax") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, has_model=True, save_optimizer=save_optimizer, restore_optimizer=restore_optimizer)
