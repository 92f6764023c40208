"""The runs a comparison makes: the modes, every implementation of each, and the seed study."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._errors import KitError
from frameworks._params import Params
from frameworks._registry import FRAMEWORKS, get, implementations, native_init
from frameworks._training import TrainResult

#: Every mode's curves are measured against this implementation's (or the mode's first, where it does not apply).
REFERENCE = "torch/manual"


@dataclass(frozen=True)
class Mode:
    """A way to run the lab: its name, what it changes, and which implementations it applies to."""

    name: str
    changes: dict[str, Any]
    implementations: tuple[str, ...]


def trap_modes(config: TrainConfig | None = None) -> list[Mode]:
    """The lab's traps (each explained in the report by :func:`frameworks.compare.explain`), and for a network
    with dropout, each framework's own dropout generator."""
    models = tuple(i for i in implementations() if get(i).has_model)
    modes = [
        Mode("sum", {"loss_reduction": "sum"}, implementations()),  # the cheat-sheet's summed batch gradient
        Mode("native-init", {"init": "native"}, implementations()),  # each framework's own initializer
        Mode("double-softmax", {"model": "double_softmax"}, models),  # a softmax before the loss's own
    ]
    if config is not None and config.dropout:
        modes.append(Mode("native-dropout", {"dropout_rng": "native"}, models))  # each framework's own masks
    return modes


def selected_implementations(only: str | None) -> tuple[str, ...]:
    """The ids ``--only`` names (comma-separated; duplicates kept once), the reference first; None: all eight.

    An empty list, an empty id or an unknown one is refused before anything trains.
    """
    if only is None:
        return implementations()
    names = [name.strip() for name in only.split(",")]
    if not any(names):
        raise KitError(f"--only names no implementation; give one or more of {', '.join(implementations())}.")
    if not all(names):
        raise KitError(f"--only {only!r} has an empty id between its commas; give ids like jax/manual,torch/nn.")
    chosen = {get(name).id for name in names}
    return tuple(i for i in implementations() if i in chosen or i == REFERENCE)


def check_seed_count(seeds: int) -> range:
    """The seeds of the study, 0 to ``seeds`` - 1 (0: no study); a negative count is refused."""
    if seeds < 0:
        raise KitError(f"--seeds must be 0 (no seed study) or a positive count, got {seeds}.")
    return range(seeds)


def train_all(dataset: Dataset, config: TrainConfig, implementations: tuple[str, ...], *, label: str,
              progress: bool = True) -> dict[str, TrainResult]:
    """Each implementation trained on ``dataset`` with ``config`` (one init, one batch order)."""
    results = {}
    for impl_id in implementations:
        with warnings.catch_warnings():  # a divergence is printed below and written in the report
            warnings.simplefilter("ignore", RuntimeWarning)
            results[impl_id] = get(impl_id).train(dataset, config, progress=progress)
        result = results[impl_id]
        status = f"  DIVERGED at epoch {result.diverged}" if result.diverged else ""
        print(f"  {label:<15} {impl_id:<15} test acc {result.final('test_acc'):.3f}  "
              f"({result.wall_time:.2f} s){status}", flush=True)
    return results


def train_modes(dataset: Dataset, config: TrainConfig, implementations: tuple[str, ...], modes: list[Mode], *,
                progress: bool) -> dict[str, dict[str, TrainResult]]:
    """Every mode's runs, ``{mode: {impl_id: result}}``, each mode's implementations in the registry's order.

    Every PyTorch run comes before any JAX one: once XLA has run on a small CPU its
    threads can slow PyTorch's small products in the same process (seen tenfold on
    2 cores), skewing wall times.
    """
    runs: dict[str, dict[str, TrainResult]] = {mode.name: {} for mode in modes}
    for framework in FRAMEWORKS:
        for mode in modes:
            ids = tuple(i for i in implementations if i in mode.implementations and i.startswith(f"{framework}/"))
            runs[mode.name] |= train_all(dataset, config.replace(**mode.changes), ids, label=mode.name,
                                         progress=progress)
    return {mode: {i: results[i] for i in implementations if i in results} for mode, results in runs.items()}


def seed_study(dataset: Dataset, config: TrainConfig, *, seeds: range, impl_id: str = "jax/manual") -> dict[str, Any]:
    """Final test accuracy over ``seeds``: averaged and summed gradients, and each framework's default init.

    Runs on ``impl_id`` alone (the fastest), in ``config.dtype``, each row one :func:`frameworks.sweep` over the
    seeds (on JAX one vmapped program, not a compile a run); the native inits are drawn by each framework and
    passed in as the starting weights. A seed whose run diverges counts as NaN in ``accs`` and is left out of
    mean, min and max.
    """
    from frameworks._sweep import sweep

    inits = {"PyTorch default init": "torch", "Flax default init": "jax"}
    study = {}
    for name in ("mean (lab-faithful)", "sum", *inits):
        reduction = "sum" if name == "sum" else config.loss_reduction
        draw = (partial(_native, inits[name], dataset)) if name in inits else None
        result = sweep(impl_id, dataset, {"loss_reduction": [reduction]}, seeds=list(seeds), config=config,
                       params=draw)
        study[name] = _summary([float("nan") if run.diverged else run.final("test_acc") for run in result.runs])
    return {"implementation": impl_id, "dtype": config.dtype, "dataset": dataset.name, "seeds": list(seeds),
            "rows": study}


def _native(framework: str, dataset: Dataset, config: TrainConfig) -> Params:
    return native_init(framework, dataset.nx, config.arch.hidden, dataset.ny, seed=config.seed, norm=config.norm)


def _summary(accs: list[float]) -> dict[str, Any]:
    finished = [a for a in accs if not math.isnan(a)]
    stats = {key: float(f(finished)) if finished else float("nan") for key, f in
             (("mean", np.mean), ("min", np.min), ("max", np.max))}
    return {"accs": accs, **stats, "diverged": len(accs) - len(finished)}
