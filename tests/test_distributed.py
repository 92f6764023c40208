"""Beyond one device: JAX sharding on virtual CPU devices, PyTorch DDP and JAX processes on gloo, with parity."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import frameworks
from frameworks.tolerances import max_relative_error

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 150  # the lab's full circles run


@pytest.fixture(scope="module")
def sharded() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "tests.sharded_check", str(EPOCHS)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)
    if done.returncode:
        pytest.fail(f"the sharded check failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def test_virtual_devices_exist(sharded) -> None:
    assert sharded["cpu_devices"] == 8


@pytest.mark.parametrize("devices", [2, 4, 8])
@pytest.mark.parametrize("impl_id", ["jax/manual", "jax/grad", "jax/flax", "jax/optax"])
def test_sharded_gradients_equal_single_device(sharded, impl_id: str, devices: int) -> None:
    """The README states 3e-16 (measured 3.2e-16 at most); 1e-15 would catch a regression the table's 1e-12 hides."""
    assert sharded["gradients"][f"{impl_id}@{devices}"] <= 1e-15


@pytest.mark.parametrize("devices", [2, 4, 8])
@pytest.mark.parametrize("impl_id", ["jax/manual", "jax/optax"])
def test_sharded_circles_trajectory_equals_single_device(sharded, impl_id: str, devices: int) -> None:
    """The README states 3e-15 after the lab's run (measured 2.9e-15 at most)."""
    assert sharded["trajectories"][f"{impl_id}@{devices}"] <= 1e-14


@pytest.mark.parametrize("impl_id", ["jax/grad", "jax/manual"])
def test_a_sweep_split_over_8_virtual_devices_equals_the_one_device_sweep(sharded, impl_id: str) -> None:
    """The runs axis split over the devices (leading for the vmap, last for stage 1's runs-last program)."""
    assert sharded[f"sweep {impl_id}"] <= 1e-12


def test_the_compiler_inserts_the_all_reduce(sharded) -> None:
    assert sharded["all_reduce"]["jax/manual@4"]
    assert sharded["all_reduce"]["batch_spec"] == "P('data',)"  # the batch split by rows


def test_indivisible_batch_is_refused() -> None:
    with pytest.raises(frameworks.KitError, match="not divisible by devices=4"):
        frameworks.TrainConfig(batch_size=10, devices=4)


def test_too_many_devices_is_a_clear_error(circles) -> None:
    with pytest.raises(frameworks.KitError, match="xla_force_host_platform_device_count"):
        frameworks.get("jax/manual").train(circles, frameworks.TrainConfig(batch_size=64, devices=64, epochs=1))
    with pytest.raises(frameworks.KitError, match="torchrun"):
        frameworks.get("torch/optim").train(circles, frameworks.TrainConfig(batch_size=8, devices=2, epochs=1))


def _gloo_can_start() -> str | None:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        return "this PyTorch build has no gloo backend"
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
    except OSError as err:
        return f"cannot open a loopback socket for the rendezvous: {err}"
    return None


@pytest.mark.parametrize(("impl_id", "reduction"), [("torch/optim", "mean"), ("torch/nn", "sum")])
def test_ddp_on_two_gloo_processes_equals_one_process_and_jax(circles, tmp_path, impl_id: str, reduction: str) -> None:
    reason = _gloo_can_start()
    if reason:
        pytest.skip(reason)
    from frameworks.torch_stages.ddp import run_ddp

    result = run_ddp(impl_id, 2, tmp_path, "--dtype", "float64", "--epochs", str(EPOCHS), "--loss-reduction", reduction)
    assert result["world_size"] == 2
    config = frameworks.TrainConfig(dtype="float64", loss_reduction=reduction)
    tol = 5e-14  # the README states 9e-15 (measured 8.9e-15 at most, summed loss against jax/optax)
    for other in (impl_id, "jax/optax"):
        single = frameworks.get(other).train(circles, config)
        assert max_relative_error(result["params"], single.params) <= tol
        assert max(abs(a - b) for a, b in zip(result["history"]["test_loss"], single.history["test_loss"])) <= tol


def test_ddp_with_adam_a_schedule_and_clipping_equals_one_process(circles, tmp_path) -> None:
    """torch/nn's by-hand Adam (through the DDP wrapper's parameters), StepLR and ClipGradNorm on a deeper net:
    the single-process run (measured 3.3e-15). The kit's dropout masks are refused under DDP (its wrapper's
    forward takes none), in one line."""
    reason = _gloo_can_start()
    if reason:
        pytest.skip(reason)
    from frameworks import optim
    from frameworks.torch_stages.ddp import run_ddp

    options = ("--epochs", "3", "--dtype", "float64", "--optimizer", "Adam(amsgrad=True)", "--eta", "0.01",
               "--schedule", "StepLR(1, 0.5)", "--clip", "ClipGradNorm(0.5)", "--hidden", "8,4", "--norm", "layer")
    result = run_ddp("torch/nn", 2, tmp_path, *options)
    config = frameworks.TrainConfig(epochs=3, dtype="float64", optimizer=optim.Adam(amsgrad=True), eta=0.01,
                                    schedule=optim.StepLR(1, 0.5), clip=optim.ClipGradNorm(0.5), hidden=(8, 4),
                                    norm="layer")
    single = frameworks.get("jax/manual").train(circles, config)
    assert max_relative_error(result["params"], single.params) <= 5e-14
    with pytest.raises(frameworks.KitError, match="DDP runs the model through its wrapper"):
        run_ddp("torch/nn", 2, tmp_path, "--epochs", "1", "--dropout", "0.2")


def test_ddp_refuses_an_indivisible_batch(tmp_path) -> None:
    reason = _gloo_can_start()
    if reason:
        pytest.skip(reason)
    from frameworks.torch_stages.ddp import run_ddp

    with pytest.raises(frameworks.KitError, match="not divisible by the 3 processes"):
        run_ddp("torch/optim", 3, tmp_path, "--epochs", "1")


def test_two_jax_processes_equal_one_process(circles, tmp_path) -> None:
    """The documented one-machine command: 2 JAX processes (jax.distributed, gloo, a coordinator on 127.0.0.1),
    each feeding its own half of every batch, equal the single-process run: float64, 3 epochs, measured 1.6e-15 on
    the params (relative) and 1.1e-16 on the history; asserted within 1e-13 and 1e-14 (the issue asks 1e-12)."""
    import numpy as np

    from frameworks._launch import unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "out"
    launched = subprocess.Popen([sys.executable, "-m", "frameworks", "launch", "--processes", "2", "--timeout", "60",
                                 "--", "train", "jax/manual", "--devices", "2", "--dtype", "float64", "--epochs", "3",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"}, start_new_session=True)
    single = frameworks.get("jax/manual").train(circles, frameworks.TrainConfig(dtype="float64", epochs=3))
    try:
        stdout, stderr = launched.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(launched.pid, signal.SIGKILL)  # the launcher and the processes it started (its own session)
        raise
    assert launched.returncode == 0, stderr[-3000:]
    assert stdout.count("wrote ") == 1  # only process 0 prints and writes
    result = json.loads((out / "history.json").read_text())
    assert result["config"]["devices"] == 2
    params = {name: np.array(value) for name, value in result["params"].items()}
    assert max_relative_error(params, single.params) <= 1e-13
    assert max(abs(a - b) for m in single.history for a, b in zip(result["history"][m], single.history[m])) <= 1e-14


@pytest.mark.parametrize(("options", "message"), [
    (["--processes", "2", "--", "train", "torch/optim"], "torchrun"),
    (["--processes", "2", "--", "train", "jax/manual"], "devices must be a multiple of the processes"),
    (["--processes", "2", "--", "compare"], "launch runs `train IMPL"),
    (["--", "train", "jax/manual"], "give --processes P"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0", "--", "train", "jax/manual",
      "--devices", "2"], "HOST:PORT"),
])
def test_launch_refuses_bad_input_in_one_line_before_starting(capsys, options: list[str], message: str) -> None:
    from frameworks.__main__ import main

    assert main(["launch", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_launch_stops_the_processes_left_when_one_fails() -> None:
    """A process that failed alone leaves the others waiting in a collective: they are killed after the grace."""
    from frameworks._launch import _wait

    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    failed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    assert _wait([hung, failed], grace=0.5) == [-9, 2]
