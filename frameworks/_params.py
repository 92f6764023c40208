"""Canonical parameters: the one layout every implementation converts from and to.

A dict of float64 NumPy arrays in the lab's notation and PyTorch's Linear
layout (out x in): ``Wh`` (nh, nx), ``bh`` (nh,), ``Wy`` (ny, nh), ``by`` (ny,)
for the lab's network; for deeper ones ``W1, b1, W2, ...`` and LayerNorm's
``gamma, beta`` (``frameworks._arch``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from frameworks._arch import Architecture, Norm, infer
from frameworks._errors import KitError, unknown

Params = dict[str, np.ndarray]
NAMES = ("Wh", "bh", "Wy", "by")
INIT_STD = 0.3
FLOAT64_BYTES = 8
PARAM_COPIES = 2  # the parameters and their gradients
ACTIVATION_COPIES = 4  # htilde, h, ytilde, yhat of each row, and as many gradients in the backward pass
GIB = 2**30


def init_params(nx: int, nh: int | Sequence[int], ny: int, *, seed: int = 0, scheme: str = "lab",
                norm: Norm = None) -> Params:
    """Initial weights drawn once in NumPy (float64), by default the lab's: weights ~ N(0, 0.3^2), biases zero.

    Every framework starts from these very numbers, converted to its own layout.
    ``nh`` is the hidden width, or a sequence of them for a deeper network; ``scheme``
    names another draw of :data:`SCHEMES` (PyTorch's or Flax's default, Xavier/Glorot,
    He), the same for every framework. The Linear layers are drawn in order from one
    generator; a LayerNorm (``norm="layer"``) starts as both libraries start it:
    ``gamma`` ones, ``beta`` zeros.
    """
    hidden = (nh,) if not isinstance(nh, Sequence) else tuple(nh)
    if not hidden:
        raise KitError("init_params: nh must be a width or a non-empty sequence of widths.")
    for width in hidden:
        check_draw("init_params", nx, width, ny, seed=seed)
    if scheme not in SCHEMES:
        raise unknown("init scheme", scheme, SCHEMES)
    check_memory(int(nx), tuple(int(w) for w in hidden), int(ny))
    arch = Architecture(tuple(int(w) for w in hidden), ("tanh",) * len(hidden), norm)
    rng = np.random.default_rng(seed)
    draw = SCHEMES[scheme]
    params: Params = {}
    fan_in = int(nx)
    for k, width in enumerate(arch.hidden):
        names = arch.hidden_names(k)
        params[names["W"]], params[names["b"]] = draw(rng, fan_in, width)
        if norm:
            params[names["gamma"]], params[names["beta"]] = np.ones(width), np.zeros(width)
        fan_in = width
    params["Wy"], params["by"] = draw(rng, fan_in, int(ny))
    return params


def check_draw(who: str, nx: object, nh: object, ny: object, *, seed: object) -> None:
    """The sizes of a draw are positive integers (NumPy's too) that fit in memory, its seed non-negative."""
    for name, value in (("nx", nx), ("nh", nh), ("ny", ny)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise KitError(f"{who}: {name} must be a positive integer, got {value!r}.")
    check_memory(int(nx), int(nh), int(ny))  # type: ignore[call-overload]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise KitError(f"{who}: seed must be a non-negative integer, got {seed!r}.")


# The init schemes: each draws one Linear layer's (W (fan_out, fan_in), b) from ``rng``, weights first.


def _lab(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The lab's: W ~ N(0, 0.3^2), b = 0."""
    return rng.normal(0.0, INIT_STD, (fan_out, fan_in)), np.zeros(fan_out)


def _torch(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``torch.nn.Linear``'s: ``kaiming_uniform_(a=sqrt(5))``, i.e. W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    and b ~ U on the same bound."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)


def _flax(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``flax.nnx.Linear``'s: ``lecun_normal()``, a normal truncated at two standard deviations and rescaled
    to variance 1/fan_in (the truncated unit normal's std is 0.87962566103423978), and b = 0."""
    from scipy.stats import truncnorm

    std = np.sqrt(1.0 / fan_in) / TRUNCATED_STD
    return truncnorm.rvs(-2.0, 2.0, size=(fan_out, fan_in), random_state=rng) * std, np.zeros(fan_out)


def _xavier(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Xavier/Glorot uniform (``nn.init.xavier_uniform_``, ``nnx.initializers.glorot_uniform``):
    W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)); b = 0."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, (fan_out, fan_in)), np.zeros(fan_out)


def _he(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """He normal as PyTorch draws it (``kaiming_normal_``, fan_in, ReLU gain): W ~ N(0, 2/fan_in), b = 0.
    (Flax's ``he_normal`` truncates the normal at two standard deviations: same variance, other tails.)"""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_out, fan_in)), np.zeros(fan_out)


#: The truncated (at +-2) unit normal's standard deviation, which Flax's variance scaling divides by.
TRUNCATED_STD = 0.87962566103423978
#: Init schemes by name; every framework starts from the same draw.
SCHEMES = {"lab": _lab, "torch": _torch, "flax": _flax, "xavier": _xavier, "he": _he}


def check_memory(nx: int, nh: int | tuple[int, ...], ny: int, *, rows: int = 0) -> None:
    """Refuse a network whose float64 arrays cannot fit in this machine's physical memory.

    The estimate counts the parameters (the weights and biases of each Linear) and their gradients, plus the
    activations of ``rows`` rows (rows * (sum of widths + ny) floats) a few times over for the backward pass:
    an estimate on the low side of what training needs, so a refused size could not have run, and one clear line
    replaces NumPy's ``MemoryError`` traceback. Where the OS does not report its memory, nothing is checked.

    Raises:
      KitError: the estimate exceeds the physical memory.
    """
    hidden = (nh,) if isinstance(nh, int) else nh
    fans = (nx, *hidden, ny)
    params = sum(fan_out * fan_in + fan_out for fan_in, fan_out in zip(fans[:-1], fans[1:]))
    need = FLOAT64_BYTES * (PARAM_COPIES * params + ACTIVATION_COPIES * rows * (sum(hidden) + ny))
    have = physical_memory()
    if have is not None and need > have:
        of_rows, or_rows = (f" over {rows} rows", " or fewer rows") if rows else ("", "")
        widths = f"nh={hidden[0]}" if len(hidden) == 1 else f"hidden={hidden}"
        raise KitError(
            f"nx={nx}, {widths}, ny={ny}{of_rows} need about {need / GIB:,.1f} GiB of float64 arrays, more than "
            f"this machine's {have / GIB:,.1f} GiB of memory; choose smaller widths{or_rows} (the lab uses nh=10, "
            "100 for MNIST)."
        )


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the OS does not say (``os.sysconf`` is POSIX)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def widths(params: Mapping[str, np.ndarray]) -> tuple[int, tuple[int, ...], int]:
    """(nx, hidden widths, ny) of canonical ``params``, after checking they are complete and consistent."""
    params = check_params(params)
    depth, _ = infer(params)
    hidden = tuple(params["Wh" if depth == 1 else f"W{k + 1}"].shape[0] for k in range(depth))
    first = params["Wh" if depth == 1 else "W1"]
    return first.shape[1], hidden, params["Wy"].shape[0]


def check_params(params: Mapping[str, object]) -> Params:
    """Validate canonical parameters (of any depth, with or without LayerNorm) and return them as float64
    arrays, in the order of the layers."""
    if not isinstance(params, Mapping):
        raise KitError(f"params must be a dict with keys {NAMES} (or W1, b1, ..., Wy, by), got "
                       f"{type(params).__name__}.")
    depth, norm = infer(params)
    out = {}
    for name in params:
        try:
            out[name] = np.array(params[name], dtype=np.float64)  # a copy: the caller's arrays stay as they are
        except (TypeError, ValueError) as err:
            raise KitError(f"params[{name!r}] is not a numeric array: {err}") from None
    first = out["Wh" if depth == 1 else "W1"]
    if first.ndim != 2 or out["Wy"].ndim != 2:
        raise KitError("params must be Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,); got shapes "
                       + ", ".join(f"{n} {v.shape}" for n, v in out.items()))
    hidden = tuple(out["Wh" if depth == 1 else f"W{k + 1}"].shape[0] for k in range(depth))
    nx, ny = first.shape[1], out["Wy"].shape[0]
    if 0 in (nx, *hidden, ny):
        raise KitError(f"params have an empty layer: nx={nx}, widths {hidden}, ny={ny}; each needs at least one unit.")
    arch = Architecture(hidden, ("tanh",) * depth, "layer" if norm else None)
    expected = arch.shapes(nx, ny)
    if any(out[n].shape != shape for n, shape in expected.items()):
        lab = "Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,)" if depth == 1 else "each W (out, in), b (out,)"
        raise KitError(f"params shapes disagree: expected {lab}; got "
                       + ", ".join(f"{n} {out[n].shape}" for n in arch.names))
    for name, value in out.items():
        if not np.all(np.isfinite(value)):
            raise KitError(f"params[{name!r}] holds NaN or infinite values.")
    return {name: out[name] for name in arch.names}
