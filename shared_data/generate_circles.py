"""Generate the kit's own ``circles`` dataset (``shared_data/circles.npz``).

It follows the data of the RDFIA lab "Introduction to neural networks" (the
course file ``circles.mat``, which the kit does not ship): two classes of 2-D
points, 100 a class in each of a train and a test split of 200 points, rows
sorted by class, labels one-hot.

* class 0, an outer ring: a point on the circle of radius 1.0 at a uniform
  angle, plus isotropic Gaussian noise of standard deviation 0.2;
* class 1, an inner blob: a point on the circle of radius 0.3 at a uniform
  angle, plus the same noise.

Measured on the course file: the ring has mean radius 1.03 (spread 0.2), the
blob 0.39; this generator gives 1.02 and 0.38 (``python -m
shared_data.generate_circles --stats``).

Run ``python -m shared_data.generate_circles`` to rebuild the file. The
generator is seeded, so the arrays come out identical every time (a test
checks them against the shipped file); the zip container stamps the time, so
after a rebuild put the SHA-256 it prints into ``frameworks._data.CHECKSUMS``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

import numpy as np

SEED = 20161
N_PER_CLASS = 100
RADII = (1.0, 0.3)  # class 0 (outer ring), class 1 (inner blob)
NOISE = 0.2


def make_split(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One split: ``X`` (200, 2) float64 and ``Y`` (200, 2) one-hot uint8, sorted by class."""
    Xs, Ys = [], []
    for label, radius in enumerate(RADII):
        angle = rng.uniform(0.0, 2.0 * np.pi, N_PER_CLASS)
        ring = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        Xs.append(ring + rng.normal(0.0, NOISE, (N_PER_CLASS, 2)))
        Ys.append(np.tile(np.eye(2, dtype=np.uint8)[label], (N_PER_CLASS, 1)))
    return np.concatenate(Xs), np.concatenate(Ys)


def generate() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    Xtrain, Ytrain = make_split(rng)
    Xtest, Ytest = make_split(rng)
    return {"Xtrain": Xtrain, "Ytrain": Ytrain, "Xtest": Xtest, "Ytest": Ytest}


def to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of the ``.npz`` file (uncompressed)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("circles.npz"))
    parser.add_argument("--stats", action="store_true", help="print radius statistics per class")
    args = parser.parse_args()
    arrays = generate()
    data = to_bytes(arrays)
    args.out.write_bytes(data)
    print(f"wrote {args.out} sha256={hashlib.sha256(data).hexdigest()}")
    if args.stats:
        for split in ("train", "test"):
            X, Y = arrays["X" + split], arrays["Y" + split]
            radius = np.hypot(X[:, 0], X[:, 1])
            for label in range(2):
                r = radius[Y[:, label] == 1]
                print(f"{split} class {label}: mean radius {r.mean():.3f}, spread {r.std():.3f}")


if __name__ == "__main__":
    main()
