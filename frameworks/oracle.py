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
instead, one forward pass each.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from frameworks._params import NAMES, Params

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
