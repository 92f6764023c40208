"""Datasets: the shipped circles data, files in the lab's format, and their checks.

Every loader returns a :class:`Dataset` of float64 arrays with one-hot labels,
after checking shapes, labels and values, so no framework ever sees bad data.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from frameworks._errors import KitError, unknown

# SHA-256 of the files the kit ships: made in ``shared_data/`` (see ``generate_circles.py``), installed as
# ``frameworks/data/`` (pyproject.toml maps the one folder onto the other).
CHECKSUMS = {
    "circles.npz": "f0edfc8956909efec4a304692bf4d685bda23b91a79cb4c8d781d06961652b5b",
}
KEYS = ("Xtrain", "Ytrain", "Xtest", "Ytest")


class Dataset(NamedTuple):
    """Train and test splits: ``X`` (n, nx) float64, ``Y`` (n, ny) one-hot float64; and a validation split
    carved out of the training rows when asked (``load_dataset(..., validation=0.2)``; None otherwise)."""

    Xtrain: np.ndarray
    Ytrain: np.ndarray
    Xtest: np.ndarray
    Ytest: np.ndarray
    name: str
    Xval: np.ndarray | None = None
    Yval: np.ndarray | None = None

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """Xtrain, Ytrain, Xtest, Ytest, and Xval, Yval when there is a validation split."""
        return self[:4] if self.Xval is None else (*self[:4], self.Xval, self.Yval)  # type: ignore[return-value]

    @property
    def nx(self) -> int:
        return self.Xtrain.shape[1]

    @property
    def ny(self) -> int:
        return self.Ytrain.shape[1]


def shipped_dir() -> Path:
    """The folder of the data the kit ships: ``frameworks/data/`` installed, ``shared_data/`` in the source tree."""
    installed = resources.files("frameworks") / "data"
    if installed.is_dir():
        return Path(str(installed))
    return Path(__file__).resolve().parent.parent / "shared_data"


def shipped_file(filename: str) -> Path:
    """Path of a data file the kit ships, verified against its checksum."""
    path = shipped_dir() / filename
    if not path.is_file():
        raise KitError(f"the shipped data file {filename} is missing from {path.parent}; reinstall the kit.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CHECKSUMS[filename]:
        raise KitError(
            f"the shipped data file {path} is corrupted: its SHA-256 is {digest}, expected "
            f"{CHECKSUMS[filename]}. Rebuild it with `python -m shared_data.generate_circles` or reinstall the kit."
        )
    return path


#: The validation split's own seed: the same rows for every run and every seed of a sweep.
VALIDATION_SEED = 20261128


def with_validation(dataset: Dataset, fraction: float, *, seed: int = VALIDATION_SEED) -> Dataset:
    """``fraction`` of the training rows of each class (rounded, at least one a class) moved to a validation
    split, drawn once from ``seed``: stratified, fixed, and disjoint from the test set by construction."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise KitError(f"validation must be a fraction of the training rows in (0, 1), got {fraction!r}.")
    rng = np.random.default_rng(seed)
    labels = dataset.Ytrain.argmax(axis=1)
    held = []
    for c in range(dataset.ny):
        rows = np.flatnonzero(labels == c)
        if len(rows) < 2:
            raise KitError(f"class {c} has {len(rows)} training row(s): too few to keep one for validation.")
        take = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        held.append(rng.permutation(rows)[:take])
    val = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return Dataset(dataset.Xtrain[train], dataset.Ytrain[train], dataset.Xtest, dataset.Ytest, dataset.name,
                   dataset.Xtrain[val], dataset.Ytrain[val])


def load_dataset(name_or_path: str | Path, *, path: str | Path | None = None, validation: float = 0.0,
                 download: bool = False) -> Dataset:
    """Load a dataset by name or from a file.

    Args:
      name_or_path: ``"circles"`` (the kit's own 2-D data, shipped in
        ``shared_data/``), ``"digits"`` (scikit-learn's 8x8 handwritten digits,
        a fixed split of 1438 train and 359 test images), ``"mnist"`` (the IDX files or the
        lab's ``mnist.mat`` under ``path``, else the four ``.gz`` files in the cache folder:
        ``$KIT_DATA/mnist`` or the platform's user cache dir), or the path of a ``.mat`` or
        ``.npz`` file with keys ``Xtrain, Ytrain, Xtest, Ytest`` (labels one-hot
        or integer class ids).
      path: for ``"mnist"``: the folder of the four IDX files or a ``.mat`` file (default: the cache folder).
      validation: a fraction of the training rows to hold out as a validation split (stratified, fixed by
        ``frameworks._data.VALIDATION_SEED``); 0, the default, keeps them all for training, as the lab does.
      download: for ``"mnist"``, as torchvision's ``download=True``: fetch the four archives into ``path``
        (default: the cache folder) from the mirrors (``KIT_MNIST_MIRRORS`` or torchvision's), each checked
        against its published MD5; files already there and intact are kept. Without it nothing is fetched,
        and absent files are an error that says where to put them.

    Raises:
      KitError: unknown name, a name that is not a string or path, ``path``
        or ``download`` given for another dataset than ``"mnist"``, a failed download, missing, unreadable or
        corrupted file, arrays of the wrong shape, labels that are not
        one-hot, NaN or infinite values.
    """
    if validation:
        return with_validation(load_dataset(name_or_path, path=path, download=download), validation)
    _check_name_and_path(name_or_path, path)
    name = str(name_or_path)
    if download and name != "mnist":
        raise KitError(f"load_dataset: download=True is for 'mnist' only; {name!r} is shipped or read from a file.")
    if name == "circles":
        return from_arrays(_read_arrays(shipped_file("circles.npz")), name="circles")
    if name == "digits":
        from frameworks._mnist import load_digits

        return load_digits()
    if name == "mnist":
        from frameworks._mnist import load_mnist

        return load_mnist(path, download=download)
    file = Path(name_or_path)
    if file.suffix in (".mat", ".npz"):
        if not file.is_file():
            raise KitError(f"no dataset file at {file}.")
        return from_arrays(_read_arrays(file), name=file.stem)
    raise unknown("dataset", name, ["circles", "digits", "mnist", "<path>.mat", "<path>.npz"])


def _check_name_and_path(name_or_path: object, path: object) -> None:
    """Refuse what :func:`load_dataset` cannot take: a name that is neither a string nor a path, ``path`` where the
    dataset takes none."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise KitError(
            f"load_dataset: expected a dataset name ('circles', 'digits', 'mnist') or the path of a .mat or .npz "
            f"file, got {type(name_or_path).__name__} {name_or_path!r}."
        )
    if path is None:
        return
    if str(name_or_path) != "mnist":
        raise KitError(
            f"load_dataset: path= is for 'mnist' only (its IDX folder or mnist.mat); {str(name_or_path)!r} takes "
            "none. To load a .mat or .npz file, pass its path as the first argument."
        )
    if not isinstance(path, (str, os.PathLike)):
        raise KitError(f"load_dataset: path= must be a folder or file path, got {type(path).__name__} {path!r}.")


def _read_arrays(file: Path) -> dict[str, np.ndarray]:
    """The four arrays of a ``.mat`` or ``.npz`` dataset file."""
    raw = _read_mat(file) if file.suffix == ".mat" else _read_npz(file)
    missing = [key for key in KEYS if key not in raw]
    if missing:
        raise KitError(f"{file} lacks the keys {missing}; a dataset file holds {KEYS}.")
    return {key: raw[key] for key in KEYS}


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    """The arrays of a NumPy ``.npz`` archive, which must hold numeric arrays only (no pickles)."""
    expected = f"expected an archive written by numpy.savez with the arrays {', '.join(KEYS)}"
    if not zipfile.is_zipfile(file):
        raise KitError(f"{file} is not a NumPy .npz archive (it is not a zip file); {expected}.")
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise KitError(f"{file} holds Python objects (pickled arrays), which the kit does not load; "
                           f"{expected}, numeric ones.") from None
        raise KitError(f"{file} is not a readable NumPy .npz archive ({_one_line(err)}); {expected}.") from None
    except Exception as err:  # a torn zip, a member that is not an .npy: whatever the reader said, a bad file
        raise KitError(f"{file} is not a readable NumPy .npz archive ({_one_line(err)}); {expected}.") from None


def _read_mat(file: Path) -> dict[str, np.ndarray]:
    """The variables of a MATLAB ``.mat`` file (v4 to v7.2: what SciPy reads)."""
    import scipy.io

    expected = f"expected a file saved by MATLAB (-v7 or older) or scipy.io.savemat with {', '.join(KEYS)}"
    try:
        return scipy.io.loadmat(file)
    except NotImplementedError:  # SciPy's answer to v7.3, which is HDF5
        raise KitError(f"{file} is a MATLAB v7.3 (HDF5) file, which SciPy cannot read; save it again in MATLAB "
                       "with save(..., '-v7').") from None
    except Exception as err:  # a header SciPy does not know, a truncated body: whatever the reader said
        raise KitError(f"{file} is not a MATLAB .mat file (SciPy: {_one_line(err)}); {expected}.") from None


def _one_line(err: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    return " ".join(f"{type(err).__name__}: {err}".split())


def from_arrays(arrays: Mapping[str, object], *, name: str) -> Dataset:
    """A checked :class:`Dataset` from the four arrays (labels one-hot or integer ids)."""
    Xtrain = check_features(arrays["Xtrain"], f"{name}: Xtrain")
    Xtest = check_features(arrays["Xtest"], f"{name}: Xtest")
    if Xtrain.shape[1] != Xtest.shape[1]:
        raise KitError(f"{name}: Xtrain has {Xtrain.shape[1]} features but Xtest has {Xtest.shape[1]}.")
    ny = _num_classes(arrays["Ytrain"], arrays["Ytest"])
    Ytrain = check_labels(arrays["Ytrain"], f"{name}: Ytrain", rows=len(Xtrain), ny=ny)
    Ytest = check_labels(arrays["Ytest"], f"{name}: Ytest", rows=len(Xtest), ny=ny)
    return Dataset(Xtrain, Ytrain, Xtest, Ytest, name)


def check_features(X: object, what: str) -> np.ndarray:
    """``X`` as a finite, non-empty (n, nx) float64 array."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise KitError(f"{what} is not a numeric array: {err}") from None
    if X.ndim != 2:
        raise KitError(f"{what} must be 2-D (samples, features), got shape {X.shape}.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise KitError(f"{what} is empty (shape {X.shape}); each split needs at least one sample and one feature.")
    if not np.all(np.isfinite(X)):
        raise KitError(f"{what} holds {np.count_nonzero(~np.isfinite(X))} NaN or infinite values.")
    return X


def check_labels(Y: object, what: str, *, rows: int, ny: int | None = None) -> np.ndarray:
    """``Y`` as an (n, ny) one-hot float64 array; integer class ids (n,) are one-hot encoded."""
    try:
        Y = np.asarray(Y)
    except (TypeError, ValueError) as err:
        raise KitError(f"{what} is not an array: {err}") from None
    if Y.ndim == 1 or (Y.ndim == 2 and Y.shape[1] == 1 and (ny or 0) > 1):
        Y = Y.reshape(-1)
        try:
            numeric = Y.astype(np.float64)
        except (TypeError, ValueError):
            raise KitError(f"{what}: labels must be one-hot rows or integer class ids, got {Y.dtype} values.") from None
        if not np.all(np.isfinite(numeric)) or np.any(numeric != np.round(numeric)) or np.any(numeric < 0):
            raise KitError(f"{what}: integer labels must be class ids 0, 1, ..., got {np.unique(Y)[:10]}.")
        ids = Y.astype(np.int64)
        ny = ny or int(ids.max()) + 1
        if ids.size and ids.max() >= ny:
            raise KitError(f"{what}: label {ids.max()} is out of range for {ny} classes.")
        Y = np.eye(ny)[ids]
    if Y.ndim != 2:
        raise KitError(f"{what} must be one-hot (samples, classes) or class ids (samples,), got shape {Y.shape}.")
    if Y.shape[0] != rows:
        raise KitError(f"{what} has {Y.shape[0]} rows but X has {rows}: each sample needs one label.")
    if ny is not None and Y.shape[1] != ny:
        raise KitError(f"{what} has {Y.shape[1]} classes, expected {ny}.")
    try:
        Y = Y.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise KitError(f"{what} is not numeric: {err}") from None
    if not np.all((Y == 0) | (Y == 1)) or not np.all(Y.sum(axis=1) == 1):
        raise KitError(f"{what} is not one-hot: every row must hold a single 1 and zeros elsewhere.")
    return Y


def _num_classes(*Ys: object) -> int | None:
    """The class count implied by integer labels, or None when labels are one-hot."""
    arrays = [np.asarray(Y) for Y in Ys]
    if all(a.ndim == 2 and a.shape[1] > 1 for a in arrays):
        return arrays[0].shape[1]
    ids = [a.reshape(-1) for a in arrays if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)]
    try:
        return int(max(np.max(i) for i in ids if i.size)) + 1
    except (TypeError, ValueError):
        return None
