"""The training loop every implementation shares (``_gradients.py``: one batch's gradients).

Framework-neutral: it draws the batch order, moves the data once, runs the
stage's epochs through its backend, records the history, stops on divergence,
and returns canonical parameters. The stage module supplies the mechanics.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frameworks._batches import BatchOrder, dropout_masks
from frameworks._checkpoint import Checkpoint, fingerprint, load_checkpoint, save_checkpoint
from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._errors import KitError
from frameworks._gradients import check_architecture, check_batch
from frameworks._params import Params, check_memory, init_params
from frameworks._registry import MODULE_STAGES
from frameworks._stage import Stage, place
from frameworks.optim import SGD, OneCycleLR

if TYPE_CHECKING:
    from frameworks._registry import Implementation

logger = logging.getLogger(__name__)

METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
#: With a validation split (``load_dataset(..., validation=...)``), the histories carry these too.
VAL_METRICS = ("val_loss", "val_acc")


def metrics_of(dataset: Dataset) -> tuple[str, ...]:
    """The history's metrics for ``dataset``: train and test, and validation when it has a split."""
    return METRICS if dataset.Xval is None else (*METRICS, *VAL_METRICS)


@dataclass
class TrainResult:
    """What a run leaves: canonical parameters, the per-epoch history, and how it went.

    ``history[m][k]`` is metric ``m`` (train_loss, train_acc, test_loss,
    test_acc, and val_loss, val_acc on a dataset with a validation split;
    accuracy a fraction) after epoch ``k + 1``. ``diverged`` holds the
    epoch whose loss became NaN or infinite; the run stopped there and ``params``
    and ``history`` are those of the last finite epoch. ``wall_time`` is the whole
    call's seconds, ``compile_time`` those it spent compiling (JAX's fused program,
    once a shape: 0.0 on a later call of the same shapes; torch.compile's first
    calls; None where not measured, ``fuse=False``), ``run_time`` the rest.
    """

    implementation: str
    config: TrainConfig
    params: Params
    history: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    wall_time: float = 0.0
    diverged: int | None = None
    compile_time: float | None = 0.0

    @property
    def run_time(self) -> float | None:
        """``wall_time`` less ``compile_time``: the run itself (None when the compilation was not measured)."""
        return None if self.compile_time is None else self.wall_time - self.compile_time

    @property
    def epochs_done(self) -> int:
        return len(self.history["train_loss"])

    def final(self, metric: str) -> float:
        """``metric`` after the last (finite) epoch; NaN when no epoch finished."""
        values = self.history[metric]
        return values[-1] if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "config": self.config.to_dict(),
            "history": self.history,
            "wall_time": self.wall_time,
            "compile_time": self.compile_time,
            "diverged": self.diverged,
            "params": {name: value.tolist() for name, value in self.params.items()},
        }


def runner(stage: Stage, config: TrainConfig, placement: Any, *, metrics: bool = True,
           steps_per_epoch: int = 1) -> Callable[..., Any]:
    """The epoch runner of ``stage`` under ``config`` on ``placement`` (``backend.epoch_runner``), built,
    and for JAX compiled, once: a later run with the same shapes and settings reuses the program.
    ``seed``, ``epochs`` and ``init`` do not change the program, so they are not part of the key.
    ``steps_per_epoch`` reaches the stage only with a schedule (which counts epochs in updates)."""
    spe = steps_per_epoch if config.schedule is not None else 1
    return _runner(stage, config.replace(seed=0, epochs=1, init="lab", torch_threads=1), placement, metrics, spe)


@functools.lru_cache(maxsize=64)
def _runner(stage: Stage, config: TrainConfig, placement: Any, metrics: bool, spe: int) -> Callable[..., Any]:
    step = stage.step(config, spe) if config.schedule is not None else stage.step(config)
    run = stage.backend.epoch_runner(step, stage.evaluate if metrics else None, fuse=config.fuse,
                                     placement=placement, compile=config.compile)
    return run if stage.runner is None or not metrics else stage.runner(config, run)


def fit(
    impl: Implementation,
    dataset: Dataset,
    config: TrainConfig,
    *,
    params: Mapping[str, Any] | None = None,
    progress: bool = False,
    resume: Checkpoint | str | Path | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1,
) -> TrainResult:
    """Train ``impl`` on ``dataset`` with ``config``; see :meth:`Implementation.train`.

    Args:
      params: starting canonical parameters (default: ``config.init``'s draw).
      progress: show a progress bar.
      resume: a checkpoint (or its path) to continue from: its parameters,
        history and batch order; ``config`` may differ from the checkpoint's
        only in ``epochs`` (the total to reach), ``device``, ``devices``, ``fuse``. Any
        implementation resumes any other's checkpoint.
      checkpoint: a path to save the run to, atomically, every
        ``checkpoint_every`` epochs and at the end.
    """
    if not isinstance(dataset, Dataset):
        raise KitError(f"dataset must be a frameworks.Dataset (from load_dataset), got {type(dataset).__name__}.")
    if not isinstance(config, TrainConfig):
        raise KitError(f"config must be a frameworks.TrainConfig, got {type(config).__name__}.")
    stage = impl.stage
    if config.model != "lab" and not stage.has_model:
        raise KitError(f"model={config.model!r} needs a model object; {impl.id} has none. Use one of {MODULE_STAGES}.")
    if config.compile and (impl.framework != "torch" or not stage.has_model):
        raise KitError(f"compile=True is PyTorch's opt-in torch.compile of the model (torch/nn, torch/optim); "
                       f"{impl.id} {'always compiles (jax.jit)' if impl.framework == 'jax' else 'has no model'}.")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
            or checkpoint_every <= 0:
        raise KitError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}.")
    checkpoint_every = int(checkpoint_every)
    data_id = fingerprint(dataset) if checkpoint is not None or resume is not None else ""
    lab_sgd = config.optimizer == SGD() and config.schedule is None and config.clip is None
    if (checkpoint is not None or resume is not None) and not lab_sgd and \
            (stage.save_optimizer is None or stage.restore_optimizer is None):
        raise KitError(f"{impl.id} cannot save or restore an optimizer's state (its Stage has no save_optimizer "
                       "and restore_optimizer): its checkpoints resume runs of the lab's plain SGD only.")
    if resume is not None:
        if params is not None:
            raise KitError("give either params or resume, not both.")
        resume = resume if isinstance(resume, Checkpoint) else load_checkpoint(resume)
        _check_resumable(resume, config)
        if resume.dataset and resume.dataset != data_id:
            raise KitError(f"the checkpoint was made on the data {resume.dataset!r}, not on {data_id!r}; "
                           "resume it on the same dataset (--dataset).")
        params = resume.params
    elif params is None:
        check_memory(dataset.nx, config.arch.hidden, dataset.ny, rows=sum(len(a) for a in dataset.arrays[::2]))
        params = initial_params(stage, config, dataset.nx, dataset.ny)
    params, _, _ = check_batch(params, dataset.Xtrain[:1], dataset.Ytrain[:1])
    check_architecture(params, config)
    native_dropout = bool(config.dropout) and config.dropout_rng == "native"
    if native_dropout and (checkpoint is not None or resume is not None):
        raise KitError("dropout_rng='native' draws from each framework's generator, whose state a checkpoint does "
                       "not hold: such a run cannot resume where it stopped. Use dropout_rng='kit'.")
    if native_dropout and not stage.has_model:
        raise KitError(f"dropout_rng='native' draws the masks in the model's Dropout layers; {impl.id} has none. "
                       f"Use one of {MODULE_STAGES}, or dropout_rng='kit'.")
    order = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed)
    steps = config.epochs * order.batches_per_epoch
    if isinstance(config.schedule, OneCycleLR) and steps > config.schedule.total_steps:
        raise KitError(f"OneCycleLR(total_steps={config.schedule.total_steps}) is shorter than the run: "
                       f"{config.epochs} epochs of {order.batches_per_epoch} batches are "
                       f"{config.epochs * order.batches_per_epoch} steps (PyTorch refuses to step past it).")

    def masks_of(epochs: range) -> tuple[np.ndarray, ...]:
        if not config.dropout or native_dropout:
            return ()
        return dropout_masks(config.seed, epochs, order.batches_per_epoch, config.batch_size, config.arch.hidden,
                             config.dropout)

    names = metrics_of(dataset)
    result = TrainResult(impl.id, config, params, history={m: [] for m in names})
    first_epoch = 0
    if resume is not None:
        order.state = resume.batch_order_state
        if set(resume.history) != set(names):
            raise KitError(f"the checkpoint's history has {sorted(resume.history)}, this dataset gives {list(names)}: "
                           "resume on the same split (validation or not).")
        result.history = {m: list(resume.history[m]) for m in names}
        first_epoch = resume.epoch

    def save(state: Any) -> None:
        if checkpoint is not None:
            optimizer = None if lab_sgd else stage.save_optimizer(state)  # type: ignore[misc]
            if optimizer is not None:
                optimizer = {**optimizer, "steps_per_epoch": order.batches_per_epoch}
            save_checkpoint(checkpoint, Checkpoint(impl.id, config, result.params, result.history,
                                                   result.epochs_done, order.state, data_id, optimizer))

    start = time.perf_counter()
    with place(stage, config, params, *dataset.arrays) as placed:
        device, data, state = placed.device, placed.data, placed.state
        if resume is not None and not lab_sgd:
            if resume.optimizer is None:
                raise KitError("the checkpoint holds no optimizer state, yet the config names another optimizer, "
                               "schedule or clipping than the lab's SGD.")
            state = stage.restore_optimizer(state, resume.optimizer)  # type: ignore[misc]
        run = runner(stage, config, device, steps_per_epoch=order.batches_per_epoch)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.epochs, initial=first_epoch, desc=impl.id, unit="epoch", leave=False)
        mask_bytes = order.batches_per_epoch * config.batch_size * sum(config.arch.hidden) if config.dropout else 0
        for chunk in _chunks(first_epoch, config.epochs, progress=progress,
                             checkpoint_every=checkpoint_every if checkpoint is not None else None,
                             most=max(1, MASK_BYTES // mask_bytes) if mask_bytes else None):
            batches = order.epochs(chunk)
            masks = masks_of(range(result.epochs_done, result.epochs_done + chunk))
            chunk_start = copy.deepcopy(state)  # the optimizer's state too: a divergence is replayed from here
            state, metrics = run(state, data, batches, masks)
            if result.compile_time is not None:
                compiled = run.compiled_in  # type: ignore[attr-defined]  # the runner's seconds compiling
                result.compile_time = None if compiled is None else result.compile_time + compiled
            finite = [all(math.isfinite(m) for m in epoch) for epoch in metrics]
            done = finite.index(False) if not all(finite) else chunk
            for epoch in metrics[:done]:
                for name, value in zip(names, epoch):
                    result.history[name].append(value)
            if done < chunk:  # diverged: recompute the last finite state from the chunk's start
                result.diverged = result.epochs_done + 1
                logger.info("%s: the loss is not finite at epoch %d; replaying to epoch %d", impl.id,
                            result.diverged, result.diverged - 1)
                if done:
                    replayed = run(chunk_start, data, batches[:done], tuple(m[:done] for m in masks))[0]
                    result.params = stage.export(replayed)
                warnings.warn(
                    f"{impl.id}: the loss became NaN or infinite at epoch {result.diverged}; training stopped "
                    f"there. The result keeps the parameters and history of epoch {result.diverged - 1} "
                    "(try a smaller eta).",
                    RuntimeWarning,
                    stacklevel=3,
                )
                break
            result.params = stage.export(state)
            save(state)
            logger.debug("%s: epoch %d of %d, train loss %.6f", impl.id, result.epochs_done, config.epochs,
                         result.history["train_loss"][-1])
            if bar is not None:
                bar.update(chunk)
                bar.set_postfix(loss=f"{metrics[-1][0]:.4f}", test_acc=f"{metrics[-1][3]:.3f}")
        if bar is not None:
            bar.close()
    result.wall_time = time.perf_counter() - start
    compiled = "" if not result.compile_time else f" ({result.compile_time:.2f} s compiling)"
    logger.info("%s on %s: %d epochs in %.3f s%s, test acc %.4f", impl.id, dataset.name, result.epochs_done,
                result.wall_time, compiled, result.final("test_acc"))
    return result


def initial_params(stage: Stage, config: TrainConfig, nx: int, ny: int) -> Params:
    """The draw ``config.init`` names: a NumPy scheme of :data:`frameworks._params.SCHEMES`, or, for
    "native", the stage's framework's own default initializer."""
    arch = config.arch
    if config.init == "native":
        return stage.backend.native_init(nx, arch.hidden, ny, seed=config.seed, norm=arch.norm)
    return init_params(nx, arch.hidden, ny, seed=config.seed, scheme=config.init, norm=arch.norm)


#: The most bytes of dropout masks one call of the runner takes (a longer run is cut into chunks).
MASK_BYTES = 2**27


def _chunks(first: int, last: int, *, progress: bool, checkpoint_every: int | None, most: int | None = None
            ) -> list[int]:
    """How many epochs each call of the runner takes: all at once unless a progress bar or
    checkpoints need the run back on the host sooner (the JAX runner fuses a chunk into one call),
    or the dropout masks of the whole run would take more than ``most`` epochs' worth of memory."""
    size = last - first
    if checkpoint_every is not None:
        size = checkpoint_every
    elif progress:
        size = max(1, -(-(last - first) // 50))
    if most is not None and checkpoint_every is None:
        size = min(size, most)
    size = max(size, 1)
    chunks, epoch = [], first
    while epoch < last:
        take = min(size - epoch % size if checkpoint_every else size, last - epoch)
        chunks.append(take)
        epoch += take
    return chunks


def _check_resumable(resume: Checkpoint, config: TrainConfig) -> None:
    """A run resumes only under the config it was started with, up to its length and its placement."""
    free = {"epochs": 1, "device": None, "devices": 1, "fuse": True, "torch_threads": 1,
            "compile": False}  # how far, where, how
    if resume.config.replace(**free) != config.replace(**free):
        diff = {k: (v, getattr(config, k)) for k, v in resume.config.to_dict().items()
                if k not in free and getattr(config, k) != v}
        raise KitError(f"the checkpoint was made with another config; differences (checkpoint, now): {diff}.")
    if resume.epoch > config.epochs:
        raise KitError(f"the checkpoint is at epoch {resume.epoch}, past config.epochs={config.epochs}.")
