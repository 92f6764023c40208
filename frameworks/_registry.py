"""The registry: every implementation of the kit, by id, loaded only when asked for.

Tests, the CLI, the benchmarks and the docs all iterate over
:data:`IMPLEMENTATIONS` and reach an implementation through :func:`get`.

Adding a ninth implementation: write a stage module that provides the
contract below (see any ``torch_stages/stage*.py``) and add a line to
``_MODULES``.

A stage module provides

* ``backend``: its framework's backend module (devices, dtypes, precision,
  array conversion, the epoch loop): ``torch_stages/_backend.py`` or
  ``jax_stages/_backend.py``;
* ``prepare(params, config, device) -> state``: canonical parameters into the
  stage's own state (tensors, a model, a model and an optimizer...);
* ``make_step(config) -> step``, ``step(state, X, Y) -> state``: one SGD step
  on a batch (pure for JAX stages, which jit and scan it);
* ``evaluate(state, X, Y) -> (loss, accuracy)``: mean loss and accuracy;
* ``gradients(state, X, Y, *, reduction) -> (loss, grads)``: the mean loss of a
  batch and the gradients of the stage's own mechanism, keyed Wh, bh, Wy, by
  in the canonical layout;
* ``trace(state, X) -> dict``: the intermediates htilde, h, ytilde, yhat (for
  ``parity.first_divergence``);
* ``export(state) -> params``: canonical float64 parameters.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING

from frameworks._errors import unknown

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np

    from frameworks._config import TrainConfig
    from frameworks._data import Dataset
    from frameworks._params import Params
    from frameworks._training import TrainResult

_MODULES = {
    "torch/manual": "frameworks.torch_stages.stage1_manual",
    "torch/autograd": "frameworks.torch_stages.stage2_autograd",
    "torch/nn": "frameworks.torch_stages.stage3_nn",
    "torch/optim": "frameworks.torch_stages.stage4_optim",
    "jax/manual": "frameworks.jax_stages.stage1_manual",
    "jax/grad": "frameworks.jax_stages.stage2_grad",
    "jax/flax": "frameworks.jax_stages.stage3_flax",
    "jax/optax": "frameworks.jax_stages.stage4_optax",
}

#: The ids of all implementations, "<framework>/<stage>", PyTorch first, in the lab's stage order.
IMPLEMENTATIONS: tuple[str, ...] = tuple(_MODULES)
FRAMEWORKS: tuple[str, ...] = ("torch", "jax")
#: The lab's four stages, and the implementation of each in each framework.
STAGES: dict[str, dict[str, str]] = {
    "manual": {"torch": "torch/manual", "jax": "jax/manual"},
    "autodiff": {"torch": "torch/autograd", "jax": "jax/grad"},
    "modules": {"torch": "torch/nn", "jax": "jax/flax"},
    "optimizer": {"torch": "torch/optim", "jax": "jax/optax"},
}
#: Implementations with a model object, the only ones a "double_softmax" model applies to.
MODULE_STAGES: tuple[str, ...] = ("torch/nn", "torch/optim", "jax/flax", "jax/optax")


@dataclass(frozen=True)
class Implementation:
    """One implementation of the lab's MLP: its id, and the kit's contract over its stage module."""

    id: str

    @property
    def framework(self) -> str:
        return self.id.split("/")[0]

    @property
    def stage(self) -> str:
        return next(stage for stage, ids in STAGES.items() if self.id in ids.values())

    @cached_property
    def module(self) -> ModuleType:
        """The stage module (imports its framework on first use)."""
        return importlib.import_module(_MODULES[self.id])

    def devices(self) -> list[str]:
        """The devices this implementation's framework sees here: "cpu", then "gpu" or "tpu"."""
        return self.module.backend.devices()

    def gradients(
        self,
        params: Mapping[str, np.ndarray],
        X: np.ndarray,
        Y: np.ndarray,
        *,
        dtype: str = "float64",
        device: str | None = None,
        loss_reduction: str = "mean",
        precision: str = "highest",
        devices: int = 1,
    ) -> tuple[float, Params]:
        """Mean loss of the batch ``(X, Y)`` and its gradients, as canonical float64 NumPy arrays.

        ``devices=N`` splits the batch over N devices (JAX data parallelism).
        """
        from frameworks._training import gradients

        return gradients(
            self, params, X, Y, dtype=dtype, device=device, loss_reduction=loss_reduction, precision=precision,
            devices=devices,
        )

    def train(
        self, dataset: Dataset, config: TrainConfig, *, params: Mapping[str, np.ndarray] | None = None, **options
    ) -> TrainResult:
        """Train on ``dataset`` from ``params`` (default: ``init_params`` of ``config.seed``).

        ``options``: ``progress``, ``resume``, ``checkpoint``, ``checkpoint_every``
        (see ``frameworks._training.fit``).
        """
        from frameworks._training import fit

        return fit(self, dataset, config, params=params, **options)

    def __repr__(self) -> str:
        return f"Implementation({self.id!r})"


def get(implementation_id: str) -> Implementation:
    """The implementation registered under ``implementation_id`` (see :data:`IMPLEMENTATIONS`)."""
    if implementation_id not in _MODULES:
        raise unknown("implementation", implementation_id, IMPLEMENTATIONS)
    return _INSTANCES.setdefault(implementation_id, Implementation(implementation_id))


_INSTANCES: dict[str, Implementation] = {}


def native_init(framework: str, nx: int, nh: int, ny: int, *, seed: int = 0) -> Params:
    """A framework's own default init, as canonical parameters (what ``TrainConfig(init="native")`` uses).

    "torch": ``nn.Linear``'s Kaiming-uniform weights and uniform biases
    (``torch.manual_seed(seed)``); "jax": Flax ``nnx.Linear``'s LeCun-normal
    kernels and zero biases (``nnx.Rngs(seed)``).
    """
    if framework not in FRAMEWORKS:
        raise unknown("framework", framework, FRAMEWORKS)
    first = next(i for i in IMPLEMENTATIONS if i.startswith(f"{framework}/"))
    return get(first).module.backend.native_init(nx, nh, ny, seed=seed)
