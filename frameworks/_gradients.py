"""The gradient of one batch by an implementation's own mechanism, and the checks of a batch against parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from frameworks._arch import Architecture
from frameworks._config import Device, DType, Precision, Reduction, TrainConfig
from frameworks._data import check_features, check_labels
from frameworks._errors import KitError
from frameworks._params import Params, check_params, widths
from frameworks._stage import place

if TYPE_CHECKING:
    from frameworks._registry import Implementation


def check_batch(params: Mapping[str, Any], X: Any, Y: Any) -> tuple[Params, np.ndarray, np.ndarray]:
    """Validated canonical ``params`` and a batch ``X`` (B, nx), ``Y`` (B, ny) that fits them."""
    params = check_params(params)
    X = check_features(X, "X")
    nx, _, ny = widths(params)
    if X.shape[1] != nx:
        first = next(iter(params))
        raise KitError(f"X has {X.shape[1]} features but the parameters expect nx={nx} ({first} is "
                       f"{params[first].shape}).")
    Y = check_labels(Y, "Y", rows=len(X), ny=ny)
    return params, X, Y


def check_architecture(params: Params, config: TrainConfig) -> None:
    """The parameters are those of ``config``'s network: its widths, and LayerNorm's weights when it has one."""
    _, hidden, _ = widths(params)
    arch = config.arch
    has_norm = any(name.startswith("gamma") for name in params)
    if hidden != arch.hidden or has_norm != bool(arch.norm):
        given = f"nh={hidden[0]}" if len(hidden) == 1 else f"hidden={hidden}"
        wanted = f"config.nh={arch.hidden[0]}" if len(arch.hidden) == 1 and not config.hidden else \
            f"config.hidden={arch.hidden}"
        norms = f" ({'with' if has_norm else 'without'} LayerNorm weights, config.norm={arch.norm!r})" \
            if has_norm != bool(arch.norm) else ""
        raise KitError(f"params have {given}{norms} but {wanted}.")


def gradients(
    impl: Implementation,
    params: Mapping[str, Any],
    X: Any,
    Y: Any,
    *,
    dtype: DType = "float64",
    device: Device | None = None,
    loss_reduction: Reduction = "mean",
    precision: Precision = "highest",
    devices: int = 1,
    activation: str | tuple[str, ...] = "tanh",
    dropout: float = 0.0,
    masks: tuple[np.ndarray, ...] = (),
) -> tuple[float, Params]:
    """Mean loss of a batch and its gradients by ``impl``'s own mechanism, canonical float64.

    ``loss_reduction="sum"`` differentiates the summed loss; ``devices=N`` splits
    the batch over N devices (data parallelism, JAX). The network is the one ``params``
    describe (widths, LayerNorm), with ``activation``; with ``dropout``, ``masks`` are the
    kept units (bool, one (B, width) array a hidden layer).
    """
    params, X, Y = check_batch(params, X, Y)
    _, hidden, _ = widths(params)
    config = TrainConfig(
        hidden=hidden, activation=activation, norm="layer" if "gamma" in params or "gamma1" in params else None,
        dropout=dropout, dtype=dtype, device=device, loss_reduction=loss_reduction, precision=precision,
        devices=devices, batch_size=len(X),
    )
    masks = _check_masks(masks, config.arch, len(X))
    stage = impl.stage
    with place(stage, config, params, X, Y, *masks, batch=True) as run:
        given = {"masks": run.data[2:]} if masks else {}  # a stage without dropout need not take masks
        L, grads = stage.gradients(run.state, *run.data[:2], reduction=loss_reduction, **given)
        return float(L), {name: stage.backend.to_numpy(grads[name]) for name in params}


def _check_masks(masks: tuple[np.ndarray, ...], arch: Architecture, rows: int) -> tuple[np.ndarray, ...]:
    if not arch.dropout:
        if len(masks):
            raise KitError("masks given without dropout; set dropout to the rate they were drawn with.")
        return ()
    masks = tuple(np.asarray(m) for m in masks)
    shapes = tuple((rows, w) for w in arch.hidden)
    if tuple(m.shape for m in masks) != shapes or any(m.dtype != bool for m in masks):
        raise KitError(f"dropout needs masks: one bool array a hidden layer, shapes {shapes}; got "
                       f"{[(m.shape, str(m.dtype)) for m in masks]}.")
    return masks
