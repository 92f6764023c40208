"""The layer traps of the porting guide (section 9), asserted near the values it prints."""

from __future__ import annotations

import numpy as np
import pytest

from frameworks import layer_traps


def test_gelu_defaults_differ_by_the_tanh_approximation() -> None:
    gap = layer_traps.gelu_gap(np.linspace(-6, 6, 120001))
    assert gap["max_gap"] == pytest.approx(4.73e-4, rel=0.01)  # the tanh approximation's largest error
    assert gap["at"] == pytest.approx(-2.70, abs=0.01)
    assert gap["exact_gap"] <= 1e-15  # approximate=False is PyTorch's GELU


def test_layer_norm_eps_matters_on_small_features() -> None:
    X = np.random.default_rng(0).normal(0, 1, (64, 32))
    unit, small = layer_traps.layer_norm_gap(X), layer_traps.layer_norm_gap(X * 1e-3)
    assert unit["default_gap"] == pytest.approx(7.1e-6, rel=0.05)  # about (1e-5 - 1e-6) / 2 of unit variance
    assert small["default_gap"] > 1.0  # variance 1e-6: eps is no longer small beside it
    assert max(unit["same_eps_gap"], small["same_eps_gap"]) <= 1e-15


def test_dropout_scales_alike_but_draws_its_own_masks() -> None:
    masks = layer_traps.dropout_masks(0.1, 100_000)
    assert masks["torch_scale"] == pytest.approx(masks["inverted_scale"], rel=1e-15)
    assert masks["flax_scale"] == pytest.approx(masks["inverted_scale"], rel=1e-15)
    assert masks["torch_kept"] == pytest.approx(0.9, abs=0.005) and masks["flax_kept"] == pytest.approx(0.9, abs=0.005)
    assert masks["masks_agree"] == pytest.approx(masks["independent_agreement"], abs=0.005)  # 0.82, not 1
