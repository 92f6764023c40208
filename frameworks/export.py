"""Models out in their frameworks' own formats, and back in: ``torch.save``, Orbax, safetensors.

The kit's own checkpoint (``frameworks._checkpoint``) resumes a run in any
implementation, but nobody outside the kit reads it. A finished model leaves in
the formats its users already load, each holding float64 numbers by default, so
that every round trip is exact (a copy, never a rounding):

* **PyTorch**, a folder: ``model.pt``, the whole ``nn.Sequential`` pickled by
  ``torch.save`` (only ``torch.nn`` classes inside, so plain PyTorch loads it with
  no kit installed: ``torch.load(path, weights_only=False)``), and
  ``state_dict.pt``, its ``state_dict`` (``torch.load(path, weights_only=True)``,
  then ``load_state_dict`` into your own ``Sequential``). Unpickling a module runs
  whatever the pickle names, hence PyTorch's ``weights_only`` default; the kit
  reads ``model.pt`` back with ``weights_only=True`` and exactly the ``torch.nn``
  classes of its MLPs allowed (``torch.serialization.safe_globals``).
* **Flax NNX**, an Orbax checkpoint folder: ``nnx.state(model, nnx.Param)`` of the
  kit's ``nnx.Sequential`` saved by ``orbax.checkpoint.StandardCheckpointer`` (the
  way Flax's checkpointing guide saves a model), the architecture in Orbax's
  ``custom_metadata``. Restore it into a fresh model's abstract state.
* **safetensors**, one file: the tensors under PyTorch's ``state_dict`` names
  (``0.weight``, ``0.bias``, ...), so that
  ``model.load_state_dict(safetensors.torch.load_file(path))`` fills an
  ``nn.Sequential``, and the architecture as JSON in the header's metadata. No
  pickle, no framework: it is written from NumPy.

The layouts are not re-derived here: PyTorch's names and Flax's transposed kernels
come from :mod:`frameworks.convert`, the models from the stage-3 modules. The
weights alone do not say the activations, so each format also records the
:class:`~frameworks.Architecture` (the module's own classes, Orbax's metadata,
the safetensors header) and each reader returns it. A model trained with the
double-softmax trap leaves as its network, which outputs logits.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frameworks import convert
from frameworks._arch import LAYER_NORM_EPS, Architecture, Norm
from frameworks._errors import KitError, unknown
from frameworks._export_records import (
    DTYPES,
    FORMAT,
    Imported,
    agree,
    arch_from_dict,
    arch_to_dict,
    check_dtype,
    check_shapes,
    existing,
    model_of,
    require,
    target,
)
from frameworks._params import Params

__all__ = ["DTYPES", "FORMAT", "FORMATS", "Imported", "arch_from_dict", "arch_to_dict", "from_orbax",
           "from_safetensors", "from_torch", "load", "model_of", "module_arch", "save", "to_orbax", "to_safetensors",
           "to_torch"]

FORMATS = ("torch", "orbax", "safetensors")
MODEL_FILE, STATE_DICT_FILE = "model.pt", "state_dict.pt"


# ---------------------------------------------------------------------------------------------------------------
# PyTorch: the whole nn.Sequential and its state_dict, torch.save'd.


def to_torch(model: Any, path: str | Path, *, arch: Architecture | None = None, dtype: str = "float64",
             overwrite: bool = False) -> Path:
    """Write the folder ``path``: ``model.pt`` (the ``nn.Sequential``, in evaluation mode) and ``state_dict.pt``.
    Returns ``path``."""
    torch = require("torch")
    from frameworks.torch_stages import stage3_nn

    params, arch = model_of(model, arch)
    dtype, path = check_dtype(dtype), target(path, overwrite, "folder")
    module = stage3_nn.init_model(params, dtype=dtype, arch=arch).eval()
    path.mkdir(exist_ok=True)
    torch.save(module, path / MODEL_FILE)
    torch.save(module.state_dict(), path / STATE_DICT_FILE)
    return path


def from_torch(path: str | Path, *, arch: Architecture | None = None) -> Imported:
    """Canonical params from a :func:`to_torch` folder, a pickled ``nn.Sequential`` (its architecture read from
    its layers) or a ``state_dict`` file (``arch`` needed unless it is the lab's network)."""
    nn = require("torch").nn
    path = existing(path, "PyTorch export")
    if path.is_dir():
        path = path / MODEL_FILE if (path / MODEL_FILE).is_file() else path / STATE_DICT_FILE
        existing(path, f"{MODEL_FILE} or {STATE_DICT_FILE}")
    loaded = _torch_load(path)
    if isinstance(loaded, nn.Module):
        arch = agree(module_arch(loaded, path), arch, str(path))
        state: Mapping[str, Any] = loaded.state_dict()
    elif isinstance(loaded, Mapping):
        state = loaded
    else:
        raise KitError(f"{path} holds a {type(loaded).__name__}, neither an nn.Sequential nor a state_dict.")
    params = convert.from_torch_state_dict(state, arch=arch)
    if arch is not None:
        check_shapes(params, arch)
    return Imported(params, arch)


def _torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True`` and the kit's ``torch.nn`` classes allowed."""
    import torch
    from torch import nn

    from frameworks.torch_stages import stage3_nn

    activations = {type(make()) for make in stage3_nn.ACTIVATIONS.values()}
    allowed: list[Any] = [nn.Sequential, nn.Linear, nn.LayerNorm, nn.Dropout, *activations]
    if not zipfile.is_zipfile(path) and path.suffix != ".safetensors":  # torch.save writes a zip (torch >= 1.6)
        raise KitError(f"{path} is not a file torch.save wrote (not a zip archive); expected a model.pt or "
                       "state_dict.pt (frameworks.export.to_torch).")
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.findall(r"GLOBAL ([\w.]+)", str(err))
        what = f"a {named[0]}" if named else "other objects"
        raise KitError(f"{path} holds more than torch.nn's MLP layers and tensors ({what}); the kit does not "
                       "unpickle it. If you trust it, load it with torch.load(weights_only=False).") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise KitError(f"{path} is not a file torch.save wrote ({type(err).__name__}); expected a model.pt or "
                       "state_dict.pt (frameworks.export.to_torch).") from None


def module_arch(module: Any, where: object = "the module") -> Architecture:
    """The :class:`Architecture` of an ``nn.Sequential`` of the kit's family, read from its layers (a user's own
    ``Sequential`` of Linear, LayerNorm, one of the seven activations and Dropout qualifies)."""
    from torch import nn

    from frameworks.torch_stages import stage3_nn

    activations = {(type(m), m.extra_repr()): name for name, make in stage3_nn.ACTIVATIONS.items() for m in [make()]}
    if not isinstance(module, nn.Sequential):
        raise KitError(f"{where} holds a {type(module).__name__}, not an nn.Sequential.")
    sizes, names, kinds, rates = [], [], [], set()
    norm: Norm = None
    for i, layer in enumerate(module):
        key = (type(layer), layer.extra_repr())
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            sizes.append(layer.out_features)
            kinds.append("linear")
        elif isinstance(layer, nn.LayerNorm) and layer.eps == LAYER_NORM_EPS and layer.elementwise_affine \
                and layer.bias is not None:
            norm = "layer"
            kinds.append("layer_norm")
        elif isinstance(layer, nn.Dropout):
            rates.add(layer.p)
            kinds.append("dropout")
        elif key in activations:
            names.append(activations[key])
            kinds.append(activations[key])
        else:
            raise KitError(f"layer {i} of {where}, {layer!r}, is none of the kit's MLP layers (Linear with bias, "
                           f"LayerNorm with eps {LAYER_NORM_EPS:g}, Dropout, {', '.join(stage3_nn.ACTIVATIONS)}).")
    try:
        if len(rates) > 1:
            raise KitError(f"dropout rates {sorted(rates)}; the kit's MLPs have one.")
        arch = Architecture(tuple(sizes[:-1]), tuple(names), norm, rates.pop() if rates else 0.0)
    except KitError as err:
        raise KitError(f"{where} is not an MLP of the kit's family: {err}") from None
    if kinds != [kind for _, kind in arch.modules()]:
        raise KitError(f"{where}'s layers ({', '.join(kinds)}) are not in the kit's order: Linear, [LayerNorm], "
                       "activation, [Dropout], ..., Linear.")
    return arch


# ---------------------------------------------------------------------------------------------------------------
# Flax NNX: the model's Param state, saved by Orbax.


def to_orbax(model: Any, path: str | Path, *, arch: Architecture | None = None, dtype: str = "float64",
             overwrite: bool = False) -> Path:
    """Save ``nnx.state(model, nnx.Param)`` of the kit's ``nnx.Sequential`` to the Orbax checkpoint folder
    ``path`` (the architecture in its ``custom_metadata``). Returns ``path``."""
    jax, ocp, nnx = require("jax"), require("orbax.checkpoint"), require("flax.nnx")
    params, arch = model_of(model, arch)
    dtype, path = check_dtype(dtype), target(path, overwrite, "folder").resolve()
    with jax.enable_x64(dtype == "float64"):
        state = _abstract_state(params, arch, dtype)
        # NumPy leaves: Orbax writes them in their own dtype. (JAX arrays are converted in Orbax's own thread
        # when an event loop runs, a Jupyter kernel's: there x64 is off and float64 was written as float32.)
        nnx.replace_by_pure_dict(state, jax.tree.map(lambda a: np.asarray(a, dtype),
                                                     convert.to_flax_params(params, arch=arch)))
        with ocp.StandardCheckpointer() as checkpointer:  # leaving the block waits for the save to commit
            checkpointer.save(path, state, force=True, custom_metadata={"format": FORMAT, "arch": arch_to_dict(arch)})
    return path


def _abstract_state(params: Params, arch: Architecture, dtype: str) -> Any:
    """``nnx.state(model, nnx.Param)`` of the kit's model (``stage3_flax.init_model``) as shapes and dtypes only:
    ``nnx.eval_shape`` builds it without drawing (or compiling) a random init."""
    nnx = require("flax.nnx")
    from frameworks.jax_stages import stage3_flax

    return nnx.state(nnx.eval_shape(lambda: stage3_flax.init_model(params, dtype=dtype, arch=arch)), nnx.Param)


def from_orbax(path: str | Path, *, arch: Architecture | None = None) -> Imported:
    """Restore a :func:`to_orbax` checkpoint into the abstract state of a fresh ``nnx.Sequential`` of its
    architecture (or of ``arch``, for a checkpoint without the kit's metadata); canonical params out."""
    jax, ocp, nnx = require("jax"), require("orbax.checkpoint"), require("flax.nnx")
    path = existing(path, "Orbax checkpoint").resolve()
    if not (path / "_CHECKPOINT_METADATA").is_file():
        raise KitError(f"{path} is not an Orbax checkpoint folder (no _CHECKPOINT_METADATA); expected one written "
                       "by frameworks.export.to_orbax.")
    with jax.enable_x64(True), ocp.StandardCheckpointer() as checkpointer:
        meta = checkpointer.metadata(path)
        saved = (meta.custom_metadata or {}).get("arch")
        arch = agree(None if saved is None else arch_from_dict(saved), arch, str(path))
        if arch is None:
            raise KitError(f"{path} does not record its architecture; give it (arch=...).")
        tree = meta.item_metadata.tree if meta.item_metadata is not None else {}
        linear = [i for i, (_, kind) in enumerate(arch.modules()) if kind == "linear"]
        first, last = _kernel(tree, linear[0]), _kernel(tree, linear[-1])
        zeros = {n: np.zeros(s) for n, s in arch.shapes(first.shape[0], last.shape[1]).items()}
        try:
            target = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), _abstract_state(zeros, arch, str(first.dtype)))
            state = checkpointer.restore(path, target)  # NumPy leaves in, NumPy arrays of the saved dtype out
        except (ValueError, KeyError, TypeError) as err:
            message = " ".join(str(err).split())[:200]
            raise KitError(f"{path} does not hold the model of {arch.describe()}: {message}") from None
        return Imported(convert.from_flax_params(nnx.to_pure_dict(state), arch=arch), arch)


def _kernel(tree: Any, layer: int) -> Any:
    """The metadata (shape, dtype) of Linear ``layer``'s kernel in Orbax's tree (``nnx.Param``'s ``value``
    level, if any, looked through)."""
    try:
        leaf = tree["layers"][str(layer)]["kernel"]
        leaf = leaf.get("value", leaf) if isinstance(leaf, Mapping) else leaf
        leaf.shape, leaf.dtype  # noqa: B018 -- a kernel's metadata has both
        return leaf
    except (KeyError, TypeError, AttributeError):
        raise KitError(f"the Orbax checkpoint has no kernel for layer {layer}: not the state of the kit's "
                       "nnx.Sequential of that architecture.") from None


# ---------------------------------------------------------------------------------------------------------------
# safetensors: PyTorch's state_dict names, the architecture in the header.


def to_safetensors(model: Any, path: str | Path, *, arch: Architecture | None = None, dtype: str = "float64",
                   overwrite: bool = False) -> Path:
    """Write the file ``path``: the ``state_dict``'s tensors by name, the architecture in the metadata."""
    save_file = require("safetensors.numpy").save_file
    params, arch = model_of(model, arch)
    np_dtype, path = np.dtype(check_dtype(dtype)), target(path, overwrite, "file")
    tensors = {}
    for layer, (weight, bias) in convert._positions(arch, params).items():  # PyTorch's indices in the Sequential
        tensors[f"{layer}.weight"] = np.ascontiguousarray(params[weight], dtype=np_dtype)
        tensors[f"{layer}.bias"] = np.ascontiguousarray(params[bias], dtype=np_dtype)
    save_file(tensors, path, metadata={"format": FORMAT, "arch": json.dumps(arch_to_dict(arch))})
    return path


def from_safetensors(path: str | Path, *, arch: Architecture | None = None) -> Imported:
    """Canonical params from a safetensors file of the ``state_dict`` names (the architecture from its metadata,
    or ``arch``, or the lab's network)."""
    safetensors = require("safetensors")
    path = existing(path, "safetensors file")
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (safetensors.SafetensorError, OSError) as err:
        raise KitError(f"{path} is not a safetensors file ({' '.join(str(err).split())[:120]}).") from None
    saved = None
    if "arch" in meta:
        try:
            saved = arch_from_dict(json.loads(meta["arch"]))
        except json.JSONDecodeError:
            raise KitError(f"{path}'s metadata 'arch' is not JSON.") from None
    arch = agree(saved, arch, str(path))
    params = convert.from_torch_state_dict(state, arch=arch)
    if arch is not None:
        check_shapes(params, arch)
    return Imported(params, arch)


# ---------------------------------------------------------------------------------------------------------------
# By format name (the command line's way in).

WRITERS = {"torch": to_torch, "orbax": to_orbax, "safetensors": to_safetensors}
READERS = {"torch": from_torch, "orbax": from_orbax, "safetensors": from_safetensors}


def save(model: Any, path: str | Path, *, format: str, **options: Any) -> Path:
    """Export ``model`` in ``format`` (one of :data:`FORMATS`) with :func:`to_torch`'s options."""
    if format not in WRITERS:
        raise unknown("export format", format, FORMATS)
    return WRITERS[format](model, path, **options)


def load(path: str | Path, *, arch: Architecture | None = None) -> Imported:
    """Read any of the three back, the format told by the path: a ``.safetensors`` file, an Orbax folder, else
    PyTorch's."""
    path = existing(path, "exported model")
    if path.is_file() and path.suffix == ".safetensors":
        return from_safetensors(path, arch=arch)
    if path.is_dir() and (path / "_CHECKPOINT_METADATA").is_file():
        return from_orbax(path, arch=arch)
    return from_torch(path, arch=arch)
