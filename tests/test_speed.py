"""What a user sees calling ``train``: one compilation a shape, its time reported apart from the run, PyTorch's
threads chosen for the products' size inside the kit's scope, and the opt-in ``torch.compile``. (Speed itself is
measured side by side by ``bench``, never asserted here.)"""

from __future__ import annotations

import pytest

import frameworks
from frameworks.tolerances import max_relative_error


@pytest.mark.parametrize("impl_id", ["jax/manual", "jax/optax"])
def test_a_second_train_of_the_same_shapes_does_not_compile(circles, impl_id: str) -> None:
    """A shape no other test trains (nh 13, batch 8): the first call compiles, the second (another seed, the same
    shapes and settings) reuses the program; compile and run times add up to the wall time. (eta is part of most
    stages' programs: another eta compiles again, except in jax/manual's runs-last program, where it is data.)"""
    config = frameworks.TrainConfig(nh=13, batch_size=8, epochs=3)
    first = frameworks.get(impl_id).train(circles, config)
    second = frameworks.get(impl_id).train(circles, config.replace(seed=1, init="he"))
    assert first.compile_time > 0 and second.compile_time == 0.0
    assert first.run_time == pytest.approx(first.wall_time - first.compile_time)
    assert second.run_time == second.wall_time
    stepwise = frameworks.get(impl_id).train(circles, config.replace(fuse=False, epochs=1))
    assert stepwise.compile_time is None and stepwise.run_time is None  # jitted step by step: not measured
    assert frameworks.get("torch/optim").train(circles, config).compile_time == 0.0  # eager: nothing compiles


def test_torch_threads_follow_the_products_size_inside_the_run_only() -> None:
    import torch

    from frameworks.torch_stages import _backend

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert frameworks.TrainConfig().torch_threads == 1  # the default: one thread, whatever the size
        auto = {"torch_threads": None}
        cases = {(frameworks.TrainConfig(**auto), 2): 1,  # the lab's circles: 10 x 2 x 10 multiply-adds, one thread
                 (frameworks.TrainConfig.mnist().replace(**auto), 64): 1,  # the 8x8 digits: 100 x 64 x 100
                 (frameworks.TrainConfig.mnist().replace(**auto), 784): 2,  # MNIST: 100 x 784 x 100, the caller's
                 (frameworks.TrainConfig.mnist().replace(**auto), None): 1,  # size unknown: one thread
                 (frameworks.TrainConfig.mnist().replace(torch_threads=1), 784): 1}  # given: kept
        for (config, features), threads in cases.items():
            assert config.threads_for_torch(2, features) == threads
            with _backend.scope(config, features=features):
                assert torch.get_num_threads() == threads
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile imports torch.jit's deprecated helpers
def test_torch_compile_is_opt_in_for_the_module_stages(circles) -> None:
    """compile=True puts torch/nn's model under torch.compile: the same run as eager (float32, 1e-5), the
    compilation's calls reported apart; the other stages refuse it in one line."""
    config = frameworks.TrainConfig(epochs=2)
    compiled = frameworks.get("torch/nn").train(circles, config.replace(compile=True))
    eager = frameworks.get("torch/nn").train(circles, config)
    assert max_relative_error(compiled.params, eager.params) <= 1e-5
    assert compiled.compile_time > 0
    for impl_id, says in (("jax/optax", "always compiles"), ("torch/manual", "has no model")):
        with pytest.raises(frameworks.KitError, match=f"compile=True is PyTorch's opt-in.*{says}"):
            frameworks.get(impl_id).train(circles, config.replace(compile=True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
def test_a_compiled_run_that_diverges_keeps_its_last_finite_epoch_as_eager_does(circles) -> None:
    """fit replays a diverged chunk from a deep copy of the state: the copy's compiled forward must run the
    copy's own parameters (a compiled function bound to the original model ran the diverged ones)."""
    config = frameworks.TrainConfig(epochs=4, eta=3e35)
    for impl_id in ("torch/nn", "torch/optim"):
        compiled = frameworks.get(impl_id).train(circles, config.replace(compile=True))
        eager = frameworks.get(impl_id).train(circles, config)
        assert compiled.diverged == eager.diverged is not None
        assert max_relative_error(compiled.params, eager.params) <= 1e-5
