"""The main job: all eight compared, the traps reproduced as their causes predict, digits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import frameworks
from frameworks import compare, oracle, plots
from frameworks.__main__ import main
from frameworks.tolerances import max_relative_error

ROOT = Path(__file__).resolve().parents[1]


def test_compare_writes_the_report_and_the_curves_coincide_in_float64(tmp_path, capsys) -> None:
    out = tmp_path / "report"
    assert main(["compare", "--dataset", "circles", "--epochs", "6", "--dtype", "float64", "--seeds", "2",
                 "--out", str(out)]) == 0
    for name in ("report.md", "results.md", "results.csv", "report.json", "curves.png", "traps.png",
                 "boundaries/jax-optax.png", "boundaries/torch-manual.png"):
        assert (out / name).is_file(), name
    wrote = capsys.readouterr().out.strip().splitlines()[-1]
    assert wrote.startswith(f"wrote {out}/: ")
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(written) == 6 + 8
    for path in written:  # every file, those in boundaries/ under their folder
        assert path.name in wrote and (path.parent == Path(".") or f"{path.parent}/ (8: " in wrote), path
    text = (out / "report.md").read_text()
    for path in written:
        if path.parent.name == "boundaries":
            assert f"]({path})" in text, f"report.md does not show {path}"
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
    ids = ("torch/manual", "torch/optim", "jax/manual", "jax/flax")
    runs = {i: frameworks.get(i).train(circles, config) for i in ids}
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


@pytest.mark.parametrize("arguments", [
    ["--seeds", "-1"], ["--only", ""], ["--only", " , "], ["--only", "jax/manual,"], ["--only", "jax/nope"],
])
def test_bad_arguments_are_refused_before_anything_trains(tmp_path, arguments: list[str]) -> None:
    """One line on stderr, exit status 2, nothing trained or written (the run used to crash after training)."""
    out = tmp_path / "report"
    command = [sys.executable, "-m", "frameworks", "compare", *arguments, "--epochs", "1", "--out", str(out)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr
    assert done.stdout == "" and not out.exists()


def test_only_keeps_each_id_once_with_the_reference_first() -> None:
    assert compare.selected_implementations("jax/manual,jax/manual") == ("torch/manual", "jax/manual")
    assert compare.selected_implementations(" jax/flax , torch/nn") == ("torch/manual", "torch/nn", "jax/flax")
    assert compare.selected_implementations(None) == frameworks.IMPLEMENTATIONS


def fake_run(impl_id: str, losses: list[float], accs: list[float], *,
             diverged: int | None = None) -> frameworks.TrainResult:
    """A run with the given train and test losses and accuracies (the same for train and test)."""
    history = {"train_loss": list(losses), "test_loss": list(losses), "train_acc": list(accs), "test_acc": list(accs)}
    return frameworks.TrainResult(impl_id, frameworks.TrainConfig(), frameworks.init_params(2, 3, 2), history,
                                  diverged=diverged)


def test_agreement_finds_the_epoch_the_runs_part() -> None:
    losses = [2.0, 1.0, 0.5, 0.4, 0.3]
    together = {"torch/manual": fake_run("torch/manual", losses, [0.5] * 5),
                "jax/manual": fake_run("jax/manual", np.add(losses, 5e-5), [0.5] * 5)}
    assert compare.agreement(together, "float32").agree
    assert compare.agreement(together, "float64").parted_at == 1  # 5e-5 is far over float64's 1e-9
    apart = together | {"jax/grad": fake_run("jax/grad", [2.0, 1.0, 0.5, 0.45, 0.3], [0.5] * 5)}
    found = compare.agreement(apart, "float32")
    assert (found.parted_at, found.first_to_part, found.reference) == (4, "jax/grad", "torch/manual")
    large = {"torch/manual": fake_run("torch/manual", [110.0, 130.0, 120.0], [0.1] * 3),  # summed-gradient losses
             "jax/manual": fake_run("jax/manual", [110.0005, 130.004, 120.5], [0.1] * 3)}
    assert compare.agreement(large, "float32").parted_at == 3  # relative above a loss of 1: rounding is not parting
    diverged = together | {"jax/flax": fake_run("jax/flax", losses[:2], [0.5] * 2, diverged=3)}
    assert compare.agreement(diverged, "float32").parted_at == 3


def digits_like_runs() -> dict[str, dict[str, frameworks.TrainResult]]:
    """Lab runs that agree; summed runs that part at epoch 3 and end between 0.18 and 0.77 (as on digits)."""
    lab = {i: fake_run(i, [2.0, 0.5, 0.2, 0.13], [0.3, 0.8, 0.9, 0.964]) for i in frameworks.IMPLEMENTATIONS}
    ends = dict(zip(frameworks.IMPLEMENTATIONS, (0.18, 0.77, 0.3, 0.3, 0.5, 0.5, 0.2, 0.6)))
    summed = {i: fake_run(i, [110.0, 130.0, 120.0 + k, 100.0 + 3 * k], [0.1, 0.1, 0.2, end])
              for k, (i, end) in enumerate(ends.items())}
    trap = {i: fake_run(i, [2.2, 1.9, 1.85, 1.82], [0.2, 0.5, 0.6, 0.669]) for i in frameworks.MODULE_STAGES}
    return {"lab": lab, "sum": summed, "double-softmax": trap}


def test_the_report_gives_disagreeing_runs_as_a_range_and_says_where_they_parted() -> None:
    """Issue 16.1: never one averaged figure for runs that disagree; the bound of the dataset at hand."""
    runs = digits_like_runs()
    study = {"implementation": "jax/manual", "dtype": "float32", "dataset": "digits", "seeds": [0, 1],
             "rows": {name: {"accs": [0.9, 0.9], "mean": 0.9, "min": 0.9, "max": 0.9, "diverged": 0}
                      for name in ("mean (lab-faithful)", "sum", "PyTorch default init", "Flax default init")}}
    text = compare.explain(runs, study, frameworks.TrainConfig.mnist(), classes=10)
    summed = text.split("### Summed against averaged gradient")[1].split("###")[0]
    assert "0.180 to 0.770, the runs disagreeing from epoch 3 on" in summed
    assert "torch/manual 0.180, torch/autograd 0.770" in summed and "at epoch 3 `torch/autograd`" in summed
    assert f"{np.mean([0.18, 0.77, 0.3, 0.3, 0.5, 0.5, 0.2, 0.6]):.3f}" not in summed  # no silent mean
    assert "trains faster" not in summed
    assert "0.964 (all 8 agree)" in text
    assert f"({np.log(1 + 9 / np.e):.3f} for 10 classes)" in text and "0.313" not in text
    heading = next(line for line in text.splitlines() if line.startswith("### Over seeds"))
    assert heading == "### Over seeds 0 to 1 (jax/manual alone, float32)"
    assert "identical for all eight" not in text and "tests/test_trajectories.py" in text
    assert "The summed-gradient row is this implementation's alone" in text


def test_the_report_gives_one_figure_where_the_runs_agree() -> None:
    runs = digits_like_runs()
    runs["sum"] = {i: fake_run(i, [0.6, 0.4, 0.3, 0.2], [0.7, 0.8, 0.9, 0.97]) for i in frameworks.IMPLEMENTATIONS}
    text = compare.explain(runs, None, frameworks.TrainConfig(), classes=2)
    assert "Test accuracy with the summed gradient: 0.970 (all 8 agree)" in text and "trains faster" in text
    assert "(0.313 for 2 classes)" in text
    assert "the lab's init, N(0, 0.3^2) weights" in text
    assert "(He normal, drawn once in NumPy)" in compare.explain(runs, None, frameworks.TrainConfig(init="he"),
                                                                 classes=2)


def test_compare_on_digits_checks_the_gradients_of_its_own_first_batch(tmp_path) -> None:
    """Issue 11: the parity table under a digits report is computed on digits, with the run's network and batch."""
    pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")
    out = tmp_path / "report"
    assert main(["compare", "--dataset", "digits", "--only", "jax/flax", "--epochs", "2", "--seeds", "1",
                 "--no-progress", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    data, config = frameworks.load_dataset("digits"), frameworks.TrainConfig.mnist()
    rows = frameworks.BatchOrder(len(data.Xtrain), config.batch_size, seed=config.seed).next_epoch()[0]
    assert report["parity_batch"] == {"dataset": "digits", "nh": 100, "batch_size": 100, "seed": 0,
                                      "rows": rows.tolist()}
    params = frameworks.init_params(data.nx, config.nh, data.ny, seed=config.seed)
    expected = oracle.loss(params, data.Xtrain[rows], data.Ytrain[rows])
    for table in report["parity"]:
        assert table["ids"] == ["torch/manual", "jax/flax"] and table["passed"]
        np.testing.assert_allclose(table["loss"], expected, rtol=1e-6)
    text = (out / "report.md").read_text()
    assert "## Gradient parity (the first batch of this run: digits, nh=100, batch 100)" in text
    assert report["seed_study"]["implementation"] == "jax/manual" and report["seed_study"]["dtype"] == "float32"
    assert "### Over seeds 0 to 0 (jax/manual alone, float32)" in text
    assert "(1.461 for 10 classes)" in text


@pytest.fixture
def figures(monkeypatch) -> list[Any]:
    """The figures plots draws, kept instead of saved."""
    drawn: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    return drawn


def test_curves_show_both_frameworks_and_one_legend_outside(circles, figures) -> None:
    runs = {i: {"history": fake_run(i, [0.7, 0.6, 0.5], [0.5, 0.6, 0.7]).history} for i in frameworks.IMPLEMENTATIONS}
    plots.stage_panels(runs, frameworks.STAGES, Path("curves.png"), title="t")
    (fig,) = figures
    axes = fig.axes
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in axes)
    for ax in axes:  # the JAX line drawn on top of the PyTorch one, both visible: another width, JAX marked
        torch_line, jax_line = (line for line in ax.lines if "train" in line.get_label())
        assert torch_line.get_linewidth() > 2 * jax_line.get_linewidth() and jax_line.get_marker() == "o"
        assert torch_line.get_marker() in ("None", None, "")
    assert [bool(ax.get_ylabel()) for ax in axes] == [True, False, False, False] * 2  # no label crowds a neighbour


def test_traps_use_a_log_loss_axis_and_a_legend_outside(figures) -> None:
    runs = digits_like_runs()
    plots.trap_curves(runs, Path("traps.png"), title="t")
    (fig,) = figures
    accuracy, loss = fig.axes
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    assert len(fig.legends) == 1 and not accuracy.get_legend() and not loss.get_legend()


def test_decision_boundaries_name_their_axes_and_classes(circles, figures) -> None:
    params = frameworks.init_params(2, 10, 2, seed=0)
    plots.decision_boundary(lambda G: oracle.forward(params, G)["yhat"], circles.Xtest, circles.Ytest,
                            Path("b.png"), title="t")
    (ax,) = figures[0].axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]
