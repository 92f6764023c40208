"""The naive Optax port of each torch.optim setup, run beside the exact one: where it leaves, by how much.

For every row of :data:`ROWS` (a PyTorch optimizer, schedule or clipping), :func:`measure`
trains the lab's network twice in float64 JAX from one init and one batch order: with
the exact chain (``port.optax_from_torch``, the chain ``jax/optax`` trains with, proved
equal to ``torch/optim`` by ``tests/test_optimizers.py``) and with the naive
translation (``port.naive_optax``: ``optax.adamw(lr)`` for ``AdamW(lr)``...). It reports
the first update after which a parameter tensor of the naive run is more than the
float64 trajectory tolerance away from the exact run's (relative to the exact tensor),
the tensor furthest off then and by how much, and the two final test accuracies. ``python -m frameworks optimizers``
prints the table; ``docs/tutorials/optimizers.md`` builds it when the docs build.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frameworks import optim
from frameworks._batches import BatchOrder
from frameworks._config import TrainConfig
from frameworks._data import Dataset, load_dataset
from frameworks._errors import KitError
from frameworks._params import init_params
from frameworks.tolerances import tolerance

#: The translation table's rows: what PyTorch code says, as the kit's config (the lab's circles run otherwise).
ROWS: dict[str, dict[str, Any]] = {
    "SGD(momentum=0.9, dampening=0.5)": dict(optimizer=optim.SGD(momentum=0.9, dampening=0.5)),
    "Adam(weight_decay=0.01)": dict(optimizer=optim.Adam(weight_decay=1e-2), eta=0.01),
    "Adam(amsgrad=True)": dict(optimizer=optim.Adam(amsgrad=True), eta=0.01),
    "AdamW()": dict(optimizer=optim.AdamW(), eta=0.01),
    "RMSprop()": dict(optimizer=optim.RMSprop(), eta=0.001),
    "Adagrad()": dict(optimizer=optim.Adagrad(), eta=0.05),
    "StepLR(step_size=50, gamma=0.5)": dict(schedule=optim.StepLR(50, 0.5)),
    "MultiStepLR([50, 100], gamma=0.5)": dict(schedule=optim.MultiStepLR((50, 100), 0.5)),
    "ExponentialLR(gamma=0.98)": dict(schedule=optim.ExponentialLR(0.98)),
    "CosineAnnealingLR(T_max=150)": dict(schedule=optim.CosineAnnealingLR(150)),
    "LinearLR(0.1, total_iters=20)": dict(schedule=optim.LinearLR(0.1, total_iters=20)),
    "OneCycleLR(max_lr=0.5, total_steps=3000), SGD(momentum=0.9)": dict(
        optimizer=optim.SGD(momentum=0.9), schedule=optim.OneCycleLR(0.5, 3000)),
    "clip_grad_norm_(max_norm=0.1)": dict(clip=optim.ClipGradNorm(0.1)),
    "clip_grad_value_(clip_value=0.01)": dict(clip=optim.ClipGradValue(0.01)),
}


@dataclass(frozen=True)
class Departure:
    """One row: the PyTorch setup, the exact and the naive Optax chains in words, where the naive run first
    leaves the exact one (the update, 1-based; the tensor furthest off at that update and its relative gap; None:
    never, to the run's end, ``error`` then the largest gap of the run) and the final test accuracies of both."""

    pytorch: str
    exact: str
    naive: str
    first_step: int | None
    tensor: str | None
    error: float
    exact_acc: float
    naive_acc: float
    steps: int


def measure(dataset: Dataset, config: TrainConfig, *, pytorch: str | None = None) -> Departure:
    """Train ``config`` (float64) with the exact and the naive Optax chains side by side, one jitted scan."""
    import jax
    import jax.numpy as jnp
    import optax

    from frameworks._optax_naive import naive_optax, naive_text
    from frameworks._optax_port import explain, optax_from_torch
    from frameworks.jax_stages import _backend as backend
    from frameworks.jax_stages import stage3_flax as flax_stage

    if config.dropout:
        raise KitError("the translation table trains without dropout (its two runs would need the kit's masks): "
                       "measure the optimizer on the network without dropout.")
    config = config.replace(dtype="float64")
    order = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed)
    spe = order.batches_per_epoch
    rows = order.epochs(config.epochs).reshape(-1, config.batch_size)
    arch = config.arch
    params = init_params(dataset.nx, arch.hidden, dataset.ny, seed=config.seed, scheme=config.init, norm=arch.norm)
    options: dict[str, Any] = {"lr": config.eta, "schedule": config.schedule, "clip": config.clip,
                               "steps_per_epoch": spe}
    exact, naive = optax_from_torch(config.optimizer, **options), naive_optax(config.optimizer, **options)
    with backend.scope(config):
        state = flax_stage.load(params, config)
        X, Y = (jnp.asarray(a) for a in dataset[:2])

        def grads(p: Any, x: jax.Array, y: jax.Array) -> Any:
            return flax_stage.grads_of(flax_stage.State(state.graphdef, p, state.key, arch), x, y,
                                       reduction=config.loss_reduction)[1]

        def body(carry: Any, batch: jax.Array) -> tuple[Any, Any]:
            pa, sa, pb, sb = carry
            x, y = X[batch], Y[batch]
            ua, sa = exact.update(grads(pa, x, y), sa, pa)
            ub, sb = naive.update(grads(pb, x, y), sb, pb)
            pa, pb = optax.apply_updates(pa, ua), optax.apply_updates(pb, ub)
            errors = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)), pa, pb)
            return (pa, sa, pb, sb), errors

        run = jax.jit(lambda p: jax.lax.scan(body, (p, exact.init(p), p, naive.init(p)), jnp.asarray(rows)))
        (pa, _, pb, _), errors = run(state.params)
        per_tensor = flax_stage.canonical(errors, arch)  # (steps,) a tensor, by the kit's names
        accuracy = [float(flax_stage.evaluate(flax_stage.State(state.graphdef, p, state.key, arch),
                                              *(jnp.asarray(a) for a in dataset[2:4]))[1]) for p in (pa, pb)]
    tol = tolerance("trajectory_params", "float64")
    table = np.stack([per_tensor[name] for name in per_tensor])  # (tensors, steps)
    over = ~(table <= tol)  # NaN counts as over
    first = int(np.argmax(over.any(axis=0))) if over.any() else None
    # at the first departing update, the tensor furthest off (NaN: off by any measure) and its relative gap
    tensor = list(per_tensor)[int(np.argmax(np.nan_to_num(table[:, first], nan=np.inf)))] if first is not None \
        else None
    return Departure(
        pytorch=pytorch or _pytorch_text(config), exact=explain(config.optimizer, **options),
        naive=naive_text(config.optimizer, config.schedule, config.clip),
        first_step=None if first is None else first + 1, tensor=tensor,
        error=float(table[list(per_tensor).index(tensor), first]) if first is not None and tensor is not None
        else float(np.nanmax(table)),
        exact_acc=accuracy[0], naive_acc=accuracy[1], steps=len(rows))


def _pytorch_text(config: TrainConfig) -> str:
    parts = [optim.describe(config.optimizer)]
    parts += [optim.describe(s) for s in (config.schedule, config.clip) if s is not None]
    return ", ".join(parts)


def table(dataset: Dataset | None = None, *, epochs: int | None = None) -> list[Departure]:
    """Every row of :data:`ROWS` on the lab's circles run (or ``dataset``; ``epochs`` to shorten it)."""
    dataset = dataset or load_dataset("circles")
    base = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    return [measure(dataset, base.replace(**changes), pytorch=name) for name, changes in ROWS.items()]


def markdown(rows: list[Departure]) -> str:
    """The translation table: PyTorch | exact Optax chain | naive Optax | first divergence | effect."""
    lines = ["| PyTorch | exact Optax chain (* built by the kit) | naive Optax | first divergence | "
             "final test acc, exact -> naive |", "|---|---|---|---|---|"]
    for r in rows:
        where = (f"update {r.first_step} of {r.steps}, `{r.tensor}` ({r.error:.1e})" if r.first_step is not None
                 else f"none in {r.steps} updates (max {r.error:.1e})")
        lines.append(f"| `{r.pytorch}` | `{r.exact}` | `{r.naive}` | {where} | "
                     f"{r.exact_acc:.3f} -> {r.naive_acc:.3f} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=None, help="shorten the lab's 150-epoch circles run")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")


def run(args: argparse.Namespace) -> int:
    rows = table(epochs=args.epochs)
    print(markdown(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([asdict(r) for r in rows], indent=1))
        print(f"wrote {args.out}")
    return 0
