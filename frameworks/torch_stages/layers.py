"""The layers of a deeper MLP, forward and backward by hand (PyTorch): what stage 1's loop is made of.

Each activation ``h = f(z)`` comes with its derivative ``f'(z)``, written once from its
formula and given both ``z`` and ``h`` (the tanh and the sigmoid are cheaper from their
output); LayerNorm comes with its backward pass; dropout multiplies by the kit's mask.
The twin of ``jax_stages/layers.py``: ``torch`` becomes ``jnp``, ``dim`` becomes ``axis``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from frameworks._arch import LAYER_NORM_EPS, LEAKY_SLOPE

#: h = f(z), the framework's own functions.
ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_SLOPE),
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,  # exact: z Phi(z)
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
    "silu": F.silu,
}

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_TANH_C = 0.044715


def _gelu_derivative(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """d/dz z Phi(z) = Phi(z) + z phi(z)."""
    return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


def _gelu_tanh_derivative(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """h = z (1 + t) / 2, t = tanh(u), u = sqrt(2/pi) (z + c z^3):  h' = (1 + t) / 2 + z (1 - t^2) u' / 2."""
    t = torch.tanh(SQRT_2_OVER_PI * (z + GELU_TANH_C * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t**2) * SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_C * z**2)


def _silu_derivative(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """h = z s(z), s the sigmoid:  h' = s (1 + z (1 - s))."""
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


#: f'(z), from z and h = f(z).
DERIVATIVES: dict[str, Callable[..., Any]] = {
    "tanh": lambda z, h: 1 - h**2,  # tanh' = 1 - tanh^2
    "relu": lambda z, h: (z > 0).to(z.dtype),  # 1 where z > 0, else 0
    "leaky_relu": lambda z, h: torch.where(z > 0, torch.ones_like(z), LEAKY_SLOPE),  # 1 where z > 0, else the slope
    "sigmoid": lambda z, h: h * (1 - h),  # s' = s (1 - s)
    "gelu": _gelu_derivative,
    "gelu_tanh": _gelu_tanh_derivative,
    "silu": _silu_derivative,
}


def layer_norm(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row standardized: ``zhat = (z - mean) / sigma``, ``sigma = sqrt(var + eps)`` (the biased variance,
    eps 1e-5 as in ``torch.nn.LayerNorm``). Returns zhat and sigma (B, 1); the affine ``gamma zhat + beta``
    is the caller's."""
    centred = z - z.mean(dim=1, keepdim=True)
    sigma = torch.sqrt((centred**2).mean(dim=1, keepdim=True) + LAYER_NORM_EPS)
    return centred / sigma, sigma


def layer_norm_backward(dzhat: torch.Tensor, zhat: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """dL/dz from dL/dzhat: ``(dzhat - mean(dzhat) - zhat mean(dzhat zhat)) / sigma``, means over each row
    (the mean and the variance depend on every entry of the row)."""
    return (dzhat - dzhat.mean(dim=1, keepdim=True) - zhat * (dzhat * zhat).mean(dim=1, keepdim=True)) / sigma


def dropout(h: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with the kit's mask ``keep`` (True: kept): kept units scaled by 1 / (1 - p), so the
    expectation is unchanged and evaluation needs no rescaling. Its derivative is the same product."""
    return h * keep / (1 - p)
