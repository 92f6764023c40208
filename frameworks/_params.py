"""Canonical parameters: the one layout every implementation converts from and to.

A dict of float64 NumPy arrays in the lab's notation and PyTorch's Linear
layout (out x in): ``Wh`` (nh, nx), ``bh`` (nh,), ``Wy`` (ny, nh), ``by`` (ny,).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from frameworks._errors import KitError

Params = dict[str, np.ndarray]
NAMES = ("Wh", "bh", "Wy", "by")
INIT_STD = 0.3


def init_params(nx: int, nh: int, ny: int, *, seed: int = 0) -> Params:
    """The lab's init: weights ~ N(0, 0.3^2), biases zero, drawn once in NumPy (float64).

    Every framework starts from these very numbers, converted to its own layout.
    """
    for name, value in (("nx", nx), ("nh", nh), ("ny", ny)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise KitError(f"init_params: {name} must be a positive integer, got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise KitError(f"init_params: seed must be a non-negative integer, got {seed!r}.")
    rng = np.random.default_rng(seed)
    return {
        "Wh": rng.normal(0.0, INIT_STD, (nh, nx)),
        "bh": np.zeros(nh),
        "Wy": rng.normal(0.0, INIT_STD, (ny, nh)),
        "by": np.zeros(ny),
    }


def shapes(params: Mapping[str, np.ndarray]) -> tuple[int, int, int]:
    """(nx, nh, ny) of canonical ``params``, after checking they are complete and consistent."""
    params = check_params(params)
    nh, nx = params["Wh"].shape
    return nx, nh, params["Wy"].shape[0]


def check_params(params: Mapping[str, object]) -> Params:
    """Validate canonical parameters and return them as float64 arrays."""
    if not isinstance(params, Mapping):
        raise KitError(f"params must be a dict with keys {NAMES}, got {type(params).__name__}.")
    missing = [n for n in NAMES if n not in params]
    extra = [n for n in params if n not in NAMES]
    if missing or extra:
        raise KitError(f"params must have exactly the keys {NAMES}; missing {missing}, unexpected {extra}.")
    out = {}
    for name in NAMES:
        try:
            out[name] = np.array(params[name], dtype=np.float64)  # a copy: the caller's arrays stay as they are
        except (TypeError, ValueError) as err:
            raise KitError(f"params[{name!r}] is not a numeric array: {err}") from None
    Wh, bh, Wy, by = (out[n] for n in NAMES)
    if Wh.ndim != 2 or Wy.ndim != 2 or bh.ndim != 1 or by.ndim != 1:
        raise KitError(
            "params must be Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,); got shapes "
            + ", ".join(f"{n} {out[n].shape}" for n in NAMES)
        )
    nh = Wh.shape[0]
    if bh.shape != (nh,) or Wy.shape[1] != nh or by.shape != (Wy.shape[0],):
        raise KitError(
            "params shapes disagree: expected Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,); got "
            + ", ".join(f"{n} {out[n].shape}" for n in NAMES)
        )
    for name, value in out.items():
        if not np.all(np.isfinite(value)):
            raise KitError(f"params[{name!r}] holds NaN or infinite values.")
    return out
