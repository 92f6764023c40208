"""Weight conversion: canonical <-> PyTorch ``state_dict`` <-> Flax parameters.

The canonical layout is the lab's, which is PyTorch ``nn.Linear``'s: a weight
is (out, in). Flax's ``Linear`` stores a kernel (in, out). The one transpose
between the two lives in :func:`swap_in_out`; every conversion goes through it,
so a kernel can never be loaded without it by accident. All round trips are exact
(a transpose moves numbers, it does not round them).

The module is framework-neutral: it reads tensors and arrays by duck typing and
imports PyTorch only to build a ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from frameworks._arch import Architecture
from frameworks._errors import KitError
from frameworks._params import Params, check_params


def _positions(arch: Architecture | None, params: Mapping[str, Any]) -> dict[int, tuple[str, str]]:
    """Where each weighted layer sits in the ``Sequential``: {index: (weight name, bias name)}. The lab's
    ``Sequential(Linear, Tanh, Linear)`` has its two Linear layers at 0 and 2; a LayerNorm's pair is
    (gamma, beta). Without ``arch``, the architecture the names of ``params`` say, without dropout."""
    if arch is None:
        from frameworks._arch import infer

        depth, norm = infer(params)
        arch = Architecture((1,) * depth, ("tanh",) * depth, "layer" if norm else None)
    out, hidden = {}, 0
    for index, (_, kind) in enumerate(arch.modules()):
        if kind == "linear":
            names = arch.hidden_names(hidden) if hidden < arch.depth else {"W": "Wy", "b": "by"}
            out[index] = (names["W"], names["b"])
            hidden += 1
        elif kind == "layer_norm":
            names = arch.hidden_names(hidden - 1)
            out[index] = (names["gamma"], names["beta"])
    return out


def as_float64(x: Any) -> np.ndarray:
    """A tensor or array as float64 NumPy (a torch tensor is detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.array(x, dtype=np.float64)  # a copy, never a view of a live parameter


def swap_in_out(w: np.ndarray) -> np.ndarray:
    """(out, in) <-> (in, out): the only transpose between PyTorch's and Flax's layouts."""
    return np.ascontiguousarray(np.asarray(w).T)


def to_torch_state_dict(params: Mapping[str, Any], *, dtype: Any = None, arch: Architecture | None = None
                        ) -> dict[str, Any]:
    """Canonical parameters as the ``state_dict`` of ``Sequential(Linear, Tanh, Linear)`` (or of the
    ``Sequential`` of ``arch``: its Dropout layers move the indices)."""
    import torch

    params = check_params(params)
    dtype = dtype or torch.float64
    state = {}
    for layer, (W, b) in _positions(arch, params).items():
        state[f"{layer}.weight"] = torch.tensor(params[W], dtype=dtype)
        state[f"{layer}.bias"] = torch.tensor(params[b], dtype=dtype)
    return state


def from_torch_state_dict(state_dict: Mapping[str, Any], *, check: bool = True, arch: Architecture | None = None
                          ) -> Params:
    """Canonical parameters from the ``state_dict`` of ``Sequential(Linear, Tanh, Linear)`` (or of ``arch``'s).

    ``check=False`` skips the validation (for gradients, which may be anything).
    """
    positions = _positions(arch or Architecture(), {})
    _all_read(state_dict, {f"{layer}.{kind}" for layer in positions for kind in ("weight", "bias")}, arch)
    params = {}
    for layer, (W, b) in positions.items():
        params[W] = as_float64(state_dict[f"{layer}.weight"])
        params[b] = as_float64(state_dict[f"{layer}.bias"])
    return check_params(params) if check else params


def _all_read(tree: Mapping[str, Any], read: set[Any], arch: Architecture | None) -> None:
    """A conversion that would leave entries behind is refused: a deeper model needs its ``arch``."""
    left = [key for key in tree if key not in read]
    if left:
        raise KitError(f"entries {left} are not those of {'the lab network' if arch is None else arch.describe()}; "
                       "give the model's architecture (arch=config.arch) to convert a deeper one.")


def to_flax_params(params: Mapping[str, Any], *, arch: Architecture | None = None) -> dict[str, Any]:
    """Canonical parameters as the pure dict of ``nnx.Sequential(Linear, tanh, Linear)`` (or of ``arch``'s).

    Load it with ``nnx.replace_by_pure_dict(state, to_flax_params(params))``.
    """
    params = check_params(params)
    return {"layers": {layer: ({"kernel": swap_in_out(params[W]), "bias": params[b].copy()} if W.startswith("W")
                               else {"scale": params[W].copy(), "bias": params[b].copy()})
                       for layer, (W, b) in _positions(arch, params).items()}}


def from_flax_params(flax_params: Mapping[str, Any], *, check: bool = True, arch: Architecture | None = None
                     ) -> Params:
    """Canonical parameters from the pure dict (``nnx.to_pure_dict``) of the Flax model (of ``arch``).

    ``check=False`` skips the validation (for gradients, which may be anything).
    """
    layers = flax_params["layers"]
    positions = _positions(arch or Architecture(), {})
    _all_read(layers, set(positions), arch)
    params = {}
    for layer, (W, b) in positions.items():
        if W.startswith("W"):
            params[W] = swap_in_out(as_float64(layers[layer]["kernel"]))
        else:
            params[W] = as_float64(layers[layer]["scale"])
        params[b] = as_float64(layers[layer]["bias"])
    return check_params(params) if check else params
