"""Beyond the lab's one hidden layer: any depth, every activation, LayerNorm and dropout, in all eight.

Gradients against the derivation-free oracle (complex step) on random architectures; whole float64
trajectories of the eight on digits for three architectures; the kit's dropout masks keep the eight on
one trajectory while each framework's own generator parts them; the default run is the lab's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import frameworks
from frameworks import KitError, oracle, parity
from frameworks._arch import ACTIVATIONS, architecture
from frameworks.tolerances import max_relative_error, tolerance

IMPLEMENTATIONS = frameworks.IMPLEMENTATIONS


def deep_problem(seed: int, hidden: tuple[int, ...], activation: tuple[str, ...], norm: str | None, dropout: float,
                 *, nx: int = 3, ny: int = 3, batch: int = 6):
    """An architecture, params (LayerNorm's weights moved off their init, so their gradients are exercised),
    a batch and its dropout masks."""
    rng = np.random.default_rng(seed)
    arch = architecture(hidden, activation, norm, dropout)
    params = frameworks.init_params(nx, hidden, ny, seed=seed, scheme="torch", norm=norm)
    for name in params:
        if name.startswith(("gamma", "beta")):
            params[name] = params[name] + rng.normal(0, 0.2, params[name].shape)
    X = rng.normal(0, 1, (batch, nx))
    Y = np.eye(ny)[rng.integers(0, ny, batch)]
    masks = tuple(rng.random((batch, w)) >= dropout for w in hidden) if dropout else ()
    return arch, params, X, Y, masks


architectures = st.tuples(
    st.lists(st.integers(1, 64), min_size=1, max_size=4),
    st.sampled_from(ACTIVATIONS),
    st.sampled_from([None, "layer"]),
    st.sampled_from([0.0, 0.25]),
    st.integers(0, 2**16),
)


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(architectures)
def test_every_implementation_matches_the_oracle_on_random_architectures(drawn) -> None:
    """Depth 1-4, widths 1-64 (8-64 under LayerNorm), each activation (all of one kind, the last layer's swapped
    for another so that mixed networks are drawn too), with and without LayerNorm and dropout: all eight within
    1e-12 of complex-step differentiation in float64 and 1e-5 in float32. LayerNorm over a few nearly equal
    features is ill-conditioned, whatever the implementation: x - mean cancels, and rounding grows by |x| / |x_i
    - x_j| (measured over 2 features: 6.1e-12 in float64, 1.6e-4 in float32, against the exact oracle; at 8 or
    more the worst of 80 random float32 networks was 9.8e-7). Derandomized: CI draws the same networks."""
    widths, activation, norm, dropout, seed = drawn
    widths = [max(w, 8) for w in widths] if norm else widths
    activations = (activation,) * (len(widths) - 1) + (ACTIVATIONS[(ACTIVATIONS.index(activation) + seed) % 7],)
    arch, params, X, Y, masks = deep_problem(seed, tuple(widths), activations, norm, dropout)
    refs = oracle.references(params, X, Y, arch=arch, masks=masks)
    for dtype in ("float64", "float32"):
        for impl_id in IMPLEMENTATIONS:
            _, grads = frameworks.get(impl_id).gradients(params, X, Y, dtype=dtype, activation=arch.activations,
                                                         dropout=dropout, masks=masks)
            assert refs.error(grads, "oracle") <= tolerance("gradients", dtype), (impl_id, dtype, arch)


@pytest.mark.parametrize("hidden, activation, norm, dropout", [
    ((8, 5), "gelu", "layer", 0.0),
    ((6, 6, 4), ("relu", "silu", "gelu_tanh"), None, 0.2),
    ((7,), "leaky_relu", "layer", 0.3),
])
def test_float32_gradients_match_the_oracle(hidden, activation, norm, dropout) -> None:
    arch, params, X, Y, masks = deep_problem(1, hidden, activation, norm, dropout)
    refs = oracle.references(params, X, Y, arch=arch, masks=masks)
    for impl_id in IMPLEMENTATIONS:
        _, grads = frameworks.get(impl_id).gradients(params, X, Y, dtype="float32", activation=arch.activations,
                                                     dropout=dropout, masks=masks)
        assert refs.error(grads, "oracle") <= tolerance("gradients", "float32"), impl_id


DIGITS_ARCHITECTURES = {
    "(100,) tanh": dict(hidden=(100,)),
    "(128, 64) relu + LayerNorm": dict(hidden=(128, 64), activation="relu", norm="layer", init="he"),
    "(64, 64, 64) gelu + dropout 0.1": dict(hidden=(64, 64, 64), activation="gelu", dropout=0.1, init="he"),
}


@pytest.mark.parametrize("name", list(DIGITS_ARCHITECTURES))
def test_the_eight_trajectories_agree_on_digits(name, digits) -> None:
    """The lab's MNIST run on digits in float64 (100 epochs, 1400 steps of batch 100, dropout masks shared):
    every implementation's final parameters and per-epoch losses within 1e-9 of jax/manual's (measured:
    at most 3.1e-15 and 7.8e-16)."""
    config = frameworks.TrainConfig.mnist(dtype="float64", **DIGITS_ARCHITECTURES[name])
    runs = {impl_id: frameworks.get(impl_id).train(digits, config) for impl_id in IMPLEMENTATIONS}
    reference = runs["jax/manual"]
    for impl_id, run in runs.items():
        assert max_relative_error(run.params, reference.params) <= 1e-9, impl_id
        for metric in ("train_loss", "test_loss"):
            np.testing.assert_allclose(run.history[metric], reference.history[metric], rtol=1e-9, err_msg=impl_id)


@pytest.fixture(scope="module")
def digits() -> frameworks.Dataset:
    return frameworks.load_dataset("digits")


def test_the_default_run_is_the_labs() -> None:
    """The default config is the lab's network: one hidden layer of 10 tanh units, its names and tensors;
    hidden=(10,) is the same run, bit for bit."""
    config = frameworks.TrainConfig()
    assert config.arch.is_lab and config.arch.hidden == (10,)
    assert config.arch.names == ("Wh", "bh", "Wy", "by")
    assert parity.tensors(config.arch) == parity.TENSORS
    circles = frameworks.load_dataset("circles")
    short = config.replace(epochs=3)
    for impl_id in ("torch/manual", "jax/optax"):
        a = frameworks.get(impl_id).train(circles, short)
        b = frameworks.get(impl_id).train(circles, short.replace(hidden=(10,)))
        assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)
        assert a.history == b.history


def test_dropout_native_rng_parts_the_runs_and_the_kit_masks_join_them(digits) -> None:
    """With the kit's masks, torch/nn and jax/flax stay on one trajectory; with each framework's own
    generator (dropout_rng="native") they part from the first step. The caller's torch generator is
    left as it was."""
    import torch

    config = frameworks.TrainConfig.mnist(epochs=2, dtype="float64", hidden=(32,), dropout=0.5)
    before = torch.random.get_rng_state()
    kit = [frameworks.get(i).train(digits, config) for i in ("torch/nn", "jax/flax")]
    native = [frameworks.get(i).train(digits, config.replace(dropout_rng="native")) for i in ("torch/nn", "jax/flax")]
    assert torch.equal(torch.random.get_rng_state(), before)
    assert max_relative_error(kit[0].params, kit[1].params) <= 1e-12
    assert max_relative_error(native[0].params, native[1].params) > 1e-2
    again = frameworks.get("torch/nn").train(digits, config.replace(dropout_rng="native"))
    assert max_relative_error(again.params, native[0].params) == 0.0  # each framework's own draw is seeded


def test_native_dropout_needs_a_model_and_masks_need_dropout(digits) -> None:
    config = frameworks.TrainConfig.mnist(epochs=1, hidden=(8,), dropout=0.2, dropout_rng="native")
    with pytest.raises(KitError, match="Dropout layers"):
        frameworks.get("torch/manual").train(digits, config)
    arch, params, X, Y, masks = deep_problem(0, (4,), ("tanh",), None, 0.5)
    with pytest.raises(KitError, match="masks given without dropout"):
        frameworks.get("jax/grad").gradients(params, X, Y, masks=masks)
    with pytest.raises(KitError, match="dropout needs masks"):
        frameworks.get("jax/grad").gradients(params, X, Y, dropout=0.5)


def test_architecture_errors_are_one_clear_line() -> None:
    with pytest.raises(KitError, match="unknown activation 'gelux'"):
        frameworks.TrainConfig(activation="gelux")
    with pytest.raises(KitError, match="2 activations for 3 hidden layers"):
        frameworks.TrainConfig(hidden=(4, 4, 4), activation=("relu", "tanh"))
    with pytest.raises(KitError, match="dropout must be a rate"):
        frameworks.TrainConfig(dropout=1.0)
    with pytest.raises(KitError, match="hidden must be one or more positive integers"):
        frameworks.TrainConfig(hidden=(4, 0))
    params = frameworks.init_params(2, (4, 3), 2)
    circles = frameworks.load_dataset("circles")
    with pytest.raises(KitError, match=r"params have hidden=\(4, 3\) but config.nh=10"):
        frameworks.get("jax/manual").train(circles, frameworks.TrainConfig(epochs=1), params=params)


def test_a_config_with_an_architecture_round_trips_through_json() -> None:
    import json

    config = frameworks.TrainConfig(hidden=(8, 4), activation=("relu", "gelu"), norm="layer", dropout=0.1)
    again = frameworks.TrainConfig(**json.loads(json.dumps(config.to_dict())))
    assert again == config and hash(again) == hash(config)


def test_first_divergence_names_the_layer_of_a_naive_gelu_port(monkeypatch) -> None:
    """The naive port (Flax's default GELU, the tanh approximation) is caught at its first GELU, by name."""
    from flax import nnx

    from frameworks.jax_stages import stage3_flax

    arch, params, X, Y, _ = deep_problem(0, (8, 8), ("gelu", "gelu"), "layer", 0.0)
    assert parity.first_divergence("torch/nn", "jax/flax", params, X, Y, dtype="float64", arch=arch)["first"] is None
    monkeypatch.setitem(stage3_flax.ACTIVATIONS, "gelu", nnx.gelu)  # approximate=True, Flax's default
    report = parity.first_divergence("torch/nn", "jax/flax", params, X, Y, dtype="float64", arch=arch)
    assert report["first"] == "layers.2.gelu"
    assert dict(report["errors"])["layers.1.layer_norm"] <= 1e-15


def test_parity_and_compare_on_a_deeper_network(tmp_path, capsys) -> None:
    """``parity --hidden ... --activation ... --norm ... --dropout`` prints the matrix against complex step;
    ``compare`` adds the native-dropout trap and the measured layer defaults to its report."""
    from frameworks.__main__ import main

    assert main(["parity", "--hidden", "12,6", "--activation", "gelu", "--norm", "layer", "--dropout", "0.2",
                 "--dtype", "float64", "--out", str(tmp_path / "parity")]) == 0
    out = capsys.readouterr().out
    assert "network: 2-(12 gelu+LN, 6 gelu+LN, dropout 0.2)-2" in out and "PASS" in out
    assert "derivation: '-', the lab's NumPy derivation is written for its one hidden tanh layer only" in out
    assert main(["parity", "--hidden", "12,6", "--activation", "gelu", "--norm", "layer", "--dtype", "float64",
                 "--first-divergence", "torch/manual", "jax/flax"]) == 0
    assert "layers.1.layer_norm" in capsys.readouterr().out
    report_dir = tmp_path / "compare"
    assert main(["compare", "--dataset", "digits", "--only", "torch/nn,jax/flax", "--hidden", "16",
                 "--activation", "gelu", "--norm", "layer", "--dropout", "0.2", "--epochs", "2", "--seeds", "0",
                 "--no-progress", "--out", str(report_dir)]) == 0
    report = (report_dir / "report.md").read_text()
    assert "### Each framework's own dropout generator" in report and "their parameters differ by" in report
    assert "### Flax's layer defaults, on this network" in report and "`layers.2.gelu`" in report
    assert "hidden (16 gelu+LN, dropout 0.2)" in report


def test_a_deep_dropout_run_checkpoints_and_resumes_exactly(tmp_path, digits) -> None:
    """Each epoch's masks come from their own generator (seed, 2, epoch): a run stopped and resumed, even in
    another framework, draws the masks the uninterrupted run drew."""
    config = frameworks.TrainConfig.mnist(epochs=4, hidden=(16, 8), activation="silu", norm="layer", dropout=0.2,
                                          dtype="float64")
    full = frameworks.get("jax/manual").train(digits, config)
    frameworks.get("torch/manual").train(digits, config.replace(epochs=2), checkpoint=tmp_path / "run.npz")
    resumed = frameworks.get("jax/manual").train(digits, config, resume=tmp_path / "run.npz")
    assert max_relative_error(resumed.params, full.params) <= 1e-12
    assert resumed.history["train_loss"] == pytest.approx(full.history["train_loss"], rel=1e-12)
