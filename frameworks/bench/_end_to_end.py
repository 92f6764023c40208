"""``bench --end-to-end``: what a user sees calling ``train``, not only the inner step.

Three workloads, every implementation (and ``torch/optim`` with ``compile=True``), side by
side in one process, PyTorch first (XLA's threads, once started, slow PyTorch's small
products in the same process), torch.compile's row last (after it, the JAX rows ran up to 1.5x
slower):

* ``circles``: the lab's run, ``TrainConfig()`` (150 epochs of batch 10);
* ``mnist-size``: the lab's MNIST settings on a 4000/1000-image sample of MNIST's shape
  (784-100-10, batch 100, eta 0.03, float32, 30 epochs, both sets evaluated after every epoch),
  synthetic data;
* ``full-mnist-size``: one epoch at full MNIST size (60,000/10,000 images), synthetic; 100 times
  a call of one epoch includes the run's set-up (the 70,000 images converted to float32 and moved
  to the device), so an epoch's own time is also measured through the kit's runner with the data
  placed once (:func:`epoch_time`), and the lab's 100-epoch MNIST run projected as a one-epoch call
  plus 99 such epochs.

PyTorch's threads are chosen by size (``torch_threads=None``: one for the circles, PyTorch's own
count for MNIST's products: its best on an idle machine; the kit's default is one thread).

Each row: the first call (compilation included), the median of the later calls (other seeds,
the same shapes: nothing compiles again), the first call's compile time
(``TrainResult.compile_time``), the products' floating-point work (:func:`flops`: every
training and evaluation product, counted exactly) and the rate it implies against the float32
matrix product measured in the same run (the best of ``jnp.dot`` and ``torch.mm``, the
machine's peak as the kit can reach it).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from frameworks._config import TrainConfig
from frameworks._data import Dataset, load_dataset
from frameworks._registry import get, implementations
from frameworks._stage import place
from frameworks.bench._machine import matmul_rate
from frameworks.bench._workloads import COMPILE_ID, synthetic


def flops(config: TrainConfig, nx: int, ny: int, *, train_rows: int, eval_rows: int) -> float:
    """The floating-point operations of a run's matrix products: per training row, the forward products and
    the weight gradients (2 x fan_in x fan_out each) and the gradients of every hidden layer's output but the
    input's; per evaluated row and epoch, the forward products. ``train_rows``: rows trained in an epoch (whole
    batches); ``eval_rows``: rows evaluated after each epoch (every set)."""
    widths = (nx, *config.arch.hidden, ny)
    products = [a * b for a, b in zip(widths, widths[1:])]
    forward = 2 * sum(products)
    per_train_row = forward + 2 * sum(products) + 2 * sum(products[1:])
    return float(config.epochs * (train_rows * per_train_row + eval_rows * forward))


def workloads(*, quick: bool) -> list[tuple[str, Dataset, TrainConfig]]:
    """(name, dataset, config): the three workloads (``quick``: a few epochs and fewer rows, for the tests)."""
    mnist = TrainConfig.mnist().replace(nh=100, batch_size=100, eta=0.03, epochs=2 if quick else 30,
                                        torch_threads=None)  # PyTorch at its best on an idle machine
    return [
        ("circles", load_dataset("circles"), TrainConfig(epochs=3 if quick else 150, torch_threads=None)),
        ("mnist-size", synthetic(400 if quick else 4000, 100 if quick else 1000, 784, 10, seed=0), mnist),
        ("full-mnist-size", synthetic(2000 if quick else 60_000, 500 if quick else 10_000, 784, 10, seed=1),
         mnist.replace(epochs=1)),
    ]


def epoch_time(impl_id: str, dataset: Dataset, config: TrainConfig, *, repeats: int) -> float:
    """An epoch's own time, the data already placed: the median of ``repeats`` calls of the kit's runner (what
    ``fit`` calls, the evaluation included) on one epoch, after a warm-up call."""

    from frameworks._batches import BatchOrder
    from frameworks._training import initial_params, runner

    stage = get(impl_id).stage
    start = initial_params(stage, config, dataset.nx, dataset.ny)
    with place(stage, config, start, *dataset.arrays) as placed:
        run = runner(stage, config, placed.device, steps_per_epoch=len(dataset.Xtrain) // config.batch_size)
        rows = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed).epochs(1)
        stage.backend.wait(run(placed.state, placed.data, rows)[0])
        times = []
        for _ in range(repeats):
            state = stage.load(start, config, placed.device)  # a fresh state: PyTorch's steps update in place
            began = time.perf_counter()
            stage.backend.wait(run(state, placed.data, rows)[0])
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def rows_order() -> list[str]:
    """PyTorch's rows first, then JAX's, then torch.compile's: the JAX rows measured after torch.compile's ran
    up to 1.5x slower at MNIST size (its compiled kernels' threads and workers stay in the process)."""
    ids = implementations()
    return [i for i in ids if i.startswith("torch/")] + [i for i in ids if i.startswith("jax/")] + [COMPILE_ID]


def time_end_to_end(*, quick: bool = False, later: int = 2, only: set[str] | None = None,
                    progress: Any = None) -> dict[str, Any]:
    """Every row (``only``: these, torch/optim always, the baseline) of every workload, and the matrix-product
    peak, measured in this process."""
    import torch

    peak = {"torch": matmul_rate("torch", "cpu", n=256 if quick else 2048, torch_threads=torch.get_num_threads())}
    results: dict[str, Any] = {"workloads": {}, "later_calls": later}
    plan = workloads(quick=quick)
    for row in rows_order():
        if only is not None and row not in only | {"torch/optim"}:
            continue
        if row.startswith("jax/") and "jax" not in peak:  # after PyTorch's rows
            peak["jax"] = matmul_rate("jax", "cpu", n=256 if quick else 2048)
        impl_id, compile_ = (row.split("+")[0], True) if row == COMPILE_ID else (row, False)
        for name, dataset, config in plan:
            if progress is not None:
                progress(f"bench: {row} on {name}")
            run = config.replace(compile=compile_)
            start = time.perf_counter()
            first = get(impl_id).train(dataset, run)
            first_s = time.perf_counter() - start
            times = []
            for seed in range(1, later + 1):
                start = time.perf_counter()
                get(impl_id).train(dataset, run.replace(seed=seed))
                times.append(time.perf_counter() - start)
            train_rows = len(dataset.Xtrain) // run.batch_size * run.batch_size
            work = flops(run, dataset.nx, dataset.ny, train_rows=train_rows,
                         eval_rows=len(dataset.Xtrain) + len(dataset.Xtest))
            extra = {}
            if name == "full-mnist-size":
                epoch_s = epoch_time(impl_id, dataset, run, repeats=later)
                extra = {"epoch_s": epoch_s, "epoch_gflops": work / epoch_s / 1e9,
                         "projected_100_epochs_s": statistics.median(times) + 99 * epoch_s}
            results["workloads"].setdefault(name, {"config": run.replace(compile=False).to_dict(),
                                                   "train_rows": len(dataset.Xtrain),
                                                   "test_rows": len(dataset.Xtest), "gflop": work / 1e9,
                                                   "rows": {}})["rows"][row] = {
                "first_s": first_s, "later_s": statistics.median(times), "compile_s": first.compile_time,
                "test_acc": first.final("test_acc"), **extra}
    results["peak_gflops"] = peak
    best = max(peak.values())
    for name, workload in results["workloads"].items():
        baseline = workload["rows"]["torch/optim"]["later_s"]
        for row in workload["rows"].values():
            row["gflops"] = workload["gflop"] / row["later_s"]
            row["peak_fraction"] = row["gflops"] / best
            row["speedup_vs_torch_optim"] = baseline / row["later_s"]
            if name == "full-mnist-size":
                row["epoch_peak_fraction"] = row["epoch_gflops"] / best
    return results


def markdown(results: dict[str, Any]) -> str:
    """One table a workload: first call, later calls, compile time, rate and fraction of the peak, the ratio."""
    peak = results["peak_gflops"]
    lines = [f"float32 matrix-product peak measured in this run: torch.mm {peak['torch']:.0f} GFLOP/s, jnp.dot "
             f"{peak.get('jax', float('nan')):.0f} GFLOP/s (fractions below are of the larger)."]
    for name, workload in results["workloads"].items():
        full = name == "full-mnist-size"
        lines += ["", f"**{name}** ({workload['train_rows']}/{workload['test_rows']} rows, "
                      f"{workload['config']['epochs']} epoch(s), {workload['gflop']:.1f} GFLOP of products)", "",
                  "| implementation | first call | later calls | compiling (first) | GFLOP/s | of peak | "
                  "vs torch/optim |" + (" an epoch's own time | its GFLOP/s (of peak) | 100 epochs, projected |"
                                        if full else ""),
                  "|---|--:|--:|--:|--:|--:|--:|" + ("--:|--:|--:|" if full else "")]
        for row_id, row in workload["rows"].items():
            compiled = "-" if row["compile_s"] is None else f"{row['compile_s']:.2f} s"
            cells = [row_id, f"{row['first_s']:.3f} s", f"{row['later_s']:.3f} s", compiled,
                     f"{row['gflops']:.1f}", f"{100 * row['peak_fraction']:.0f}%",
                     f"{row['speedup_vs_torch_optim']:.1f}x"]
            if full:
                cells += [f"{row['epoch_s']:.3f} s",
                          f"{row['epoch_gflops']:.1f} ({100 * row['epoch_peak_fraction']:.0f}%)",
                          f"{row['projected_100_epochs_s']:.0f} s"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
