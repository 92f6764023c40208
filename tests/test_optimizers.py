"""Optimizers, schedules and clipping: torch.optim, the by-hand twins, Optax and a NumPy oracle on one trajectory.

Coverage: every optimizer with every schedule and with none (a pairwise grid of 40 runs, the clipping rule
cycling so that every optimizer and every schedule meet no clipping, ClipGradNorm and ClipGradValue), 3
epochs of circles each; each optimizer over the lab's full circles run and 20 epochs of digits; a few more
settings. In each, all eight implementations (torch/optim through torch.optim and lr_scheduler, jax/optax
through ``port.optax_from_torch``, the six others by hand) and the float64 NumPy oracle of ``_oracle_optim``
follow one trajectory (measured: 9e-14 at most).
"""

from __future__ import annotations

import warnings

import pytest

import frameworks
from frameworks import KitError, optim
from frameworks._batches import BatchOrder
from frameworks._oracle_optim import train as oracle_train
from frameworks.tolerances import max_relative_error

#: Settings the pairwise grid below does not reach (it runs one variant of each optimizer).
ROWS = {
    "SGD Nesterov": dict(optimizer=optim.SGD(momentum=0.9, nesterov=True)),
    "Adam": dict(optimizer=optim.Adam(), eta=0.01),
    "RMSprop": dict(optimizer=optim.RMSprop(), eta=0.001),
    "OneCycleLR linear, no momentum cycle": dict(schedule=optim.OneCycleLR(0.1, 120, anneal_strategy="linear",
                                                                           cycle_momentum=False)),
    "OneCycleLR cycling plain SGD's momentum": dict(schedule=optim.OneCycleLR(0.1, 120)),
    "OneCycleLR, SGD Nesterov": dict(optimizer=optim.SGD(momentum=0.9, nesterov=True),
                                     schedule=optim.OneCycleLR(0.1, 120)),
    "OneCycleLR, plain Adam": dict(optimizer=optim.Adam(), eta=0.01, schedule=optim.OneCycleLR(0.01, 120)),
}


@pytest.fixture(scope="module")
def circles() -> frameworks.Dataset:
    return frameworks.load_dataset("circles")


def oracle_run(dataset: frameworks.Dataset, config: frameworks.TrainConfig) -> dict:
    order = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed)
    batches = [(dataset.Xtrain[rows], dataset.Ytrain[rows]) for rows in order.epochs(config.epochs).reshape(
        -1, config.batch_size)]
    return oracle_train(config, frameworks.init_params(dataset.nx, config.nh, dataset.ny, seed=config.seed), batches,
                        spe=order.batches_per_epoch)


@pytest.mark.parametrize("row", list(ROWS))
def test_all_eight_and_the_numpy_oracle_share_one_trajectory(circles, row: str) -> None:
    config = frameworks.TrainConfig(epochs=5, dtype="float64", **ROWS[row])
    check_one_trajectory(circles, config)


def check_one_trajectory(dataset: frameworks.Dataset, config: frameworks.TrainConfig, *,
                         tol: float = 1e-12) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a divergence would fail here, not pass unnoticed
        runs = {impl_id: frameworks.get(impl_id).train(dataset, config) for impl_id in frameworks.IMPLEMENTATIONS}
    reference = oracle_run(dataset, config) if dataset.name == "circles" else runs["torch/optim"].params
    lab = frameworks.get("jax/grad").train(dataset, config.replace(optimizer=optim.SGD(), schedule=None, clip=None))
    assert max_relative_error(reference, lab.params) > 1e-2  # the row changes the run
    for impl_id, run in runs.items():
        assert max_relative_error(run.params, reference) <= tol, impl_id


#: The pairwise grid: every optimizer with every schedule (and none), the clipping rule cycling so that every
#: optimizer and every schedule meet each of no clipping, ClipGradNorm and ClipGradValue.
OPTIMIZERS = [
    (optim.SGD(momentum=0.9, dampening=0.1, weight_decay=1e-3), 0.03),
    (optim.Adam(weight_decay=1e-3, amsgrad=True), 0.01),
    (optim.AdamW(), 0.01),
    (optim.RMSprop(centered=True, momentum=0.5), 0.001),
    (optim.Adagrad(lr_decay=0.01, initial_accumulator_value=0.1), 0.05),
]
SCHEDULES = [None, optim.StepLR(1, 0.5), optim.MultiStepLR((1, 2), 0.5), optim.ExponentialLR(0.99, interval="step"),
             optim.CosineAnnealingLR(2), optim.LinearLR(0.2, total_iters=2), "one-cycle",
             optim.SequentialLR((optim.LinearLR(0.5, total_iters=1), optim.StepLR(1, 0.7)), (1,))]
CLIPS = [None, optim.ClipGradNorm(0.05), optim.ClipGradValue(0.01)]
GRID = [(i, j) for i in range(len(OPTIMIZERS)) for j in range(len(SCHEDULES))]


def grid_config(i: int, j: int, **changes: object) -> frameworks.TrainConfig:
    spec, eta = OPTIMIZERS[i]
    schedule = SCHEDULES[j]
    if schedule == "one-cycle":  # the momentum cycled unless the optimizer has none (Adagrad)
        schedule = optim.OneCycleLR(3 * eta, 60, cycle_momentum=not isinstance(spec, optim.Adagrad))
    return frameworks.TrainConfig(epochs=3, dtype="float64", optimizer=spec, eta=eta, schedule=schedule,
                                  clip=CLIPS[(i + j) % 3]).replace(**changes)


@pytest.mark.parametrize(("i", "j"), GRID, ids=[f"{type(OPTIMIZERS[i][0]).__name__}-{j}" for i, j in GRID])
def test_the_pairwise_grid_shares_one_trajectory(circles, i: int, j: int) -> None:
    """All 40 optimizer x schedule pairs (each clipping rule met by every optimizer and every schedule), 3 epochs
    of the circles run: all eight and the NumPy oracle within 1e-12 (float64)."""
    check_one_trajectory(circles, grid_config(i, j))


@pytest.mark.parametrize("i", range(len(OPTIMIZERS)), ids=[type(o).__name__ for o, _ in OPTIMIZERS])
def test_the_labs_full_run_and_digits_share_one_trajectory(circles, i: int) -> None:
    """Each optimizer over the lab's full circles run (150 epochs, 3000 updates, a schedule and clipping
    beside it) and over 20 epochs of digits: all eight within 1e-9 of the oracle (circles) or torch/optim
    (digits) in float64 (measured: a few 1e-15)."""
    spec, eta = OPTIMIZERS[i]
    schedules = [optim.CosineAnnealingLR(150), optim.StepLR(50, 0.5), optim.OneCycleLR(3 * eta, 3000, three_phase=True),
                 optim.LinearLR(0.1, total_iters=20), optim.ExponentialLR(0.98)]
    schedule = schedules[i] if not isinstance(spec, optim.Adagrad) else optim.ExponentialLR(0.98)
    config = frameworks.TrainConfig(dtype="float64", optimizer=spec, eta=eta, schedule=schedule, clip=CLIPS[i % 3])
    check_one_trajectory(circles, config, tol=1e-9)
    digits = frameworks.load_dataset("digits")
    check_one_trajectory(digits, frameworks.TrainConfig.mnist(epochs=20, dtype="float64", optimizer=spec, eta=eta,
                                                              clip=CLIPS[(i + 1) % 3]), tol=1e-9)


def test_float32_runs_stay_together(circles) -> None:
    config = frameworks.TrainConfig(epochs=5, optimizer=optim.Adam(weight_decay=1e-3), eta=0.01,
                                    schedule=optim.CosineAnnealingLR(5), clip=optim.ClipGradNorm(1.0))
    runs = {impl_id: frameworks.get(impl_id).train(circles, config) for impl_id in frameworks.IMPLEMENTATIONS}
    for impl_id, run in runs.items():
        assert max_relative_error(run.params, runs["torch/optim"].params) <= 1e-5, impl_id


def test_optax_from_torch_reads_a_real_optimizer_and_scheduler() -> None:
    """A torch.optim object and its scheduler translate to the specs, and so to the same Optax chain."""
    import torch

    from frameworks.port import optax_from_torch, specs_from_torch

    model = torch.nn.Linear(2, 2)
    cases = [
        (torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05), None, optim.AdamW(weight_decay=0.05),
         None),
        (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True), "StepLR",
         optim.SGD(momentum=0.9, nesterov=True), optim.StepLR(3, 0.5)),
        (torch.optim.RMSprop(model.parameters(), lr=1e-3, centered=True), "MultiStepLR", optim.RMSprop(centered=True),
         optim.MultiStepLR((2, 4), 0.1)),
    ]
    for optimizer, scheduler_name, spec, schedule in cases:
        scheduler = None
        if scheduler_name == "StepLR":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 3, 0.5)
        elif scheduler_name == "MultiStepLR":
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2, 4], 0.1)
        assert specs_from_torch(optimizer, scheduler) == (spec, optimizer.param_groups[0].get(
            "initial_lr", optimizer.param_groups[0]["lr"]), schedule)
        assert optax_from_torch(optimizer, scheduler, steps_per_epoch=10) is not None
    one = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    cycle = torch.optim.lr_scheduler.OneCycleLR(one, max_lr=0.5, total_steps=200, pct_start=0.25, three_phase=True)
    assert specs_from_torch(one, cycle)[2] == optim.OneCycleLR(0.5, 200, pct_start=0.25, three_phase=True)
    with pytest.raises(KitError, match="not LBFGS"):
        specs_from_torch(torch.optim.LBFGS(model.parameters()))
    decoupled = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)
    assert specs_from_torch(decoupled)[0] == optim.AdamW(weight_decay=0.05)
    in_group = torch.optim.SGD([{"params": model.parameters(), "momentum": 0.5}], lr=0.1)
    assert specs_from_torch(in_group)[0] == optim.SGD(momentum=0.5)  # the group's setting, not the default
    with pytest.raises(KitError, match="needs steps_per_epoch"):
        optax_from_torch(optim.SGD(), lr=0.1, schedule=optim.StepLR(3))
    stepped = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    stepped.step()
    with pytest.raises(KitError, match="already stepped"):
        specs_from_torch(stepped)
    with pytest.raises(KitError, match="maximize=True"):
        specs_from_torch(torch.optim.SGD(model.parameters(), lr=0.1, maximize=True))
    groups = [{"params": [model.weight], "lr": 0.1}, {"params": [model.bias], "lr": 0.01}]
    with pytest.raises(KitError, match="2 parameter groups"):
        specs_from_torch(torch.optim.SGD(groups))
    with pytest.raises(KitError, match="not CyclicLR"):
        specs_from_torch(one, torch.optim.lr_scheduler.CyclicLR(one, 0.01, 0.1))


def test_the_lab_default_is_plain_sgd_and_bad_specs_are_one_line(circles) -> None:
    config = frameworks.TrainConfig()
    assert config.optimizer == optim.SGD() and config.schedule is None and config.clip is None
    with pytest.raises(KitError, match=r"Adam.betas\[1\] must be in \[0, 1\)"):
        optim.Adam(betas=(0.9, 1.5))
    with pytest.raises(KitError, match=r"SGD\(nesterov=True\) needs momentum"):
        optim.SGD(nesterov=True)
    with pytest.raises(KitError, match="OneCycleLR is stepped once a batch"):
        optim.OneCycleLR(0.1, 10, interval="epoch")
    with pytest.raises(KitError, match="Adagrad"):
        frameworks.TrainConfig(optimizer=optim.Adagrad(), schedule=optim.OneCycleLR(0.1, 10))
    with pytest.raises(KitError, match=r"OneCycleLR\(total_steps=50\) is shorter than the run"):
        frameworks.get("jax/manual").train(circles, frameworks.TrainConfig(epochs=5, schedule=optim.OneCycleLR(
            0.1, 50)))
    assert optim.parse("AdamW(weight_decay=0.05)") == optim.AdamW(weight_decay=0.05)
    with pytest.raises(KitError, match="unknown spec 'Adamw'.*Did you mean .*'AdamW'"):
        optim.parse("Adamw()")
    with pytest.raises(KitError, match="its arguments: momentum, dampening"):
        optim.parse("SGD(momentun=0.9)")


def test_a_config_with_an_optimizer_round_trips_through_json() -> None:
    import json

    config = frameworks.TrainConfig(optimizer=optim.Adam(betas=(0.8, 0.99)), clip=optim.ClipGradNorm(1.0),
                                    schedule=optim.SequentialLR((optim.LinearLR(), optim.StepLR(2)), (5,)))
    again = frameworks.TrainConfig(**json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_a_diverging_momentum_run_keeps_the_last_finite_epoch(circles) -> None:
    """The replay of a diverged chunk starts from the chunk's whole state, the momentum buffers included:
    a float32 run whose logits overflow at epoch 5 keeps epoch 4, equal to a 4-epoch run."""
    config = frameworks.TrainConfig(epochs=8, optimizer=optim.SGD(momentum=0.9), eta=2e35)
    for impl_id in ("torch/manual", "torch/nn", "jax/flax", "torch/optim", "jax/optax"):
        with pytest.warns(RuntimeWarning, match="NaN or infinite"):
            result = frameworks.get(impl_id).train(circles, config)
        assert result.diverged == 5 and result.epochs_done == 4
        again = frameworks.get(impl_id).train(circles, config.replace(epochs=4))
        assert max_relative_error(result.params, again.params) == 0.0, impl_id


@pytest.mark.parametrize("changes", [
    dict(optimizer=optim.Adam(amsgrad=True), eta=0.01, schedule=optim.CosineAnnealingLR(6),
         clip=optim.ClipGradNorm(0.5)),
    dict(optimizer=optim.SGD(momentum=0.9, dampening=0.1), schedule=optim.OneCycleLR(0.1, 120)),
    dict(optimizer=optim.RMSprop(centered=True, momentum=0.5), eta=0.001, schedule=optim.StepLR(2, 0.5)),
], ids=["Adam amsgrad, cosine, clip", "SGD dampening, OneCycleLR", "RMSprop centered, StepLR"])
def test_a_run_resumes_across_frameworks_with_its_optimizer_state(circles, tmp_path, changes) -> None:
    """torch/optim -> jax/optax -> torch/manual, two epochs each, through checkpoints that carry the momentum
    buffers, Adam's moments and the step count in the canonical layout: the uninterrupted run (measured: 1.2e-14
    at most)."""
    config = frameworks.TrainConfig(epochs=6, dtype="float64", **changes)
    full = frameworks.get("jax/grad").train(circles, config)
    path = tmp_path / "run.npz"
    frameworks.get("torch/optim").train(circles, config.replace(epochs=2), checkpoint=path)
    frameworks.get("jax/optax").train(circles, config.replace(epochs=4), resume=path, checkpoint=path)
    saved = frameworks.load_checkpoint(path).optimizer
    buffers = {"Adam": {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, "SGD": {"momentum_buffer"},
               "RMSprop": {"square_avg", "grad_avg", "momentum_buffer"}}[type(config.optimizer).__name__]
    assert saved["step"] == 80 and set(saved["buffers"]) == buffers  # PyTorch's names, the kit's parameters
    assert all(list(tree) == ["Wh", "bh", "Wy", "by"] for tree in saved["buffers"].values())
    resumed = frameworks.get("torch/manual").train(circles, config, resume=path)
    assert max_relative_error(resumed.params, full.params) <= 1e-12
    # and into torch/optim: its state_dict rebuilt, its scheduler stepped to where the run was
    frameworks.get("torch/manual").train(circles, config.replace(epochs=4), checkpoint=path)
    into_torch = frameworks.get("torch/optim").train(circles, config, resume=path)
    assert max_relative_error(into_torch.params, full.params) <= 1e-12


#: Where each naive port leaves the exact chain on the lab's circles run (update, 1-based), measured; None: never.
FIRST_DEPARTURE = {
    "SGD(momentum=0.9, dampening=0.5)": 2, "Adam(weight_decay=0.01)": 1, "Adam(amsgrad=True)": 2, "AdamW()": 1,
    "RMSprop()": 1, "Adagrad()": 1, "StepLR(step_size=50, gamma=0.5)": 1, "MultiStepLR([50, 100], gamma=0.5)": None,
    "ExponentialLR(gamma=0.98)": 1, "CosineAnnealingLR(T_max=150)": 2, "LinearLR(0.1, total_iters=20)": 1,
    "OneCycleLR(max_lr=0.5, total_steps=3000), SGD(momentum=0.9)": 2, "clip_grad_norm_(max_norm=0.1)": 1,
    "clip_grad_value_(clip_value=0.01)": None,
}


def test_each_naive_port_leaves_the_exact_run_where_the_table_says(circles) -> None:
    """The trap table of ``python -m frameworks optimizers`` (and the docs): each naive translation leaves the
    exact chain at the stated update (a trap that stops showing fails here), the two that are exact never do;
    the exact chain's run is jax/optax's."""
    from frameworks import optim_traps

    rows = {row.pytorch: row for row in optim_traps.table(circles)}
    assert {name: row.first_step for name, row in rows.items()} == FIRST_DEPARTURE
    assert rows["Adam(weight_decay=0.01)"].exact_acc == pytest.approx(0.500, abs=0.005)  # coupled L2 under Adam
    assert rows["Adam(weight_decay=0.01)"].naive_acc == pytest.approx(0.930, abs=0.005)  # decoupled instead
    assert rows["RMSprop()"].error > 0.5 and rows["clip_grad_norm_(max_norm=0.1)"].error < 1e-5
    adamw = frameworks.get("jax/optax").train(circles, frameworks.TrainConfig(dtype="float64", **optim_traps.ROWS[
        "AdamW()"]))
    assert adamw.final("test_acc") == rows["AdamW()"].exact_acc


@pytest.mark.parametrize(("option", "text", "message"), [
    ("--optimizer", "Adam(betas=(0.9, 1.2))", r"Adam.betas\[1\] must be in \[0, 1\)"),
    ("--optimizer", "Adamx", "unknown spec 'Adamx'"),
    ("--schedule", "MultiStepLR([3, 2])", "milestones must increase"),
    ("--schedule", "Cyclic()", "unknown spec 'Cyclic'"),
    ("--clip", "ClipGradNorm(0)", r"ClipGradNorm.max_norm must be in \(0, inf\]"),
    ("--eta", "-0.1", "eta must be a positive finite number"),
])
def test_bad_optimizer_options_are_one_line_and_exit_2(capsys, option: str, text: str, message: str) -> None:
    import re

    from frameworks.__main__ import main

    assert main(["train", "torch/optim", option, text, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
