"""The float64 NumPy oracle: the lab's maths once more, and central finite differences.

Independent of both frameworks, it is what every implementation is checked
against (as micrograd checks itself against ``torch.double()``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from frameworks._params import NAMES, Params


def forward(params: Mapping[str, np.ndarray], X: np.ndarray) -> dict[str, np.ndarray]:
    """htilde, h, ytilde, yhat of a batch, in float64."""
    htilde = X @ params["Wh"].T + params["bh"]
    h = np.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    shifted = np.exp(ytilde - ytilde.max(axis=1, keepdims=True))
    yhat = shifted / shifted.sum(axis=1, keepdims=True)
    return {"htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def loss(params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    """Mean cross-entropy, computed stably as logsumexp(ytilde) - <Y, ytilde>."""
    ytilde = forward(params, X)["ytilde"]
    top = ytilde.max(axis=1, keepdims=True)
    logsumexp = (top + np.log(np.exp(ytilde - top).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(logsumexp - (Y * ytilde).sum(axis=1)))


def gradients(
    params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray, *, reduction: str = "mean"
) -> tuple[float, Params]:
    """Mean loss and the hand-derived gradients (questions 14 to 17 of the lab)."""
    out = forward(params, X)
    B = len(X) if reduction == "mean" else 1
    dytilde = (out["yhat"] - Y) / B
    dhtilde = (dytilde @ params["Wy"]) * (1.0 - out["h"] ** 2)
    grads = {"Wh": dhtilde.T @ X, "bh": dhtilde.sum(0), "Wy": dytilde.T @ out["h"], "by": dytilde.sum(0)}
    return loss(params, X, Y), grads


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
            up = loss(params, X, Y)
            value[index] = saved - step
            down = loss(params, X, Y)
            value[index] = saved
            grad[index] = (up - down) / (2 * step)
        grads[name] = grad
    return grads
