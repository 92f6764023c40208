"""Handwritten digits: MNIST (IDX files or the lab's ``mnist.mat``) and scikit-learn's 8x8 digits.

MNIST is read from the folder or file the caller names, else from the kit's cache folder
(``frameworks._download.mnist_dir()``), and downloaded there only when asked (``download=True``), as
torchvision does. Only NumPy is imported here; ``gzip``, SciPy and scikit-learn are imported by
the functions that need them. Every failure is a :class:`KitError` that names
the file and says what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frameworks._data import Dataset, _read_arrays, check_features, from_arrays
from frameworks._errors import KitError

# The four IDX files of MNIST, by the split array each one holds.
IDX_FILES = {
    "Xtrain": "train-images-idx3-ubyte",
    "Ytrain": "train-labels-idx1-ubyte",
    "Xtest": "t10k-images-idx3-ubyte",
    "Ytest": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (images, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (labels)
CLASSES = 10
SKLEARN_HINT = "pip install 'rdfia-mlp-kit[sklearn]'"

# scikit-learn's digits: pixels 0..16, a stratified split of each class.
DIGITS_MAX = 16.0
DIGITS_SEED = 0
DIGITS_TRAIN_FRACTION = 0.8


def load_mnist(path: str | Path | None = None, *, download: bool = False) -> Dataset:
    """MNIST from a folder of IDX files or from a ``.mat`` file in the lab's layout.

    Args:
      path: either a folder holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte`` (each may be gzipped, ``<name>.gz``, and the
        dotted spelling ``train-images.idx3-ubyte`` is accepted too), or a
        ``.mat`` file with keys ``Xtrain, Ytrain, Xtest, Ytest`` like the lab's
        ``mnist.mat``. None: the cache folder, ``$KIT_DATA/mnist`` or the
        platform's user cache dir (``frameworks._download.mnist_dir()``).
      download: fetch the four ``.gz`` archives into the folder first (each
        checked against its published MD5; intact files are kept), as
        torchvision's ``MNIST(root, download=True)``.

    Returns:
      The ``"mnist"`` :class:`Dataset`: each image flattened row by row to
      ``rows * cols`` features (784 for MNIST), pixels scaled to [0, 1] by
      dividing by 255, labels one-hot over the 10 digits. A ``.mat`` file's
      pixels are divided by 255 only when they exceed 1 (the lab's file may
      already hold them in [0, 1]).

    Raises:
      KitError: missing folder or file (in the cache folder: with where to put
        the files and how to download them), a failed download, bad magic
        number, truncated or corrupt (gzip) file, label and image counts that
        differ, labels outside 0..9.
    """
    if download:
        from frameworks._download import download_mnist

        if path is not None and Path(path).suffix == ".mat":
            raise KitError(f"download=True fetches the four IDX archives into a folder; {path} is a .mat file.")
        path = download_mnist(path)
    elif path is None:
        from frameworks._download import missing_error, mnist_dir

        path = mnist_dir()
        if not path.is_dir() or _missing_idx_files(path):
            raise missing_error(path)
    path = Path(path)
    if path.suffix == ".mat":
        return _load_mat(path)
    if not path.is_dir():
        raise KitError(
            f"no MNIST folder or .mat file at {path}; expected a folder holding {', '.join(IDX_FILES.values())} "
            "(each optionally .gz) or an mnist.mat file."
        )
    return _load_idx_folder(path)


def load_digits() -> Dataset:
    """scikit-learn's 1797 handwritten 8x8 digits, split 1438 train / 359 test.

    The data ships with scikit-learn (no download). Pixels 0..16 are divided by
    16 into [0, 1]; images are flattened to 64 features; labels are one-hot
    over the 10 digits.

    The split is stratified and fixed: one ``numpy.random.default_rng(0)``
    permutes the samples of each class in turn (classes 0 to 9), the first
    ``round(0.8 * n_class)`` go to train and the rest to test, and each split
    keeps scikit-learn's sample order. Per class 0..9 this puts
    142, 146, 142, 146, 145, 146, 145, 143, 139, 144 samples in train
    (1438 in all) and 36, 36, 35, 37, 36, 36, 36, 36, 35, 36 in test (359).

    Raises:
      KitError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise missing_sklearn("the digits dataset") from None
    digits = sklearn_digits()
    X = digits.data / DIGITS_MAX
    train, test = _stratified_split(digits.target)
    one_hot = np.eye(CLASSES)[digits.target]
    arrays = {"Xtrain": X[train], "Ytrain": one_hot[train], "Xtest": X[test], "Ytest": one_hot[test]}
    return from_arrays(arrays, name="digits")


def missing_sklearn(feature: str) -> KitError:
    """The :class:`KitError` for a feature that needs scikit-learn when it is not installed."""
    return KitError(f"{feature} needs scikit-learn, which is not installed: {SKLEARN_HINT}")


def _stratified_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices: a fixed random 80% of each class, and the rest."""
    rng = np.random.default_rng(DIGITS_SEED)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = round(DIGITS_TRAIN_FRACTION * len(members))
        train.append(members[:cut])
        test.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _load_mat(file: Path) -> Dataset:
    """The lab's ``mnist.mat``, pixels 0..255 scaled to [0, 1] (left as they are when already in [0, 1])."""
    if not file.is_file():
        raise KitError(f"no MNIST .mat file at {file}.")
    arrays = _read_arrays(file)
    X = {key: check_features(arrays[key], f"mnist: {key}") for key in ("Xtrain", "Xtest")}
    low = min(x.min() for x in X.values())
    high = max(x.max() for x in X.values())
    if low < 0 or high > 255:
        raise KitError(f"{file}: pixels range over [{low}, {high}]; expected 0..255 or 0..1.")
    scale = 255.0 if high > 1 else 1.0
    return from_arrays({**arrays, "Xtrain": X["Xtrain"] / scale, "Xtest": X["Xtest"] / scale}, name="mnist")


def _load_idx_folder(folder: Path) -> Dataset:
    """The four IDX files of ``folder``, checked and paired as train and test splits."""
    files = _find_idx_files(folder)
    arrays: dict[str, object] = {}
    for split in ("train", "test"):
        images = _read_idx(files[f"X{split}"], IMAGES_MAGIC, ndim=3)
        labels = _read_idx(files[f"Y{split}"], LABELS_MAGIC, ndim=1)
        _check_labels(labels, len(images), files[f"Y{split}"], files[f"X{split}"])
        arrays[f"X{split}"] = images.reshape(len(images), -1).astype(np.float64) / 255.0
        arrays[f"Y{split}"] = np.eye(CLASSES)[labels]
    return from_arrays(arrays, name="mnist")


def _idx_candidates(folder: Path, name: str) -> list[Path]:
    """The files of ``folder`` that hold IDX file ``name``, in each accepted spelling (a ``.part`` is none)."""
    spellings = (name, name.replace("-idx", ".idx"))
    return [file for spelling in spellings for gz in ("", ".gz") if (file := folder / (spelling + gz)).is_file()]


def _missing_idx_files(folder: Path) -> list[str]:
    """The IDX files absent from ``folder`` under every accepted spelling."""
    return [name for name in IDX_FILES.values() if not _idx_candidates(folder, name)]


def _find_idx_files(folder: Path) -> dict[str, Path]:
    """The path of each IDX file in ``folder``, whichever accepted spelling it has."""
    found, missing = {}, []
    for key, name in IDX_FILES.items():
        present = _idx_candidates(folder, name)
        if present:
            found[key] = present[0]
        else:
            missing.append(name)
    if missing:
        raise KitError(
            f"{folder} lacks the MNIST files {', '.join(missing)}; the folder must hold "
            f"{', '.join(IDX_FILES.values())} (each optionally .gz, or spelled like train-images.idx3-ubyte)."
        )
    return found


def _read_idx(file: Path, magic: int, *, ndim: int) -> np.ndarray:
    """The unsigned-byte array of an IDX file, shaped by the dimensions of its header."""
    data = _read_bytes(file)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise KitError(f"{file} is truncated: {len(data)} bytes, shorter than its {header}-byte IDX header.")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise KitError(
            f"{file} has magic number {found:#010x}, expected {magic:#010x} "
            f"({'images' if magic == IMAGES_MAGIC else 'labels'}): not an MNIST IDX file of that kind."
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    body = len(data) - header
    if body != expected:
        problem = "is truncated" if body < expected else "has trailing bytes"
        raise KitError(
            f"{file} {problem}: its header promises {' x '.join(map(str, shape))} = {expected} bytes of data, "
            f"the file holds {body}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(file: Path) -> bytes:
    """The content of ``file``, decompressed when its name ends in ``.gz``."""
    if file.suffix != ".gz":
        return file.read_bytes()
    import gzip
    import zlib

    try:
        return gzip.decompress(file.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise KitError(f"{file} is not a valid gzip file ({err}); download it again or decompress it.") from None


def _check_labels(labels: np.ndarray, images: int, label_file: Path, image_file: Path) -> None:
    """Reject a label file whose count differs from its images' or whose labels are not digits."""
    if len(labels) != images:
        raise KitError(
            f"{label_file} holds {len(labels)} labels but {image_file} holds {images} images; "
            "each image needs exactly one label."
        )
    bad = np.flatnonzero(labels >= CLASSES)
    if bad.size:
        raise KitError(
            f"{label_file} is mislabelled: {bad.size} labels lie outside 0..9 "
            f"(first at index {bad[0]}: {labels[bad[0]]})."
        )
