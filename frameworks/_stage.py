"""The stage contract: what every implementation gives the kit, and the one place a run is set up.

A stage module reads as the lab's lesson, top to bottom, and ends with one
value, ``STAGE = Stage(...)``, naming the functions the kit calls:

    load(params, config, device) -> state        canonical float64 params into the stage's own state
    step(config[, steps_per_epoch])               -> (state, X, Y[, masks]) -> state: one update on a batch
                                                  (pure for JAX: jitted and scanned); masks: the kit's dropout
                                                  masks, passed only with dropout; steps_per_epoch only with a
                                                  learning-rate schedule
    evaluate(state, X, Y) -> (loss, acc)          mean loss and accuracy (no dropout)
    gradients(state, X, Y, *, reduction[, masks]) the batch's mean loss and the gradients of the stage's own
                                                  mechanism (canonical keys: Wh, bh, Wy, by for the lab's net)
    trace(state, X) -> {htilde, h, ytilde, yhat}  the forward's intermediates (first divergence; a deeper
                                                  network's are named layers.{i}.{kind})
    export(state) -> params                       canonical float64 parameters
    save_optimizer / restore_optimizer            the optimizer's state in the canonical layout (checkpoints)

plus its framework's ``backend`` (devices, dtypes, precision, the epoch loop: :class:`Backend`).
``shares`` says honestly which parts run another implementation's code (the lab's
stage 4 only swaps the update of stage 3, so the two compute their gradients with
one code path): the parity report marks such pairs "same code" instead of
counting them as agreement. :func:`place` is the one function that sets up a run
(scope, device, data, state) for training, gradients, parity, bench and DDP.

A user's own implementation is one ``frameworks.register("mine/x", STAGE)`` away
from the parity matrix, ``compare`` and the tests' parametrization.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from frameworks._arch import Norm
from frameworks._config import TrainConfig
from frameworks._errors import KitError
from frameworks._params import Params

#: The parts of an implementation whose code another one may reuse (see :attr:`Stage.shares`).
PARTS = ("forward", "gradients", "update")


class Backend(Protocol):
    """What a framework's backend module provides (``torch_stages/_backend.py``, ``jax_stages/_backend.py``)."""

    NAME: str

    def devices(self) -> list[str]: ...

    def resolve_device(self, name: str | None, count: int = 1) -> Any: ...

    def scope(self, config: TrainConfig, *, features: int | None = None) -> contextlib.AbstractContextManager[None]:
        ...

    def asarray(self, a: np.ndarray, dtype: str, device: Any) -> Any: ...

    def shard_batch(self, x: Any, placement: Any) -> Any: ...

    def to_numpy(self, x: Any) -> np.ndarray: ...

    def native_init(self, nx: int, nh: int | tuple[int, ...], ny: int, *, seed: int, norm: Norm = None
                    ) -> Params: ...

    def epoch_runner(self, step: Callable[..., Any], evaluate: Callable[..., Any] | None, *, fuse: bool,
                     placement: Any = None, compile: bool = False) -> Callable[..., tuple[Any, Any]]: ...

    def wait(self, state: Any) -> Any: ...


@dataclass(frozen=True, eq=False)
class Stage:
    """One implementation of the lab's MLP, as the kit runs it (see the module docstring).

    ``shares`` maps a part ("forward", "gradients", "update") to the id of the
    implementation whose code this one runs for it; a part not named is this
    stage's own. ``has_model``: the stage builds a model object (the only kind a
    ``TrainConfig(model="double_softmax")`` applies to). ``save_optimizer(state)`` and
    ``restore_optimizer(state, saved)``: the optimizer's state (another than the lab's SGD) in the
    canonical layout, ``{"step": updates done, "buffers": {PyTorch's buffer name: canonical params}}``,
    for checkpoints (None: this stage's runs checkpoint the lab's SGD only). ``runner(config, fallback)``:
    the stage's own epoch runner for the configs it supports (``fallback``, the backend's runner of
    its step, otherwise), with the backend runner's contract. Stages compare (and hash) by identity.
    """

    backend: Backend
    load: Callable[[Params, TrainConfig, Any], Any]
    step: Callable[..., Callable[..., Any]]
    evaluate: Callable[[Any, Any, Any], tuple[Any, Any]]
    gradients: Callable[..., tuple[Any, Mapping[str, Any]]]
    trace: Callable[[Any, Any], Mapping[str, Any]]
    export: Callable[[Any], Params]
    shares: Mapping[str, str] = field(default_factory=dict)
    has_model: bool = False
    save_optimizer: Callable[[Any], dict | None] | None = None
    restore_optimizer: Callable[[Any, dict], Any] | None = None
    runner: Callable[[TrainConfig, Callable[..., Any]], Callable[..., Any]] | None = None

    def __post_init__(self) -> None:
        for name in ("load", "step", "evaluate", "gradients", "trace", "export"):
            if not callable(getattr(self, name)):
                raise KitError(f"Stage.{name} must be callable, got {getattr(self, name)!r}.")
        for name in ("devices", "resolve_device", "scope", "asarray", "shard_batch", "to_numpy", "native_init",
                     "epoch_runner", "wait"):
            if not callable(getattr(self.backend, name, None)):
                raise KitError(f"Stage.backend has no {name}(); use the backend module of a framework "
                               "(frameworks.torch_stages._backend or frameworks.jax_stages._backend).")
        if not isinstance(getattr(self.backend, "NAME", None), str):
            raise KitError("Stage.backend has no NAME; use the backend module of a framework.")
        if set(self.shares) - set(PARTS):
            raise KitError(f"Stage.shares names parts {sorted(set(self.shares) - set(PARTS))}; the parts are {PARTS}.")


@dataclass
class Placed:
    """A run set up by :func:`place`: the device (or sharding), the stage's state and the data on it."""

    stage: Stage
    config: TrainConfig
    device: Any
    state: Any
    data: tuple[Any, ...]


@contextlib.contextmanager
def place(stage: Stage, config: TrainConfig, params: Params, *arrays: np.ndarray, batch: bool = False,
          device: Any = None) -> Iterator[Placed]:
    """Enter the config's scope (precision, x64, threads), resolve its device, move ``arrays`` there
    and load ``params`` into the stage's state. ``batch=True`` splits the arrays by rows over a
    data-parallel placement; ``device`` overrides the resolved one (a DDP process's own GPU).
    Everything the scope set is restored on exit."""
    backend = stage.backend
    with backend.scope(config, features=arrays[0].shape[1] if arrays else None):
        where = device if device is not None else backend.resolve_device(config.device, config.devices)
        data = tuple(backend.asarray(a, config.dtype, where) for a in arrays)
        if batch:
            data = tuple(backend.shard_batch(a, where) for a in data)
        yield Placed(stage, config, where, stage.load(params, config, where), data)
