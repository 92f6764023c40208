"""``bench --sweep N``: N whole runs of the lab's circles network at once, against PyTorch run by run.

The grid is 10 seeds x (N / 20) learning rates x 2 inits (the lab's, He), 150 epochs of
batch 10, float32, all of one shape: on JAX ``jax/manual``'s runs-last program
(``jax_stages/sweep_manual.py``) and ``jax/grad``'s ``vmap`` of its fused run, each timed twice
in one process (the first call compiles; the second is the steady state);
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
    timed: dict[str, Any] = {}
    for impl in ("jax/manual", "jax/grad"):
        for call in ("first", "steady"):
            start = time.perf_counter()
            done = sweep(impl, dataset, grid, seeds=seeds, config=config)
            timed[f"{impl}_{call}_s"] = time.perf_counter() - start
    runs = len(done.runs)
    steady_s = timed["jax/manual_steady_s"]
    return {"runs": runs, "epochs": epochs, "groups": done.groups, "jax_first_s": timed["jax/manual_first_s"],
            "jax_steady_s": steady_s, "jax_per_run_ms": 1e3 * steady_s / runs,
            "compile_s": max(timed["jax/manual_first_s"] - steady_s, 0.0),
            "vmap_first_s": timed["jax/grad_first_s"], "vmap_steady_s": timed["jax/grad_steady_s"],
            "torch_optim_per_run_ms": 1e3 * torch_per_run, "torch_runs_timed": loop_runs,
            "torch_optim_projected_s": torch_per_run * runs,
            "speedup_vs_torch_optim_loop": torch_per_run * runs / steady_s,
            "torch_func_s": func_s, "torch_func_runs": len(func.runs)}


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]

    def row(name: str, seconds: float) -> str:
        return f"| {name} | {seconds:.2f} s | {1e3 * seconds / runs:.2f} ms |"

    return "\n".join([
        f"| {runs} runs of circles ({result['epochs']} epochs) | time | a run |",
        "|---|--:|--:|",
        row("jax/manual sweep (runs last), first call (compiles)", result["jax_first_s"]),
        row("jax/manual sweep (runs last), steady state", result["jax_steady_s"]),
        row("jax/grad sweep (vmap of the fused run), first call", result["vmap_first_s"]),
        row("jax/grad sweep (vmap of the fused run), steady state", result["vmap_steady_s"]),
        f"| torch/optim run by run (timed on {result['torch_runs_timed']}, projected) | "
        f"{result['torch_optim_projected_s']:.1f} s | {result['torch_optim_per_run_ms']:.1f} ms |",
        row("torch/nn through torch.func (vmap(grad) over the runs)", result["torch_func_s"]),
        f"| jax/manual steady state against the torch/optim loop | **{result['speedup_vs_torch_optim_loop']:.0f}x**"
        " | |",
    ])
