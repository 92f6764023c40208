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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from frameworks._params import NAMES, Params
from frameworks.tolerances import max_relative_error, relative_error

#: The complex step: small enough that h^2 vanishes against the loss, and no cancellation to fear.
COMPLEX_STEP = 1e-30


def forward(params: Mapping[str, np.ndarray], X: np.ndarray) -> dict[str, np.ndarray]:
    """htilde, h, ytilde, yhat of a batch (float64, or complex128 for :func:`complex_step`)."""
    htilde = X @ params["Wh"].T + params["bh"]
    h = np.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    shifted = np.exp(ytilde - ytilde.real.max(axis=1, keepdims=True))
    yhat = shifted / shifted.sum(axis=1, keepdims=True)
    return {"htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def loss(params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> complex | float:
    """Mean cross-entropy, computed stably as logsumexp(ytilde) - <Y, ytilde>; analytic in the parameters
    (every operation is: shifting by the real maximum is a constant), so complex parameters give a complex loss."""
    ytilde = forward(params, X)["ytilde"]
    top = ytilde.real.max(axis=1, keepdims=True)
    logsumexp = (top + np.log(np.exp(ytilde - top).sum(axis=1, keepdims=True)))[:, 0]
    value = np.mean(logsumexp - (Y * ytilde).sum(axis=1))
    return complex(value) if np.iscomplexobj(value) else float(value)


def complex_step(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *, reduction: str = "mean"
) -> tuple[float, Params]:
    """Mean loss and its gradient by complex-step differentiation, entry by entry: ``Im L(p + ih e_k) / h``.

    ``reduction="sum"``: the gradient of the summed loss (``len(X)`` times the mean's).
    """
    scale = len(X) if reduction == "sum" else 1
    point = {name: np.array(params[name], dtype=np.complex128) for name in NAMES}
    grads = {}
    for name in NAMES:
        value, grad = point[name], np.zeros(np.shape(params[name]))
        for index in np.ndindex(value.shape):
            value[index] += 1j * COMPLEX_STEP
            grad[index] = scale * complex(loss(point, X, Y)).imag / COMPLEX_STEP
            value[index] -= 1j * COMPLEX_STEP
        grads[name] = grad
    return float(np.real(loss({n: np.asarray(params[n], dtype=np.float64) for n in NAMES}, X, Y))), grads


def complex_step_along(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, directions: list[Params], *,
    reduction: str = "mean",
) -> np.ndarray:
    """The loss's derivative along each of ``directions`` by complex step, ``Im L(p + ih v) / h``: one
    forward pass a direction, where :func:`complex_step` needs one a parameter (for large networks)."""
    scale = len(X) if reduction == "sum" else 1
    out = []
    for v in directions:
        point = {n: np.asarray(params[n], dtype=np.float64) + 1j * COMPLEX_STEP * v[n] for n in NAMES}
        out.append(scale * complex(loss(point, X, Y)).imag / COMPLEX_STEP)
    return np.array(out)


def finite_differences_along(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, directions: list[Params], *, step: float = 1e-6
) -> np.ndarray:
    """Central differences of the mean loss along each of ``directions`` (unit vectors: the step is ``step``)."""
    out = []
    for v in directions:
        up = loss({n: params[n] + step * v[n] for n in NAMES}, X, Y)
        down = loss({n: params[n] - step * v[n] for n in NAMES}, X, Y)
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
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *, step: float = 1e-6
) -> Params:
    """Central differences (L(p + h) - L(p - h)) / 2h of the mean loss, entry by entry."""
    params = {name: np.array(params[name], dtype=np.float64) for name in NAMES}
    grads = {}
    for name in NAMES:
        value = params[name]
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + step
            up = float(np.real(loss(params, X, Y)))
            value[index] = saved - step
            down = float(np.real(loss(params, X, Y)))
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
    """The references of one batch: the lab's derivation in full; complex step and finite differences in
    full (``kind="full"``) or along random unit directions, one set a tensor (``kind="directions"``)."""

    kind: str
    derivation: Params
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
        for name in NAMES:
            rows = [k for k, (tensor, _) in enumerate(self.directions) if tensor == name]
            along = np.array([np.sum(grads[name] * self.directions[k][1][name]) for k in rows])
            errors.append(relative_error(along, reference[rows]))
        return max(errors)

    @property
    def oracle_vs_finite_differences(self) -> float:
        if self.kind == "full":
            return max_relative_error(self.oracle, self.finite_differences)
        return relative_error(self.finite_differences, self.oracle)


def references(params: Params, X: np.ndarray, Y: np.ndarray, *, reduction: str = "mean") -> References:
    """The references of a batch, computed once (the float32 and float64 tables of one batch share them)."""
    key = hashlib.sha256(b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes()
                                  for a in (*(params[n] for n in NAMES), X, Y)) + reduction.encode()).hexdigest()
    if key not in _REFERENCES:
        _REFERENCES.clear()  # one batch at a time: MNIST-sized references are not small
        _REFERENCES[key] = _compute_references(params, X, Y, reduction)
    return _REFERENCES[key]


_REFERENCES: dict[str, References] = {}


def _compute_references(params: Params, X: np.ndarray, Y: np.ndarray, reduction: str) -> References:
    scale = len(X) if reduction == "sum" else 1
    _, derivation = gradients(params, X, Y, reduction=reduction)
    if sum(params[n].size for n in NAMES) <= FULL_REFERENCE_LIMIT:
        _, reference = complex_step(params, X, Y, reduction=reduction)
        differences = {n: scale * g for n, g in finite_differences(params, X, Y).items()}
        return References("full", derivation, reference, differences)
    rng = np.random.default_rng(0)
    directions = []
    for name in NAMES:
        for _ in range(DIRECTIONS):
            v = {n: np.zeros_like(params[n]) for n in NAMES}
            v[name] = rng.normal(size=params[name].shape)
            v[name] /= np.linalg.norm(v[name])
            directions.append((name, v))
    along = [v for _, v in directions]
    return References("directions", derivation, complex_step_along(params, X, Y, along, reduction=reduction),
                      scale * finite_differences_along(params, X, Y, along), tuple(directions))
