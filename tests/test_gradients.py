"""Gradients: every implementation against the oracle that derives nothing, and each other.

The reference is complex-step differentiation of the float64 NumPy forward
(``oracle.complex_step``); central finite differences are a second, looser check.
Random shapes and batches, not only the lab's nx=2, nh=10, ny=2; every device
each framework sees (GPU/TPU cases skip here, saying so).
"""

from __future__ import annotations

import numpy as np
import pytest

import frameworks
from frameworks import oracle, parity
from frameworks.tolerances import max_relative_error, tolerance
from tests.conftest import DEVICES, random_problem, require_device

SEEDS = range(4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl_id", frameworks.implementations())
@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_match_oracle(impl_id: str, dtype: str, device: str, seed: int) -> None:
    require_device(impl_id, device)
    params, X, Y = random_problem(seed)
    L, grads = frameworks.get(impl_id).gradients(params, X, Y, dtype=dtype, device=device)
    L_ref, reference = oracle.complex_step(params, X, Y)
    tol = tolerance("gradients", dtype, device)
    assert max_relative_error(grads, reference) <= tol
    assert abs(L - L_ref) <= tol * abs(L_ref)
    assert all(g.dtype == np.float64 and g.shape == params[n].shape for n, g in grads.items())


@pytest.mark.parametrize("impl_id", frameworks.implementations())
@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_match_finite_differences(impl_id: str, seed: int) -> None:
    params, X, Y = random_problem(seed)
    _, grads = frameworks.get(impl_id).gradients(params, X, Y, dtype="float64")
    assert max_relative_error(grads, oracle.finite_differences(params, X, Y)) <= tolerance(
        "finite_differences", "float64"
    )


@pytest.mark.parametrize("impl_id", frameworks.implementations())
def test_summed_reduction_is_batch_times_mean(impl_id: str) -> None:
    params, X, Y = random_problem(7, batch=10)
    impl = frameworks.get(impl_id)
    L_mean, mean = impl.gradients(params, X, Y, loss_reduction="mean")
    L_sum, summed = impl.gradients(params, X, Y, loss_reduction="sum")
    assert L_sum == pytest.approx(L_mean, rel=1e-14)  # the reported loss stays the mean
    assert max_relative_error(summed, {n: 10 * g for n, g in mean.items()}) <= 1e-12


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", SEEDS)
def test_every_pair_agrees(dtype: str, device: str, seed: int) -> None:
    if device not in parity.all_devices():
        pytest.skip(f"no framework sees a {device} on this machine")
    if device == "tpu" and dtype == "float64":
        pytest.skip("TPUs compute no float64")
    table = parity.gradient_table(*random_problem(seed), dtype=dtype, device=device)
    assert len(table["ids"]) + len(table["skipped"]) == len(frameworks.implementations())
    assert np.max(table["matrix"]) <= tolerance("gradients", dtype, device)
    assert table["passed"]


def test_manual_backward_matches_autodiff_within_each_framework() -> None:
    """The hand-derived backward of each manual stage against its own framework's autodiff."""
    import jax
    import torch

    from frameworks.jax_stages import stage1_manual as jax_manual
    from frameworks.torch_stages import stage1_manual as torch_manual

    params, X, Y = random_problem(11)
    with jax.enable_x64(True):
        jparams = jax_manual.load(params, frameworks.TrainConfig(dtype="float64")).params
        jX, jY = jax.numpy.asarray(X), jax.numpy.asarray(Y)
        Yhat, outputs = jax_manual.forward(jparams, jX)
        manual = jax_manual.backward(jparams, outputs, jY)
        auto = jax.grad(lambda p: jax_manual.loss_accuracy(jax_manual.forward(p, jX)[1]["ytilde"], jY)[0])(jparams)
        assert max_relative_error(jax.device_get(manual), jax.device_get(auto)) <= 1e-12

    tparams = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
    tX, tY = torch.tensor(X), torch.tensor(Y)
    Yhat, outputs = torch_manual.forward(tparams, tX)
    manual = torch_manual.backward(tparams, outputs, tY)
    torch_manual.loss_accuracy(outputs["ytilde"], tY)[0].backward()
    assert max_relative_error(
        {n: g.detach().numpy() for n, g in manual.items()}, {n: p.grad.numpy() for n, p in tparams.items()}
    ) <= 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_oracles_agree(seed: int) -> None:
    """Complex step (no derivation), the lab's derivation and finite differences: three ways to one gradient."""
    params, X, Y = random_problem(seed)
    L, reference = oracle.complex_step(params, X, Y)
    L_derived, derived = oracle.gradients(params, X, Y)
    assert L == L_derived
    assert max_relative_error(derived, reference) <= tolerance("gradients", "float64")
    assert max_relative_error(oracle.finite_differences(params, X, Y), reference) <= tolerance(
        "finite_differences", "float64")
    _, summed = oracle.complex_step(params, X, Y, reduction="sum")
    assert max_relative_error(summed, {n: len(X) * g for n, g in reference.items()}) <= 1e-14


def test_large_networks_are_checked_along_random_directions(monkeypatch) -> None:
    """Above FULL_REFERENCE_LIMIT parameters the references are directional derivatives (one forward pass each):
    they agree with the full ones, and they still catch a gradient that is off."""
    params, X, Y = random_problem(5, nx=8, nh=16, ny=6)
    full = oracle.references(params, X, Y)
    monkeypatch.setattr(oracle, "FULL_REFERENCE_LIMIT", 0)
    oracle._REFERENCES.clear()
    along = oracle.references(params, X, Y)
    assert (full.kind, along.kind) == ("full", "directions")
    assert along.error(full.oracle, "oracle") <= 1e-13
    assert along.error(full.oracle, "finite_differences") <= tolerance("finite_differences", "float64")
    off = {n: g.copy() for n, g in full.oracle.items()}
    off["Wy"][0, 0] += 1e-3 * np.abs(off["Wy"]).max()
    assert along.error(off, "oracle") > 1e-5
    table = parity.gradient_table(params, X, Y, dtype="float64", device="cpu", implementations=["jax/manual"])
    assert table["references"] == "directions" and table["passed"]
    assert "random directions" in parity.format_table(table)
    oracle._REFERENCES.clear()


def test_complex_step_catches_a_wrong_derivation() -> None:
    """The oracle fails a gradient that is off: tanh' written as 1 - h instead of 1 - h^2."""
    params, X, Y = random_problem(3)
    out = oracle.forward(params, X)
    dytilde = (out["yhat"] - Y) / len(X)
    wrong = (dytilde @ params["Wy"]) * (1.0 - out["h"])
    _, reference = oracle.complex_step(params, X, Y)
    assert max_relative_error({"Wh": wrong.T @ X}, {"Wh": reference["Wh"]}) > 1e-3


def test_first_divergence_names_the_first_tensor_over_tolerance(monkeypatch) -> None:
    params, X, Y = parity.lab_batch()
    same = parity.first_divergence("torch/manual", "jax/optax", params, X, Y, dtype="float64")
    assert same["first"] is None and max(e for _, e in same["errors"]) <= 1e-12
    assert [name for name, _ in same["errors"]] == list(parity.TENSORS)

    traced = parity.trace

    def off_from_ytilde(impl_id, *args, **kwargs):  # jax/manual made wrong from ytilde on
        tensors = traced(impl_id, *args, **kwargs)
        if impl_id == "jax/manual":
            tensors["ytilde"] = tensors["ytilde"] * (1 + 1e-9)
            tensors["Wh"] = tensors["Wh"] * 1.5
        return tensors

    monkeypatch.setattr(parity, "trace", off_from_ytilde)
    report = parity.first_divergence("torch/manual", "jax/manual", params, X, Y, dtype="float64")
    assert report["first"] == "ytilde"
