"""Optimizers, schedules and clipping: torch.optim, the by-hand twins, Optax and a NumPy oracle on one trajectory.

Every row trains the lab's circles run for 5 epochs (100 updates) in float64 from one init and batch
order: all eight implementations (torch/optim through torch.optim and lr_scheduler, jax/optax through
``port.optax_from_torch``, the six others by hand) and the float64 NumPy oracle of ``_oracle_optim`` end
within 1e-12 of each other (measured: 9e-14 at most).
"""

from __future__ import annotations

import warnings

import pytest

import frameworks
from frameworks import KitError, optim
from frameworks._batches import BatchOrder
from frameworks._oracle_optim import train as oracle_train
from frameworks.tolerances import max_relative_error

ROWS = {
    "SGD momentum, dampening, weight decay": dict(optimizer=optim.SGD(momentum=0.9, dampening=0.1,
                                                                      weight_decay=1e-3)),
    "SGD Nesterov": dict(optimizer=optim.SGD(momentum=0.9, nesterov=True)),
    "Adam, coupled weight decay": dict(optimizer=optim.Adam(weight_decay=1e-3), eta=0.01),
    "Adam amsgrad": dict(optimizer=optim.Adam(amsgrad=True), eta=0.01),
    "AdamW": dict(optimizer=optim.AdamW(), eta=0.01),
    "RMSprop centered, momentum": dict(optimizer=optim.RMSprop(centered=True, momentum=0.5), eta=0.001),
    "RMSprop": dict(optimizer=optim.RMSprop(), eta=0.001),
    "Adagrad lr_decay, accumulator": dict(optimizer=optim.Adagrad(lr_decay=0.01, initial_accumulator_value=0.1),
                                          eta=0.05),
    "StepLR": dict(schedule=optim.StepLR(2, 0.5)),
    "MultiStepLR": dict(schedule=optim.MultiStepLR((1, 3), 0.5)),
    "ExponentialLR per step": dict(schedule=optim.ExponentialLR(0.99, interval="step")),
    "CosineAnnealingLR past T_max": dict(schedule=optim.CosineAnnealingLR(3)),
    "LinearLR warm-up": dict(schedule=optim.LinearLR()),
    "OneCycleLR, SGD momentum": dict(optimizer=optim.SGD(momentum=0.9), schedule=optim.OneCycleLR(0.1, 100)),
    "OneCycleLR three-phase, Adam": dict(optimizer=optim.Adam(), schedule=optim.OneCycleLR(0.01, 100,
                                                                                            three_phase=True)),
    "OneCycleLR linear, no momentum cycle": dict(schedule=optim.OneCycleLR(0.1, 120, anneal_strategy="linear",
                                                                           cycle_momentum=False)),
    "SequentialLR warm-up then cosine": dict(schedule=optim.SequentialLR(
        (optim.LinearLR(0.1, total_iters=2), optim.CosineAnnealingLR(3)), (2,))),
    "clip_grad_norm_": dict(clip=optim.ClipGradNorm(0.05)),
    "clip_grad_value_, AdamW, cosine": dict(optimizer=optim.AdamW(weight_decay=0.1), eta=0.01,
                                            schedule=optim.CosineAnnealingLR(5), clip=optim.ClipGradValue(0.01)),
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
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a divergence would fail here, not pass unnoticed
        runs = {impl_id: frameworks.get(impl_id).train(circles, config) for impl_id in frameworks.IMPLEMENTATIONS}
    reference = oracle_run(circles, config)
    lab = frameworks.get("jax/grad").train(circles, frameworks.TrainConfig(epochs=5, dtype="float64"))
    assert max_relative_error(reference, lab.params) > 1e-2  # the row changes the run
    for impl_id, run in runs.items():
        assert max_relative_error(run.params, reference) <= 1e-12, impl_id


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


def test_the_lab_default_is_plain_sgd_and_bad_specs_are_one_line(circles) -> None:
    config = frameworks.TrainConfig()
    assert config.optimizer == optim.SGD() and config.schedule is None and config.clip is None
    with pytest.raises(KitError, match=r"Adam.betas\[1\] must be in \[0, 1\)"):
        optim.Adam(betas=(0.9, 1.5))
    with pytest.raises(KitError, match=r"SGD\(nesterov=True\) needs momentum"):
        optim.SGD(nesterov=True)
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
