"""frameworks.port: a real torch.nn.Sequential and its Flax translation compute the same function, train on one
trajectory, and round-trip; what cannot be translated exactly is refused, naming the layer."""

from __future__ import annotations

import numpy as np
import pytest

from frameworks import KitError, port
from frameworks.tolerances import relative_error

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")


def torch_mlp() -> torch.nn.Sequential:
    """Every layer kind the port knows, PyTorch's defaults where they differ from Flax's (exact GELU, eps 1e-5)."""
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 16), nn.LayerNorm(16), nn.GELU(), nn.Dropout(0.1),
        nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 12), nn.LeakyReLU(0.2), nn.Linear(12, 8), nn.SiLU(),
        nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.GELU(approximate="tanh"),
        nn.Linear(8, 3),
    ).double()


def test_from_torch_computes_the_same_function() -> None:
    model = torch_mlp().eval()
    X = np.random.default_rng(1).normal(0, 1, (32, 5))
    with jax.enable_x64(True):
        ported = port.from_torch(model)
        ported.model.eval()
        flax_out = np.asarray(ported.model(jax.numpy.asarray(X)))
    torch_out = model(torch.tensor(X)).detach().numpy()
    assert relative_error(flax_out, torch_out) <= 1e-12
    kinds = [layer.kind for layer in ported.layers]
    assert kinds[:4] == ["linear", "layer_norm", "gelu", "dropout"] and kinds[-2] == "gelu_tanh"
    assert ported.layers[1].option == 1e-5 and ported.layers[7].option == pytest.approx(0.2)  # eps and slope kept


def test_the_ports_train_on_one_trajectory() -> None:
    """Five SGD steps in each framework (dropout off) from the translated weights: the same parameters."""
    import optax

    model = torch_mlp().eval()
    rng = np.random.default_rng(2)
    batches = [(rng.normal(0, 1, (16, 5)), np.eye(3)[rng.integers(0, 3, 16)]) for _ in range(5)]
    with jax.enable_x64(True):
        ported = port.from_torch(model)
        ported.model.eval()
        graphdef, params, rest = nnx.split(ported.model, nnx.Param, ...)  # rest: the dropout's generator
        tx = optax.sgd(0.1)
        opt_state = tx.init(params)

        def loss(params, X, Y):
            return optax.softmax_cross_entropy(nnx.merge(graphdef, params, rest)(X), Y).mean()

        for X, Y in batches:
            grads = jax.grad(loss)(params, jax.numpy.asarray(X), jax.numpy.asarray(Y))
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        nnx.update(ported.model, params)
        back = port.to_torch(ported.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for X, Y in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.tensor(X)), torch.tensor(Y)).backward()
        optimizer.step()
    start = _canonical(torch_mlp())
    assert relative_error(back.params[0]["W"], start[0]["W"]) > 1e-5  # the five steps moved the weights
    for mine, theirs in zip(back.params, _canonical(model)):
        for name in mine:
            assert relative_error(mine[name], theirs[name]) <= 1e-12, name


def _canonical(model: torch.nn.Sequential) -> list[dict[str, np.ndarray]]:
    with jax.enable_x64(True):
        return port.from_torch(model).params


def test_to_torch_round_trips_exactly() -> None:
    with jax.enable_x64(True):
        ported = port.from_torch(torch_mlp())
        back = port.to_torch(ported.model)
        again = port.from_torch(back.model)
    assert back.layers == ported.layers == again.layers
    for a, b in zip(ported.params, again.params):
        assert all(np.array_equal(a[name], b[name]) for name in a)


def test_flax_defaults_are_carried_over_not_changed() -> None:
    """Flax's default gelu is the tanh form and its LayerNorm eps 1e-6: PyTorch gets exactly those."""
    with jax.enable_x64(True):
        model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0), param_dtype=jax.numpy.float64),
                               nnx.LayerNorm(4, rngs=nnx.Rngs(0), param_dtype=jax.numpy.float64), nnx.gelu,
                               nnx.Linear(4, 2, rngs=nnx.Rngs(1), param_dtype=jax.numpy.float64))
        X = np.random.default_rng(3).normal(0, 1, (8, 3))
        expected = np.asarray(model(jax.numpy.asarray(X)))
        ported = port.to_torch(model)
    norm, gelu = ported.model[1], ported.model[2]
    assert norm.eps == 1e-6 and gelu.approximate == "tanh"
    assert relative_error(ported.model(torch.tensor(X)).detach().numpy(), expected) <= 1e-12


@pytest.mark.parametrize(("layer", "message"), [
    (lambda nn: nn.Conv1d(1, 1, 3), "layer 1 (Conv1d) cannot be ported exactly"),
    (lambda nn: nn.LayerNorm(4, elementwise_affine=False), "layer 1 (LayerNorm) cannot be ported exactly"),
    (lambda nn: nn.Linear(4, 4, bias=False), "layer 1 (Linear) cannot be ported exactly"),
    (lambda nn: nn.Softplus(), "layer 1 (Softplus) cannot be ported exactly"),
])
def test_what_cannot_be_translated_is_refused_by_layer(layer, message) -> None:
    from torch import nn

    with jax.enable_x64(True), pytest.raises(KitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        port.from_torch(nn.Sequential(nn.Linear(3, 4), layer(nn)))
    with pytest.raises(KitError, match="takes a torch.nn.Sequential"):
        port.from_torch(nn.Linear(3, 4))


def test_an_unknown_flax_function_is_refused() -> None:
    with jax.enable_x64(True), pytest.raises(KitError, match=r"layer 1 \(softplus\) cannot be ported"):
        port.to_torch(nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), jax.nn.softplus))


def test_a_float32_layer_norm_on_features_with_a_large_mean_stays_exact() -> None:
    """Flax's default variance, E[x^2] - E[x]^2, cancels on such features; the port builds PyTorch's."""
    from torch import nn

    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)).eval()
    X = np.random.default_rng(4).normal(1000.0, 1.0, (16, 4)).astype(np.float32)
    with torch.no_grad():
        model[0].bias.fill_(1000.0)  # hidden features around 1000, spread about 1
        expected = model(torch.tensor(X)).numpy()
    ported = port.from_torch(model, dtype="float32")
    assert relative_error(np.asarray(ported.model(jax.numpy.asarray(X))), expected) <= 1e-3


def test_modes_and_flax_only_options() -> None:
    """eval() and train() carry over; what nn.Dropout / nn.LayerNorm cannot express is refused."""
    from torch import nn

    with jax.enable_x64(True):
        flax_eval = port.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).eval()).model
        assert flax_eval.layers[1].deterministic
        assert not port.to_torch(flax_eval).model.training
        rngs = nnx.Rngs(0)
        for layer in (nnx.Dropout(0.5, broadcast_dims=(0,), rngs=rngs),
                      nnx.LayerNorm(4, reduction_axes=(-2, -1), rngs=rngs)):
            with pytest.raises(KitError, match="cannot be ported exactly"):
                port.to_torch(nnx.Sequential(nnx.Linear(4, 4, rngs=rngs), layer))
    with pytest.raises(KitError, match="unknown dtype 'float16'"):
        port.from_torch(nn.Sequential(nn.Linear(2, 2)), dtype="float16")


def test_a_ported_model_trains_in_the_kits_eight_implementations() -> None:
    """A user's nn.Sequential (LayerNorm, GELU, dropout, ReLU) becomes a TrainConfig and canonical parameters;
    all eight implementations then train it on one trajectory (float64, the kit's dropout masks)."""
    from torch import nn

    import frameworks
    from frameworks.tolerances import max_relative_error

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(64, 32), nn.LayerNorm(32), nn.GELU(), nn.Dropout(0.1),
                          nn.Linear(32, 16), nn.LayerNorm(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 10)).double()
    with jax.enable_x64(True):
        ported = port.from_torch(model)
    config = ported.config(epochs=1, batch_size=100, eta=0.05, dtype="float64")
    assert config.arch.hidden == (32, 16) and config.arch.activations == ("gelu", "relu") and config.dropout == 0.1
    assert list(ported.canonical) == ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "Wy", "by"]
    assert all(np.array_equal(mine[k], theirs[k]) for mine, theirs in zip(config.arch.layers(ported.canonical),
                                                                           ported.params) for k in mine)
    digits = frameworks.load_dataset("digits")
    runs = {i: frameworks.get(i).train(digits, config, params=ported.canonical) for i in frameworks.IMPLEMENTATIONS}
    for impl_id, run in runs.items():
        assert max_relative_error(run.params, runs["torch/nn"].params) <= 1e-12, impl_id
    assert max_relative_error(runs["torch/nn"].params, ported.canonical) > 1e-3  # the epoch moved the weights


def test_a_network_the_kit_does_not_train_is_refused_with_the_reason() -> None:
    from torch import nn

    with jax.enable_x64(True):
        flax_eps = port.from_torch(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4, eps=1e-6), nn.Tanh(),
                                                 nn.Linear(4, 2)).double())
        two_rates = port.from_torch(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4, 4),
                                                  nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 2)).double())
    with pytest.raises(KitError, match="LayerNorm with eps 1e-06; the kit's is PyTorch's 1e-05"):
        flax_eps.config()
    with pytest.raises(KitError, match=r"dropout rates differ \(\[0.1, 0.2\]\)"):
        two_rates.config()
