"""``python -m frameworks bench``: time every implementation side by side, in one run.

One module a job: :mod:`~frameworks.bench._workloads` says what runs (the
workloads, and the rows: every implementation, the JAX ones three ways, plus
torch/optim through ``torch.compile``), :mod:`~frameworks.bench._timing` how a
row is timed (steps only, through the kit's own runner; warm-up, median of
``--repeats``), :mod:`~frameworks.bench._machine` the machine and the matrix
product the rows are held against, :mod:`~frameworks.bench._report` the
Markdown table, ``bench.json`` and ``bench.png``. This module is the command
line, and the order things run in.

Order: all PyTorch rows first, then all JAX rows (registry order of
frameworks), numpy's matmul last. Once XLA has run on the CPU, PyTorch's small
MKL products in the same process were seen to slow down tenfold or more on a
2-core machine (the threads of both runtimes contend for the cores); running
PyTorch first keeps its rows clean. PyTorch's intra-op threads are the kit's
default (``TrainConfig.torch_threads``, 1: set inside every run, restored after)
unless ``--torch-threads`` says otherwise (recorded in the JSON). On a machine
shared with other work the numbers move a lot: compare rows of one run only.

``--device gpu`` times the frameworks that see a GPU here and notes the others
as not timed; if none does, ``bench`` refuses before timing anything (exit 2).
A run whose rows all failed keeps the earlier ``bench.json`` and ``bench.png``
and exits 1. Prints a Markdown table on stdout; progress goes to stderr, a
plain line a step. Never assert on these timings in tests: they depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from frameworks._errors import KitError
from frameworks._registry import FRAMEWORKS, get, implementations
from frameworks.bench._machine import machine_info, matmul_rate, measure_import
from frameworks.bench._report import describe, markdown, plot, relate, write
from frameworks.bench._timing import CompileFailed, measure, prepare_row, reason
from frameworks.bench._workloads import (
    BASELINE,
    COMPILE_ID,
    SEED,
    Variant,
    Workload,
    selected,
    synthetic,
    variants,
    workloads,
)

#: The names other code may import from ``frameworks.bench``.
__all__ = [
    "BASELINE",
    "COMPILE_ID",
    "SEED",
    "CompileFailed",
    "Variant",
    "Workload",
    "add_arguments",
    "machine_info",
    "markdown",
    "matmul_rate",
    "measure",
    "measure_import",
    "on_device",
    "plot",
    "prepare_row",
    "run",
    "synthetic",
    "workloads",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="device to time on (default cpu)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats, median reported (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs a circles repeat runs (default 150; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the bench itself")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for bench.json and bench.png")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="PyTorch's intra-op threads inside the PyTorch rows (default: the kit's, 1; recorded in bench.json)",
    )
    parser.add_argument("--end-to-end", action="store_true",
                        help="time whole train calls (first and later, compile apart) on circles, an MNIST-size "
                             "sample and one full-MNIST-size epoch, against the measured matmul peak")
    parser.add_argument("--sweep", type=int, default=None, metavar="N",
                        help="time a sweep of N circles runs at once (jax/grad, vmapped) against torch/optim run by "
                             "run, instead of the rows (N a multiple of 20; the issue's figure: 1000)")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated implementation ids to time (of {', '.join(implementations())}, {COMPILE_ID})",
    )


def run(args: argparse.Namespace) -> int:
    """Time the rows and write the report: 0; 1 when every row failed (the earlier results kept).

    Bad options, and a device no selected framework sees, are a :class:`KitError` before anything is timed.
    """
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 150)
    threads = 1 if args.torch_threads is None else args.torch_threads
    for name, value in (("--repeats", repeats), ("--epochs", epochs), ("--torch-threads", threads)):
        if value <= 0:
            raise KitError(f"{name} must be a positive integer, got {value}.")
    if args.sweep is not None:
        return _sweep_only(args, epochs, threads)
    if args.end_to_end:
        return _end_to_end_only(args)
    names = selected(args.only)
    rows_to_time, skipped = on_device(variants(names), args.device)
    plan = workloads(quick=args.quick, epochs=epochs, torch_threads=threads)
    for implementation, why in skipped.items():
        _progress(f"bench: not timing {implementation} on {args.device}: {why}")

    _progress("bench: `import frameworks` in a fresh interpreter")
    import_check = measure_import(runs=1 if args.quick else 3)
    matmul: dict[str, Any] = {"n": 256 if args.quick else 2048}
    rows = _time_rows(plan, rows_to_time, args.device, repeats, matmul, threads)
    relate(rows, matmul)

    out = Path(args.out)
    failed = [row for row in rows if row["error"]]
    if len(failed) == len(rows):
        first = failed[0]["error"]
        _progress(f"error: all {len(rows)} rows failed (first: {first}); the earlier results in {out} are kept.")
        return 1
    report = {
        "machine": machine_info(args.device, {v.framework for v in rows_to_time}),
        "settings": {
            "device": args.device,
            "repeats": repeats,
            "quick": args.quick,
            "torch_threads": threads,
            "only": sorted(names),
            "skipped": skipped,
            "timing": "steps only, backend.epoch_runner without evaluation (see frameworks/bench/_timing.py); "
            "runner_* columns: the same with the per-epoch evaluation, as fit runs it",
            "order": "all PyTorch rows (and torch.mm) first, then all JAX rows (and jnp.dot), numpy's matmul last",
            "workloads": [w.describe() for w in plan],
        },
        "import": import_check,
        "matmul": matmul,
        "rows": rows,
    }
    json_path, png_path = write(report, out)
    print(markdown(report))
    _progress(f"bench: wrote {json_path} and {png_path}")
    return 0


def _end_to_end_only(args: argparse.Namespace) -> int:
    from frameworks.bench._end_to_end import markdown as end_to_end_table
    from frameworks.bench._end_to_end import time_end_to_end

    _progress("bench: whole train calls, every implementation, circles, MNIST-size and a full-MNIST-size epoch")
    result = time_end_to_end(quick=args.quick, later=1 if args.quick else 2, progress=_progress,
                             only=selected(args.only) if args.only else None)
    return _report(args, "end_to_end", result, end_to_end_table(result))


def _sweep_only(args: argparse.Namespace, epochs: int, threads: int) -> int:
    from frameworks.bench._sweeps import markdown as sweep_table
    from frameworks.bench._sweeps import time_sweeps

    _progress(f"bench: a sweep of {args.sweep} runs, jax/manual runs last and jax/grad vmapped, against torch")
    result = time_sweeps(args.sweep, epochs=epochs, loop_runs=2 if args.quick else 10, torch_threads=threads)
    return _report(args, "sweep", result, sweep_table(result))


def _report(args: argparse.Namespace, name: str, result: dict[str, Any], table: str) -> int:
    """``bench_NAME.json`` (the machine and ``result``) in ``--out``, and the Markdown table on stdout."""
    import json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench_{name}.json"
    path.write_text(json.dumps({"machine": machine_info(args.device, {"torch", "jax"}), name: result}, indent=1))
    print(table)
    _progress(f"bench: wrote {path}")
    return 0


def on_device(candidates: list[Variant], device: str) -> tuple[list[Variant], dict[str, str]]:
    """The variants whose framework sees ``device`` here, and why the others are left out (by implementation id).

    A :class:`KitError` when none does: a bench with nothing to time refuses before timing anything.
    """
    blind: dict[str, str] = {}  # framework -> why it is left out
    for framework in dict.fromkeys(v.framework for v in candidates):
        implementation = next(v.implementation for v in candidates if v.framework == framework)
        try:
            seen = get(implementation).devices()
        except Exception as err:  # a framework that does not import here
            blind[framework] = f"{framework} does not load ({reason(err)})"
            continue
        if device not in seen:
            blind[framework] = f"{framework} sees only {', '.join(seen)}"
    kept = [v for v in candidates if v.framework not in blind]
    if not kept:
        raise KitError(f"no selected implementation runs on {device!r} here: {'; '.join(blind.values())}.")
    return kept, {v.implementation: blind[v.framework] for v in candidates if v.framework in blind}


def _time_rows(
    plan: list[Workload], rows_to_time: list[Variant], device: str, repeats: int, matmul: dict[str, Any],
    torch_threads: int,
) -> list[dict[str, Any]]:
    """Every (workload, variant) row, one framework after the other, each framework's matmul rate before its rows.

    Registry order, torch first: once XLA has run on the CPU, PyTorch's small MKL products in the same process
    can slow down tenfold or more on a small machine (threads of both runtimes contend for the cores), so no
    PyTorch row runs after JAX work. Rows come back in the table's order: by workload, then variant.
    """
    n = matmul["n"]
    pairs = [(w, v) for framework in FRAMEWORKS for w in plan for v in rows_to_time if v.framework == framework]
    rows_at: dict[tuple[int, int], dict[str, Any]] = {}
    for framework in FRAMEWORKS:
        if not any(v.framework == framework for v in rows_to_time):
            continue
        _progress(f"bench: float32 {n}x{n} matrix product, {framework}")
        try:
            matmul[f"{framework}_gflops"] = matmul_rate(framework, device, n=n, torch_threads=torch_threads)
        except Exception as err:
            matmul[f"{framework}_error"] = reason(err)
        for workload, variant in pairs:
            if variant.framework != framework:
                continue
            row = measure(variant, workload, device=device, repeats=repeats)
            rows_at[plan.index(workload), rows_to_time.index(variant)] = row
            _progress(f"[{len(rows_at)}/{len(pairs)}] {workload.name:>14} {variant.label:<30} {describe(row)}")
    _progress(f"bench: float32 {n}x{n} matrix product, numpy")  # last: OpenBLAS's threads linger
    matmul["numpy_gflops"] = matmul_rate("numpy", device, n=n)
    return [rows_at[key] for key in sorted(rows_at)]


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
