"""Measuring one row of ``bench``: the kit's own runner, a warm-up, the median of timed repeats.

Timing method -- chosen: **steps only, through the kit's own runner**. For each
row the stage builds its state and its step from the config (see
:func:`prepare_row`, the one place that reaches into a stage), and the framework
backend's ``epoch_runner(step, evaluate=None, ...)`` -- the very loop ``fit``
uses, without the per-epoch metrics -- runs it over the batches ``fit`` would
draw; ``backend.wait`` (``jax.block_until_ready``, or ``torch.cuda.synchronize``
on a GPU) closes each repeat.

One warm-up repeat comes first (it compiles/traces; a repeat rather than one
epoch, since ``fused-run`` compiles for the shape of a whole repeat); ``compile_s``
is the warm-up time minus one steady repeat. Then the median of ``--repeats``
timed repeats (their minimum is kept in the JSON too) gives us/step and steps/s.
``final_loss`` is the training loss after the warm-up and timed repeats: every
row runs the same steps on the same batches, so it should agree across rows to
float32 rounding.

Each row also times the runner with the stage's ``evaluate`` over the same
epochs (``runner us/step``, same warm-up and median): that is exactly what
``fit`` runs, with, after every epoch, the loss and accuracy on the full train
and test sets (computed inside the fused call for JAX).

A row that cannot run (a device its framework lacks, a failing ``torch.compile``)
records why in its ``error`` instead of times; the other rows still run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from frameworks._batches import BatchOrder
from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._params import init_params
from frameworks._registry import Implementation, get
from frameworks._stage import place
from frameworks.bench._workloads import Variant, Workload


@dataclass(frozen=True)
class Row:
    """A row's run, placed on its device: what the timing loop calls, and nothing of the stage beyond it."""

    backend: Any  # the framework's backend: epoch_runner and wait
    state: Any
    step: Callable[[Any, Any, Any], Any]
    evaluate: Callable[[Any, Any, Any], tuple[Any, Any]]
    data: tuple[Any, ...]  # Xtrain, Ytrain, Xtest, Ytest on the device
    placement: Any  # the framework's device object


@contextmanager
def prepare_row(impl: Implementation, config: TrainConfig, dataset: Dataset) -> Iterator[Row]:
    """The stage's state, step and evaluate for ``config``, with the data on its device, under its precision.

    The one function of ``bench`` that reaches into a stage: the run is placed by the kit's own
    :func:`~frameworks._stage.place` (scope, device, data, state) for as long as the ``with`` block lasts.
    """
    stage = impl.stage
    params = init_params(dataset.nx, config.nh, dataset.ny, seed=config.seed)
    spe = len(dataset.Xtrain) // config.batch_size
    with place(stage, config, params, *dataset[:4]) as run:
        step = stage.step(config, spe) if config.schedule is not None else stage.step(config)
        yield Row(stage.backend, run.state, step, stage.evaluate, run.data, run.device)


def measure(variant: Variant, workload: Workload, *, device: str, repeats: int) -> dict[str, Any]:
    """One row: steps-only timings (warm-up, median of ``repeats``), then the epoch_runner's."""
    row: dict[str, Any] = {
        "workload": workload.name,
        "implementation": variant.implementation,
        "mode": variant.mode,
        "label": variant.label,
        "framework": variant.framework,
        "batch_size": workload.config.batch_size,
        "steps_per_repeat": workload.steps,
        "flops_per_step": workload.flops_per_step,
        "error": None,
    }
    try:
        row.update(_measure(variant, workload, device, repeats))
    except Exception as err:  # a row that cannot run says why; the others still run
        row["error"] = reason(err)
    return row


def _measure(variant: Variant, workload: Workload, device: str, repeats: int) -> dict[str, Any]:
    config = workload.config.replace(device=device, fuse=variant.mode != "step")
    order = BatchOrder(len(workload.dataset.Xtrain), config.batch_size, seed=config.seed)
    with prepare_row(get(variant.implementation), config, workload.dataset) as run:
        step = _torch_compile(run.step) if variant.mode == "compile" else run.step
        try:
            state, timing = _time(_loop(run, variant.mode, step, None), run.state, order, workload, repeats)
        except Exception as err:
            if variant.mode == "compile":
                raise CompileFailed(f"torch.compile failed: {reason(err)}") from err
            raise
        timing["final_loss"] = float(run.evaluate(state, run.data[0], run.data[1])[0])
        _, runner = _time(_loop(run, variant.mode, step, run.evaluate), state, order, workload, repeats)
    return timing | {f"runner_{key}": value for key, value in runner.items()}


def _loop(run: Row, mode: str, step: Callable, evaluate: Callable | None) -> Callable[[Any, np.ndarray], Any]:
    """``loop(state, batches (epochs, nb, B)) -> state``, finished on return: the kit's own runner.

    ``evaluate=None`` times the steps alone; with the stage's ``evaluate`` it is what ``fit``
    runs (the metrics of every epoch, brought back to the host). JAX "fused" calls the runner
    once an epoch; "fused-run" once a repeat (``fit``'s default: the whole run in one call).
    """
    runner = run.backend.epoch_runner(step, evaluate, fuse=mode != "step", placement=run.placement)

    def loop(state: Any, batches: np.ndarray) -> Any:
        for part in ([batches] if mode == "fused-run" else np.split(batches, len(batches))):
            state, _ = runner(state, run.data, part)
        return run.backend.wait(state)

    return loop


def _time(loop: Callable, state: Any, order: BatchOrder, workload: Workload, repeats: int) -> tuple[Any, dict]:
    """Warm-up repeat, then ``repeats`` timed ones (the batch order drawn outside the clock)."""
    batches = order.epochs(workload.epochs)
    start = time.perf_counter()
    state = loop(state, batches)
    warmup = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        batches = order.epochs(workload.epochs)
        start = time.perf_counter()
        state = loop(state, batches)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return state, {
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "warmup_s": warmup,
        "compile_s": max(warmup - median, 0.0),
        "us_per_step": median / workload.steps * 1e6,
        "steps_per_s": workload.steps / median,
    }


def _torch_compile(step: Callable) -> Callable:
    import torch

    torch._dynamo.reset()  # a fresh cache: compile_s counts this row's compilation
    return torch.compile(step)


class CompileFailed(RuntimeError):
    """torch.compile (or the first call of its result) failed; the message says why."""


def reason(err: BaseException) -> str:
    """A failure in one short line: the error's type and the first line of its message."""
    if isinstance(err, CompileFailed):
        return str(err)[:400]
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]
