"""Weight conversion: exact round trips, and the transpose is needed (the check can fail)."""

from __future__ import annotations

import numpy as np
import pytest

import frameworks
from frameworks import convert, oracle
from frameworks.tolerances import max_relative_error, tolerance
from tests.conftest import random_problem


def test_round_trips_are_exact() -> None:
    params, _, _ = random_problem(3, nx=5, nh=7, ny=3)
    via_torch = convert.from_torch_state_dict(convert.to_torch_state_dict(params))
    via_flax = convert.from_flax_params(convert.to_flax_params(params))
    via_both = convert.from_flax_params(convert.to_flax_params(via_torch))
    for result in (via_torch, via_flax, via_both):
        for name in params:
            np.testing.assert_array_equal(result[name], params[name])


def test_layouts() -> None:
    params, _, _ = random_problem(3, nx=5, nh=7, ny=3)
    state = convert.to_torch_state_dict(params)
    flax = convert.to_flax_params(params)
    assert tuple(state["0.weight"].shape) == (7, 5) and tuple(state["2.weight"].shape) == (3, 7)
    assert flax["layers"][0]["kernel"].shape == (5, 7) and flax["layers"][2]["kernel"].shape == (7, 3)


def test_torch_state_dict_loads_into_a_real_module() -> None:
    import torch

    params, X, _ = random_problem(4, nx=3, nh=6, ny=4)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4)).double()
    model.load_state_dict(convert.to_torch_state_dict(params))
    logits = model(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(logits, oracle.forward(params, X)["ytilde"], rtol=1e-13, atol=1e-13)


def test_a_kernel_loaded_without_the_transpose_breaks_parity() -> None:
    """Square layers (nx = nh = ny) load without a shape error either way: only the numbers tell."""
    import jax
    from flax import nnx

    from frameworks.jax_stages import stage3_flax

    params, X, Y = random_problem(5, nx=4, nh=4, ny=4)
    with jax.enable_x64(True):
        model = stage3_flax.init_model(params, dtype="float64")
        right = np.asarray(model(jax.numpy.asarray(X)))
        state = nnx.state(model, nnx.Param)
        wrong = convert.to_flax_params(params)
        for layer, (W, _) in ((0, ("Wh", "bh")), (2, ("Wy", "by"))):
            wrong["layers"][layer]["kernel"] = params[W]  # the bug: (out, in) loaded as (in, out)
        nnx.replace_by_pure_dict(state, wrong)
        nnx.update(model, state)
        broken = np.asarray(model(jax.numpy.asarray(X)))
    expected = oracle.forward(params, X)["ytilde"]
    assert max_relative_error({"y": right}, {"y": expected}) <= tolerance("gradients", "float64")
    assert max_relative_error({"y": broken}, {"y": expected}) > 1e-2


@pytest.mark.parametrize("impl_id", frameworks.implementations())
def test_export_returns_the_loaded_parameters(circles, impl_id: str) -> None:
    """Zero epochs of SGD would be a no-op; here: one step at a tiny eta moves params by a tiny amount only."""
    params = frameworks.init_params(2, 10, 2, seed=1)
    run = frameworks.get(impl_id).train(circles, frameworks.TrainConfig(dtype="float64", epochs=1, eta=1e-12, seed=1),
                                        params=params)
    assert max_relative_error(run.params, params) <= 1e-10


def test_a_deeper_models_weights_need_its_architecture() -> None:
    """Converting a deeper model's state_dict without its architecture is refused, never cut to the lab's net."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 6), torch.nn.ReLU(),
                                torch.nn.Linear(6, 3))
    with pytest.raises(frameworks.KitError, match=r"entries \['4.weight', '4.bias'\] are not those of the lab"):
        convert.from_torch_state_dict(model.state_dict())
    arch = frameworks.TrainConfig(hidden=(8, 6), activation="relu").arch
    params = convert.from_torch_state_dict(model.state_dict(), arch=arch)
    assert list(params) == ["W1", "b1", "W2", "b2", "Wy", "by"]
    assert all(np.array_equal(a, b) for a, b in zip(
        convert.from_flax_params(convert.to_flax_params(params, arch=arch), arch=arch).values(), params.values()))
