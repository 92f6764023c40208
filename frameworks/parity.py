"""Parity of the implementations: gradients against each other, an oracle that derives nothing, and more.

``python -m frameworks parity`` computes, on the same batch and init (the first
batch of the lab's circles run, seed 0), the loss and gradients of every
registered implementation on every device its framework sees, in float64 and
float32, and writes the matrix of max relative errors (row against column); each
row against the reference, complex-step differentiation of the float64 NumPy
forward (``oracle.complex_step``: no derivation), against the lab's derivation
in NumPy and against central finite differences, as JSON and a heat map.

Not every pair is evidence: the lab's stage 4 only swaps the update of stage 3,
so ``torch/optim`` computes its gradients with ``torch/nn``'s code and
``jax/optax`` with ``jax/flax``'s (``Stage.shares``). Those pairs are marked
"same code" in the table and the heat map, and the independent code paths are
counted (4 forwards, 6 gradient paths, 8 update loops among the eight); stage 4's
own evidence is its training trajectory. ``--first-divergence A B`` walks the
forward and backward of two implementations tensor by tensor and names the
first over tolerance. ``--hidden 256,128 --activation gelu --norm layer
--dropout 0.1`` checks a deeper network on the same batch (with the kit's
dropout masks of that batch); its tensors are named ``layers.{i}.{kind}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frameworks import oracle
from frameworks._arch import ACTIVATIONS, LAB, Architecture
from frameworks._batches import BatchOrder, dropout_masks
from frameworks._config import Device, DType, Precision, Reduction, TrainConfig
from frameworks._data import Dataset, load_dataset
from frameworks._errors import KitError
from frameworks._gradients import check_batch
from frameworks._params import Params, init_params
from frameworks._registry import get
from frameworks._registry import implementations as registered
from frameworks._stage import PARTS, place
from frameworks.tolerances import max_relative_error, relative_error, tolerance

#: The tensors of one forward and backward pass of the lab's network, in the order they are computed.
TENSORS = ("htilde", "h", "ytilde", "yhat", "loss", "Wy", "by", "Wh", "bh")


def tensors(arch: Architecture = LAB) -> tuple[str, ...]:
    """The tensors of one forward and backward pass of ``arch``, in the order they are computed: the
    intermediates, ``yhat``, the loss, then the gradients from the last layer to the first."""
    backward = ["Wy", "by"]
    for k in reversed(range(arch.depth)):
        names = arch.hidden_names(k)
        backward += [names[role] for role in ("gamma", "beta", "W", "b") if role in names]
    return (*arch.trace_names, "yhat", "loss", *backward)


def first_batch(dataset: Dataset, config: TrainConfig) -> tuple[Params, np.ndarray, np.ndarray, np.ndarray]:
    """A run's initial parameters (its NumPy init scheme) and the first batch of its first epoch:
    params, X, Y and the rows drawn."""
    order = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed)
    rows = order.next_epoch()[0]
    arch = config.arch
    params = init_params(dataset.nx, arch.hidden, dataset.ny, seed=config.seed, scheme=config.init, norm=arch.norm)
    return params, dataset.Xtrain[rows], dataset.Ytrain[rows], rows


def first_masks(config: TrainConfig, rows: int) -> tuple[np.ndarray, ...]:
    """The kit's dropout masks of a run's first batch (none without dropout), for a training set of ``rows``."""
    if not config.dropout:
        return ()
    masks = dropout_masks(config.seed, range(1), rows // config.batch_size, config.batch_size, config.arch.hidden,
                          config.dropout)
    return tuple(m[0, 0] for m in masks)


def lab_batch(*, seed: int = 0, batch_size: int = 10) -> tuple[Params, np.ndarray, np.ndarray]:
    """The lab's init and the first batch of its first epoch, on the shipped circles data."""
    params, X, Y, _ = first_batch(load_dataset("circles"), TrainConfig(seed=seed, batch_size=batch_size))
    return params, X, Y


def gradient_table(
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    dtype: DType,
    device: Device,
    implementations: Sequence[str] | None = None,
    precision: Precision = "highest",
    loss_reduction: Reduction = "mean",
    arch: Architecture = LAB,
    masks: tuple[np.ndarray, ...] = (),
) -> dict[str, Any]:
    """Loss and gradients of each implementation that sees ``device``, and their max relative errors.

    ``arch``: the network ``params`` belong to (its activations and dropout rate; the widths and
    LayerNorm are the parameters'), with dropout's ``masks`` for this batch.
    Returns ``{"ids", "matrix" (row vs column), "same_code" (pairs [i, j] whose gradients run
    one code path: their agreement proves nothing), "paths" (the independent forward, gradient
    and update code paths among ``ids``), "vs_oracle" (against complex-step differentiation, the
    reference), "vs_derivation" (against the lab's derivation in NumPy), "vs_finite_differences",
    "loss", "tolerance", "passed", "skipped" (id -> reason)}``.
    """
    params, X, Y = check_batch(params, X, Y)
    ids, grads, losses, skipped = [], [], [], {}
    for impl_id in implementations if implementations is not None else registered():
        impl = get(impl_id)
        if device not in impl.devices():
            skipped[impl_id] = f"{impl.framework} sees no {device} here (it sees {impl.devices()})"
            continue
        L, g = impl.gradients(
            params, X, Y, dtype=dtype, device=device, precision=precision, loss_reduction=loss_reduction,
            activation=arch.activations, dropout=arch.dropout, masks=masks,
        )
        ids.append(impl_id)
        grads.append(g)
        losses.append(L)
    if not ids:
        raise KitError(f"no implementation runs on {device!r} here: " + "; ".join(sorted(set(skipped.values()))) + ".")
    refs = oracle.references(params, X, Y, reduction=loss_reduction, arch=arch, masks=masks)
    derivation = refs.derivation
    tol = tolerance("gradients", dtype, device)
    matrix = [[max_relative_error(a, b) for b in grads] for a in grads]
    vs_oracle = [refs.error(g, "oracle") for g in grads]
    return {
        "dtype": dtype,
        "device": device,
        "precision": precision,
        "ids": ids,
        "loss": losses,
        "matrix": matrix,
        "same_code": same_code(ids),
        "paths": independent_paths(ids),
        "references": refs.kind,
        "vs_oracle": vs_oracle,
        "vs_derivation": [max_relative_error(g, derivation) if derivation else float("nan") for g in grads],
        "vs_finite_differences": [refs.error(g, "finite_differences") for g in grads],
        "derivation_vs_oracle": refs.error(derivation, "oracle") if derivation else float("nan"),
        "oracle_vs_finite_differences": refs.oracle_vs_finite_differences,
        "tolerance": tol,
        "passed": bool(np.max(matrix, initial=0.0) <= tol and max(vs_oracle, default=0.0) <= tol),
        "skipped": skipped,
    }


def same_code(ids: Sequence[str], part: str = "gradients") -> list[list[int]]:
    """The pairs ``[i, j]`` (i < j) of ``ids`` whose ``part`` runs one code path (see ``Stage.shares``)."""
    code = [get(i).code_of(part) for i in ids]
    return [[i, j] for i in range(len(ids)) for j in range(i + 1, len(ids)) if code[i] == code[j]]


def independent_paths(ids: Sequence[str]) -> dict[str, list[list[str]]]:
    """For each part (forward, gradients, update), the groups of ``ids`` that run one code path."""
    paths: dict[str, list[list[str]]] = {}
    for part in PARTS:
        groups: dict[str, list[str]] = {}
        for impl_id in ids:
            groups.setdefault(get(impl_id).code_of(part), []).append(impl_id)
        paths[part] = list(groups.values())
    return paths


def trace(impl_id: str, params: Params, X: np.ndarray, Y: np.ndarray, *, dtype: DType, device: Device | None,
          precision: Precision = "highest", arch: Architecture = LAB, masks: tuple[np.ndarray, ...] = ()
          ) -> dict[str, np.ndarray]:
    """Every tensor of :func:`tensors` for one implementation, as float64 NumPy arrays (the forward's
    intermediates in evaluation mode; the gradients with dropout's ``masks``)."""
    impl = get(impl_id)
    stage = impl.stage
    config = TrainConfig(hidden=arch.hidden, activation=arch.activations, norm=arch.norm, dropout=arch.dropout,
                         dtype=dtype, device=device, precision=precision)
    with place(stage, config, params, X) as run:
        outputs = stage.trace(run.state, *run.data)
        forward = {name: stage.backend.to_numpy(outputs[name]) for name in (*arch.trace_names, "yhat")}
    L, grads = impl.gradients(params, X, Y, dtype=dtype, device=device, precision=precision,
                              activation=arch.activations, dropout=arch.dropout, masks=masks)
    return forward | {"loss": np.asarray(L)} | grads


def first_divergence(
    a: str, b: str, params: Params, X: np.ndarray, Y: np.ndarray, *, dtype: DType = "float32",
    device: Device | None = None, precision: Precision = "highest", tol: float | None = None,
    arch: Architecture = LAB, masks: tuple[np.ndarray, ...] = (),
) -> dict[str, Any]:
    """Compare two implementations tensor by tensor, forward then backward.

    Returns ``{"errors": [(tensor, max relative error)], "first": the first tensor
    over the tolerance or None, "tolerance"}``.
    """
    params, X, Y = check_batch(params, X, Y)
    tol = tol if tol is not None else tolerance("gradients", dtype, device)
    net: dict[str, Any] = {"arch": arch, "masks": masks}
    ta = trace(a, params, X, Y, dtype=dtype, device=device, precision=precision, **net)
    tb = trace(b, params, X, Y, dtype=dtype, device=device, precision=precision, **net)
    errors = [(name, relative_error(ta[name], tb[name])) for name in tensors(arch)]
    first = next((name for name, error in errors if error > tol), None)
    return {"a": a, "b": b, "dtype": dtype, "device": device, "errors": errors, "first": first, "tolerance": tol}


def all_devices(implementations: Sequence[str] | None = None) -> list[str]:
    """Every device some implementation's framework sees, "cpu" first."""
    seen: list[str] = []
    for impl_id in implementations if implementations is not None else registered():
        seen += [d for d in get(impl_id).devices() if d not in seen]
    return seen


def format_table(table: dict[str, Any]) -> str:
    """The matrix and the reference columns as aligned text; pairs that run one code path read "same code"."""
    ids = table["ids"]
    shared = {tuple(pair) for pair in table.get("same_code", [])}
    shared |= {(j, i) for i, j in shared}
    width = max(map(len, ids), default=10) + 1
    head = " " * width + "".join(f"{i:>15}" for i in ids) + "".join(
        f"{name:>13}" for name in ("complex step", "derivation", "fin. diff."))
    along = (f" (complex step and finite differences along {oracle.DIRECTIONS} random directions a tensor)"
             if table.get("references") == "directions" else "")
    lines = [f"{table['dtype']} on {table['device']} (precision {table['precision']}), tolerance "
             f"{table['tolerance']:.0e} against complex-step differentiation: {'PASS' if table['passed'] else 'FAIL'}"
             + along, head]
    for i, row in enumerate(table["matrix"]):
        cells = "".join(f"{'same code':>15}" if (i, j) in shared else f"{e:>15.1e}" for j, e in enumerate(row))
        refs = (table["vs_oracle"][i], table.get("vs_derivation", [np.nan] * len(ids))[i],
                table["vs_finite_differences"][i])
        lines.append(f"{ids[i]:<{width}}{cells}" + "".join(f"{'-':>13}" if np.isnan(e) else f"{e:>13.1e}"
                                                           for e in refs))
    if any(np.isnan(e) for e in table.get("vs_derivation", [])):
        lines.append("derivation: '-', the lab's NumPy derivation is written for its one hidden tanh layer only "
                     "(complex step, which derives nothing, checks every network)")
    if "paths" in table:
        counts = ", ".join(f"{len(groups)} {part}" for part, groups in table["paths"].items())
        lines.append(f"independent code paths among these {len(ids)}: {counts}; "
                     "'same code': both run one gradient code path, so their agreement is not evidence")
        exact = [f"{ids[i]}-{ids[j]}" for i in range(len(ids)) for j in range(i + 1, len(ids))
                 if (i, j) not in shared and table["matrix"][i][j] == 0.0]
        if exact:
            lines.append("bitwise equal though the code differs (the same operations in the same order, e.g. "
                         "autograd's rules over the same products): " + ", ".join(exact))
    for impl_id, why in table["skipped"].items():
        lines.append(f"skipped {impl_id}: {why}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", nargs="+", choices=("float64", "float32"), default=["float64", "float32"],
                        help="dtypes to check (default: both)")
    parser.add_argument("--device", nargs="+", choices=("cpu", "gpu", "tpu"), default=None,
                        help="devices to check (default: every device a framework sees)")
    parser.add_argument("--precision", choices=("highest", "native"), default="highest",
                        help="float32 matmul precision: 'native' shows TF32/bfloat16 effects on GPU/TPU")
    parser.add_argument("--seed", type=int, default=0,
                        help="the init and the batch order of the lab's circles run to check on (default: 0)")
    parser.add_argument("--hidden", type=_widths, default=None, metavar="W1,W2,...",
                        help="hidden widths of a deeper network to check (default: the lab's 10)")
    parser.add_argument("--activation", default="tanh", metavar="NAME[,NAME...]",
                        help=f"hidden activation(s): {', '.join(ACTIVATIONS)} (default tanh)")
    parser.add_argument("--norm", choices=("none", "layer"), default="none", help="LayerNorm after each hidden Linear")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout rate; the gradients use the kit's masks of the first batch (default 0)")
    parser.add_argument("--init", choices=("lab", "torch", "flax", "xavier", "he"), default="lab",
                        help="the NumPy init scheme (default lab)")
    parser.add_argument("--first-divergence", nargs=2, metavar=("A", "B"),
                        help="walk the forward/backward of two implementations and name the first tensor over "
                             "tolerance")
    parser.add_argument("--out", type=Path, default=Path("runs/parity"),
                        help="folder for parity.json and parity.png (default: runs/parity)")


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden widths are integers separated by commas; got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    activation = tuple(args.activation.split(","))
    config = TrainConfig(hidden=args.hidden or (), activation=activation if len(activation) > 1 else activation[0],
                         norm=None if args.norm == "none" else args.norm, dropout=args.dropout, seed=args.seed,
                         init=args.init)
    dataset = load_dataset("circles")
    params, X, Y, _ = first_batch(dataset, config)
    net: dict[str, Any] = {"arch": config.arch, "masks": first_masks(config, len(dataset.Xtrain))}
    if not config.arch.is_lab or config.arch.hidden != (10,):
        print(f"network: {dataset.nx}-({config.arch.describe()})-{dataset.ny}, init {config.init}, on the first "
              "batch of the circles run")
    if args.first_divergence:
        a, b = (get(i).id for i in args.first_divergence)
        for dtype in args.dtype:
            for device in args.device or [None]:
                report = first_divergence(a, b, params, X, Y, dtype=dtype, device=device, precision=args.precision,
                                          **net)
                print(f"{a} vs {b}, {dtype} on {device or 'default device'} (tolerance {report['tolerance']:.0e}):")
                width = max(7, *(len(name) for name, _ in report["errors"]))
                for name, error in report["errors"]:
                    flag = "  <- first over tolerance" if name == report["first"] else ""
                    print(f"  {name:<{width}} {error:.2e}{flag}")
                print(f"  first divergence: {report['first'] or 'none'}")
        return 0
    devices: list[Any] = args.device or all_devices()
    tables = []
    for device in devices:
        for dtype in args.dtype:
            table = gradient_table(params, X, Y, dtype=dtype, device=device, precision=args.precision, **net)
            tables.append(table)
            print(format_table(table), end="\n\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parity.json").write_text(json.dumps(tables, indent=1))
    from frameworks import plots

    plots.parity_heatmaps(tables, args.out / "parity.png")
    print(f"wrote {args.out / 'parity.json'} and {args.out / 'parity.png'}")
    return 0 if all(t["passed"] for t in tables) else 1
