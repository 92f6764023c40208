"""Sweeps: many whole training runs at once, each exactly the ``train`` of its config.

``sweep(implementation, dataset, grid, seeds=...)`` trains every combination of the
grid's values (a dict from config field to values) for every seed. On JAX, the runs
whose programs agree (they differ only in seed, eta, init or the nonzero numbers of the
optimizer, schedule and clipping: the initial weights, the batch order, the learning rate
and the hyperparameters are data, ``_hyper.py``) form one group, trained as one jitted
``jax.vmap`` of the whole fused run; runs of other shapes (nh, batch size, another
optimizer, a zero momentum against a nonzero one...) are other groups. Other
implementations train run by run. Each run keeps its own init and batch order from its
seed, exactly those of a single ``train`` with that config; a run whose loss becomes NaN
or infinite is marked with its epoch and keeps its last finite epoch, without touching
the others.

The lab's question 1 is what the validation set is for: :meth:`SweepResult.best` chooses
the setting on the validation accuracy (the dataset needs ``validation=``), and reports
the chosen setting's test accuracy apart.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frameworks._batches import BatchOrder, dropout_masks
from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._errors import KitError
from frameworks._hyper import split
from frameworks._params import Params
from frameworks._registry import get
from frameworks._training import initial_params, metrics_of

logger = logging.getLogger(__name__)

#: The fields whose values are data to a JAX program: runs that differ only in these (and in the nonzero numbers
#: of their optimizer, schedule and clipping, ``_hyper.split``) share one vmapped group.
DATA_FIELDS = ("seed", "eta", "init")
#: Above this many runs a sweep asks for ``confirm=True`` (the CLI's ``--yes``).
LARGE = 100_000


@dataclass
class SweepRun:
    """One run of a sweep: its config, final canonical parameters, per-epoch history, and the epoch at which it
    diverged (None when it did not; then ``params`` and ``history`` are its last finite epoch's)."""

    config: TrainConfig
    params: Params
    history: dict[str, list[float]]
    diverged: int | None = None

    def final(self, metric: str) -> float:
        """``metric`` after the run's last finite epoch (NaN when none finished)."""
        values = self.history[metric]
        return values[-1] if values else float("nan")


@dataclass
class SweepResult:
    """Every run, in the grid's order (settings, then seeds), and how long the groups took."""

    implementation: str
    axes: tuple[str, ...]
    runs: list[SweepRun] = field(default_factory=list)
    wall_time: float = 0.0
    groups: int = 0

    def setting(self, run: SweepRun) -> tuple[Any, ...]:
        """The run's values of the swept axes, in the grid's order."""
        return tuple(getattr(run.config, axis) for axis in self.axes)

    def by_setting(self) -> dict[tuple[Any, ...], list[SweepRun]]:
        """The runs grouped by setting (their seeds together), in the grid's order."""
        out: dict[tuple[Any, ...], list[SweepRun]] = {}
        for run in self.runs:
            out.setdefault(self.setting(run), []).append(run)
        return out

    def score(self, runs: list[SweepRun], metric: str = "val_acc") -> float:
        """The mean of ``metric`` over ``runs``, a diverged run counting as the worst value (accuracy 0, loss
        infinite): the one rule of the table, the heat map and :meth:`best`."""
        worst = 0.0 if metric.endswith("_acc") else float("inf")
        return float(np.mean([worst if r.diverged else r.final(metric) for r in runs]))

    def best(self, metric: str = "val_acc") -> dict[str, Any]:
        """The setting of the best mean ``metric`` over its seeds ("val_acc", highest, or "val_loss", lowest;
        :meth:`score`'s rule), chosen on validation: the dataset must have a validation split. Returns the
        setting, its score, and its test accuracy (mean over its runs that did not diverge), reported apart."""
        if metric not in ("val_acc", "val_loss"):
            raise KitError(f"best() chooses on validation: metric 'val_acc' or 'val_loss', not {metric!r}.")
        if not self.runs or metric not in self.runs[0].history:
            raise KitError("the sweep chooses on a validation split: load the dataset with validation=0.2 (CLI "
                           "--validation 0.2); the test set is never used to choose.")
        scores = {s: self.score(runs, metric) for s, runs in self.by_setting().items()}
        pick = max if metric == "val_acc" else min
        chosen = pick(scores, key=lambda s: scores[s])
        finished = [r.final("test_acc") for r in self.by_setting()[chosen] if not r.diverged]
        return {"setting": dict(zip(self.axes, chosen)), metric: scores[chosen],
                "test_acc": float(np.mean(finished)) if finished else float("nan"),
                "seeds": len(self.by_setting()[chosen])}

    def rows(self) -> list[dict[str, Any]]:
        """One row a run: the swept fields and the seed, final and best metrics, the epoch of divergence."""
        table = []
        for run in self.runs:
            row: dict[str, Any] = {axis: getattr(run.config, axis) for axis in self.axes}
            row["seed"] = run.config.seed
            for metric, values in run.history.items():
                row[f"final_{metric}"] = values[-1] if values else float("nan")
                if metric.endswith("_acc"):
                    row[f"best_{metric}"] = max(values) if values else float("nan")
            row["diverged_epoch"] = run.diverged
            table.append(row)
        return table


def sweep(implementation: str, dataset: Dataset, grid: Mapping[str, Sequence[Any]], *, seeds: Sequence[int] = (0,),
          config: TrainConfig | None = None, confirm: bool = False, progress: bool = False,
          params: Callable[[TrainConfig], Params] | None = None, shard: bool = True) -> SweepResult:
    """Train every combination of ``grid`` (config field -> values) for every seed; see the module's docstring.

    ``params``: each run's starting parameters from its config (default: its ``init``'s draw), e.g. another
    framework's native init. ``shard``: on JAX, split the runs axis over every device of the run's kind that JAX
    sees (a ``jax.sharding.Mesh``; a multi-GPU machine splits the grid with no other change)."""
    impl = get(implementation)
    configs, axes = expand(grid, seeds, config or TrainConfig(), confirm=confirm)
    result = SweepResult(impl.id, axes)
    groups: dict[TrainConfig, list[int]] = {}
    for i, c in enumerate(configs):
        key = c.replace(seed=0, eta=1.0, init="lab") if _batched(impl, c) else c
        if impl.framework == "jax":
            key = split(key)[0]  # the hyperparameters' numbers are data too
        groups.setdefault(key, []).append(i)
    runs: list[SweepRun | None] = [None] * len(configs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(groups), desc=f"sweep {impl.id}", unit="group", leave=False)
    start = time.perf_counter()
    for number, members in enumerate(groups.values(), 1):
        group = [configs[i] for i in members]
        began = time.perf_counter()
        if impl.framework == "jax":
            done = _vmapped(impl, dataset, group, params, shard)
        elif _batched(impl, group[0]):
            done = _torch_vmapped(dataset, group, params)
        else:
            done = [_alone(impl, dataset, c, params) for c in group]
        for i, run in zip(members, done):
            runs[i] = run
        logger.info("sweep %s: group %d of %d, %d runs (%s), %.2f s", impl.id, number, len(groups), len(group),
                    ", ".join(f"{axis}={getattr(group[0], axis)}" for axis in axes if axis not in DATA_FIELDS)
                    or "seeds, etas, inits", time.perf_counter() - began)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    result.wall_time, result.groups = time.perf_counter() - start, len(groups)
    result.runs = [r for r in runs if r is not None]
    return result


def expand(grid: Mapping[str, Sequence[Any]], seeds: Sequence[int], config: TrainConfig, *,
           confirm: bool = False) -> tuple[list[TrainConfig], tuple[str, ...]]:
    """The configs of every (setting, seed), each validated; a clear error for a bad grid."""
    if not isinstance(grid, Mapping):
        raise KitError(f"grid must be a dict from config field to a list of values, got {type(grid).__name__}.")
    fields = set(config.to_dict())
    for name, values in grid.items():
        if name not in fields or name == "seed":
            raise KitError(f"grid axis {name!r} is not a TrainConfig field (seeds are given apart).")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise KitError(f"grid axis {name!r} needs a non-empty list of values, got {values!r}.")
    if "nh" in grid and (config.hidden or "hidden" in grid):
        raise KitError("a sweep over nh needs the one-hidden-layer shorthand: with hidden set, nh is not used "
                       "(sweep hidden instead).")
    if config.devices != 1 or "devices" in grid:
        raise KitError("a sweep splits its runs over the devices itself; leave devices at 1.")
    seeds = list(seeds)
    if not seeds:
        raise KitError("a sweep needs at least one seed.")
    count = math.prod(len(v) for v in grid.values()) * len(seeds)
    if count > LARGE and not confirm:
        raise KitError(f"the grid has {count:,} runs, over {LARGE:,}: confirm it (confirm=True, CLI --yes).")
    configs = []
    for values in itertools.product(*grid.values()):
        setting = config.replace(**dict(zip(grid, values)))  # validated: a bad value is one clear line
        configs += [setting.replace(seed=s) for s in seeds]
    return configs, tuple(grid)


def _batched(impl: Any, config: TrainConfig) -> bool:
    """Whether ``impl`` trains runs of ``config``'s shape together: every JAX stage; torch/nn through
    ``torch.func`` for the lab's plain SGD without dropout."""
    if impl.framework == "jax":
        return True
    if impl.id != "torch/nn":  # torch/optim's own code is torch.optim: its runs go one by one
        return False
    from frameworks.torch_stages.sweep import supports

    return supports(config)


def _torch_vmapped(dataset: Dataset, configs: list[TrainConfig],
                   params: Callable[[TrainConfig], Params] | None = None) -> list[SweepRun]:
    from frameworks.torch_stages.sweep import vmapped

    stage = get("torch/nn").stage
    batches = _batches(len(dataset.Xtrain), configs)
    starts = [initial_params(stage, c, dataset.nx, dataset.ny) if params is None else params(c) for c in configs]
    return _runs(dataset, configs, *vmapped(dataset, configs, starts, batches))


def _alone(impl: Any, dataset: Dataset, config: TrainConfig,
           params: Callable[[TrainConfig], Params] | None = None) -> SweepRun:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a divergence is recorded in the run
        result = impl.train(dataset, config, params=None if params is None else params(config))
    return SweepRun(config, result.params, result.history, result.diverged)


def _vmapped(impl: Any, dataset: Dataset, configs: list[TrainConfig],
             params: Callable[[TrainConfig], Params] | None = None, shard: bool = True) -> list[SweepRun]:
    """One JAX program for runs that differ only in seed, eta, init and hyperparameters (``jax_stages/sweep.py``)."""
    from frameworks.jax_stages import sweep_manual
    from frameworks.jax_stages.sweep import vmapped

    stage, base = impl.stage, configs[0]
    if base.dropout and base.dropout_rng == "native":
        return [_alone(impl, dataset, c, params) for c in configs]
    batches = _batches(len(dataset.Xtrain), configs)
    spe = batches.shape[2]
    masks = tuple(np.stack(m) for m in zip(*(dropout_masks(c.seed, range(c.epochs), spe, c.batch_size,
                                                           c.arch.hidden, c.dropout) for c in configs))) \
        if base.dropout else ()
    starts = [initial_params(stage, c, dataset.nx, dataset.ny) if params is None else params(c) for c in configs]
    runs_last = impl.id == "jax/manual" and sweep_manual.supports(base, dataset.nx, dataset.ny)
    finals, metrics, diverged = vmapped(stage, dataset, configs, starts, batches, masks, shard=shard,
                                        runs_last=runs_last)
    return _runs(dataset, configs, finals, metrics, diverged)


def _batches(n: int, configs: list[TrainConfig]) -> np.ndarray:
    """Every run's batch order (runs, epochs, batches, batch_size), int32: each seed's drawn once, as a single
    ``train`` draws it (runs of one seed share their batches)."""
    orders: dict[int, np.ndarray] = {}
    for c in configs:
        if c.seed not in orders:
            orders[c.seed] = BatchOrder(n, c.batch_size, seed=c.seed).epochs(c.epochs).astype(np.int32)
    return np.stack([orders[c.seed] for c in configs])


def _runs(dataset: Dataset, configs: list[TrainConfig], finals: list[Params], metrics: np.ndarray,
          diverged: np.ndarray) -> list[SweepRun]:
    """The sweep's runs from a batched program's outputs: metrics (runs, epochs, metrics), each run's history
    up to its last finite epoch."""
    names = metrics_of(dataset)
    runs = []
    for i, c in enumerate(configs):
        done = int(diverged[i]) - 1 if diverged[i] else c.epochs
        history = {name: metrics[i, :done, k].tolist() for k, name in enumerate(names)}
        runs.append(SweepRun(c, finals[i], history, int(diverged[i]) or None))
    return runs
