"""The stage contract: one typed STAGE a module, honest about shared code, open to a user's own stage,
manual stages that really are manual, the caller's global state untouched, one compile a shape."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

import frameworks
from frameworks import convert, oracle, parity
from frameworks.tolerances import max_relative_error, tolerance
from tests.conftest import random_problem


@pytest.mark.parametrize("impl_id", frameworks.IMPLEMENTATIONS)
def test_each_stage_module_ends_with_one_typed_contract(impl_id: str) -> None:
    impl = frameworks.get(impl_id)
    assert isinstance(impl.stage, frameworks.Stage)
    assert impl.stage.backend.NAME == impl.framework
    assert impl.stage.has_model == (impl_id in frameworks.MODULE_STAGES)


def test_shared_code_paths_are_declared_and_counted() -> None:
    """Stage 4 swaps only the update of stage 3; stage 2 reuses stage 1's forward (the lab's design)."""
    assert frameworks.get("torch/optim").code_of("gradients") == "torch/nn"
    assert frameworks.get("jax/optax").code_of("gradients") == "jax/flax"
    assert frameworks.get("jax/grad").code_of("forward") == "jax/manual"
    assert frameworks.get("jax/grad").code_of("gradients") == "jax/grad"
    ids = list(frameworks.IMPLEMENTATIONS)
    assert parity.same_code(ids) == [[ids.index("torch/nn"), ids.index("torch/optim")],
                                     [ids.index("jax/flax"), ids.index("jax/optax")]]
    counts = {part: len(groups) for part, groups in parity.independent_paths(ids).items()}
    assert counts == {"forward": 4, "gradients": 6, "update": 8}


def test_the_parity_table_marks_same_code_pairs() -> None:
    table = parity.gradient_table(*random_problem(2), dtype="float64", device="cpu",
                                  implementations=frameworks.IMPLEMENTATIONS)
    text = parity.format_table(table)
    assert text.count("same code") == 4 + 1  # two pairs, both cells, and the legend line
    assert "4 forward, 6 gradients, 8 update" in text
    assert max(table["vs_oracle"]) <= tolerance("gradients", "float64")


def mine_stage() -> frameworks.Stage:
    """A user's implementation: JAX's manual stage with its own update loop, momentum-free SGD in place."""
    from frameworks.jax_stages import stage1_manual as manual

    def make_step(config: frameworks.TrainConfig):
        def step(net, X, Y):
            _, grads = manual.gradients(net, X, Y, reduction=config.loss_reduction)
            return manual.Net({name: value - config.eta * grads[name] for name, value in net.params.items()}, net.arch)

        return step

    return frameworks.Stage(backend=manual.backend, load=manual.load, step=make_step, evaluate=manual.evaluate,
                            gradients=manual.gradients, trace=manual.trace, export=manual.export,
                            shares={"forward": "jax/manual", "gradients": "jax/manual"})


@contextlib.contextmanager
def registered(impl_id: str, stage: frameworks.Stage) -> Iterator[None]:
    frameworks.register(impl_id, stage)
    try:
        yield
    finally:
        frameworks.unregister(impl_id)


def test_a_registered_implementation_joins_parity_and_training(circles) -> None:
    with registered("jax/mine", mine_stage()):
        assert frameworks.implementations()[-1] == "jax/mine"
        table = parity.gradient_table(*random_problem(1), dtype="float64", device="cpu")
        assert "jax/mine" in table["ids"] and table["passed"]
        i, j = table["ids"].index("jax/manual"), table["ids"].index("jax/mine")
        assert [i, j] in table["same_code"]
        config = frameworks.TrainConfig(dtype="float64", epochs=5)
        mine = frameworks.get("jax/mine").train(circles, config)
        ref = frameworks.get("torch/manual").train(circles, config)
        assert max_relative_error(mine.params, ref.params) <= tolerance("trajectory_params", "float64")
    assert "jax/mine" not in frameworks.implementations()


def test_a_registered_implementation_joins_compare(tmp_path) -> None:
    import json

    from frameworks.__main__ import main

    with registered("jax/mine", mine_stage()):
        out = tmp_path / "report"
        assert main(["compare", "--only", "jax/mine", "--epochs", "2", "--seeds", "0", "--no-traps",
                     "--no-progress", "--out", str(out)]) == 0
        report = json.loads((out / "report.json").read_text())
        assert sorted(report["runs"]["lab"]) == ["jax/mine", "torch/manual"]
        assert "jax/mine" in report["parity"][0]["ids"]


def test_register_checks_the_framework_and_what_is_shared() -> None:
    stage = mine_stage()
    with pytest.raises(frameworks.KitError, match="'jax/...'"):
        frameworks.register("torch/mine", stage)  # a JAX backend under a torch id would never run in compare
    import dataclasses

    for shares, message in (({"forward": "jax/nothing"}, "not registered"), ({"update": "jax/loop"}, "cycle")):
        with pytest.raises(frameworks.KitError, match=message):
            frameworks.register("jax/loop", dataclasses.replace(stage, shares=shares))
    assert "jax/loop" not in frameworks.implementations()


def test_register_refuses_bad_ids_and_built_ins() -> None:
    stage = mine_stage()
    for bad in ("mine", "jax/", 5):
        with pytest.raises(frameworks.KitError, match="framework/name"):
            frameworks.register(bad, stage)  # type: ignore[arg-type]
    with pytest.raises(frameworks.KitError, match="already registered"):
        frameworks.register("jax/manual", stage)
    with pytest.raises(frameworks.KitError, match="Stage"):
        frameworks.register("jax/x", object())  # type: ignore[arg-type]
    with pytest.raises(frameworks.KitError, match="callable"):
        frameworks.Stage(backend=stage.backend, load=None, step=stage.step, evaluate=stage.evaluate,  # type: ignore
                         gradients=stage.gradients, trace=stage.trace, export=stage.export)


@pytest.mark.parametrize("impl_id", ["torch/nn", "torch/optim", "jax/flax", "jax/optax"])
def test_gradients_honour_the_reduction_they_are_asked_for(impl_id: str) -> None:
    """A state loaded for the mean loss still gives the summed loss's gradient when asked (not silently the mean)."""
    params, X, Y = random_problem(4, batch=8)
    stage = frameworks.get(impl_id).stage
    config = frameworks.TrainConfig(nh=params["Wh"].shape[0], dtype="float64", batch_size=8)
    with frameworks._stage.place(stage, config, params, X, Y) as run:
        _, summed = stage.gradients(run.state, *run.data, reduction="sum")
        summed = {n: stage.backend.to_numpy(g) for n, g in summed.items()}
    _, reference = oracle.complex_step(params, X, Y, reduction="sum")
    assert max_relative_error(summed, reference) <= tolerance("gradients", "float64")


# Manual means manual ------------------------------------------------------------------------------------------


def test_torch_manual_builds_no_autograd_graph(circles, monkeypatch) -> None:
    """torch/manual trains and differentiates under inference_mode, with autograd's entry points made to fail."""
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("torch/manual called autograd")

    monkeypatch.setattr(torch.autograd, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "grad", refuse)
    monkeypatch.setattr(torch.Tensor, "backward", refuse)
    impl = frameworks.get("torch/manual")
    params, X, Y = random_problem(6)
    with torch.inference_mode():
        _, grads = impl.gradients(params, X, Y)
        run = impl.train(circles, frameworks.TrainConfig(dtype="float64", epochs=2))
    assert max_relative_error(grads, oracle.complex_step(params, X, Y)[1]) <= 1e-12
    assert run.epochs_done == 2
    with torch.inference_mode(), pytest.raises(AssertionError, match="autograd"):  # the trap would fire
        frameworks.get("torch/autograd").gradients(params, X, Y)


def test_jax_manual_calls_no_autodiff(circles, monkeypatch) -> None:
    """jax/manual, traced afresh, with jax.grad / vjp / value_and_grad / jacrev / jacfwd / linearize made to fail."""
    import jax

    from frameworks import _training

    def refuse(*args, **kwargs):
        raise AssertionError("jax/manual called autodiff")

    for name in ("grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "linearize"):
        monkeypatch.setattr(jax, name, refuse)
    jax.clear_caches()
    _training._runner.cache_clear()
    params, X, Y = random_problem(8)
    _, grads = frameworks.get("jax/manual").gradients(params, X, Y)
    run = frameworks.get("jax/manual").train(circles, frameworks.TrainConfig(dtype="float64", epochs=2))
    assert max_relative_error(grads, oracle.complex_step(params, X, Y)[1]) <= 1e-12
    assert run.epochs_done == 2
    with pytest.raises(AssertionError, match="autodiff"):  # the trap would fire
        frameworks.get("jax/grad").gradients(*random_problem(9))
    jax.clear_caches()
    _training._runner.cache_clear()


# No global state ----------------------------------------------------------------------------------------------


def test_training_and_native_init_leave_the_torch_generator_alone(circles) -> None:
    import torch

    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    for impl_id in ("torch/nn", "torch/optim"):
        frameworks.get(impl_id).train(circles, frameworks.TrainConfig(epochs=1))
        frameworks.get(impl_id).gradients(*random_problem(0))
    drawn = frameworks.native_init("torch", 2, 10, 2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    with torch.random.fork_rng(devices=[]):  # the very numbers nn.Linear draws after torch.manual_seed(3)
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Linear(2, 10), torch.nn.Tanh(), torch.nn.Linear(10, 2))
    expected = convert.from_torch_state_dict(model.state_dict())
    assert all(np.array_equal(drawn[name], expected[name]) for name in expected)
    assert frameworks.native_init("torch", 2, 10, 2, seed=3)["Wh"].tolist() == \
        frameworks.native_init("torch", 2, 10, 2, seed=3)["Wh"].tolist()


def test_threads_precision_and_x64_are_restored() -> None:
    import jax
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)  # not the kit's 1, so a leak shows even where the default is 1
    threads, precision = torch.get_num_threads(), torch.backends.cuda.matmul.fp32_precision
    x64 = jax.config.jax_enable_x64
    for impl_id in ("torch/manual", "jax/manual"):
        frameworks.get(impl_id).gradients(*random_problem(0), dtype="float64")
        frameworks.get(impl_id).gradients(*random_problem(0), dtype="float32")
    assert torch.get_num_threads() == threads
    assert torch.backends.cuda.matmul.fp32_precision == precision
    assert jax.config.jax_enable_x64 == x64
    torch.set_num_threads(before)


def test_torch_threads_hold_inside_the_run_only() -> None:
    import torch

    from frameworks.torch_stages import _backend

    before = torch.get_num_threads()
    for threads in (1, 2):
        with _backend.scope(frameworks.TrainConfig(torch_threads=threads)):
            assert torch.get_num_threads() == threads
        assert torch.get_num_threads() == before
    assert frameworks.TrainConfig(torch_threads=np.int64(2)).torch_threads == 2


def test_jax_lessons_refuse_float64_outside_x64() -> None:
    """Outside the kit's scope x64 is off: JAX would silently compute in float32. The lessons say so."""
    import jax

    from frameworks.jax_stages import stage1_manual, stage2_grad, stage3_flax, stage4_optax

    params = frameworks.init_params(2, 10, 2)
    config = frameworks.TrainConfig(dtype="float64")
    for load in (stage1_manual.load, stage2_grad.load, stage3_flax.load, stage4_optax.load):
        with pytest.raises(frameworks.KitError, match="x64"):
            load(params, config)
    with pytest.raises(frameworks.KitError, match="x64"):
        stage3_flax.init_model(params, dtype="float64")
    with jax.enable_x64(True):
        assert stage1_manual.load(params, config).params["Wh"].dtype == np.float64
    assert stage1_manual.load(params, config.replace(dtype="float32")).params["Wh"].dtype == np.float32


# One compile a shape ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl_id", ["jax/manual", "jax/grad", "jax/flax", "jax/optax"])
def test_a_second_train_of_the_same_shapes_does_not_recompile(circles, impl_id: str) -> None:
    import jax

    compiles = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event.endswith("backend_compile_duration"):
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        impl = frameworks.get(impl_id)
        impl.train(circles, frameworks.TrainConfig(epochs=3))
        first = len(compiles)
        impl.train(circles, frameworks.TrainConfig(epochs=3, seed=5))
        impl.train(circles, frameworks.TrainConfig(epochs=3, seed=6, eta=0.03))
        assert len(compiles) == first  # seeds and inits are data, not program
        impl.train(circles, frameworks.TrainConfig(epochs=3, eta=0.1))
        # eta is part of the compiled step (data in jax/manual's runs-last program); another shape always compiles
        assert (len(compiles) == first) == (impl_id == "jax/manual")
        impl.train(circles, frameworks.TrainConfig(epochs=3, nh=11))
        assert len(compiles) > first  # the counter does count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
