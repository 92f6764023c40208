"""The contract: the thin import, the registry, config, init, batch order, data loading and its refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import frameworks
from frameworks import _data
from frameworks.__main__ import main
from shared_data import generate_circles

ROOT = Path(__file__).resolve().parents[1]


def test_import_loads_neither_torch_nor_jax() -> None:
    code = ("import sys, frameworks; frameworks.load_dataset('circles'); "
            "print(sorted({'torch', 'jax', 'flax', 'optax'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_registry() -> None:
    assert frameworks.IMPLEMENTATIONS == (
        "torch/manual", "torch/autograd", "torch/nn", "torch/optim", "jax/manual", "jax/grad", "jax/flax", "jax/optax")
    assert {frameworks.get(i).lesson for i in frameworks.IMPLEMENTATIONS} == set(frameworks.STAGES)
    assert all(isinstance(frameworks.get(i).stage, frameworks.Stage) for i in frameworks.IMPLEMENTATIONS)
    with pytest.raises(frameworks.KitError, match="Did you mean 'jax/optax'"):
        frameworks.get("jax/optx")


def test_config_defaults_and_validation() -> None:
    config = frameworks.TrainConfig()
    assert (config.nh, config.eta, config.batch_size, config.epochs, config.seed) == (10, 0.03, 10, 150, 0)
    assert (config.dtype, config.device, config.loss_reduction) == ("float32", None, "mean")
    assert frameworks.TrainConfig.mnist().nh == 100 and frameworks.TrainConfig.mnist().batch_size == 100
    for bad in ({"eta": 0}, {"eta": -1.0}, {"batch_size": 0}, {"nh": 2.5}, {"dtype": "float16"},
                {"device": "cuda"}, {"loss_reduction": "max"}, {"epochs": -3}):
        with pytest.raises(frameworks.KitError):
            frameworks.TrainConfig(**bad)
    with pytest.raises(frameworks.KitError, match="no field"):
        config.replace(learning_rate=0.1)


def test_init_params_is_the_labs() -> None:
    params = frameworks.init_params(200, 300, 100, seed=3)
    assert params["Wh"].shape == (300, 200) and params["Wy"].shape == (100, 300)
    assert params["Wh"].dtype == np.float64
    assert np.all(params["bh"] == 0) and np.all(params["by"] == 0)
    weights = np.concatenate([params["Wh"].ravel(), params["Wy"].ravel()])
    assert abs(weights.mean()) < 0.01 and abs(weights.std() - 0.3) < 0.005  # 90000 draws: se 0.001 and 0.0007
    again = frameworks.init_params(200, 300, 100, seed=3)
    assert all(np.array_equal(params[n], again[n]) for n in params)


def test_batch_order_is_shared_and_drops_the_remainder() -> None:
    order = frameworks.BatchOrder(23, 5, seed=0)
    first, second = order.next_epoch(), order.next_epoch()
    assert first.shape == (4, 5) and len(set(first.ravel())) == 20
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(frameworks.BatchOrder(23, 5, seed=0).epochs(2), np.stack([first, second]))
    with pytest.raises(frameworks.KitError, match="larger than the training set"):
        frameworks.BatchOrder(23, 24, seed=0)


def test_shipped_circles(circles) -> None:
    assert circles.Xtrain.shape == circles.Xtest.shape == (200, 2)
    assert circles.Ytrain.sum(axis=0).tolist() == circles.Ytest.sum(axis=0).tolist() == [100, 100]
    radius = np.hypot(*circles.Xtrain.T)
    assert 0.9 < radius[circles.Ytrain[:, 0] == 1].mean() < 1.1  # outer ring, about 1 (course file: 1.03)
    assert 0.3 < radius[circles.Ytrain[:, 1] == 1].mean() < 0.45  # inner blob (course file: 0.39)


def test_generator_reproduces_the_shipped_arrays(circles) -> None:
    arrays = generate_circles.generate()
    for key, value in zip(_data.KEYS, circles[:4]):
        np.testing.assert_array_equal(arrays[key], value)


def test_course_file_loads(course_circles) -> None:
    assert course_circles.Xtrain.shape == (200, 2) and course_circles.Ytrain.shape == (200, 2)
    assert course_circles.Ytrain.dtype == np.float64


def test_refuses_a_corrupted_shipped_file(tmp_path, monkeypatch) -> None:
    corrupt = tmp_path / "circles.npz"
    data = bytearray((ROOT / "shared_data" / "circles.npz").read_bytes())
    data[-200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    monkeypatch.setattr(_data, "shipped_dir", lambda: tmp_path)
    with pytest.raises(frameworks.KitError, match="corrupted: its SHA-256"):
        frameworks.load_dataset("circles")
    corrupt.unlink()
    with pytest.raises(frameworks.KitError, match="missing"):
        frameworks.load_dataset("circles")


def arrays_with(**changes: np.ndarray) -> dict[str, np.ndarray]:
    """A small valid dataset (4 train rows, 2 test rows, 2 features, 2 classes) with ``changes`` applied."""
    good = {"Xtrain": np.zeros((4, 2)), "Ytrain": np.eye(2)[[0, 1, 0, 1]], "Xtest": np.zeros((2, 2)),
            "Ytest": np.eye(2)[[0, 1]]}
    return good | changes


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (arrays_with(Ytrain=np.eye(2)[[0, 1, 0]]), "3 rows but X has 4"),
        (arrays_with(Xtest=np.zeros((2, 3))), "2 features but Xtest has 3"),
        (arrays_with(Xtrain=np.zeros(4)), "must be 2-D"),
        (arrays_with(Xtrain=np.full((4, 2), np.nan)), "NaN or infinite"),
        (arrays_with(Ytrain=np.full((4, 2), 0.5)), "not one-hot"),
        (arrays_with(Xtrain=np.zeros((0, 2)), Ytrain=np.zeros((0, 2))), "is empty"),
    ],
)
def test_refuses_bad_arrays(tmp_path, arrays, message) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(frameworks.KitError, match=message):
        frameworks.load_dataset(path)


def test_integer_labels_are_one_hot_encoded(tmp_path) -> None:
    path = tmp_path / "ids.npz"
    np.savez(path, **arrays_with(Ytrain=np.array([0, 2, 1, 2]), Ytest=np.array([1, 0])))
    data = frameworks.load_dataset(path)
    np.testing.assert_array_equal(data.Ytrain, np.eye(3)[[0, 2, 1, 2]])
    assert data.Ytest.shape == (2, 3)


def test_refuses_missing_files_and_unknown_names(tmp_path) -> None:
    with pytest.raises(frameworks.KitError, match="no dataset file"):
        frameworks.load_dataset(tmp_path / "nope.mat")
    with pytest.raises(frameworks.KitError, match="unknown dataset 'circels'.*Did you mean 'circles'"):
        frameworks.load_dataset("circels")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "torch/manul"], "unknown implementation 'torch/manul'"),
        (["train", "jax/grad", "--dataset", "nowhere.mat"], "no dataset file"),
        (["train", "jax/grad", "--eta", "-1"], "eta must be a positive"),
        (["train", "jax/grad", "--batch-size", "500", "--epochs", "1"], "larger than the training set"),
        (["train", "torch/nn", "--device", "tpu", "--epochs", "1"], "PyTorch sees no 'tpu' device"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, argv, message) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_train_writes_history_and_curves(tmp_path) -> None:
    assert main(["train", "jax/optax", "--epochs", "3", "--out", str(tmp_path)]) == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["history"]["test_acc"]) == 3 and history["implementation"] == "jax/optax"
    assert (tmp_path / "curves.png").stat().st_size > 1000


# Left out of the source copy the wheel is built from: build/ would leak its stale files into the wheel.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "reports", "_build", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis")


@pytest.mark.slow
def test_loads_after_a_non_editable_install(tmp_path) -> None:
    """Build the wheel from a clean copy, unpack it alone on the path, and load the shipped data from there."""
    if shutil.which("pip") is None and subprocess.run([sys.executable, "-m", "pip", "--version"]).returncode:
        pytest.skip("pip is not available")
    shutil.copytree(ROOT, tmp_path / "src", ignore=NOT_SOURCE)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(tmp_path / "src")], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    shutil.unpack_archive(wheel, tmp_path / "site", format="zip")
    code = ("import frameworks, hashlib; d = frameworks.load_dataset('circles'); "
            "print(frameworks.__file__); print(d.Xtrain.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.splitlines()[0].startswith(str(tmp_path / "site"))
    assert out.stdout.splitlines()[1] == "(200, 2)"
    data = tmp_path / "site" / "frameworks" / "data" / "circles.npz"
    assert hashlib.sha256(data.read_bytes()).hexdigest() == _data.CHECKSUMS["circles.npz"]
    top_level = {path.name for path in (tmp_path / "site").iterdir() if not path.name.endswith(".dist-info")}
    assert top_level == {"frameworks"}  # no top-level shared_data
    packages = {init.parent.relative_to(ROOT) for init in (ROOT / "frameworks").rglob("__init__.py")}
    installed = {init.parent.relative_to(tmp_path / "site") for init in (tmp_path / "site").rglob("__init__.py")}
    assert packages | {Path("frameworks/data")} == installed  # pyproject.toml lists every subpackage


@pytest.mark.parametrize(
    ("arrays", "extra", "message"),
    [
        ({"Xtrain": np.full((4, 2), np.inf)}, [], "NaN or infinite"),
        ({"Xtrain": np.zeros((0, 2)), "Ytrain": np.zeros((0, 2))}, [], "is empty"),
        ({"Ytrain": np.full((4, 2), 0.5)}, [], "not one-hot"),
        ({"Ytrain": np.eye(2)[[0, 1, 0]]}, [], "3 rows but X has 4"),
        ({}, ["--batch-size", "0"], "batch_size must be a positive integer"),
        ({}, ["--dataset", "circels"], "unknown dataset 'circels'"),
        ({}, ["--device", "tpu"], "JAX sees no 'tpu' device"),
        ({}, ["--nh", "-2"], "nh must be a positive integer"),
    ],
)
def test_cli_bad_data_and_settings(tmp_path, capsys, arrays, extra, message) -> None:
    data = {"Xtrain": np.zeros((4, 2)), "Ytrain": np.eye(2)[[0, 1, 0, 1]], "Xtest": np.zeros((2, 2)),
            "Ytest": np.array([0, 1])} | arrays  # integer test labels: accepted, one-hot encoded
    np.savez(tmp_path / "data.npz", **data)
    argv = ["train", "jax/manual", "--dataset", str(tmp_path / "data.npz"), "--batch-size", "2", "--epochs", "1",
            *extra, "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_accepts_integer_labels(tmp_path) -> None:
    np.savez(tmp_path / "ids.npz", Xtrain=np.random.default_rng(0).normal(size=(8, 3)), Ytrain=np.arange(8) % 3,
             Xtest=np.zeros((3, 3)), Ytest=np.array([2, 1, 0]))
    assert main(["train", "torch/nn", "--dataset", str(tmp_path / "ids.npz"), "--batch-size", "4", "--epochs", "2",
                 "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["parity", "--device", "tpu"], "no implementation runs on 'tpu' here"),
        (["bench", "--quick", "--torch-threads", "0"], "--torch-threads must be a positive integer"),
        (["parity", "--seed", "-1"], "seed must be a non-negative integer"),
        (["train", "jax/grad", "--epochs", "1", "--out", "/proc/forbidden"], "check the --out/--checkpoint path"),
    ],
)
def test_more_cli_errors_are_one_clear_line(capsys, argv, message) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_string_labels_and_zero_batch_are_refused(tmp_path) -> None:
    np.savez(tmp_path / "s.npz", Xtrain=np.zeros((2, 2)), Ytrain=np.array(["a", "b"]), Xtest=np.zeros((1, 2)),
             Ytest=np.array(["a"]))
    with pytest.raises(frameworks.KitError, match="labels must be one-hot rows or integer class ids"):
        frameworks.load_dataset(tmp_path / "s.npz")
    with pytest.raises(frameworks.KitError, match="batch_size must be a positive integer"):
        frameworks.BatchOrder(10, 0, seed=0)


def test_compare_with_only_a_manual_stage(tmp_path) -> None:
    """No module stage selected: the double-softmax trap has nothing to run and is left out."""
    out = tmp_path / "r"
    assert main(["compare", "--only", "jax/manual", "--epochs", "2", "--seeds", "0", "--no-progress",
                 "--out", str(out)]) == 0
    runs = json.loads((out / "report.json").read_text())["runs"]
    assert set(runs) == {"lab", "sum", "native-init"} and set(runs["lab"]) == {"torch/manual", "jax/manual"}
