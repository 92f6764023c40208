"""Run by test_distributed.py in a fresh process with 8 virtual CPU devices (XLA_FLAGS set before JAX starts).

Prints one JSON object: max relative errors of the data-parallel runs against single-device ones.
"""

from __future__ import annotations

import json
import sys

import jax

import frameworks
from frameworks.tolerances import max_relative_error
from tests.conftest import random_problem


def main() -> None:
    epochs = int(sys.argv[1])
    out = {"cpu_devices": len(jax.devices("cpu")), "gradients": {}, "trajectories": {}, "all_reduce": {}}
    params, X, Y = random_problem(0, batch=16)
    for impl_id in ("jax/manual", "jax/grad", "jax/flax", "jax/optax"):
        _, single = frameworks.get(impl_id).gradients(params, X, Y)
        for n in (2, 4, 8):
            _, sharded = frameworks.get(impl_id).gradients(params, X, Y, devices=n)
            out["gradients"][f"{impl_id}@{n}"] = max_relative_error(sharded, single)
    data = frameworks.load_dataset("circles")
    for n, batch_size in ((2, 10), (4, 8), (8, 8)):
        config = frameworks.TrainConfig(dtype="float64", batch_size=batch_size, epochs=epochs)
        single = frameworks.get("torch/manual").train(data, config)
        for impl_id in ("jax/manual", "jax/optax"):
            sharded = frameworks.get(impl_id).train(data, config.replace(devices=n))
            out["trajectories"][f"{impl_id}@{n}"] = max_relative_error(sharded.params, single.params)
    # The compiler partitions the step and inserts the all-reduce: look for it in the compiled program.
    from frameworks.jax_stages import _backend, stage1_manual

    with jax.enable_x64(True):
        placement = _backend.resolve_device("cpu", 4)
        p = stage1_manual.load(params, frameworks.TrainConfig(dtype="float64"), placement)
        Xs = _backend.shard_batch(_backend.asarray(X, "float64", placement), placement)
        Ys = _backend.shard_batch(_backend.asarray(Y, "float64", placement), placement)
        text = stage1_manual.gradients.lower(p, Xs, Ys, reduction="mean").compile().as_text()
        out["all_reduce"]["jax/manual@4"] = "all-reduce" in text
        out["all_reduce"]["batch_spec"] = str(Xs.sharding.spec)
    # A sweep's runs axis split over the 8 devices (16 runs: 2 a device) against the same sweep on one device.
    val = frameworks.load_dataset("circles", validation=0.2)
    grid, config = {"eta": [0.01, 0.1, 0.3, 1.0]}, frameworks.TrainConfig(epochs=5, dtype="float64")
    for impl_id in ("jax/grad", "jax/manual"):  # the vmap of the fused run; stage 1's runs-last program
        split = frameworks.sweep(impl_id, val, grid, seeds=range(4), config=config)
        whole = frameworks.sweep(impl_id, val, grid, seeds=range(4), config=config, shard=False)
        out[f"sweep {impl_id}"] = max(max_relative_error(a.params, b.params) for a, b in zip(split.runs, whole.runs))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
