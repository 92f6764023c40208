"""Parity of the eight implementations: gradients against each other, an oracle, finite differences.

``python -m frameworks parity`` computes, on the same batch and init (the first
batch of the lab's circles run, seed 0), the loss and gradients of every
implementation on every device its framework sees, in float64 and float32, and
writes the 8 x 8 matrix of max relative errors (row against column), each row
against the float64 NumPy oracle and against central finite differences, as
JSON and a heat map. ``--first-divergence A B`` walks the forward and backward
of two implementations tensor by tensor and names the first over tolerance.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frameworks import oracle
from frameworks._batches import BatchOrder
from frameworks._config import TrainConfig
from frameworks._data import load_dataset
from frameworks._errors import KitError
from frameworks._params import Params, init_params
from frameworks._registry import IMPLEMENTATIONS, get
from frameworks._training import check_batch
from frameworks.tolerances import max_relative_error, relative_error, tolerance

#: The tensors of one forward and backward pass, in the order they are computed.
TENSORS = ("htilde", "h", "ytilde", "yhat", "loss", "Wy", "by", "Wh", "bh")


def lab_batch(*, seed: int = 0, batch_size: int = 10) -> tuple[Params, np.ndarray, np.ndarray]:
    """The lab's init and the first batch of its first epoch, on the shipped circles data."""
    data = load_dataset("circles")
    rows = BatchOrder(len(data.Xtrain), batch_size, seed=seed).next_epoch()[0]
    return init_params(data.nx, 10, data.ny, seed=seed), data.Xtrain[rows], data.Ytrain[rows]


def gradient_table(
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    dtype: str,
    device: str,
    implementations: Sequence[str] = IMPLEMENTATIONS,
    precision: str = "highest",
    loss_reduction: str = "mean",
) -> dict[str, Any]:
    """Loss and gradients of each implementation that sees ``device``, and their max relative errors.

    Returns ``{"ids", "matrix" (row vs column), "vs_oracle", "vs_finite_differences",
    "loss", "tolerance", "passed", "skipped" (id -> reason)}``.
    """
    params, X, Y = check_batch(params, X, Y)
    ids, grads, losses, skipped = [], [], [], {}
    for impl_id in implementations:
        impl = get(impl_id)
        if device not in impl.devices():
            skipped[impl_id] = f"{impl.framework} sees no {device} here (it sees {impl.devices()})"
            continue
        L, g = impl.gradients(
            params, X, Y, dtype=dtype, device=device, precision=precision, loss_reduction=loss_reduction
        )
        ids.append(impl_id)
        grads.append(g)
        losses.append(L)
    if not ids:
        raise KitError(f"no implementation runs on {device!r} here: " + "; ".join(sorted(set(skipped.values()))) + ".")
    _, reference = oracle.gradients(params, X, Y, reduction=loss_reduction)
    differences = oracle.finite_differences(params, X, Y)
    if loss_reduction == "sum":
        differences = {name: value * len(X) for name, value in differences.items()}
    tol = tolerance("gradients", dtype, device)
    matrix = [[max_relative_error(a, b) for b in grads] for a in grads]
    vs_oracle = [max_relative_error(g, reference) for g in grads]
    vs_fd = [max_relative_error(g, differences) for g in grads]
    return {
        "dtype": dtype,
        "device": device,
        "precision": precision,
        "ids": ids,
        "loss": losses,
        "matrix": matrix,
        "vs_oracle": vs_oracle,
        "vs_finite_differences": vs_fd,
        "oracle_vs_finite_differences": max_relative_error(reference, differences),
        "tolerance": tol,
        "passed": bool(np.max(matrix, initial=0.0) <= tol and max(vs_oracle, default=0.0) <= tol),
        "skipped": skipped,
    }


def trace(impl_id: str, params: Params, X: np.ndarray, Y: np.ndarray, *, dtype: str, device: str | None,
          precision: str = "highest") -> dict[str, np.ndarray]:
    """Every tensor of :data:`TENSORS` for one implementation, as float64 NumPy arrays."""
    impl = get(impl_id)
    stage, backend = impl.module, impl.module.backend
    config = TrainConfig(nh=params["Wh"].shape[0], dtype=dtype, device=device, precision=precision)
    with backend.scope(config):
        dev = backend.resolve_device(device)
        state = stage.prepare(params, config, dev)
        outputs = stage.trace(state, backend.asarray(X, dtype, dev))
        tensors = {name: backend.to_numpy(outputs[name]) for name in TENSORS[:4]}
    L, grads = impl.gradients(params, X, Y, dtype=dtype, device=device, precision=precision)
    return tensors | {"loss": np.asarray(L)} | grads


def first_divergence(
    a: str, b: str, params: Params, X: np.ndarray, Y: np.ndarray, *, dtype: str = "float32",
    device: str | None = None, precision: str = "highest", tol: float | None = None,
) -> dict[str, Any]:
    """Compare two implementations tensor by tensor, forward then backward.

    Returns ``{"errors": [(tensor, max relative error)], "first": the first tensor
    over the tolerance or None, "tolerance"}``.
    """
    params, X, Y = check_batch(params, X, Y)
    tol = tol if tol is not None else tolerance("gradients", dtype, device)
    ta = trace(a, params, X, Y, dtype=dtype, device=device, precision=precision)
    tb = trace(b, params, X, Y, dtype=dtype, device=device, precision=precision)
    errors = [(name, relative_error(ta[name], tb[name])) for name in TENSORS]
    first = next((name for name, error in errors if error > tol), None)
    return {"a": a, "b": b, "dtype": dtype, "device": device, "errors": errors, "first": first, "tolerance": tol}


def all_devices(implementations: Sequence[str] = IMPLEMENTATIONS) -> list[str]:
    """Every device some implementation's framework sees, "cpu" first."""
    seen: list[str] = []
    for impl_id in implementations:
        seen += [d for d in get(impl_id).devices() if d not in seen]
    return seen


def format_table(table: dict[str, Any]) -> str:
    """The matrix and the oracle columns as aligned text."""
    ids = table["ids"]
    width = max(map(len, ids), default=10) + 1
    head = " " * width + "".join(f"{i:>15}" for i in ids) + f"{'oracle':>12}{'fin. diff.':>12}"
    lines = [f"{table['dtype']} on {table['device']} (precision {table['precision']}), "
             f"tolerance {table['tolerance']:.0e}: {'PASS' if table['passed'] else 'FAIL'}", head]
    for i, row in enumerate(table["matrix"]):
        cells = "".join(f"{e:>15.1e}" for e in row)
        lines.append(f"{ids[i]:<{width}}{cells}{table['vs_oracle'][i]:>12.1e}{table['vs_finite_differences'][i]:>12.1e}")
    for impl_id, why in table["skipped"].items():
        lines.append(f"skipped {impl_id}: {why}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", nargs="+", choices=("float64", "float32"), default=["float64", "float32"])
    parser.add_argument("--device", nargs="+", choices=("cpu", "gpu", "tpu"), default=None,
                        help="devices to check (default: every device a framework sees)")
    parser.add_argument("--precision", choices=("highest", "native"), default="highest",
                        help="float32 matmul precision: 'native' shows TF32/bfloat16 effects on GPU/TPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-divergence", nargs=2, metavar=("A", "B"),
                        help="walk the forward/backward of two implementations and name the first tensor over tolerance")
    parser.add_argument("--out", type=Path, default=Path("runs/parity"), help="folder for parity.json and parity.png")


def run(args: argparse.Namespace) -> int:
    params, X, Y = lab_batch(seed=args.seed)
    if args.first_divergence:
        a, b = (get(i).id for i in args.first_divergence)
        for dtype in args.dtype:
            for device in args.device or [None]:
                report = first_divergence(a, b, params, X, Y, dtype=dtype, device=device, precision=args.precision)
                print(f"{a} vs {b}, {dtype} on {device or 'default device'} (tolerance {report['tolerance']:.0e}):")
                for name, error in report["errors"]:
                    flag = "  <- first over tolerance" if name == report["first"] else ""
                    print(f"  {name:<7} {error:.2e}{flag}")
                print(f"  first divergence: {report['first'] or 'none'}")
        return 0
    devices = args.device or all_devices()
    tables = []
    for device in devices:
        for dtype in args.dtype:
            table = gradient_table(params, X, Y, dtype=dtype, device=device, precision=args.precision)
            tables.append(table)
            print(format_table(table), end="\n\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parity.json").write_text(json.dumps(tables, indent=1))
    from frameworks import plots

    plots.parity_heatmaps(tables, args.out / "parity.png")
    print(f"wrote {args.out / 'parity.json'} and {args.out / 'parity.png'}")
    return 0 if all(t["passed"] for t in tables) else 1
