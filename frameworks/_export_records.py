"""What ``frameworks.export`` writes beside the weights, and what it checks: the model, its architecture, the paths.

A model to export is canonical parameters with their :class:`~frameworks.Architecture`,
or a run that carries both (a ``TrainResult``, a ``Checkpoint``). The weights do not
say the activations, so the architecture travels with every file as a small JSON
record, and a reader checks it against the one its caller expects.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NamedTuple

from frameworks._arch import Architecture, infer
from frameworks._errors import KitError, unknown
from frameworks._params import Params, check_params, widths

FORMAT = "rdfia-mlp-kit/export/1"
DTYPES = ("float64", "float32")
#: The extra that installs each format's library.
EXTRAS = {"torch": "torch", "orbax": "jax", "flax": "jax", "jax": "jax", "safetensors": "export"}


class Imported(NamedTuple):
    """What a reader returns: canonical float64 parameters and the architecture (None where the file does not
    say it and none was given: then the lab's network is assumed, as ``frameworks.convert`` does)."""

    params: Params
    arch: Architecture | None


def model_of(model: Any, arch: Architecture | None = None) -> tuple[Params, Architecture]:
    """(params, arch) of ``model``: canonical params (``arch`` needed unless they are the lab's ``Wh, bh, Wy,
    by``, whose activation is tanh), or anything with ``.params`` and ``.config`` (a ``TrainResult``, a
    ``Checkpoint``); refused when ``arch`` and the parameters disagree."""
    if hasattr(model, "params") and hasattr(model, "config"):
        agree(model.config.arch, arch, "the run's config")
        params, arch = check_params(model.params), model.config.arch
    else:
        params = check_params(model)
        if arch is None:
            depth, norm = infer(params)
            if depth > 1 or norm:
                raise KitError("the weights do not say a deeper network's activations: give its architecture "
                               "(arch=config.arch), or export the TrainResult itself.")
            arch = Architecture((params["Wh"].shape[0],))
    check_shapes(params, arch)
    return params, arch


def check_shapes(params: Params, arch: Architecture) -> None:
    """Refuse parameters that are not those of ``arch`` (names and shapes)."""
    nx, _, ny = widths(params)
    expected = arch.shapes(nx, ny)
    if set(params) != set(expected) or any(params[n].shape != s for n, s in expected.items()):
        got = ", ".join(f"{n} {params[n].shape}" for n in params)
        raise KitError(f"the parameters ({got}) are not those of the architecture {arch.describe()}.")


def agree(saved: Architecture | None, given: Architecture | None, where: str) -> Architecture | None:
    """The architecture a file (or a run) holds, checked against the one the caller gave."""
    if saved is not None and given is not None and saved != given:
        raise KitError(f"architecture mismatch: {where} holds {saved.describe()}, arch= says {given.describe()}.")
    return saved or given


def arch_to_dict(arch: Architecture) -> dict[str, Any]:
    """The architecture as JSON-ready data (a file's metadata)."""
    return {"hidden": list(arch.hidden), "activations": list(arch.activations), "norm": arch.norm,
            "dropout": arch.dropout}


def arch_from_dict(data: Any) -> Architecture:
    """The inverse of :func:`arch_to_dict`, with a clear error for anything else."""
    try:
        return Architecture(tuple(data["hidden"]), tuple(data["activations"]), data["norm"], data["dropout"])
    except (TypeError, KeyError) as err:
        raise KitError(f"the file's architecture record {data!r} is not the kit's ({type(err).__name__}).") from None


def target(path: str | Path, overwrite: bool, kind: Literal["file", "folder"]) -> Path:
    """Where to write: refused if it exists (an empty folder aside) and ``overwrite`` is not set, or if it is not
    of ``kind``; its parent folder made."""
    path = Path(path)
    other = path.is_file() if kind == "folder" else path.is_dir()
    if other:
        raise KitError(f"{path} is a {'file' if kind == 'folder' else 'folder'}; this format writes a {kind}.")
    if path.exists() and not (path.is_dir() and not any(path.iterdir())) and not overwrite:
        raise KitError(f"{path} exists; choose another path, or overwrite=True (--force) to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is one of :data:`DTYPES`."""
    if dtype not in DTYPES:
        raise unknown("export dtype", dtype, DTYPES)
    return dtype


def existing(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path``, refused when nothing is there."""
    path = Path(path)
    if not path.exists():
        raise KitError(f"no {what} at {path}.")
    return path


def require(name: str) -> ModuleType:
    """Import ``name``, or say which extra installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        extra = EXTRAS[name.split('.')[0]]
        raise KitError(f"this format needs {name}, which is not installed: pip install 'rdfia-mlp-kit[{extra}]'") \
            from None
