"""The float64 NumPy references every implementation is checked against.

Three of them, from the most to the least independent:

* :func:`complex_step`: **the oracle**, which derives nothing. The loss is an
  analytic function of the parameters, so for a real parameter ``p`` and a tiny
  step ``h``, ``L(p + ih) = L(p) + ih L'(p) + O(h^2)``: ``Im L(p + ih) / h`` is the
  derivative, with no subtraction and so no cancellation. With ``h = 1e-30`` it is
  exact to rounding (Squire and Trapp, 1998). Only the forward pass is written.
* :func:`gradients`: the lab's derivation (questions 14 to 17), the batch-matrix
  form both manual stages use too; checking them against it checks a derivation
  against itself, so the parity report shows it apart.
* :func:`finite_differences`: central differences, a second, looser check
  (truncation and rounding error ~1e-9).

Both need one forward pass a parameter; for large networks (MNIST's 784-100-10
has 79,510 parameters) :func:`complex_step_along` and
:func:`finite_differences_along` check the gradient along random directions
instead, one forward pass each. :func:`references` picks between the two by the
network's size and computes a batch's references once (``parity`` asks for them per
dtype and device).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from frameworks._arch import LAB, LAYER_NORM_EPS, LEAKY_SLOPE, Architecture
from frameworks._params import Params
from frameworks.tolerances import max_relative_error, relative_error

#: The complex step: small enough that h^2 vanishes against the loss, and no cancellation to fear.
COMPLEX_STEP = 1e-30


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # analytic: complex arguments too

    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


#: The activations as NumPy functions of float64 or complex128 arrays (a kink is placed by the real part).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.where(x.real > 0, x, 0),
    "leaky_relu": lambda x: np.where(x.real > 0, x, LEAKY_SLOPE * x),
    "sigmoid": _sigmoid,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "silu": lambda x: x * _sigmoid(x),
}


def forward(params: Mapping[str, np.ndarray], X: np.ndarray, arch: Architecture = LAB,
            masks: tuple[np.ndarray, ...] = ()) -> dict[str, np.ndarray]:
    """The intermediates of a batch (float64, or complex128 for :func:`complex_step`), named as in a stage's
    trace (``arch.trace_names``), and ``yhat``. ``masks``: dropout's kept units (bool, one array a hidden
    layer), when ``arch.dropout``; without them dropout is off (evaluation)."""
    values, h = [], X
    for k, activation in enumerate(arch.activations):
        names = arch.hidden_names(k)
        h = h @ params[names["W"]].T + params[names["b"]]
        values.append(h)
        if arch.norm:
            centred = h - h.mean(axis=1, keepdims=True)
            h = centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + LAYER_NORM_EPS)
            h = h * params[names["gamma"]] + params[names["beta"]]
            values.append(h)
        h = ACTIVATIONS[activation](h)
        values.append(h)
        if arch.dropout:
            h = h * masks[k] / (1 - arch.dropout) if masks else h
            values.append(h)
    ytilde = h @ params["Wy"].T + params["by"]
    shifted = np.exp(ytilde - ytilde.real.max(axis=1, keepdims=True))
    yhat = shifted / shifted.sum(axis=1, keepdims=True)
    return {**dict(zip(arch.trace_names, (*values, ytilde))), "yhat": yhat}


def loss(params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, arch: Architecture = LAB,
         masks: tuple[np.ndarray, ...] = ()) -> complex | float:
    """Mean cross-entropy, computed stably as logsumexp(ytilde) - <Y, ytilde>; analytic in the parameters
    (every operation is: shifting by the real maximum is a constant), so complex parameters give a complex loss."""
    ytilde = forward(params, X, arch, masks)["ytilde"]
    top = ytilde.real.max(axis=1, keepdims=True)
    logsumexp = (top + np.log(np.exp(ytilde - top).sum(axis=1, keepdims=True)))[:, 0]
    value = np.mean(logsumexp - (Y * ytilde).sum(axis=1))
    return complex(value) if np.iscomplexobj(value) else float(value)


def complex_step(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *, reduction: str = "mean",
    arch: Architecture = LAB, masks: tuple[np.ndarray, ...] = (),
) -> tuple[float, Params]:
    """Mean loss and its gradient by complex-step differentiation, entry by entry: ``Im L(p + ih e_k) / h``.

    ``reduction="sum"``: the gradient of the summed loss (``len(X)`` times the mean's). ``arch`` and
    ``masks``: the network (the lab's by default) and its dropout masks, as in :func:`forward`.
    """
    scale = len(X) if reduction == "sum" else 1
    point = {name: np.array(params[name], dtype=np.complex128) for name in params}
    grads = {}
    for name in params:
        value, grad = point[name], np.zeros(np.shape(params[name]))
        for index in np.ndindex(value.shape):
            value[index] += 1j * COMPLEX_STEP
            grad[index] = scale * complex(loss(point, X, Y, arch, masks)).imag / COMPLEX_STEP
            value[index] -= 1j * COMPLEX_STEP
        grads[name] = grad
    real = {n: np.asarray(params[n], dtype=np.float64) for n in params}
    return float(np.real(loss(real, X, Y, arch, masks))), grads


def complex_step_along(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, directions: list[Params], *,
    reduction: str = "mean", arch: Architecture = LAB, masks: tuple[np.ndarray, ...] = (),
) -> np.ndarray:
    """The loss's derivative along each of ``directions`` by complex step, ``Im L(p + ih v) / h``: one
    forward pass a direction, where :func:`complex_step` needs one a parameter (for large networks)."""
    scale = len(X) if reduction == "sum" else 1
    out = []
    for v in directions:
        point = {n: np.asarray(params[n], dtype=np.float64) + 1j * COMPLEX_STEP * v[n] for n in params}
        out.append(scale * complex(loss(point, X, Y, arch, masks)).imag / COMPLEX_STEP)
    return np.array(out)


def finite_differences_along(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, directions: list[Params], *, step: float = 1e-6,
    arch: Architecture = LAB, masks: tuple[np.ndarray, ...] = (),
) -> np.ndarray:
    """Central differences of the mean loss along each of ``directions`` (unit vectors: the step is ``step``)."""
    out = []
    for v in directions:
        up = loss({n: params[n] + step * v[n] for n in params}, X, Y, arch, masks)
        down = loss({n: params[n] - step * v[n] for n in params}, X, Y, arch, masks)
        out.append((float(np.real(up)) - float(np.real(down))) / (2 * step))
    return np.array(out)


def gradients(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *, reduction: str = "mean"
) -> tuple[float, Params]:
    """Mean loss and the lab's hand-derived gradients (questions 14 to 17)."""
    out = forward(params, X)
    B = len(X) if reduction == "mean" else 1
    dytilde = (out["yhat"] - Y) / B
    dhtilde = (dytilde @ params["Wy"]) * (1.0 - out["h"] ** 2)
    grads = {"Wh": dhtilde.T @ X, "bh": dhtilde.sum(0), "Wy": dytilde.T @ out["h"], "by": dytilde.sum(0)}
    return float(np.real(loss(params, X, Y))), grads


def finite_differences(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *, step: float = 1e-6,
    arch: Architecture = LAB, masks: tuple[np.ndarray, ...] = (),
) -> Params:
    """Central differences (L(p + h) - L(p - h)) / 2h of the mean loss, entry by entry."""
    params = {name: np.array(params[name], dtype=np.float64) for name in params}
    grads = {}
    for name in params:
        value = params[name]
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + step
            up = float(np.real(loss(params, X, Y, arch, masks)))
            value[index] = saved - step
            down = float(np.real(loss(params, X, Y, arch, masks)))
            value[index] = saved
            grad[index] = (up - down) / (2 * step)
        grads[name] = grad
    return grads


#: Above this many parameters the complex-step and finite-difference references (one forward pass a
#: parameter) are taken along random directions instead (one forward pass a direction).
FULL_REFERENCE_LIMIT = 5000
#: Random directions a tensor, when the references are taken along directions.
DIRECTIONS = 8


@dataclass(frozen=True)
class References:
    """The references of one batch: the lab's derivation in full (None for another network than the lab's:
    it is derived for one hidden tanh layer); complex step and finite differences in full (``kind="full"``) or
    along random unit directions, one set a tensor (``kind="directions"``)."""

    kind: str
    derivation: Params | None
    oracle: Any  # Params in full, an array of directional derivatives along directions
    finite_differences: Any
    directions: tuple[tuple[str, Params], ...] = ()

    def error(self, grads: Params, which: str) -> float:
        """Max relative error of ``grads`` against reference ``which``: tensor by tensor, or along the directions
        (``max_k |g.v_k - d_k| / max_k |d_k|`` over each tensor's directions)."""
        reference = getattr(self, which)
        if self.kind == "full":
            return max_relative_error(grads, reference)
        errors = []
        for name in grads:
            rows = [k for k, (tensor, _) in enumerate(self.directions) if tensor == name]
            along = np.array([np.sum(grads[name] * self.directions[k][1][name]) for k in rows])
            errors.append(relative_error(along, reference[rows]))
        return max(errors)

    @property
    def oracle_vs_finite_differences(self) -> float:
        if self.kind == "full":
            return max_relative_error(self.oracle, self.finite_differences)
        return relative_error(self.finite_differences, self.oracle)


def references(params: Params, X: np.ndarray, Y: np.ndarray, *, reduction: str = "mean", arch: Architecture = LAB,
               masks: tuple[np.ndarray, ...] = ()) -> References:
    """The references of a batch, computed once (the float32 and float64 tables of one batch share them)."""
    key = hashlib.sha256(b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes()
                                  for a in (*params.values(), X, Y, *masks))
                         + (reduction + repr(arch) + repr(tuple(params))).encode()).hexdigest()
    if key not in _REFERENCES:
        _REFERENCES.clear()  # one batch at a time: MNIST-sized references are not small
        _REFERENCES[key] = _compute_references(params, X, Y, reduction, arch, masks)
    return _REFERENCES[key]


_REFERENCES: dict[str, References] = {}


def _compute_references(params: Params, X: np.ndarray, Y: np.ndarray, reduction: str, arch: Architecture,
                        masks: tuple[np.ndarray, ...]) -> References:
    scale = len(X) if reduction == "sum" else 1
    derivation = gradients(params, X, Y, reduction=reduction)[1] if arch.is_lab and arch.depth == 1 else None
    net: dict[str, Any] = {"arch": arch, "masks": masks}
    if sum(value.size for value in params.values()) <= FULL_REFERENCE_LIMIT:
        _, reference = complex_step(params, X, Y, reduction=reduction, **net)
        differences = {n: scale * g for n, g in finite_differences(params, X, Y, **net).items()}
        return References("full", derivation, reference, differences)
    rng = np.random.default_rng(0)
    directions = []
    for name in params:
        for _ in range(DIRECTIONS):
            v = {n: np.zeros_like(params[n]) for n in params}
            v[name] = rng.normal(size=params[name].shape)
            v[name] /= np.linalg.norm(v[name])
            directions.append((name, v))
    along = [v for _, v in directions]
    return References("directions", derivation, complex_step_along(params, X, Y, along, reduction=reduction, **net),
                      scale * finite_differences_along(params, X, Y, along, **net), tuple(directions))
