"""The layers people port beyond the lab's network, and where PyTorch's and Flax's defaults part.

Each function measures one trap on float64 inputs, both libraries side by side, and
returns the numbers the porting guide prints (``docs/porting.md``, section 9) and
``tests/test_layer_traps.py`` asserts:

* GELU: ``torch.nn.GELU()`` is exact (``x Phi(x)``, with erf); ``flax.nnx.gelu``
  (``jax.nn.gelu``) defaults to the tanh approximation;
* LayerNorm: ``torch.nn.LayerNorm`` adds eps = 1e-5 to the variance, ``nnx.LayerNorm`` 1e-6;
* dropout: both scale the kept units by 1 / (1 - p) while training ("inverted" dropout,
  the same expectation), but draw their masks from different generators.

Imports PyTorch and JAX when called, never at import.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def gelu_gap(x: np.ndarray) -> dict[str, float]:
    """The largest absolute gap between the exact GELU (PyTorch's default) and Flax's default GELU over ``x``,
    where it is largest, and the gap once Flax is asked for the exact form (``approximate=False``)."""
    import jax
    import torch
    from flax import nnx

    exact = torch.nn.GELU()(torch.tensor(x, dtype=torch.float64)).numpy()
    with jax.enable_x64(True):
        flax_default = np.asarray(nnx.gelu(jax.numpy.asarray(x)))
        flax_exact = np.asarray(nnx.gelu(jax.numpy.asarray(x), approximate=False))
    gap = np.abs(flax_default - exact)
    return {"max_gap": float(gap.max()), "at": float(x[gap.argmax()]),
            "exact_gap": float(np.abs(flax_exact - exact).max())}


def layer_norm_gap(X: np.ndarray) -> dict[str, float]:
    """Max relative difference of ``torch.nn.LayerNorm`` and ``nnx.LayerNorm`` (each with its default eps and
    unit affine weights) on the rows of ``X``, and again with Flax given PyTorch's eps."""
    import jax
    import torch
    from flax import nnx

    n = X.shape[1]
    ref = torch.nn.LayerNorm(n, dtype=torch.float64)(torch.tensor(X)).detach().numpy()

    def flax_norm(**options: Any) -> np.ndarray:
        with jax.enable_x64(True):
            norm = nnx.LayerNorm(n, param_dtype=jax.numpy.float64, rngs=nnx.Rngs(0), **options)
            return np.asarray(norm(jax.numpy.asarray(X)))

    scale = np.abs(ref).max()
    return {"default_gap": float(np.abs(flax_norm() - ref).max() / scale),
            "same_eps_gap": float(np.abs(flax_norm(epsilon=1e-5) - ref).max() / scale),
            "torch_eps": 1e-5, "flax_eps": 1e-6}


def dropout_masks(p: float, n: int, *, seed: int = 0) -> dict[str, float]:
    """``torch.nn.Dropout(p)`` and ``nnx.Dropout(p)`` in training mode on ``n`` ones: the values kept units get
    (both 1 / (1 - p)), the fraction kept, and the fraction of units on which the two masks agree
    (about p^2 + (1 - p)^2 for two independent generators, 1 only for one shared mask)."""
    import jax
    import torch
    from flax import nnx

    with torch.random.fork_rng(devices=[]):  # the CPU generator restored after; no CUDA generator seeded
        torch.default_generator.manual_seed(seed)
        torch_out = torch.nn.Dropout(p).train()(torch.ones(n, dtype=torch.float64)).numpy()
    with jax.enable_x64(True):
        flax_out = np.asarray(nnx.Dropout(p, rngs=nnx.Rngs(dropout=seed))(jax.numpy.ones(n)))
    kept_torch, kept_flax = torch_out != 0, flax_out != 0
    return {"torch_scale": float(torch_out[kept_torch].max()), "flax_scale": float(flax_out[kept_flax].max()),
            "inverted_scale": 1 / (1 - p), "torch_kept": float(kept_torch.mean()),
            "flax_kept": float(kept_flax.mean()), "masks_agree": float((kept_torch == kept_flax).mean()),
            "independent_agreement": p**2 + (1 - p) ** 2}
