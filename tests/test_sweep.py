"""Sweeps and the validation split: each run of a vmapped sweep is the single ``train`` of its config; the choice
is made on validation, never on test; diverging runs are marked without touching the others."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import frameworks
from frameworks import KitError, optim
from frameworks._data import Dataset, with_validation
from frameworks.tolerances import max_relative_error


@pytest.fixture(scope="module")
def circles_val() -> Dataset:
    return frameworks.load_dataset("circles", validation=0.2)


def single(impl_id: str, dataset: Dataset, config: frameworks.TrainConfig) -> frameworks.TrainResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return frameworks.get(impl_id).train(dataset, config)


def test_the_validation_split_is_stratified_fixed_and_apart(circles_val) -> None:
    circles = frameworks.load_dataset("circles")
    assert circles.Xval is None and len(circles.arrays) == 4  # the lab's default: all 200 rows train
    assert circles_val.Xval.shape == (40, 2) and circles_val.Xtrain.shape == (160, 2)
    assert circles_val.Yval.sum(axis=0).tolist() == [20, 20]  # stratified
    again = frameworks.load_dataset("circles", validation=0.2)
    assert np.array_equal(again.Xval, circles_val.Xval)  # fixed
    rows = {tuple(x) for x in circles.Xtrain}
    assert {tuple(x) for x in circles_val.Xval} | {tuple(x) for x in circles_val.Xtrain} == rows
    assert not {tuple(x) for x in circles_val.Xval} & {tuple(x) for x in circles_val.Xtrain}
    result = frameworks.get("torch/manual").train(circles_val, frameworks.TrainConfig(epochs=2))
    assert list(result.history) == ["train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc"]
    with pytest.raises(KitError, match=r"validation must be a fraction .* in \(0, 1\)"):
        frameworks.load_dataset("circles", validation=1.0)


@pytest.mark.parametrize("impl_id", ["jax/manual", "jax/grad", "jax/flax", "jax/optax", "torch/nn", "torch/manual"])
def test_a_swept_run_is_the_single_train_of_its_config(circles_val, impl_id: str) -> None:
    """float64: every run of the sweep (etas and inits in one vmapped program on JAX, stage 1's runs-last program
    for jax/manual, one torch.func vmap for the PyTorch module stages, run by run for the others) equals the single
    train of its config, parameters and history (measured: bit for bit through vmap, 3e-15 runs last, 9e-16
    through torch.func)."""
    base = frameworks.TrainConfig(epochs=10, dtype="float64")
    result = frameworks.sweep(impl_id, circles_val, {"eta": [0.01, 0.3], "init": ["lab", "he"]}, seeds=[0, 3],
                              config=base)
    assert len(result.runs) == 8 and result.groups == (8 if impl_id == "torch/manual" else 1)
    for run in result.runs:
        alone = single(impl_id, circles_val, run.config)
        assert max_relative_error(run.params, alone.params) <= 1e-12
        assert list(run.history) == list(alone.history)
        for metric, values in run.history.items():
            np.testing.assert_allclose(values, alone.history[metric], rtol=1e-12)


def test_float32_and_a_deeper_net_with_adam_and_dropout_sweep_alike(circles_val) -> None:
    base = frameworks.TrainConfig(epochs=5, hidden=(8, 4), activation="gelu", norm="layer", dropout=0.2,
                                  optimizer=optim.Adam(), schedule=optim.CosineAnnealingLR(5))
    result = frameworks.sweep("jax/optax", circles_val, {"eta": [0.003, 0.01]}, seeds=[0, 1], config=base)
    for run in result.runs:
        assert max_relative_error(run.params, single("jax/optax", circles_val, run.config).params) <= 1e-5


def test_jax_manual_sweeps_runs_last_a_deeper_net_too(circles_val, monkeypatch) -> None:
    """jax/manual with the lab's SGD takes the runs-last program (``sweep_manual.py``), a deeper net with two
    activations included: float64 runs within 1e-12 of their single train (measured 2e-15); with Adam it takes
    the vmap of the fused run."""
    from frameworks.jax_stages import sweep_manual

    calls = []
    monkeypatch.setattr(sweep_manual, "unstack", lambda p, f=sweep_manual.unstack: calls.append(1) or f(p))
    base = frameworks.TrainConfig(epochs=10, dtype="float64", hidden=(8, 6), activation=("gelu", "relu"))
    result = frameworks.sweep("jax/manual", circles_val, {"eta": [0.01, 0.3], "init": ["lab", "he"]}, seeds=[0],
                              config=base)
    assert calls == [1]
    for run in result.runs:
        assert max_relative_error(run.params, single("jax/manual", circles_val, run.config).params) <= 1e-12
    frameworks.sweep("jax/manual", circles_val, {"eta": [0.01]}, config=base.replace(optimizer=optim.Adam()))
    assert calls == [1]
    assert not sweep_manual.supports(base.replace(hidden=(65,), activation="tanh"), 2, 2)  # wide: the vmap wins


@pytest.mark.parametrize(("impl_id", "changes", "etas", "diverged"), [
    ("jax/grad", {"optimizer": optim.SGD(momentum=0.9)}, [0.03, 2e35], [None, None, 6, 4]),
    ("jax/manual", {}, [0.03, 3e35], [None, None, None, 2]),
    ("torch/nn", {}, [0.03, 3e35], [None, None, None, 2]),
])
def test_diverging_runs_are_marked_and_the_others_untouched(circles_val, impl_id, changes, etas, diverged) -> None:
    """float32: a huge eta overflows the logits at the stated epoch for some seeds, 0.03 trains; each run as alone
    (jax/grad vmapped with momentum; jax/manual runs last; torch/nn through torch.func)."""
    base = frameworks.TrainConfig(epochs=8, **changes)
    result = frameworks.sweep(impl_id, circles_val, {"eta": etas}, seeds=[0, 1], config=base)
    assert [run.diverged for run in result.runs] == diverged
    for run in result.runs:
        alone = single(impl_id, circles_val, run.config)
        assert run.diverged == alone.diverged and len(run.history["val_acc"]) == alone.epochs_done
        for metric, values in run.history.items():
            np.testing.assert_allclose(values, alone.history[metric], rtol=1e-5)  # float32: vmap's products
        assert max_relative_error(run.params, alone.params) <= 1e-5
    assert result.best()["setting"] == {"eta": 0.03}


def test_the_choice_is_made_on_validation_never_on_test(circles_val) -> None:
    """A dataset whose validation labels are flipped: the setting best on validation is then worst on test, and
    ``best`` picks it; without a validation split it refuses to choose."""
    flipped = circles_val._replace(Yval=circles_val.Yval[:, ::-1])
    result = frameworks.sweep("jax/grad", flipped, {"eta": [0.003, 0.3]}, seeds=[0, 1],
                              config=frameworks.TrainConfig(epochs=30))
    best = result.best()
    by_test = max(result.by_setting().items(), key=lambda kv: np.mean([r.final("test_acc") for r in kv[1]]))
    assert best["setting"] == {"eta": 0.003} and dict(zip(result.axes, by_test[0])) == {"eta": 0.3}
    assert best["test_acc"] < np.mean([r.final("test_acc") for r in by_test[1]])
    plain = frameworks.sweep("jax/grad", frameworks.load_dataset("circles"), {"eta": [0.03]}, seeds=[0],
                             config=frameworks.TrainConfig(epochs=1))
    with pytest.raises(KitError, match="chooses on a validation split"):
        plain.best()


def test_the_sweep_command_writes_its_table_and_figures(tmp_path, capsys) -> None:
    from frameworks.__main__ import main

    out = tmp_path / "sweep"
    assert main(["sweep", "jax/manual", "--eta", "0.01,0.1", "--nh", "5,10", "--seeds", "0-2", "--epochs", "5",
                 "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "chosen on validation:" in text and "reported apart" in text
    report = json.loads((out / "results.json").read_text())
    assert len(report["runs"]) == 12 and report["groups"] == 2  # nh is a shape: one program an nh
    assert {"final_val_acc", "best_val_acc", "diverged_epoch"} <= set(report["runs"][0])
    assert (out / "heatmap.png").stat().st_size > 0 and (out / "eta.png").stat().st_size > 0


@pytest.mark.parametrize(("options", "message"), [
    (["--eta", ""], "names no value"),
    (["--eta", "0.1,fast"], "expected float values"),
    (["--eta", "0.1,-1"], "eta must be a positive finite number"),
    (["--eta", "0.1", "--seeds", "9-0"], "range runs backwards"),
    (["--nh", "0,5"], "nh must be a positive integer"),
    (["--eta", ",".join(["0.1"] * 400), "--nh", ",".join(["5"] * 300)], "over 100,000: confirm it"),
    ([], "name at least one axis"),
])
def test_bad_grids_are_one_line_and_exit_2(capsys, options: list[str], message: str) -> None:
    from frameworks.__main__ import main

    assert main(["sweep", "jax/grad", *options, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_best_scores_and_refuses_alike(circles_val) -> None:
    result = frameworks.sweep("jax/grad", circles_val, {"eta": [0.03, 0.3]}, seeds=[0, 1],
                              config=frameworks.TrainConfig(epochs=5))
    assert result.best("val_loss")["setting"] in ({"eta": 0.03}, {"eta": 0.3})
    with pytest.raises(KitError, match="chooses on validation"):
        result.best("test_acc")
    with pytest.raises(KitError, match="with hidden set, nh is not used"):
        frameworks.sweep("jax/grad", circles_val, {"nh": [2, 5]}, config=frameworks.TrainConfig(hidden=(4, 3)))


def test_with_validation_needs_two_rows_a_class() -> None:
    tiny = frameworks.load_dataset("circles")
    one = tiny._replace(Xtrain=tiny.Xtrain[[0, 100, 101]], Ytrain=tiny.Ytrain[[0, 100, 101]])
    assert one.Ytrain.argmax(axis=1).tolist().count(0) == 1
    with pytest.raises(KitError, match="too few to keep one for validation"):
        with_validation(one, 0.5)


@pytest.mark.parametrize("impl_id", ["jax/grad", "jax/optax"])
def test_optimizer_hyperparameters_are_data(circles_val, impl_id: str) -> None:
    """float64: momentum values, Adam's weight decays and betas, clipping's max_norm and StepLR's gamma are data:
    16 runs in two programs (one an optimizer kind), where they were 16; a run whose every value differs from its
    group's first equals its single train, by hand (jax/grad) and through Optax (measured: bit for bit for
    momentum, 1e-15 with Adam)."""
    grid = {"optimizer": [optim.SGD(momentum=0.5), optim.SGD(momentum=0.9), optim.Adam(weight_decay=1e-3),
                          optim.Adam(weight_decay=1e-2, betas=(0.8, 0.99))],
            "clip": [optim.ClipGradNorm(0.5), optim.ClipGradNorm(2.0)],
            "schedule": [optim.StepLR(1, gamma=0.5), optim.StepLR(1, gamma=0.9)]}
    result = frameworks.sweep(impl_id, circles_val, grid, config=frameworks.TrainConfig(epochs=2, dtype="float64"))
    assert len(result.runs) == 16 and result.groups == 2
    for run in (result.runs[7], result.runs[15]):  # SGD(momentum=0.9), then Adam(1e-2), each with 2.0 and 0.9
        alone = single(impl_id, circles_val, run.config)
        assert max_relative_error(run.params, alone.params) <= 1e-12
        for metric, values in run.history.items():
            np.testing.assert_allclose(values, alone.history[metric], rtol=1e-12)


def test_zero_and_nonzero_are_structure_other_numbers_data() -> None:
    """The static key of a sweep's group: runs differing only in nonzero numbers share it; a zero against a
    nonzero value, a flag or a count are other programs; the values come back in the key's slots."""
    from frameworks._hyper import SLOT, fill, split

    def key(**changes):
        return split(frameworks.TrainConfig(**changes))[0]

    assert key(optimizer=optim.SGD(momentum=0.5)) == key(optimizer=optim.SGD(momentum=0.9))
    assert key(optimizer=optim.SGD()) != key(optimizer=optim.SGD(momentum=0.9))
    assert key(optimizer=optim.SGD(momentum=0.9)) != key(optimizer=optim.SGD(momentum=0.9, nesterov=True))
    assert key(optimizer=optim.AdamW(weight_decay=0.1)) == key(optimizer=optim.AdamW(weight_decay=0.01))
    assert key(optimizer=optim.Adam()) != key(optimizer=optim.Adam(amsgrad=True))
    assert key(optimizer=optim.RMSprop(alpha=0.9)) == key(optimizer=optim.RMSprop(alpha=0.99))
    assert key(schedule=optim.StepLR(2, gamma=0.5)) == key(schedule=optim.StepLR(2, gamma=0.1))
    assert key(schedule=optim.StepLR(2)) != key(schedule=optim.StepLR(3))  # a count: the program's shape
    config = frameworks.TrainConfig(optimizer=optim.Adam(betas=(0.8, 0.99), weight_decay=1e-3),
                                    schedule=optim.SequentialLR((optim.LinearLR(0.5), optim.ExponentialLR(0.9)), (2,)),
                                    clip=optim.ClipGradValue(1.0))
    static, values = split(config)
    assert values == (0.8, 0.99, 1e-8, 1e-3, 0.5, 1.0, 0.9, 1.0) and static.optimizer.betas == (SLOT, SLOT)
    assert split(frameworks.TrainConfig()) == (frameworks.TrainConfig(), ())  # the lab's: nothing is data
    filled = fill(static, values)
    assert filled.optimizer.betas == (0.8, 0.99) and filled.schedule.schedulers[1].gamma == 0.9
    assert filled.optimizer != config.optimizer  # a filled spec compares by identity (its values may be traced)
