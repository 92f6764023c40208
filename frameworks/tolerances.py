"""Every tolerance the kit asserts, in one table keyed by dtype and device.

Errors are *max relative errors*: for each tensor, ``max|a - b| / max|b|``
(the largest entry difference, relative to the tensor's scale), then the
largest over tensors. Entry-wise relative errors would blow up on gradients
that happen to be near zero; this measure does not (it is the max-norm
relative error of numerical analysis, where ``assert_close`` and
``check_grads`` combine an entry-wise atol and rtol instead).

Why these numbers:

* float64, any device, one pass: every implementation does the same
  arithmetic up to the order of a few sums, so the differences are a few ulp
  (measured: at most ~1e-15); 1e-12 leaves three orders of margin.
* float32, one pass: a float32 ulp is 1.2e-7; sums of up to a few hundred
  terms give ~1e-6 (measured: ~2e-7 on CPU); 1e-5. On GPUs and TPUs only with
  ``precision="highest"`` (no TF32 or bfloat16 passes): TF32 keeps 10 mantissa
  bits, ~1e-3, which is what ``precision="native"`` shows.
* finite differences: central differences of step 1e-6 in float64 have a
  truncation error ~h^2 ~ 1e-12 and a rounding error ~eps/h ~ 1e-10 relative
  to the loss; 1e-7 relative to the gradient's scale is safe.
* trajectories: 3000 SGD steps amplify a one-step difference of ~1e-16 by at
  most a few orders (measured after the lab's run: ~1e-14 relative); 1e-9.
  In float32 the implementations round differently and the differences grow
  over the run: after the lab's 3000 steps the parameters of the eight are at
  most 8.2e-7 (relative) from ``torch/manual``'s and the per-epoch losses at most
  1.8e-7 (absolute) from its losses (measured, CPU); 1e-5 and 1e-6.
* parting: ``compare`` says a mode's runs *parted* (and never averages them)
  from the first epoch where a loss differs from the reference's by more than
  1e-3 (float32) or 1e-9 (float64), relative where the loss exceeds 1. Runs on
  one trajectory stay 1000 times closer; 1e-3 is above the rounding of a
  summed-gradient loss of 100 (an ulp is 8e-6), so parted runs have left each
  other, not rounded differently.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from frameworks._errors import KitError

#: (quantity, dtype, device) -> tolerance. device "*" is any device.
TOLERANCES: dict[tuple[str, str, str], float] = {
    ("gradients", "float64", "*"): 1e-12,
    ("gradients", "float32", "cpu"): 1e-5,
    ("gradients", "float32", "gpu"): 1e-5,
    ("gradients", "float32", "tpu"): 1e-5,
    ("finite_differences", "float64", "*"): 1e-7,
    ("trajectory_params", "float64", "*"): 1e-9,
    ("trajectory_params", "float32", "*"): 1e-5,
    ("parting_loss", "float32", "*"): 1e-3,
    ("parting_loss", "float64", "*"): 1e-9,
    ("trajectory_loss_abs", "float32", "*"): 1e-6,
    ("trajectory_loss_abs", "float64", "*"): 1e-9,
}


def tolerance(quantity: str, dtype: str, device: str | None = "cpu") -> float:
    """The tolerance for ``quantity`` in ``dtype`` on ``device`` (None: CPU)."""
    device = device or "cpu"
    for key in ((quantity, dtype, device), (quantity, dtype, "*")):
        if key in TOLERANCES:
            return TOLERANCES[key]
    raise KitError(f"no tolerance for {quantity!r} in {dtype} on {device}; known: {sorted(TOLERANCES)}.")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max|b|`` of one tensor (``b`` the reference; 0 when both are zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise KitError(f"cannot compare shapes {a.shape} and {b.shape}.")
    scale = np.max(np.abs(b), initial=0.0)
    diff = np.max(np.abs(a - b), initial=0.0)
    if scale == 0.0:
        return float(diff)
    return float(diff / scale)


def max_relative_error(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """The largest :func:`relative_error` over the tensors of two dicts with the same keys."""
    if set(a) != set(b):
        raise KitError(f"cannot compare dicts with keys {sorted(a)} and {sorted(b)}.")
    return max(relative_error(a[name], b[name]) for name in a)
