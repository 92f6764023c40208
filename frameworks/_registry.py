"""The registry: every implementation of the kit, by id, loaded only when asked for.

Tests, the CLI, the benchmarks and the docs all iterate over
:func:`implementations` and reach an implementation through :func:`get`.

The eight built-in implementations are stage modules, imported on first use
(so ``import frameworks`` imports neither PyTorch nor JAX); each ends with
``STAGE = Stage(...)`` (:class:`frameworks._stage.Stage`). A user adds a ninth
with :func:`register`, and it joins the parity matrix, ``compare`` and the
tests' parametrization (``pytest -p my_module``, where ``my_module`` registers it).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from frameworks._arch import Norm
from frameworks._errors import KitError, unknown
from frameworks._params import check_draw
from frameworks._stage import Stage

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy as np

    from frameworks._checkpoint import Checkpoint
    from frameworks._config import Device, DType, Precision, Reduction, TrainConfig
    from frameworks._data import Dataset
    from frameworks._params import Params
    from frameworks._training import TrainResult

_BUILTIN = {
    "torch/manual": "frameworks.torch_stages.stage1_manual",
    "torch/autograd": "frameworks.torch_stages.stage2_autograd",
    "torch/nn": "frameworks.torch_stages.stage3_nn",
    "torch/optim": "frameworks.torch_stages.stage4_optim",
    "jax/manual": "frameworks.jax_stages.stage1_manual",
    "jax/grad": "frameworks.jax_stages.stage2_grad",
    "jax/flax": "frameworks.jax_stages.stage3_flax",
    "jax/optax": "frameworks.jax_stages.stage4_optax",
}
#: Registered implementations: a module path (imported on first use) or a Stage.
_REGISTRY: dict[str, str | Stage] = dict(_BUILTIN)

#: The ids of the eight built-in implementations, "<framework>/<stage>", PyTorch first, in the lab's stage order.
IMPLEMENTATIONS: tuple[str, ...] = tuple(_BUILTIN)
FRAMEWORKS: tuple[str, ...] = ("torch", "jax")
#: The lab's four stages, and the implementation of each in each framework.
STAGES: dict[str, dict[str, str]] = {
    "manual": {"torch": "torch/manual", "jax": "jax/manual"},
    "autodiff": {"torch": "torch/autograd", "jax": "jax/grad"},
    "modules": {"torch": "torch/nn", "jax": "jax/flax"},
    "optimizer": {"torch": "torch/optim", "jax": "jax/optax"},
}
#: Built-in implementations with a model object, the only ones a "double_softmax" model applies to.
MODULE_STAGES: tuple[str, ...] = ("torch/nn", "torch/optim", "jax/flax", "jax/optax")


def implementations() -> tuple[str, ...]:
    """Every registered id: the eight built-in ones, then the user's, in the order registered."""
    return tuple(_REGISTRY)


def register(implementation_id: str, stage: Stage | str) -> None:
    """Add an implementation: a :class:`Stage`, or the path of a module whose ``STAGE`` is one.

    ``implementation_id`` is "<framework>/<name>" (the framework's backend decides
    devices and dtypes). A built-in id cannot be replaced; registering the same
    stage twice under one id is harmless.
    """
    if not isinstance(implementation_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.+-]+",
                                                                  implementation_id):
        raise KitError(f"an implementation id is 'framework/name' (letters, digits, _ . -), got {implementation_id!r}.")
    if not isinstance(stage, (Stage, str)):
        raise KitError(f"register() takes a frameworks.Stage (or a module path), got {type(stage).__name__}.")
    if implementation_id in _BUILTIN or (implementation_id in _REGISTRY and _REGISTRY[implementation_id] is not stage):
        raise KitError(f"{implementation_id!r} is already registered; choose another id.")
    if isinstance(stage, Stage):
        _check_stage(implementation_id, stage)
    _REGISTRY[implementation_id] = stage
    _INSTANCES.pop(implementation_id, None)


def unregister(implementation_id: str) -> None:
    """Remove a user's implementation (the built-in eight stay)."""
    if implementation_id in _BUILTIN:
        raise KitError(f"{implementation_id!r} is built in and cannot be removed.")
    _REGISTRY.pop(implementation_id, None)
    _INSTANCES.pop(implementation_id, None)


def _check_stage(implementation_id: str, stage: Stage) -> None:
    """The id's framework is its backend's, and what it shares is registered, with no cycle."""
    framework = implementation_id.split("/")[0]
    if framework != stage.backend.NAME:
        raise KitError(f"{implementation_id!r} runs on the {stage.backend.NAME} backend; name it "
                       f"'{stage.backend.NAME}/...' (the framework before the slash is its backend's).")
    for part, target in stage.shares.items():
        seen = {implementation_id}
        while target not in seen:
            if target not in _REGISTRY:
                raise KitError(f"{implementation_id!r} shares its {part} with {target!r}, which is not registered.")
            seen.add(target)
            entry = _REGISTRY[target]
            shares = entry.shares if isinstance(entry, Stage) else get(target).stage.shares
            if part not in shares:
                break
            target = shares[part]
        else:
            raise KitError(f"{implementation_id!r}'s {part} shares form a cycle through {target!r}.")


@dataclass(frozen=True)
class Implementation:
    """One implementation of the lab's MLP: its id and its :class:`Stage`."""

    id: str

    @property
    def framework(self) -> str:
        return self.id.split("/")[0]

    @property
    def lesson(self) -> str | None:
        """The lab's stage this implementation teaches ("manual", "autodiff", "modules", "optimizer"), if any."""
        return next((name for name, ids in STAGES.items() if self.id in ids.values()), None)

    @cached_property
    def stage(self) -> Stage:
        """The stage contract (imports its framework on first use)."""
        entry = _REGISTRY[self.id]
        if isinstance(entry, Stage):
            return entry
        stage = getattr(importlib.import_module(entry), "STAGE", None)
        if not isinstance(stage, Stage):
            raise KitError(f"the module {entry} has no STAGE = frameworks.Stage(...).")
        if self.id not in _BUILTIN:
            _check_stage(self.id, stage)
        return stage

    @property
    def has_model(self) -> bool:
        """The stage builds a model object (the only kind the "double_softmax" trap applies to)."""
        return self.id in MODULE_STAGES if self.id in _BUILTIN else self.stage.has_model

    def devices(self) -> list[str]:
        """The devices this implementation's framework sees here: "cpu", then "gpu" or "tpu"."""
        return self.stage.backend.devices()

    def code_of(self, part: str) -> str:
        """The id of the implementation whose code runs this one's ``part`` (its own id if no other's)."""
        seen = self.id
        while part in get(seen).stage.shares:
            seen = get(seen).stage.shares[part]
        return seen

    def gradients(
        self,
        params: Mapping[str, np.ndarray],
        X: np.ndarray,
        Y: np.ndarray,
        *,
        dtype: DType = "float64",
        device: Device | None = None,
        loss_reduction: Reduction = "mean",
        precision: Precision = "highest",
        devices: int = 1,
        activation: str | tuple[str, ...] = "tanh",
        dropout: float = 0.0,
        masks: tuple[np.ndarray, ...] = (),
    ) -> tuple[float, Params]:
        """Mean loss of the batch ``(X, Y)`` and its gradients, as canonical float64 NumPy arrays.

        ``loss_reduction="sum"`` differentiates the summed loss (the course's
        cheat-sheet); ``devices=N`` splits the batch over N devices (JAX data parallelism).
        The network is the one ``params`` describe (their widths, LayerNorm's weights) with
        ``activation`` (one name, or one a hidden layer); with ``dropout``, ``masks`` holds
        the kept units, one bool (B, width) array a hidden layer.
        """
        from frameworks._gradients import gradients

        return gradients(self, params, X, Y, dtype=dtype, device=device, loss_reduction=loss_reduction,
                         precision=precision, devices=devices, activation=activation, dropout=dropout, masks=masks)

    def train(
        self,
        dataset: Dataset,
        config: TrainConfig,
        *,
        params: Mapping[str, np.ndarray] | None = None,
        progress: bool = False,
        resume: Checkpoint | str | None = None,
        checkpoint: str | None = None,
        checkpoint_every: int = 1,
    ) -> TrainResult:
        """Train on ``dataset`` from ``params`` (default: the draw ``config.init`` names).

        See :func:`frameworks._training.fit` for ``progress``, ``resume``,
        ``checkpoint`` and ``checkpoint_every``.
        """
        from frameworks._training import fit

        return fit(self, dataset, config, params=params, progress=progress, resume=resume, checkpoint=checkpoint,
                   checkpoint_every=checkpoint_every)

    def __repr__(self) -> str:
        return f"Implementation({self.id!r})"


def get(implementation_id: str) -> Implementation:
    """The implementation registered under ``implementation_id`` (see :func:`implementations`)."""
    if implementation_id not in _REGISTRY:
        raise unknown("implementation", implementation_id, implementations())
    return _INSTANCES.setdefault(implementation_id, Implementation(implementation_id))


_INSTANCES: dict[str, Implementation] = {}


def native_init(framework: str, nx: int, nh: int | Sequence[int], ny: int, *, seed: int = 0,
                norm: Norm = None) -> Params:
    """A framework's own default init, as canonical parameters (what ``TrainConfig(init="native")`` uses).

    "torch": ``nn.Linear``'s Kaiming-uniform weights and uniform biases
    (seeded by ``seed``; the caller's torch generators are left as they were);
    "jax": Flax ``nnx.Linear``'s LeCun-normal kernels and zero biases (``nnx.Rngs(seed)``).
    ``nh`` is a width or a sequence of them; ``norm="layer"`` adds LayerNorm's unit and zero weights.
    """
    if framework not in FRAMEWORKS:
        raise unknown("framework", framework, FRAMEWORKS)
    hidden = tuple(nh) if isinstance(nh, Sequence) else (nh,)
    for width in hidden or (0,):
        check_draw("native_init", nx, width, ny, seed=seed)
    first = next(i for i in IMPLEMENTATIONS if i.startswith(f"{framework}/"))
    widths = int(hidden[0]) if len(hidden) == 1 else tuple(int(w) for w in hidden)
    return get(first).stage.backend.native_init(int(nx), widths, int(ny), seed=int(seed), norm=norm)

