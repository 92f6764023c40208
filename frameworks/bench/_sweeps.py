"""``bench --sweep N``: N whole runs of the lab's circles network at once, against PyTorch run by run.

The grid is 10 seeds x (N / 20) learning rates x 2 inits (the lab's, He), 150 epochs of
batch 10, float32, all of one shape: on JAX one vmapped program (``frameworks.sweep``),
timed twice in one process (the first call compiles; the second is the steady state);
``torch/nn`` trains them all at once through ``torch.func`` (``vmap(grad(...))``); ``torch/optim``
trains the first ``loop_runs`` of the same configs one after the other and its time a run is
extrapolated to N (said in the report).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from frameworks._config import TrainConfig
from frameworks._data import load_dataset
from frameworks._errors import KitError
from frameworks._sweep import expand, sweep


def grid_of(runs: int) -> dict[str, list[Any]]:
    if runs < 20 or runs % 20:
        raise KitError(f"--sweep takes a multiple of 20 runs (10 seeds x 2 inits x etas), got {runs}.")
    return {"eta": [float(x) for x in np.round(np.geomspace(0.003, 1.0, runs // 20), 6)], "init": ["lab", "he"]}


def time_sweeps(runs: int, *, epochs: int = 150, loop_runs: int = 10, torch_threads: int = 1) -> dict[str, Any]:
    dataset = load_dataset("circles", validation=0.2)
    grid, seeds = grid_of(runs), list(range(10))
    config = TrainConfig(epochs=epochs, torch_threads=torch_threads)
    from frameworks._registry import get

    configs, _ = expand(grid, seeds, config)
    get("torch/optim").train(dataset, configs[0].replace(epochs=1))  # warm-up: PyTorch's first call, untimed
    start = time.perf_counter()
    for c in configs[:loop_runs]:  # PyTorch first: XLA's threads would slow its small products afterwards
        get("torch/optim").train(dataset, c)
    torch_per_run = (time.perf_counter() - start) / loop_runs
    start = time.perf_counter()
    func = sweep("torch/nn", dataset, grid, seeds=seeds, config=config)  # torch.func: vmap(grad) over the runs
    func_s = time.perf_counter() - start
    start = time.perf_counter()
    first = sweep("jax/grad", dataset, grid, seeds=seeds, config=config)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    steady = sweep("jax/grad", dataset, grid, seeds=seeds, config=config)
    steady_s = time.perf_counter() - start
    return {"runs": len(steady.runs), "epochs": epochs, "groups": steady.groups, "jax_first_s": first_s,
            "jax_steady_s": steady_s, "jax_per_run_ms": 1e3 * steady_s / len(steady.runs),
            "compile_s": max(first_s - steady_s, 0.0), "torch_optim_per_run_ms": 1e3 * torch_per_run,
            "torch_runs_timed": loop_runs, "torch_optim_projected_s": torch_per_run * len(steady.runs),
            "speedup_vs_torch_optim_loop": torch_per_run * len(steady.runs) / steady_s,
            "torch_func_s": func_s, "torch_func_runs": len(func.runs),
            "first_call_runs": len(first.runs)}


def markdown(result: dict[str, Any]) -> str:
    return "\n".join([
        f"| {result['runs']} runs of circles ({result['epochs']} epochs) | time | a run |",
        "|---|--:|--:|",
        f"| jax/grad sweep, first call (compiles) | {result['jax_first_s']:.2f} s | "
        f"{1e3 * result['jax_first_s'] / result['runs']:.2f} ms |",
        f"| jax/grad sweep, steady state | {result['jax_steady_s']:.2f} s | {result['jax_per_run_ms']:.2f} ms |",
        f"| torch/optim run by run (timed on {result['torch_runs_timed']}, projected) | "
        f"{result['torch_optim_projected_s']:.1f} s | {result['torch_optim_per_run_ms']:.1f} ms |",
        f"| torch/nn through torch.func (vmap(grad) over the runs) | {result['torch_func_s']:.2f} s | "
        f"{1e3 * result['torch_func_s'] / result['torch_func_runs']:.2f} ms |",
        f"| jax/grad steady state against the torch/optim loop | **{result['speedup_vs_torch_optim_loop']:.0f}x** | |",
    ])
