"""What a newcomer trips on: one-line errors, honest help, clean logs, and the API's refusals.

The command line runs in a fresh interpreter here (``python -m frameworks`` in a temporary folder), so
stderr is a pipe as in a redirected log and each error is seen exactly as a user sees it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import frameworks
from frameworks._checkpoint import Checkpoint, save_checkpoint
from frameworks._params import check_memory

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "2"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m frameworks ARGS`` in ``cwd``, stdout and stderr captured (pipes: no terminal).

    The output is decoded as it was written: carriage returns are kept, not turned into newlines.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "COLUMNS": "120"}
    done = subprocess.run([sys.executable, "-m", "frameworks", *args], capture_output=True, cwd=cwd, env=env,
                          timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def bad_files(folder: Path) -> dict[str, Path]:
    """A text file named ``.npz`` and random bytes named ``.mat``."""
    (folder / "x.npz").write_text("Xtrain, Ytrain\n1, 0\n")
    (folder / "x.mat").write_bytes(np.random.default_rng(0).bytes(300))
    return {"npz": folder / "x.npz", "mat": folder / "x.mat"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "jax/manual", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "jax/manual", "--device", "cuda"], "Did you mean 'gpu'?"),
        (["train"], "required: implementation"),
        (["train", "jax/manual", "--nh", "1000000000000"], "GiB of float64 arrays"),
        (["train", "jax/manual", "--dataset", "{npz}"], "is not a NumPy .npz archive"),
        (["train", "jax/manual", "--dataset", "{mat}"], "is not a MATLAB .mat file"),
        (["train", "jax/manual", "--data-dir", "."], "--data-dir is for --dataset mnist only"),
        (["train", "jax/manual", "--resume", "{npz}"], "is not a readable checkpoint: not a NumPy .npz archive"),
        (["train", "jax/manual", "--torch-threads", "0"], "torch_threads must be a positive integer"),
        (["compare", "--model", "double_softmax"], "compare runs the double softmax as one of its trap modes"),
        (["compare", "--init", "native"], "compare runs each framework's native init as one of its trap modes"),
        (["compare", "--nh", "1000000000000"], "GiB of float64 arrays"),
    ],
    ids=["unknown-option", "device-cuda", "no-implementation", "huge-nh", "text-npz", "garbage-mat", "data-dir",
         "text-checkpoint", "no-threads", "compare-model", "compare-native", "compare-huge-nh"],
)
def test_bad_input_is_one_line(tmp_path, args, expected) -> None:
    files = bad_files(tmp_path)
    done = cli(*(a.format(**files) for a in args), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "\r" not in done.stderr, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]


def test_help_is_clean_and_shows_defaults(tmp_path) -> None:
    top = cli("--help", cwd=tmp_path)
    assert top.returncode == 0 and "`" not in top.stdout
    assert top.stdout.startswith("usage: python -m frameworks")
    train = cli("train", "--help", cwd=tmp_path)
    assert train.returncode == 0 and "`" not in train.stdout
    helps = {match[0]: match[1] for match in re.findall(r"^  (--[\w-]+)[^\n]*?(?:\n| {2,})(.*?)(?=^  -|\Z)",
                                                         train.stdout, flags=re.M | re.S)}
    options = ["--dataset", "--nh", "--eta", "--batch-size", "--epochs", "--seed", "--dtype", "--device",
               "--loss-reduction", "--precision", "--init", "--model", "--devices", "--no-fuse", "--checkpoint-every",
               "--progress"]
    for option in options:
        assert "default" in helps[option], (option, helps[option])
    assert "(default 10; digits/mnist 100)" in helps["--nh"] and "TrainConfig.mnist()" in train.stdout


def test_installed_command_names_itself(tmp_path) -> None:
    script = Path(sys.executable).parent / "rdfia-mlp"
    if not script.is_file():
        pytest.skip(f"the rdfia-mlp command is not installed next to {sys.executable}")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: rdfia-mlp")


def test_progress_bars_only_on_a_terminal(tmp_path) -> None:
    quiet = cli("train", "torch/manual", *TINY, "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert quiet.returncode == 0 and "\r" not in quiet.stderr, quiet.stderr
    shown = cli("train", "torch/manual", *TINY, "--progress", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert shown.returncode == 0 and "\r" in shown.stderr


def test_divergence_is_one_warning_line(tmp_path) -> None:
    done = cli("train", "jax/manual", "--eta", "1e38", "--loss-reduction", "sum", "--epochs", "5",
               "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1 and "diverged at epoch" in done.stdout
    assert done.stderr.splitlines() == [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(done.stderr.splitlines()) == 1 and "became NaN or infinite" in done.stderr, done.stderr


def test_load_dataset_refuses_what_it_cannot_take(tmp_path) -> None:
    with pytest.raises(frameworks.KitError, match="dataset name .* got int 5"):
        frameworks.load_dataset(5)
    with pytest.raises(frameworks.KitError, match="path= is for 'mnist' only"):
        frameworks.load_dataset("circles", path="x")
    files = bad_files(tmp_path)
    with pytest.raises(frameworks.KitError, match="not a NumPy .npz archive"):
        frameworks.load_dataset(files["npz"])
    with pytest.raises(frameworks.KitError, match="not a MATLAB .mat file"):
        frameworks.load_dataset(files["mat"])
    np.savez(tmp_path / "objects.npz", Xtrain=np.array([{}], dtype=object))
    with pytest.raises(frameworks.KitError, match="holds Python objects"):
        frameworks.load_dataset(tmp_path / "objects.npz")


def test_config_takes_numpy_numbers_and_stores_python_ones() -> None:
    config = frameworks.TrainConfig(nh=np.int64(10), eta=np.float32(0.5), epochs=np.uint8(3), seed=np.int32(1))
    assert (type(config.nh), type(config.eta), type(config.epochs), type(config.seed)) == (int, float, int, int)
    assert config == frameworks.TrainConfig(nh=10, eta=0.5, epochs=3, seed=1)
    assert hash(config) == hash(frameworks.TrainConfig(nh=10, eta=0.5, epochs=3, seed=1))
    assert json.loads(json.dumps(config.to_dict()))["nh"] == 10
    with pytest.raises(frameworks.KitError, match="nh must be a positive integer"):
        frameworks.TrainConfig(nh=np.bool_(True))


def test_memory_check(monkeypatch) -> None:
    check_memory(784, 100, 10, rows=70000)  # MNIST fits
    with pytest.raises(frameworks.KitError, match=r"nh=1000000000000.*GiB.*more than this machine's"):
        frameworks.init_params(2, 10**12, 2)
    with pytest.raises(frameworks.KitError, match="over 1000000000000 rows .* or fewer rows"):
        check_memory(2, 10, 2, rows=10**12)
    monkeypatch.setattr("frameworks._params.physical_memory", lambda: None)
    check_memory(2, 10**12, 2)  # where the OS does not say, nothing is refused


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoint_mode_follows_the_umask(tmp_path, umask) -> None:
    checkpoint = Checkpoint("jax/optax", frameworks.TrainConfig(), frameworks.init_params(2, 10, 2), {}, 0, {})
    previous = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "run.npz", checkpoint)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary file left behind


def test_numpy_integers_reach_every_entry_point(circles, tmp_path) -> None:
    """native_init's seed and sizes, and fit's checkpoint_every, take NumPy integers like TrainConfig does."""
    run = frameworks.get("jax/manual").train(circles, frameworks.TrainConfig(epochs=2), checkpoint=tmp_path / "c.npz",
                                             checkpoint_every=np.int64(1))
    assert run.epochs_done == 2
    assert frameworks.native_init("jax", np.int64(2), np.int64(3), np.int64(2), seed=np.int64(1))["Wh"].shape == (3, 2)
    with pytest.raises(frameworks.KitError, match="seed must be a non-negative integer"):
        frameworks.native_init("torch", 2, 3, 2, seed=-1)


def test_an_unwritable_out_folder_fails_before_training(tmp_path) -> None:
    (tmp_path / "taken").write_text("a file where the output folder should go")
    done = cli("train", "jax/manual", "--epochs", "100000", "--out", "taken", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_kit_logs_through_logging_quiet_unless_asked(tmp_path, capsys, caplog) -> None:
    """``-v`` shows the "frameworks" logger's INFO records on stderr (-vv its DEBUG ones); without it nothing, and
    the logger's level and handlers are as before afterwards. As a library the kit only emits records."""
    import logging

    from frameworks.__main__ import main

    logger = logging.getLogger("frameworks")
    before = (logger.level, list(logger.handlers))
    options = ["train", "jax/manual", "--epochs", "2", "--out", str(tmp_path)]
    assert main(options) == 0
    assert "INFO" not in capsys.readouterr().err
    assert main([*options, "-vv"]) == 0
    err = capsys.readouterr().err
    assert "INFO frameworks._training: jax/manual on circles: 2 epochs" in err
    assert "DEBUG frameworks._training: jax/manual: epoch 2 of 2" in err
    assert (logger.level, list(logger.handlers)) == before
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="frameworks"):
        frameworks.get("jax/manual").train(frameworks.load_dataset("circles"), frameworks.TrainConfig(epochs=1))
    assert [r.name for r in caplog.records] == ["frameworks._training"]
