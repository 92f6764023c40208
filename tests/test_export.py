"""frameworks.export: models out as torch.save files, Orbax (Flax NNX) checkpoints and safetensors, and back in.

Each round trip is exact (float64 numbers copied, never rounded); the PyTorch files load where the kit cannot be
imported; the Orbax checkpoint restores into a Flax model written by hand; bad input is one clear error; the CLI
exports what ``train --checkpoint`` wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import frameworks
from frameworks import Architecture, KitError, export
from frameworks.__main__ import main

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
ocp = pytest.importorskip("orbax.checkpoint")
pytest.importorskip("safetensors")

ROOT = Path(__file__).resolve().parents[1]
LAB = Architecture()
DEEP = Architecture((16, 8), ("gelu", "tanh"), "layer")
NX, NY = 2, 3
READERS = {"torch": export.from_torch, "orbax": export.from_orbax, "safetensors": export.from_safetensors}
NAMES = {"torch": "torch", "orbax": "orbax", "safetensors": "model.safetensors"}


def perturbed(params: frameworks.Params, seed: int) -> frameworks.Params:
    """Every entry moved off its init (biases, gamma and beta too), so no name can be read as another."""
    rng = np.random.default_rng(seed)
    return {name: value + rng.normal(0, 0.2, value.shape) for name, value in params.items()}


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[frameworks.Params, Architecture]]:
    return {"lab": (perturbed(frameworks.init_params(NX, 10, NY, seed=0), 1), LAB),
            "deep": (perturbed(frameworks.init_params(NX, DEEP.hidden, NY, seed=2, norm="layer"), 3), DEEP)}


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.default_rng(4).normal(0, 1.5, (9, NX))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, models) -> dict[tuple[str, str], Path]:
    """Both networks in the three formats: the lab's from its params alone, the deeper one with its arch."""
    folder = tmp_path_factory.mktemp("exported")
    return {(name, fmt): export.save(params, folder / name / NAMES[fmt], format=fmt,
                                     arch=None if name == "lab" else arch)
            for name, (params, arch) in models.items() for fmt in export.FORMATS}


def kit_torch_logits(params: frameworks.Params, arch: Architecture, X: np.ndarray) -> np.ndarray:
    from frameworks.torch_stages import stage3_nn

    with torch.no_grad():
        return stage3_nn.init_model(params, dtype="float64", arch=arch).eval()(torch.tensor(X)).numpy()


def max_relative_error(a: frameworks.Params, b: frameworks.Params) -> float:
    return max(float(np.max(np.abs(a[n] - b[n]) / np.maximum(np.abs(b[n]), 1e-300))) for n in b)


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_round_trips_are_exact(exported, models, fmt) -> None:
    for name, (params, arch) in models.items():
        for back in (READERS[fmt](exported[name, fmt]), export.load(exported[name, fmt])):
            assert back.arch == arch and list(back.params) == list(params)
            assert all(back.params[n].dtype == np.float64 for n in params)
            assert max_relative_error(back.params, params) == 0.0


NO_KIT = textwrap.dedent("""
    import json, sys
    sys.modules["frameworks"] = None  # an import of the kit fails: the files need plain PyTorch only
    import numpy as np, torch
    from safetensors.torch import load_file
    from torch import nn

    cases, X = json.loads(sys.argv[1]), torch.tensor(np.load(sys.argv[2]))
    plain = {
        "lab": lambda: nn.Sequential(nn.Linear(2, 10), nn.Tanh(), nn.Linear(10, 3)),
        "deep": lambda: nn.Sequential(nn.Linear(2, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 8),
                                      nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3)),
    }
    out = {}
    with torch.no_grad():
        for name, (folder, safetensors) in cases.items():
            module = torch.load(folder + "/model.pt", weights_only=False)
            from_state, from_safetensors = plain[name]().double(), plain[name]().double()
            from_state.load_state_dict(torch.load(folder + "/state_dict.pt", weights_only=True))
            from_safetensors.load_state_dict(load_file(safetensors))
            out[name + "/module"] = module(X).numpy()
            out[name + "/state_dict"] = from_state(X).numpy()
            out[name + "/safetensors"] = from_safetensors(X).numpy()
    np.savez(sys.argv[3], **out)
    print(type(module).__module__, sys.modules["frameworks"])
""")


def test_plain_pytorch_loads_the_files_without_the_kit(exported, models, X, tmp_path) -> None:
    np.save(tmp_path / "X.npy", X)
    cases = {name: [str(exported[name, "torch"]), str(exported[name, "safetensors"])] for name in models}
    done = subprocess.run([sys.executable, "-c", NO_KIT, json.dumps(cases), str(tmp_path / "X.npy"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["torch.nn.modules.container", "None"]
    with np.load(tmp_path / "out.npz") as out:
        for name, (params, arch) in models.items():
            kit = kit_torch_logits(params, arch, X)
            for way in ("module", "state_dict", "safetensors"):
                np.testing.assert_array_equal(out[f"{name}/{way}"], kit, err_msg=f"{name} via {way}")


def flax_mlp(arch: Architecture, nx: int, ny: int):
    """The network as a Flax user writes it, with no kit code: its random init is what the checkpoint replaces."""
    import jax.numpy as jnp
    from flax import nnx

    activations = {"tanh": nnx.tanh, "gelu": partial(nnx.gelu, approximate=False)}
    rngs, layers, fan_in = nnx.Rngs(0), [], nx
    for width, activation in zip(arch.hidden, arch.activations):
        layers.append(nnx.Linear(fan_in, width, dtype=jnp.float64, param_dtype=jnp.float64, rngs=rngs))
        if arch.norm:
            layers.append(nnx.LayerNorm(width, epsilon=1e-5, use_fast_variance=False, dtype=jnp.float64,
                                        param_dtype=jnp.float64, rngs=rngs))
        layers.append(activations[activation])
        fan_in = width
    layers.append(nnx.Linear(fan_in, ny, dtype=jnp.float64, param_dtype=jnp.float64, rngs=rngs))
    return nnx.Sequential(*layers)


def kit_flax_model(params: frameworks.Params, arch: Architecture):
    """jax/flax's model (``stage3_flax.init_model``'s graph) holding ``params`` through ``frameworks.convert``,
    built from its abstract shape (no random init drawn and compiled for each shape)."""
    from flax import nnx

    from frameworks import convert
    from frameworks.jax_stages import stage3_flax

    graphdef, state = nnx.split(nnx.eval_shape(lambda: stage3_flax.init_model(params, dtype="float64", arch=arch)))
    nnx.replace_by_pure_dict(state, jax.tree.map(jax.numpy.asarray, convert.to_flax_params(params, arch=arch)))
    return nnx.merge(graphdef, state)


def forward(model, X: np.ndarray) -> np.ndarray:
    """``model(X)`` compiled once (eager, each small op would compile on its own: slower here)."""
    from flax import nnx

    return np.asarray(nnx.jit(lambda model, X: model(X))(model, X))


def test_orbax_restores_into_a_fresh_nnx_model(exported, models, X) -> None:
    """Flax's checkpointing guide, step by step: an abstract model, its state restored by Orbax, merged."""
    from flax import nnx

    with jax.enable_x64(True):
        for name, (params, arch) in models.items():
            graphdef, abstract = nnx.split(nnx.eval_shape(lambda arch=arch: flax_mlp(arch, NX, NY)))
            with ocp.StandardCheckpointer() as checkpointer:
                restored = checkpointer.restore(exported[name, "orbax"], abstract)
            logits = forward(nnx.merge(graphdef, restored), X)
            np.testing.assert_array_equal(logits, forward(kit_flax_model(params, arch), X), err_msg=name)
            np.testing.assert_allclose(logits, kit_torch_logits(params, arch, X), rtol=1e-12, atol=1e-12,
                                       err_msg=name)


def test_bad_input_is_one_clear_error(exported, models, tmp_path) -> None:
    (lab, _), (deep, _) = models["lab"], models["deep"]
    (tmp_path / "text.safetensors").write_text("not a model\n")
    (tmp_path / "text.pt").write_text("not a model\n")
    torch.save(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)), tmp_path / "conv.pt")
    nn = torch.nn  # a LayerNorm after the activation: not the kit's order
    torch.save(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.LayerNorm(4), nn.Linear(4, 2)), tmp_path / "odd.pt")
    other = Architecture((16, 8), ("relu", "tanh"), "layer")
    cases = [
        (lambda: export.from_torch(tmp_path / "nowhere"), "no PyTorch export at"),
        (lambda: export.from_torch(tmp_path / "text.pt"), "is not a file torch.save wrote"),
        (lambda: export.from_torch(tmp_path / "conv.pt"), "holds more than torch.nn's MLP layers"),
        (lambda: export.from_torch(tmp_path / "odd.pt"), "not in the kit's order"),
        (lambda: export.from_torch(exported["deep", "torch"] / "state_dict.pt"), "give the model's architecture"),
        (lambda: export.from_torch(exported["deep", "torch"], arch=other), "architecture mismatch"),
        (lambda: export.from_safetensors(tmp_path / "text.safetensors"), "is not a safetensors file"),
        (lambda: export.from_safetensors(exported["deep", "safetensors"], arch=LAB), "architecture mismatch"),
        (lambda: export.from_orbax(exported["lab", "torch"]), "is not an Orbax checkpoint folder"),
        (lambda: export.from_orbax(exported["deep", "orbax"], arch=other), "architecture mismatch"),
        (lambda: export.to_torch(deep, tmp_path / "t"), "do not say a deeper network's activations"),
        (lambda: export.to_orbax(lab, tmp_path / "o", arch=DEEP), "are not those of the architecture"),
        (lambda: export.to_safetensors(lab, exported["lab", "safetensors"]), "exists; choose another path"),
        (lambda: export.to_safetensors(lab, exported["lab", "torch"], overwrite=True), "this format writes a file"),
        (lambda: export.save(lab, tmp_path / "x.onnx", format="onnx"), "unknown export format 'onnx'"),
        (lambda: export.save(lab, tmp_path / "x", format="torch", dtype="float16"), "unknown export dtype"),
    ]
    for call, expected in cases:
        with pytest.raises(KitError) as caught:
            call()
        assert expected in str(caught.value) and "\n" not in str(caught.value), (expected, str(caught.value))


def test_cli_exports_a_training_checkpoint(tmp_path, capsys) -> None:
    checkpoint = tmp_path / "run.npz"
    assert main(["train", "torch/nn", "--epochs", "2", "--hidden", "16,8", "--activation", "gelu,tanh", "--norm",
                 "layer", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "train")]) == 0
    saved = frameworks.load_checkpoint(checkpoint)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "frameworks", "export", str(checkpoint), "--format", "safetensors"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0 and done.stderr == "" and "load_state_dict" in done.stdout, done.stderr
    for fmt in ("torch", "orbax"):
        assert main(["export", str(checkpoint), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    for path in (tmp_path / "run.safetensors", tmp_path / "torch", tmp_path / "orbax"):
        back = export.load(path)
        assert back.arch == DEEP and max_relative_error(back.params, saved.params) == 0.0
    bad = subprocess.run([sys.executable, "-m", "frameworks", "export", str(tmp_path / "missing.npz"), "--format",
                          "torch"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert (bad.returncode, bad.stdout) == (2, "") and bad.stderr.startswith("error: no checkpoint at")
    assert len(bad.stderr.splitlines()) == 1
    assert main(["export", str(checkpoint), "--format", "torch", "--out", str(tmp_path / "torch")]) == 2
    assert "exists" in capsys.readouterr().err


def test_orbax_keeps_float64_inside_a_running_event_loop(tmp_path) -> None:
    """A Jupyter kernel runs an asyncio loop, and Orbax then works in its own thread, where JAX's x64 (a
    thread-local switch) is off: float64 JAX arrays were written as float32 (3.8e-8 off; the docs build found it).
    The kit hands Orbax NumPy arrays both ways."""
    import asyncio

    from frameworks.tolerances import max_relative_error

    arch = frameworks.TrainConfig(hidden=(16, 8), norm="layer").arch
    params = frameworks.init_params(2, (16, 8), 2, seed=0, norm="layer")

    async def round_trip() -> float:
        back = export.from_orbax(export.to_orbax(params, tmp_path / "orbax", arch=arch))
        return max_relative_error(back.params, params)

    assert asyncio.run(round_trip()) == 0.0
