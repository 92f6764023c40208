"""Porting an MLP between PyTorch and Flax NNX, exactly: ``from_torch`` and ``to_torch``.

A port is only as good as its least visible default. These two functions translate
the MLP family (``Linear``, an activation, an optional ``LayerNorm`` after a hidden
``Linear``, an optional ``Dropout``) layer by layer, carrying over what the two
libraries would otherwise change silently:

* the weight layout (a Flax kernel is the transpose of a PyTorch weight:
  ``frameworks.convert``'s one transpose, ``swap_in_out``);
* GELU's form: ``torch.nn.GELU()`` is exact, ``flax.nnx.gelu`` defaults to the tanh
  approximation; each side gets the form the other had (``approximate=False`` or
  ``nn.GELU(approximate="tanh")``);
* LayerNorm's eps (1e-5 in PyTorch, 1e-6 in Flax): the source's value is passed on;
* LeakyReLU's slope, Dropout's rate (both libraries use inverted dropout) and the
  model's mode (training or evaluation);
* the variance of LayerNorm, computed as PyTorch does (``use_fast_variance=False``).

What it cannot translate exactly (a convolution, a custom module, a LayerNorm
without its affine weights, a Flax function it does not know) is refused with a
:class:`KitError` naming the layer and why: a port is never approximate without
saying so. The result carries the architecture and the parameters in the canonical
layout: a list of layers, each ``{"W": (out, in), "b": (out,)}``, with ``gamma`` and
``beta`` for a LayerNorm. Forward passes agree to float64 rounding
(``tests/test_port.py``). ``Ported.config()`` and ``Ported.canonical`` hand a
ported network to the kit's eight implementations (``TrainConfig(hidden=...,
activation=..., norm=..., dropout=...)``) when it is one the kit trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from frameworks._arch import ACTIVATIONS, LAYER_NORM_EPS, LEAKY_SLOPE, Architecture, from_layers
from frameworks._config import DTYPES, TrainConfig
from frameworks._errors import KitError, unknown
from frameworks.convert import as_float64, swap_in_out

__all__ = ["ACTIVATIONS", "Layer", "Ported", "architecture_of", "from_torch", "naive_optax", "optax_from_torch",
           "specs_from_torch", "to_torch"]


@dataclass(frozen=True)
class Layer:
    """One layer of the MLP family: ``kind`` "linear", "layer_norm", "dropout" or an activation name;
    ``option`` its one setting (LayerNorm's eps, LeakyReLU's slope, Dropout's rate; None otherwise)."""

    kind: str
    option: float | None = None


@dataclass(frozen=True)
class Ported:
    """A translated model: its ``layers``, its parameters in the canonical layout (one dict a Linear or
    LayerNorm, in order), and the ``model`` built and loaded in the target framework."""

    layers: tuple[Layer, ...]
    params: list[dict[str, np.ndarray]]
    model: Any

    @property
    def arch(self) -> Architecture:
        """The kit's :class:`~frameworks.Architecture` of these layers (a clear error for a network of the
        family that the kit does not train, e.g. a LayerNorm whose eps is not 1e-5)."""
        return architecture_of(self.layers, self.params)

    @property
    def canonical(self) -> dict[str, np.ndarray]:
        """The parameters under the kit's canonical names (``W1, b1, ...`` or the lab's ``Wh, bh, Wy, by``)."""
        return from_layers(self.params, self.arch)

    def config(self, **changes: Any) -> TrainConfig:
        """A ``TrainConfig`` of this network (its widths, activations, norm and dropout), with ``changes``."""
        arch = self.arch
        return TrainConfig(hidden=arch.hidden, activation=arch.activations, norm=arch.norm,
                           dropout=arch.dropout).replace(**changes)


def architecture_of(layers: tuple[Layer, ...], params: list[dict[str, np.ndarray]]) -> Architecture:
    """The architecture of a ported network: hidden blocks of ``Linear, [LayerNorm], activation, [Dropout]``,
    then a ``Linear``; LayerNorm in every block or in none, one dropout rate."""

    def refuse(why: str) -> KitError:
        return KitError(f"the kit does not train this network: {why}.")

    if not layers or layers[-1].kind != "linear":
        raise refuse("it must end with a Linear (the logits)")
    widths = [w["W"].shape[0] for w in params if "W" in w]
    activations: list[str] = []
    norms, rates = set(), set()
    i = 0
    while i < len(layers) - 1:
        if layers[i].kind != "linear":
            raise refuse(f"layer {i} ({layers[i].kind}) should be the Linear that starts a hidden block")
        i += 1
        norms.add(layers[i].kind == "layer_norm")
        if layers[i].kind == "layer_norm":
            if layers[i].option != LAYER_NORM_EPS:
                raise refuse(f"layer {i} is a LayerNorm with eps {layers[i].option:g}; the kit's is PyTorch's "
                             f"{LAYER_NORM_EPS:g}")
            i += 1
        if layers[i].kind not in ACTIVATIONS:
            raise refuse(f"layer {i} ({layers[i].kind}) should be the activation of a hidden block")
        if layers[i].kind == "leaky_relu" and layers[i].option != LEAKY_SLOPE:
            raise refuse(f"layer {i} is a LeakyReLU with slope {layers[i].option:g}; the kit's is {LEAKY_SLOPE:g}")
        activations.append(layers[i].kind)
        i += 1
        if layers[i].kind == "dropout":
            rates.add(layers[i].option or 0.0)
            i += 1
        else:
            rates.add(0.0)
    if len(norms) > 1:
        raise refuse("some hidden blocks have a LayerNorm and some not")
    if len(rates) > 1:
        raise refuse(f"its dropout rates differ ({sorted(rates)}); the kit has one")
    return Architecture(tuple(widths[:-1]), tuple(activations), "layer" if True in norms else None,
                        rates.pop() if rates else 0.0)


def from_torch(module: Any, *, dtype: str = "float64") -> Ported:
    """A ``torch.nn.Sequential`` of the MLP family as an equivalent Flax ``nnx.Sequential`` (in ``dtype``).

    float64 needs JAX's x64: call it, and the model, inside ``with jax.enable_x64(True):``
    (outside, a clear error instead of a silent float32). The model keeps the source's mode
    (``module.eval()`` gives a Flax model whose dropout is off). Flax's LayerNorm is built
    with ``use_fast_variance=False``: PyTorch's way of computing the variance (Flax's default,
    E[x^2] - E[x]^2, loses precision on features with a large mean in float32).
    """
    from torch import nn

    if not isinstance(module, nn.Sequential):
        raise KitError(f"from_torch takes a torch.nn.Sequential, got {type(module).__name__}.")
    _check_dtype(dtype)
    layers, params = [], []
    for index, layer in enumerate(module):
        kind, option, weights = _read_torch(index, layer)
        layers.append(Layer(kind, option))
        if weights is not None:
            params.append(weights)
    model = _build_flax(tuple(layers), params, dtype)
    if not module.training:
        model.eval()  # the source's mode: dropout off
    return Ported(tuple(layers), params, model)


def to_torch(module: Any, *, dtype: str = "float64") -> Ported:
    """A Flax ``nnx.Sequential`` of the MLP family as an equivalent ``torch.nn.Sequential`` (in ``dtype``)."""
    from flax import nnx

    if not isinstance(module, nnx.Sequential):
        raise KitError(f"to_torch takes a flax.nnx.Sequential, got {type(module).__name__}.")
    _check_dtype(dtype)
    layers, params = [], []
    for index, layer in enumerate(module.layers):
        kind, option, weights = _read_flax(index, layer)
        layers.append(Layer(kind, option))
        if weights is not None:
            params.append(weights)
    model = _build_torch(tuple(layers), params, dtype)
    modes = {layer.deterministic for layer in module.layers if isinstance(layer, nnx.Dropout)}
    if len(modes) > 1:
        raise KitError("to_torch: some Dropout layers are deterministic and some not; PyTorch has one mode a model "
                       "(call model.eval() or model.train() first).")
    if modes == {True}:
        model.eval()  # the source's mode: dropout off
    return Ported(tuple(layers), params, model)


def _refuse(index: int, layer: Any, why: str) -> KitError:
    if isinstance(layer, partial):
        name = f"partial({getattr(layer.func, '__name__', type(layer.func).__name__)})"
    else:  # a function by its name, a module by its class
        name = getattr(layer, "__name__", None) or type(layer).__name__
    return KitError(f"layer {index} ({name}) cannot be ported exactly: {why}.")


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise unknown("dtype", dtype, DTYPES)


def _read_torch(index: int, layer: Any) -> tuple[str, float | None, dict[str, np.ndarray] | None]:
    """(kind, option, canonical weights or None) of one PyTorch layer."""
    from torch import nn

    simple = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}
    if type(layer) in simple:
        return simple[type(layer)], None, None
    if isinstance(layer, nn.Linear):
        if layer.bias is None:
            raise _refuse(index, layer, "a Linear without bias has no counterpart in the kit's canonical layout")
        return "linear", None, {"W": as_float64(layer.weight), "b": as_float64(layer.bias)}
    if isinstance(layer, nn.GELU):
        return ("gelu" if layer.approximate == "none" else "gelu_tanh"), None, None
    if isinstance(layer, nn.LeakyReLU):
        return "leaky_relu", float(layer.negative_slope), None
    if isinstance(layer, nn.LayerNorm):
        if len(layer.normalized_shape) != 1 or not layer.elementwise_affine or layer.bias is None:
            raise _refuse(index, layer, "only a LayerNorm over the last axis with its weight and bias is supported")
        return "layer_norm", float(layer.eps), {"gamma": as_float64(layer.weight), "beta": as_float64(layer.bias)}
    if isinstance(layer, nn.Dropout):
        return "dropout", float(layer.p), None
    raise _refuse(index, layer, "the port knows Linear, LayerNorm, Dropout and the activations "
                                "Tanh, ReLU, LeakyReLU, Sigmoid, GELU and SiLU")


def _read_flax(index: int, layer: Any) -> tuple[str, float | None, dict[str, np.ndarray] | None]:
    """(kind, option, canonical weights or None) of one Flax NNX layer or activation function."""
    import jax
    from flax import nnx

    if isinstance(layer, nnx.Linear):
        if layer.bias is None:
            raise _refuse(index, layer, "a Linear without bias has no counterpart in the kit's canonical layout")
        return "linear", None, {"W": swap_in_out(as_float64(layer.kernel[...])), "b": as_float64(layer.bias[...])}
    if isinstance(layer, nnx.LayerNorm):
        if layer.scale is None or layer.bias is None or tuple(np.atleast_1d(layer.reduction_axes)) != (-1,) \
                or tuple(np.atleast_1d(layer.feature_axes)) != (-1,):
            raise _refuse(index, layer, "only a LayerNorm over the last axis with its scale and bias is supported")
        return "layer_norm", float(layer.epsilon), {"gamma": as_float64(layer.scale[...]),
                                                    "beta": as_float64(layer.bias[...])}
    if isinstance(layer, nnx.Dropout):
        if tuple(layer.broadcast_dims):
            raise _refuse(index, layer, "a Dropout with broadcast_dims shares its mask across axes; nn.Dropout cannot")
        return "dropout", float(layer.rate), None
    function, options = (layer.func, dict(layer.keywords)) if isinstance(layer, partial) else (layer, {})
    simple = {jax.numpy.tanh: "tanh", jax.nn.relu: "relu", jax.nn.sigmoid: "sigmoid", jax.nn.silu: "silu"}
    if function in simple and not options:
        return simple[function], None, None
    if function is jax.nn.gelu and set(options) <= {"approximate"}:
        return ("gelu_tanh" if options.get("approximate", True) else "gelu"), None, None  # Flax's default: tanh
    if function is jax.nn.leaky_relu and set(options) <= {"negative_slope"}:
        return "leaky_relu", float(options.get("negative_slope", 0.01)), None
    raise _refuse(index, layer, "the port knows nnx.Linear, nnx.LayerNorm, nnx.Dropout and the functions "
                                "jax.numpy.tanh and jax.nn's relu, leaky_relu, sigmoid, gelu and silu (nnx's "
                                "names for them, or partials of them), not other functions of the same name")


def _build_flax(layers: tuple[Layer, ...], params: list[dict[str, np.ndarray]], dtype: str) -> Any:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from frameworks.jax_stages._backend import jax_dtype

    jdtype, rngs = jax_dtype(dtype), nnx.Rngs(0, dropout=0)
    weights = iter(params)
    functions = {"tanh": jnp.tanh, "relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "silu": jax.nn.silu,
                 "gelu": partial(jax.nn.gelu, approximate=False), "gelu_tanh": partial(jax.nn.gelu, approximate=True)}
    built: list[Any] = []
    for layer in layers:
        if layer.kind == "linear":  # (in, out) kernel: the one transpose
            w = next(weights)
            built.append(nnx.Linear(w["W"].shape[1], w["W"].shape[0], dtype=jdtype, param_dtype=jdtype, rngs=rngs,
                                    kernel_init=_given(swap_in_out(w["W"]), jdtype),
                                    bias_init=_given(w["b"], jdtype)))
        elif layer.kind == "layer_norm":
            w = next(weights)
            built.append(nnx.LayerNorm(len(w["gamma"]), epsilon=_option(layer, 1e-6), dtype=jdtype,
                                       param_dtype=jdtype, rngs=rngs, scale_init=_given(w["gamma"], jdtype),
                                       bias_init=_given(w["beta"], jdtype),
                                       use_fast_variance=False))  # PyTorch's variance: no E[x^2] - E[x]^2
        elif layer.kind == "dropout":
            built.append(nnx.Dropout(_option(layer, 0.0), rngs=rngs))
        elif layer.kind == "leaky_relu":
            built.append(partial(jax.nn.leaky_relu, negative_slope=_option(layer, 0.01)))
        else:
            built.append(functions[layer.kind])
    return nnx.Sequential(*built)


def _given(value: np.ndarray, dtype: Any) -> Any:
    """A Flax initializer that returns ``value`` (the weights being ported), whatever key it is given."""
    import jax.numpy as jnp

    return lambda *_: jnp.asarray(value, dtype)


def _option(layer: Layer, default: float) -> float:
    return layer.option if layer.option is not None else default


def _build_torch(layers: tuple[Layer, ...], params: list[dict[str, np.ndarray]], dtype: str) -> Any:
    import torch
    from torch import nn

    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    modules: dict[str, Callable[[], nn.Module]] = {
        "tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "silu": nn.SiLU,
        "gelu": partial(nn.GELU, approximate="none"), "gelu_tanh": partial(nn.GELU, approximate="tanh"),
    }
    weights = iter(params)
    built: list[nn.Module] = []
    with torch.no_grad():
        for layer in layers:
            if layer.kind == "linear":
                w = next(weights)
                linear = nn.utils.skip_init(nn.Linear, w["W"].shape[1], w["W"].shape[0], dtype=tdtype)
                linear.weight.copy_(torch.tensor(w["W"]))
                linear.bias.copy_(torch.tensor(w["b"]))
                built.append(linear)
            elif layer.kind == "layer_norm":
                w = next(weights)
                norm = nn.LayerNorm(len(w["gamma"]), eps=_option(layer, 1e-5), dtype=tdtype)
                norm.weight.copy_(torch.tensor(w["gamma"]))
                norm.bias.copy_(torch.tensor(w["beta"]))
                built.append(norm)
            elif layer.kind == "dropout":
                built.append(nn.Dropout(_option(layer, 0.0)))
            elif layer.kind == "leaky_relu":
                built.append(nn.LeakyReLU(_option(layer, 0.01)))
            else:
                built.append(modules[layer.kind]())
    return nn.Sequential(*built)


# Optimizers: torch.optim -> Optax (frameworks._optax_port; JAX and Optax imported when called) ---------------------


def optax_from_torch(spec: Any, scheduler: Any = None, **options: Any) -> Any:
    """The exact Optax transformation of a ``frameworks.optim`` spec (``lr=``, ``schedule=``, ``clip=``,
    ``steps_per_epoch=``) or of a real ``torch.optim.Optimizer`` and its scheduler: see
    :func:`frameworks._optax_port.optax_from_torch`."""
    from frameworks import _optax_port

    return _optax_port.optax_from_torch(spec, scheduler, **options)


def naive_optax(spec: Any, **options: Any) -> Any:
    """The translation a person writes from the docs (``optax.adamw(lr)`` for ``AdamW(lr)``...), the trap beside
    the exact one: see :func:`frameworks._optax_naive.naive_optax`."""
    from frameworks import _optax_naive

    return _optax_naive.naive_optax(spec, **options)


def specs_from_torch(optimizer: Any, scheduler: Any = None, **options: Any) -> Any:
    """(spec, lr, schedule spec) of a real ``torch.optim`` optimizer and scheduler."""
    from frameworks import _torch_specs

    return _torch_specs.specs_from_torch(optimizer, scheduler, **options)
