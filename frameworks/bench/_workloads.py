"""What ``bench`` times: the workloads, and the variants of each implementation that make its rows.

Rows: every implementation of the registry (:func:`frameworks.implementations`),
PyTorch ones eager, JAX ones three ways -- ``fused-run`` (config.fuse=True and
all the epochs of a repeat in one call of the runner: one jitted scan over
epochs of a scan over batches, what ``fit`` does by default), ``fused`` (one
call an epoch) and ``step`` (fuse=False: one jitted step a batch, called from
Python) -- plus ``torch/optim + torch.compile`` (the torch/optim training step
through ``torch.compile``; id ``torch/optim+compile`` for ``--only``; if
compiling fails the row records why instead of a time).

Workloads (float32, the lab's SGD, init and batch order from seed 0):

* ``circles``: the shipped circles data at the lab's defaults (``TrainConfig()``:
  nh=10, batch 10, 200 rows -> 20 batches an epoch); a repeat is ``--epochs``
  epochs (default 150, i.e. 3000 steps);
* ``circles adam+cos+clip``: the same run with a stateful optimizer, ``Adam()``
  at eta 0.01, ``CosineAnnealingLR`` over the repeat and ``ClipGradNorm(1.0)``
  (the by-hand stages carry the moments, torch/optim its objects, jax/optax the
  exact Optax chain);
* ``mnist784 b100`` and ``mnist784 b256``: an MNIST-sized 784-100-10 problem,
  12800 random float32 rows in [0, 1) with random one-hot labels (NumPy seed 0);
  a repeat is one epoch (128 and 50 steps).

``--quick``: circles for one epoch, a 64-16-10 problem of 256 rows at batch 16
and 32 (``tiny b16``, ``tiny b32``): a smoke test of the bench itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from frameworks._config import TrainConfig
from frameworks._data import Dataset, from_arrays, load_dataset
from frameworks._errors import KitError, unknown
from frameworks._registry import get, implementations
from frameworks.optim import Adam, ClipGradNorm, CosineAnnealingLR

BASELINE = "torch/optim"
COMPILE_ID = "torch/optim+compile"
SEED = 0


@dataclass(frozen=True)
class Workload:
    """A dataset, a config and how many epochs one timed repeat runs."""

    name: str
    dataset: Dataset
    config: TrainConfig
    epochs: int

    @property
    def batches_per_epoch(self) -> int:
        return len(self.dataset.Xtrain) // self.config.batch_size

    @property
    def steps(self) -> int:
        """Steps in one repeat."""
        return self.epochs * self.batches_per_epoch

    @property
    def flops_per_step(self) -> int:
        """``4*B*nx*nh + 6*B*nh*ny``: forward ``2*B*nx*nh + 2*B*nh*ny``, backward ``2*B*nx*nh`` for dWh and
        ``4*B*nh*ny`` for dWy and dH (no gradient with respect to the input)."""
        B, nx, nh, ny = self.config.batch_size, self.dataset.nx, self.config.nh, self.dataset.ny
        return 4 * B * nx * nh + 6 * B * nh * ny

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset": self.dataset.name,
            "n_train": len(self.dataset.Xtrain),
            "n_test": len(self.dataset.Xtest),
            "nx": self.dataset.nx,
            "nh": self.config.nh,
            "ny": self.dataset.ny,
            "batch_size": self.config.batch_size,
            "epochs_per_repeat": self.epochs,
            "steps_per_repeat": self.steps,
            "flops_per_step": self.flops_per_step,
            "config": self.config.to_dict(),
        }


@dataclass(frozen=True)
class Variant:
    """One row's implementation and how it runs: eager, compile, fused, step or fused-run."""

    implementation: str
    mode: str

    @property
    def framework(self) -> str:
        return get(self.implementation).framework

    @property
    def label(self) -> str:
        if self.mode == "eager":
            return self.implementation
        if self.mode == "compile":
            return f"{self.implementation} + torch.compile"
        return f"{self.implementation} {self.mode}"


def selected(only: str | None) -> set[str]:
    """The ids ``--only`` names (every implementation and the torch.compile row when None)."""
    choices = (*implementations(), COMPILE_ID)
    if only is None:
        return set(choices)
    names = {name.strip() for name in only.split(",") if name.strip()}
    if not names:
        raise KitError("--only needs at least one implementation id.")
    for name in names:
        if name not in choices:
            raise unknown("implementation", name, choices)
    return names


def variants(names: set[str]) -> list[Variant]:
    """The rows, in the registry's order; the torch.compile row right after torch/optim."""
    rows = []
    for implementation in implementations():
        if implementation in names:
            modes = ("fused-run", "fused", "step") if get(implementation).framework == "jax" else ("eager",)
            rows += [Variant(implementation, mode) for mode in modes]
        if implementation == BASELINE and COMPILE_ID in names:
            rows.append(Variant(BASELINE, "compile"))
    return rows


def workloads(*, quick: bool, epochs: int, torch_threads: int = 1) -> list[Workload]:
    """circles (``epochs`` a repeat), then the MNIST-sized problem at two batch sizes (tiny ones with ``quick``);
    the PyTorch rows run with ``torch_threads`` intra-op threads."""
    circles_data = load_dataset("circles")
    circles = Workload("circles", circles_data, TrainConfig(epochs=epochs, torch_threads=torch_threads), epochs)
    adam = Workload("circles adam+cos+clip", circles_data, TrainConfig(
        epochs=epochs, torch_threads=torch_threads, optimizer=Adam(), eta=0.01, schedule=CosineAnnealingLR(epochs),
        clip=ClipGradNorm(1.0)), epochs)
    if quick:
        n_train, n_test, nx, nh, ny, sizes = 256, 64, 64, 16, 10, (16, 32)
    else:
        n_train, n_test, nx, nh, ny, sizes = 12800, 2000, 784, 100, 10, (100, 256)
    data = synthetic(n_train, n_test, nx, ny, seed=SEED)
    prefix = "tiny" if quick else f"mnist{nx}"
    return [circles, adam] + [
        Workload(f"{prefix} b{B}", data,
                 TrainConfig(nh=nh, batch_size=B, eta=0.03, epochs=1, torch_threads=torch_threads), 1)
        for B in sizes
    ]


def synthetic(n_train: int, n_test: int, nx: int, ny: int, *, seed: int) -> Dataset:
    """Random float32 features in [0, 1) and random one-hot labels (an MNIST-sized stand-in)."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {
        "Xtrain": rng.random((n_train, nx), dtype=np.float32),
        "Ytrain": rng.integers(0, ny, n_train),
        "Xtest": rng.random((n_test, nx), dtype=np.float32),
        "Ytest": rng.integers(0, ny, n_test),
    }
    arrays["Ytrain"][:ny] = np.arange(ny)  # every class present, so one-hot has ny columns
    arrays["Ytest"][:ny] = np.arange(ny)
    return from_arrays(arrays, name=f"synthetic{nx}")
