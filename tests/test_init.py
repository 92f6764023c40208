"""Init schemes: drawn once in NumPy, the same numbers for every framework, each distributed as the
framework default it is named after (checked against the frameworks' own draws)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import frameworks
from frameworks._params import SCHEMES, TRUNCATED_STD
from frameworks.tolerances import max_relative_error, tolerance

FAN_IN, FAN_OUT = 300, 200  # a layer large enough for a two-sample test on 60,000 weights


def numpy_draw(scheme: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    params = frameworks.init_params(FAN_IN, FAN_OUT, 3, seed=seed, scheme=scheme)
    return params["Wh"], params["bh"]


def torch_draw(init: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    generator = torch.Generator().manual_seed(1)
    weight, bias = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64), torch.zeros(FAN_OUT, dtype=torch.float64)
    if init == "torch":  # nn.Linear.reset_parameters
        torch.nn.init.kaiming_uniform_(weight, a=np.sqrt(5), generator=generator)
        torch.nn.init.uniform_(bias, -1 / np.sqrt(FAN_IN), 1 / np.sqrt(FAN_IN), generator=generator)
    elif init == "xavier":
        torch.nn.init.xavier_uniform_(weight, generator=generator)
    elif init == "he":
        torch.nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
    return weight.numpy(), bias.numpy()


def flax_draw() -> tuple[np.ndarray, np.ndarray]:
    import jax
    from flax import nnx

    with jax.enable_x64(True):
        layer = nnx.Linear(FAN_IN, FAN_OUT, rngs=nnx.Rngs(1), param_dtype=jax.numpy.float64)
        return np.asarray(layer.kernel[...]).T, np.asarray(layer.bias[...])


@pytest.mark.parametrize("scheme", ["torch", "xavier", "he"])
def test_a_scheme_draws_as_pytorch_does(scheme: str) -> None:
    W, b = numpy_draw(scheme)
    W_ref, b_ref = torch_draw(scheme)
    assert stats.ks_2samp(W.ravel(), W_ref.ravel()).pvalue > 1e-3
    assert np.abs(W).max() <= np.abs(W_ref).max() * 1.01 or scheme == "he"  # uniform: the same bound
    if scheme == "torch":
        assert stats.ks_2samp(b, b_ref).pvalue > 1e-3
    else:
        assert not b.any()


def test_the_flax_scheme_draws_as_flax_does() -> None:
    W, b = numpy_draw("flax")
    W_ref, b_ref = flax_draw()
    assert stats.ks_2samp(W.ravel(), W_ref.ravel()).pvalue > 1e-3
    bound = 2 * np.sqrt(1 / FAN_IN) / TRUNCATED_STD  # truncated at two (pre-scaling) standard deviations
    assert np.abs(W).max() <= bound and np.abs(W_ref).max() <= bound
    assert W.var() == pytest.approx(1 / FAN_IN, rel=0.03)
    assert not b.any() and not b_ref.any()


def test_the_lab_scheme_is_the_default_draw() -> None:
    assert all(np.array_equal(a, b) for a, b in zip(frameworks.init_params(2, 10, 2, seed=4).values(),
                                                    frameworks.init_params(2, 10, 2, seed=4, scheme="lab").values()))
    with pytest.raises(frameworks.KitError, match="Did you mean 'xavier'"):
        frameworks.init_params(2, 10, 2, scheme="xavir")
    assert set(SCHEMES) | {"native"} == set(frameworks._config.INITS)


@pytest.mark.parametrize("init", ["torch", "flax", "xavier", "he"])
def test_a_scheme_starts_every_framework_from_one_draw(circles, init: str) -> None:
    """Unlike init="native", a named scheme keeps PyTorch and JAX on one trajectory."""
    config = frameworks.TrainConfig(dtype="float64", epochs=3, init=init)
    runs = {i: frameworks.get(i).train(circles, config) for i in ("torch/manual", "jax/optax")}
    assert max_relative_error(runs["jax/optax"].params, runs["torch/manual"].params) <= tolerance(
        "trajectory_params", "float64")
    lab = frameworks.get("torch/manual").train(circles, config.replace(init="lab"))
    assert max_relative_error(runs["torch/manual"].params, lab.params) > 0.1  # it is another draw
