"""The architecture of an MLP of the family the kit trains, and the names of its parameters.

The lab's network is one case: ``Architecture()`` is 1 hidden layer of 10 tanh units.
In general, ``hidden`` widths, an activation per hidden layer, an optional LayerNorm
after each hidden Linear (with its affine weights) and optional dropout (rate
``dropout``) after each activation. As a ``Sequential``, layer by layer:

    Linear -> [LayerNorm] -> activation -> [Dropout] -> ... -> Linear  (the logits ytilde)

Canonical parameters stay one dict of float64 arrays in PyTorch's layout (a weight
is (out, in)), named in the lab's notation: with one hidden layer ``Wh, bh`` (and
``gamma, beta`` for its LayerNorm), ``Wy, by``; with several, ``W1, b1, gamma1,
beta1, W2, ...`` for the hidden layers and ``Wy, by`` for the output.
:func:`layers` gives them as a list of layers (``frameworks.port``'s form).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from frameworks._errors import KitError, unknown

#: The hidden activations, by the kit's name: gelu is the exact x Phi(x), gelu_tanh the tanh approximation.
ACTIVATIONS = ("tanh", "relu", "leaky_relu", "sigmoid", "gelu", "gelu_tanh", "silu")
NORMS = (None, "layer")
Norm = Literal["layer"] | None
#: LeakyReLU's negative slope (both libraries' default) and LayerNorm's eps (PyTorch's default, the side
#: people port from; Flax's default is 1e-6, a trap: docs/porting.md).
LEAKY_SLOPE = 0.01
LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class Architecture:
    """Hidden widths, one activation a hidden layer, LayerNorm or not, the dropout rate."""

    hidden: tuple[int, ...] = (10,)
    activations: tuple[str, ...] = ("tanh",)
    norm: Norm = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not self.hidden or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in self.hidden):
            raise KitError(f"hidden must be one or more positive integers, got {self.hidden!r}.")
        if len(self.activations) != len(self.hidden):
            raise KitError(f"{len(self.activations)} activations for {len(self.hidden)} hidden layers; give one "
                           "name for all, or one a layer.")
        for name in self.activations:
            if name not in ACTIVATIONS:
                raise unknown("activation", name, ACTIVATIONS)
        if self.norm not in NORMS:
            raise unknown("norm (None for none)", self.norm, ("layer",))
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise KitError(f"dropout must be a rate in [0, 1), got {self.dropout!r}.")

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def is_lab(self) -> bool:
        """One hidden tanh layer, no LayerNorm, no dropout: the lab's network (of any width)."""
        return self.activations == ("tanh",) and self.norm is None and not self.dropout

    def hidden_names(self, k: int) -> dict[str, str]:
        """The parameter names of hidden layer ``k`` (0-based): W, b, and gamma, beta with LayerNorm."""
        suffix = "h" if self.depth == 1 else str(k + 1)
        names = {"W": f"W{suffix}", "b": f"b{suffix}"}
        if self.norm == "layer":
            names |= {"gamma": "gamma" if self.depth == 1 else f"gamma{k + 1}",
                      "beta": "beta" if self.depth == 1 else f"beta{k + 1}"}
        return names

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter's name, in the order of the layers."""
        return (*(n for k in range(self.depth) for n in self.hidden_names(k).values()), "Wy", "by")

    def shapes(self, nx: int, ny: int) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape for ``nx`` inputs and ``ny`` classes."""
        out: dict[str, tuple[int, ...]] = {}
        fan_in = nx
        for k, width in enumerate(self.hidden):
            names = self.hidden_names(k)
            out[names["W"]], out[names["b"]] = (width, fan_in), (width,)
            if self.norm == "layer":
                out[names["gamma"]], out[names["beta"]] = (width,), (width,)
            fan_in = width
        out["Wy"], out["by"] = (ny, fan_in), (ny,)
        return out

    def modules(self) -> tuple[tuple[str, str], ...]:
        """The ``Sequential``'s layers in order, as (name, kind): kind "linear", "layer_norm", an activation
        or "dropout"; the name ``layers.{i}.{kind}`` (the intermediates' names in a trace)."""
        kinds: list[str] = []
        for activation in self.activations:
            kinds += ["linear", *(["layer_norm"] if self.norm else []), activation,
                      *(["dropout"] if self.dropout else [])]
        kinds.append("linear")
        return tuple((f"layers.{i}.{kind}", kind) for i, kind in enumerate(kinds))

    @property
    def trace_names(self) -> tuple[str, ...]:
        """The names of a forward pass's intermediates, one a layer of :meth:`modules`: the lab's ``htilde, h,
        ytilde`` for one hidden layer without LayerNorm or dropout (whatever its activation), else
        ``layers.{i}.{kind}``; the logits always ``ytilde``."""
        if self.depth == 1 and self.norm is None and not self.dropout:
            return ("htilde", "h", "ytilde")
        return (*(name for name, _ in self.modules()[:-1]), "ytilde")

    def layers(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Canonical ``params`` of this network as a list of layers (see :func:`layers`)."""
        return layers(params, self)

    def from_layers(self, weights: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A list of layers' weights as canonical parameters (see :func:`from_layers`)."""
        return from_layers(weights, self)

    @property
    def label(self) -> str:
        """``nh=10`` for the lab's network, else its :meth:`describe` in brackets (titles and reports)."""
        return f"nh={self.hidden[0]}" if self.is_lab else f"hidden ({self.describe()})"

    def describe(self) -> str:
        """A short text: "2-(128 relu+LN, 64 relu+LN)-10, dropout 0.1"-like, without nx and ny."""
        extra = "+LN" if self.norm else ""
        text = ", ".join(f"{w} {a}{extra}" for w, a in zip(self.hidden, self.activations))
        return text + (f", dropout {self.dropout:g}" if self.dropout else "")


LAB = Architecture()


def architecture(hidden: Sequence[int] | int, activation: str | Sequence[str] = "tanh", norm: Norm = None,
                 dropout: float = 0.0) -> Architecture:
    """An :class:`Architecture` from friendlier arguments: one width or several, one activation for all or one a
    layer."""
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    activations = (activation,) * len(hidden) if isinstance(activation, str) else tuple(activation)
    return Architecture(tuple(int(w) if not isinstance(w, bool) and hasattr(w, "__index__") else w for w in hidden),
                        activations, norm, dropout)


_HIDDEN_W = re.compile(r"W(\d+)$")


def infer(params: Mapping[str, Any]) -> tuple[int, bool]:
    """(depth, LayerNorm or not) of canonical parameters, from their names; a clear error when the names
    are no architecture's."""
    if "Wh" in params:
        depth = 1
    else:
        numbers = sorted(int(m.group(1)) for name in params if (m := _HIDDEN_W.match(name)))
        depth = len(numbers)
        if not depth or numbers != list(range(1, depth + 1)):
            raise KitError("params must be named Wh, bh, Wy, by (one hidden layer), or W1, b1, ..., Wy, by (several; "
                           f"with gamma, beta for LayerNorm); got {sorted(params)}.")
    norm = any(name.startswith("gamma") for name in params)
    expected = Architecture((1,) * depth, ("tanh",) * depth, "layer" if norm else None).names
    if set(params) != set(expected):
        missing = [n for n in expected if n not in params]
        extra = [n for n in params if n not in expected]
        raise KitError(f"params must have exactly the keys {expected}; missing {missing}, unexpected {extra}.")
    return depth, norm


def layers(params: Mapping[str, Any], arch: Architecture) -> list[dict[str, Any]]:
    """The parameters as a list of layers (``frameworks.port``'s form): ``{"W", "b"}`` a Linear, ``{"gamma",
    "beta"}`` a LayerNorm, in the order of the ``Sequential``."""
    out = []
    for k in range(arch.depth):
        names = arch.hidden_names(k)
        out.append({"W": params[names["W"]], "b": params[names["b"]]})
        if arch.norm:
            out.append({"gamma": params[names["gamma"]], "beta": params[names["beta"]]})
    out.append({"W": params["Wy"], "b": params["by"]})
    return out


def from_layers(weights: Sequence[Mapping[str, Any]], arch: Architecture) -> dict[str, Any]:
    """The inverse of :func:`layers`: a list of layers' weights as canonical names."""
    expected = arch.depth * (2 if arch.norm else 1) + 1
    if len(weights) != expected:
        raise KitError(f"{len(weights)} weighted layers for an architecture that has {expected}.")
    it = iter(weights)
    out: dict[str, Any] = {}
    for k in range(arch.depth):
        names = arch.hidden_names(k)
        linear = next(it)
        out[names["W"]], out[names["b"]] = linear["W"], linear["b"]
        if arch.norm:
            norm = next(it)
            out[names["gamma"]], out[names["beta"]] = norm["gamma"], norm["beta"]
    last = next(it)
    out["Wy"], out["by"] = last["W"], last["b"]
    return out
