"""A sweep's runs at once in JAX: the whole fused run of a stage, ``jax.vmap``-ed over the runs.

The runs whose programs agree (they differ only in seed, eta, init or the nonzero numbers of
their optimizer, schedule and clipping: the initial weights, the batch order, the learning
rate and the hyperparameters are data, ``_hyper.py``) are one jitted ``vmap`` of the fused run,
compiled once a shape: a second sweep of the same shapes does not recompile. The runs axis
is split over every device of the run's kind JAX sees (a ``jax.sharding.Mesh``), so a
multi-GPU machine splits the grid with no other change. ``jax/manual`` with the lab's SGD
runs stage 1's math with the runs as the last axis instead (``sweep_manual.py``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._hyper import fill, split, varying
from frameworks._params import Params
from frameworks._stage import Stage, place
from frameworks.jax_stages import sweep_manual


def vmapped(stage: Stage, dataset: Dataset, configs: list[TrainConfig], starts: list[Params], batches: np.ndarray,
            masks: tuple, *, shard: bool = True, runs_last: bool = False
            ) -> tuple[list[Params], np.ndarray, np.ndarray]:
    """Train ``configs`` (one shape) from ``starts`` on ``batches`` (runs, epochs, batches, batch_size) and the
    kit's dropout ``masks``: the final canonical parameters (each run's last finite epoch), the metrics (runs,
    epochs, 4 or 6) and the epoch each run diverged at (0: never). ``runs_last``: stage 1's runs-last program."""
    base = configs[0]
    with place(stage, base, starts[0], *dataset.arrays) as placed:
        data, platform = placed.data, placed.device.platform
        etas = jnp.asarray([c.eta for c in configs], data[0].dtype)
        if runs_last:
            params = jax.device_put(sweep_manual.stack(starts, np.dtype(data[0].dtype)), placed.device)
            batches = jax.device_put(batches, placed.device)
            if shard:
                (params, etas), data = _shard((params, etas), data, platform, len(configs), axis=-1)
                batches, _ = _shard(batches, (), platform, len(configs))
            last, diverged, metrics = sweep_manual.train(params, batches, etas, data, arch=base.arch,
                                                         reduction=base.loss_reduction)
            finals, metrics = sweep_manual.unstack(last), np.moveaxis(np.asarray(metrics, np.float64), -1, 0)
            return finals, metrics, np.asarray(diverged)
        traced, values = varying(configs)  # the hyperparameters that differ between the runs: data
        hyper = jnp.asarray(np.array(values, np.float64).reshape(len(configs), -1), data[0].dtype)
        states = [stage.load(p, c, placed.device) for p, c in zip(starts, configs)]  # each run's optimizer state
        runs_axis = (_stack(states), batches, masks, etas, hyper)
        if shard:
            runs_axis, data = _shard(runs_axis, data, platform, len(configs))
        key, _ = split(base.replace(seed=0, eta=1.0, init="lab", epochs=1), traced)
        program = _program(stage, key, batches.shape[2])
        last, diverged, metrics = program(*runs_axis, data)
        finals = [stage.export(jax.tree.map(lambda x, i=i: x[i], last)) for i in range(len(configs))]
        return finals, np.asarray(metrics, dtype=np.float64), np.asarray(diverged)


def _shard(arrays: Any, data: Any, platform: str, runs: int, *, axis: int = 0) -> tuple[Any, Any]:
    """The runs ``axis`` of every array split over the devices of ``platform`` JAX sees (as many as divide the
    number of runs), the data replicated on each; one device: unchanged."""
    devices = jax.devices(platform)
    count = max(k for k in range(1, len(devices) + 1) if runs % k == 0)
    if count == 1:
        return arrays, data
    mesh = Mesh(np.array(devices[:count]), ("runs",))

    def split(a: Any) -> Any:
        spec: list[str | None] = [None] * np.ndim(a)
        spec[axis] = "runs"
        return jax.device_put(a, NamedSharding(mesh, PartitionSpec(*spec)))

    copies = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(split, arrays), jax.tree.map(lambda a: jax.device_put(a, copies), data)


def _stack(states: list[Any]) -> Any:
    """The runs' states as one pytree with a leading runs axis, stacked on the host (one transfer a leaf, where
    stacking 1000 device arrays leaf by leaf takes seconds)."""
    leaves = [jax.tree.leaves(s) for s in states]
    treedef = jax.tree.structure(states[0])
    stacked = []
    for column in zip(*leaves):
        if jax.dtypes.issubdtype(column[0].dtype, jax.dtypes.prng_key):  # typed random keys stay on device
            stacked.append(jnp.stack(column))
        else:
            stacked.append(jax.device_put(np.stack(jax.device_get(list(column))), column[0].sharding))
    return jax.tree.unflatten(treedef, stacked)


@functools.lru_cache(maxsize=16)
def _program(stage: Stage, base: TrainConfig, spe: int) -> Any:
    """The jitted, vmapped whole run of ``stage`` under the static key ``base`` (seed, eta, init, epochs and the
    hyperparameters in its slots are data, ``_hyper.split``): built once, compiled once a shape, so a second sweep
    of the same shapes does not recompile."""

    def one(state: Any, rows: jax.Array, keep: tuple, eta: jax.Array, hyper: jax.Array, data: tuple
            ) -> tuple[Any, jax.Array, jax.Array]:
        traced = fill(base, list(hyper))  # the run's hyperparameters as data: one program for every value
        object.__setattr__(traced, "eta", eta)  # the learning rate as data: one program for every eta
        step = stage.step(traced, spe) if base.schedule is not None else stage.step(traced)

        def epoch(carry: Any, xs: Any) -> tuple[Any, jax.Array]:
            state, last, diverged, e = carry
            epoch_rows, epoch_keep = xs

            def body(s: Any, x: Any) -> tuple[Any, None]:
                r, k = x
                return step(s, data[0][r], data[1][r], *((k,) if k else ())), None

            state, _ = jax.lax.scan(body, state, (epoch_rows, epoch_keep))
            metrics = jnp.stack([m for X, Y in zip(data[0::2], data[1::2]) for m in stage.evaluate(state, X, Y)])
            fine = jnp.all(jnp.isfinite(metrics)) & (diverged == 0)
            last = jax.tree.map(lambda a, b: jnp.where(fine, a, b), state, last)
            diverged = jnp.where(~jnp.all(jnp.isfinite(metrics)) & (diverged == 0), e + 1, diverged)
            return (state, last, diverged, e + 1), metrics

        zero = jnp.zeros((), jnp.int32)
        (_, last, diverged, _), metrics = jax.lax.scan(epoch, (state, state, zero, zero), (rows, keep))
        return last, diverged, metrics

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0, None)))
