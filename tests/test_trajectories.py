"""Training runs: the eight implementations follow one trajectory, and reach the lab's accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import frameworks
from frameworks.tolerances import max_relative_error, tolerance
from tests.conftest import DEVICES, require_device

REFERENCE = "torch/manual"


@pytest.fixture(scope="module")
def lab_runs(circles: frameworks.Dataset) -> dict[str, dict[str, frameworks.TrainResult]]:
    """The lab's full circles run (150 epochs, defaults) of all eight, in float64 and float32."""
    return {
        dtype: {i: frameworks.get(i).train(circles, frameworks.TrainConfig(dtype=dtype))
                for i in frameworks.implementations()}
        for dtype in ("float64", "float32")
    }


def predictions(params: frameworks.Params, X: np.ndarray) -> np.ndarray:
    from frameworks import oracle

    return oracle.forward(params, X)["yhat"].argmax(axis=1)


@pytest.mark.parametrize("impl_id", frameworks.implementations())
def test_float64_lab_run_ends_on_the_same_parameters(lab_runs, circles, impl_id: str) -> None:
    run, ref = lab_runs["float64"][impl_id], lab_runs["float64"][REFERENCE]
    assert run.epochs_done == ref.epochs_done == 150
    assert max_relative_error(run.params, ref.params) <= tolerance("trajectory_params", "float64")
    assert max_relative_error(run.params, ref.params) <= 1e-13  # the README states 1e-14 after the lab's run
    np.testing.assert_array_equal(predictions(run.params, circles.Xtest), predictions(ref.params, circles.Xtest))
    for metric in ("train_loss", "test_loss"):
        np.testing.assert_allclose(run.history[metric], ref.history[metric],
                                   rtol=tolerance("trajectory_params", "float64"))
    for metric in ("train_acc", "test_acc"):  # the same count of right answers every epoch
        np.testing.assert_array_equal(np.round(np.multiply(run.history[metric], 200)),
                                      np.round(np.multiply(ref.history[metric], 200)))


@pytest.mark.parametrize("impl_id", frameworks.implementations())
def test_float32_runs_stay_on_one_trajectory(lab_runs, impl_id: str) -> None:
    """Parameters after the lab's 3000 steps, and every epoch's losses (measured: 8.2e-7 and 1.8e-7 at most)."""
    run, ref = lab_runs["float32"][impl_id], lab_runs["float32"][REFERENCE]
    assert max_relative_error(run.params, ref.params) <= tolerance("trajectory_params", "float32")
    tol = tolerance("trajectory_loss_abs", "float32")
    for metric in ("train_loss", "test_loss"):
        assert np.max(np.abs(np.subtract(run.history[metric], ref.history[metric]))) <= tol


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl_id", frameworks.implementations())
def test_short_run_on_every_device_matches_cpu_float64(circles, impl_id: str, device: str) -> None:
    require_device(impl_id, device)
    if device == "tpu":
        pytest.skip("TPUs compute no float64")
    config = frameworks.TrainConfig(dtype="float64", epochs=10)
    run = frameworks.get(impl_id).train(circles, config.replace(device=device))
    ref = frameworks.get(REFERENCE).train(circles, config)
    assert max_relative_error(run.params, ref.params) <= tolerance("trajectory_params", "float64")


@pytest.mark.parametrize("impl_id", ["jax/manual", "jax/grad", "jax/flax", "jax/optax"])
def test_fused_run_equals_step_by_step(circles, impl_id: str) -> None:
    config = frameworks.TrainConfig(dtype="float64", epochs=5)
    fused = frameworks.get(impl_id).train(circles, config)
    stepped = frameworks.get(impl_id).train(circles, config.replace(fuse=False))
    assert max_relative_error(fused.params, stepped.params) <= 1e-12
    np.testing.assert_allclose(fused.history["train_loss"], stepped.history["train_loss"], rtol=1e-12)


def test_averaged_gradient_under_trains_at_the_labs_settings(lab_runs) -> None:
    """The averaged gradient under-trains at the lab's eta and epochs (the README and report say so)."""
    acc = lab_runs["float64"][REFERENCE].history["test_acc"][-1]
    assert 0.70 <= acc <= 0.80  # measured 0.74 on the shipped data, seed 0 (mean over seeds 0-9: 0.82)


@pytest.fixture(scope="module")
def summed_runs(circles: frameworks.Dataset) -> dict[str, frameworks.TrainResult]:
    """The lab's run with the cheat-sheet's summed gradient, all implementations, float64, seed 0."""
    config = frameworks.TrainConfig(dtype="float64", loss_reduction="sum")
    return {i: frameworks.get(i).train(circles, config) for i in frameworks.implementations()}


@pytest.mark.parametrize("impl_id", frameworks.implementations())
def test_summed_gradient_runs_are_one_trajectory(summed_runs, impl_id: str) -> None:
    """With the summed gradient too (10x longer steps) every implementation follows one trajectory, so the
    accuracy proved below for one of them holds for all."""
    run, ref = summed_runs[impl_id], summed_runs[REFERENCE]
    assert max_relative_error(run.params, ref.params) <= tolerance("trajectory_params", "float64")
    np.testing.assert_array_equal(np.round(np.multiply(run.history["test_acc"], 200)),  # right answers an epoch
                                  np.round(np.multiply(ref.history["test_acc"], 200)))


@pytest.mark.slow
@pytest.mark.parametrize("dataset_name", ["circles", "course"])
def test_summed_gradient_reaches_the_published_accuracy(request, dataset_name: str) -> None:
    """loss_reduction="sum" (the course's manual stage) at the lab's defaults, seeds 0 to 4, on the fastest
    implementation (jax/grad; the test above proves the others on its trajectory).

    Published test accuracy: 0.92 to 0.96. Measured (float64): shipped circles
    0.925, 0.92, 0.915, 0.93, 0.92 (mean 0.922); course circles.mat 0.935, 0.95,
    0.915, 0.93, 0.94 (mean 0.934).
    """
    data = request.getfixturevalue("circles" if dataset_name == "circles" else "course_circles")
    config = frameworks.TrainConfig(dtype="float64", loss_reduction="sum")
    accs = [frameworks.get("jax/grad").train(data, config.replace(seed=s)).history["test_acc"][-1] for s in range(5)]
    expected = {"circles": [0.925, 0.92, 0.915, 0.93, 0.92], "course": [0.935, 0.95, 0.915, 0.93, 0.94]}
    np.testing.assert_allclose(accs, expected[dataset_name], atol=0.011)  # one test point either way
    assert np.mean(accs) >= 0.92


def test_chunked_calls_follow_the_same_trajectory(circles, tmp_path) -> None:
    """One fused call for the whole run, or chunks of it (progress bar, checkpoints): the same numbers."""
    config = frameworks.TrainConfig(dtype="float64", epochs=7)
    whole = frameworks.get("jax/flax").train(circles, config)
    chunked = frameworks.get("jax/flax").train(circles, config, checkpoint=tmp_path / "c.npz", checkpoint_every=3)
    assert max_relative_error(chunked.params, whole.params) <= 1e-12
    np.testing.assert_allclose(chunked.history["test_loss"], whole.history["test_loss"], rtol=1e-12)


def test_chunk_sizes() -> None:
    from frameworks._training import _chunks

    assert _chunks(0, 150, progress=False, checkpoint_every=None) == [150]
    assert _chunks(0, 7, progress=False, checkpoint_every=3) == [3, 3, 1]
    assert _chunks(4, 10, progress=False, checkpoint_every=3) == [2, 3, 1]  # saves stay on multiples of 3
    assert sum(_chunks(0, 150, progress=True, checkpoint_every=None)) == 150
