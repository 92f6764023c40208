"""The main job: all eight compared, the traps reproduced as their causes predict, digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

import frameworks
from frameworks.__main__ import main
from frameworks.tolerances import max_relative_error


def test_compare_writes_the_report_and_the_curves_coincide_in_float64(tmp_path) -> None:
    out = tmp_path / "report"
    assert main(["compare", "--dataset", "circles", "--epochs", "6", "--dtype", "float64", "--seeds", "2",
                 "--out", str(out)]) == 0
    for name in ("report.md", "results.md", "results.csv", "report.json", "curves.png", "traps.png",
                 "boundaries/jax-optax.png", "boundaries/torch-manual.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    lab = report["runs"]["lab"]
    assert sorted(lab) == sorted(frameworks.IMPLEMENTATIONS)
    ref = lab["torch/manual"]["history"]
    for run in lab.values():
        for metric, values in run["history"].items():
            np.testing.assert_allclose(values, ref[metric], rtol=1e-12, atol=1e-14)
    assert set(report["runs"]) == {"lab", "sum", "native-init", "double-softmax"}
    assert sorted(report["runs"]["double-softmax"]) == sorted(frameworks.MODULE_STAGES)
    text = (out / "report.md").read_text()
    assert "Summed against averaged gradient" in text and "SVC(kernel='rbf')" in text


@pytest.mark.parametrize("impl_id", frameworks.IMPLEMENTATIONS)
def test_summed_gradient_equals_averaged_with_eta_times_batch(circles, impl_id: str) -> None:
    """The cheat-sheet's trap, as its cause predicts: summing the batch gradient multiplies eta by B."""
    config = frameworks.TrainConfig(dtype="float64", epochs=5)
    summed = frameworks.get(impl_id).train(circles, config.replace(loss_reduction="sum"))
    averaged = frameworks.get(impl_id).train(circles, config.replace(eta=config.eta * config.batch_size))
    assert max_relative_error(summed.params, averaged.params) <= 1e-12


def test_native_init_differs_between_frameworks_and_agrees_within_one(circles) -> None:
    config = frameworks.TrainConfig(dtype="float64", epochs=2, init="native")
    runs = {i: frameworks.get(i).train(circles, config) for i in ("torch/manual", "torch/optim", "jax/manual", "jax/flax")}
    assert max_relative_error(runs["torch/optim"].params, runs["torch/manual"].params) <= 1e-12
    assert max_relative_error(runs["jax/flax"].params, runs["jax/manual"].params) <= 1e-12
    assert max_relative_error(runs["jax/manual"].params, runs["torch/manual"].params) > 0.1


def test_double_softmax_trains_worse_as_predicted(circles) -> None:
    """The extra softmax bounds the loss below by log(1 + 1/e) for two classes and slows training."""
    config = frameworks.TrainConfig(dtype="float64", loss_reduction="sum", epochs=50)
    lab = frameworks.get("torch/nn").train(circles, config)
    trap = frameworks.get("torch/nn").train(circles, config.replace(model="double_softmax"))
    assert min(trap.history["train_loss"]) >= np.log(1 + np.exp(-1)) - 1e-12
    assert trap.history["train_loss"][-1] > lab.history["train_loss"][-1]
    assert trap.history["test_acc"][-1] < lab.history["test_acc"][-1]
    with pytest.raises(frameworks.KitError, match="needs a model object"):
        frameworks.get("jax/manual").train(circles, config.replace(model="double_softmax"))


@pytest.mark.slow
@pytest.mark.parametrize("impl_id", frameworks.IMPLEMENTATIONS)
def test_digits_with_the_labs_mnist_settings(impl_id: str) -> None:
    """nh=100, batch 100, eta 0.03, 100 epochs: measured 0.964 test accuracy for all eight (float32)."""
    pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")
    result = frameworks.get(impl_id).train(frameworks.load_dataset("digits"), frameworks.TrainConfig.mnist())
    assert result.history["test_acc"][-1] >= 0.95


def test_a_diverging_compare_still_writes_its_report(tmp_path) -> None:
    """eta=3e35 overflows the weights in epoch 2 of every run: the report says so, nothing crashes."""
    out = tmp_path / "report"
    assert main(["compare", "--eta", "3e35", "--epochs", "4", "--seeds", "0", "--no-progress", "--out", str(out)]) == 0
    import csv

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    lab = [row["diverged_at_epoch"] for row in rows if row["mode"] == "lab"]
    summed = [row["diverged_at_epoch"] for row in rows if row["mode"] == "sum"]
    assert lab == ["2"] * 8 and summed == ["1"] * 8  # the summed step is 10 times longer: it overflows sooner
    assert "the loss became infinite for torch/manual (epoch 1)" in (out / "report.md").read_text()
