"""Checkpoints: a run saved in a framework-neutral file, written atomically, verified on load.

One ``.npz`` file holds the canonical float64 parameters and a JSON record
(implementation, config, history, epoch, the batch order's generator state)
together with the SHA-256 of all of it. It is written to a temporary file in
the same folder, flushed to disk, then renamed over the target: a crash
mid-write leaves the previous checkpoint intact, never a torn one. The file
gets the permissions of any file the user saves (0666 less the umask). A file
that is truncated or altered fails its checksum and is refused.

A checkpoint written by any implementation resumes in any other: it holds
nothing of a framework. An optimizer other than the lab's SGD adds its state in
the canonical layout (``optimizer/{PyTorch's buffer name}/{parameter}`` arrays and
the update count: momentum buffers, Adam's moments, Adagrad's sums), so that
``torch/optim -> jax/optax -> torch/manual`` continue one trajectory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frameworks._config import TrainConfig
from frameworks._errors import KitError
from frameworks._params import Params, check_params

FORMAT = "rdfia-mlp-kit/checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """A run stopped after ``epoch`` epochs: everything needed to resume it exactly."""

    implementation: str
    config: TrainConfig
    params: Params
    history: dict[str, list[float]]
    epoch: int
    batch_order_state: dict[str, Any]
    dataset: str = ""  #: the name and SHA-256 of the training data, checked when the run resumes
    optimizer: dict[str, Any] | None = None  #: {"step", "steps_per_epoch", "buffers": {buffer: params}}


def _digest(params: Params, record: bytes, buffers: dict[str, np.ndarray] | None = None) -> str:
    """SHA-256 of the record, the parameters in the order of the layers (``check_params``'s), then the
    optimizer's arrays by name."""
    sha = hashlib.sha256(record)
    for value in params.values():
        sha.update(np.ascontiguousarray(value, dtype="<f8").tobytes())
    for name in sorted(buffers or {}):
        sha.update(name.encode() + np.ascontiguousarray(buffers[name], dtype="<f8").tobytes())  # type: ignore[index]
    return sha.hexdigest()


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = check_params(checkpoint.params)
    record = json.dumps({
        "format": FORMAT,
        "implementation": checkpoint.implementation,
        "config": checkpoint.config.to_dict(),
        "history": checkpoint.history,
        "epoch": checkpoint.epoch,
        "batch_order_state": checkpoint.batch_order_state,
        "dataset": checkpoint.dataset,
        "optimizer": None if checkpoint.optimizer is None else
        {k: v for k, v in checkpoint.optimizer.items() if k != "buffers"},
    }, sort_keys=True).encode()
    buffers = {f"optimizer/{name}/{param}": np.asarray(value, dtype=np.float64)
               for name, tree in (checkpoint.optimizer or {}).get("buffers", {}).items()
               for param, value in tree.items()}
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {"record": np.frombuffer(record, dtype=np.uint8),
                              "sha256": np.array(_digest(params, record, buffers)), **params, **buffers}
    np.savez(buffer, **arrays)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to ``path``, open for writing: mode 0666 less the umask (``tempfile.mkstemp`` would
    make it 0600), a random name that no other writer can hold."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint; a missing, truncated or altered file raises :class:`KitError`."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"no checkpoint at {path}.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as err:  # a torn zip, a bad header, a text file: refuse the file whatever the reader said
        raise KitError(
            f"{path} is not a readable checkpoint: not a NumPy .npz archive, or a truncated one "
            f"({type(err).__name__}); expected a file written by `train --checkpoint` or frameworks.save_checkpoint."
        ) from None
    missing = [key for key in ("record", "sha256") if key not in arrays]
    if missing:
        raise KitError(f"{path} is not a kit checkpoint: it lacks {missing}.")
    record = arrays["record"].tobytes()
    buffers = {name: arrays[name].astype(np.float64) for name in arrays if name.startswith("optimizer/")}
    try:
        params = check_params({name: arrays[name] for name in arrays
                               if name not in ("record", "sha256") and name not in buffers})
    except KitError as err:
        raise KitError(f"{path} is not a kit checkpoint: {err}") from None
    if _digest(params, record, buffers) != str(arrays["sha256"]):
        raise KitError(f"{path} fails its SHA-256 check: the file was altered or damaged; refusing to load it.")
    meta = json.loads(record)
    if meta.get("format") != FORMAT:
        raise KitError(f"{path} has format {meta.get('format')!r}; this kit reads {FORMAT!r}.")
    return Checkpoint(
        implementation=meta["implementation"],
        config=TrainConfig(**meta["config"]),
        params=params,
        history=meta["history"],
        epoch=meta["epoch"],
        batch_order_state=meta["batch_order_state"],
        dataset=meta.get("dataset", ""),
        optimizer=_optimizer(meta.get("optimizer"), buffers),
    )


def _optimizer(meta: dict[str, Any] | None, buffers: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The optimizer's state from the record and its ``optimizer/{buffer}/{param}`` arrays."""
    if meta is None:
        return None
    trees: dict[str, dict[str, np.ndarray]] = {}
    for key, value in buffers.items():
        _, name, param = key.split("/", 2)
        trees.setdefault(name, {})[param] = value
    return {**meta, "buffers": {name: check_params(tree) for name, tree in trees.items()}}


def fingerprint(dataset: Any) -> str:
    """``name:sha256`` of a dataset's four arrays, so a run resumes only on the data it started on."""
    sha = hashlib.sha256()
    for array in dataset[:4]:
        sha.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return f"{dataset.name}:{sha.hexdigest()[:16]}"
