"""Shared fixtures: datasets, the course file, and device parametrization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import frameworks

#: Every device the kit knows; a case on a device the framework does not see is skipped, saying so.
DEVICES = ("cpu", "gpu", "tpu")
#: The original course file, read through ../shared (never copied into the project).
COURSE_CIRCLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "circles.mat"


def require_device(impl_id: str, device: str) -> None:
    """Skip, with the reason, when ``impl_id``'s framework does not see ``device`` here."""
    impl = frameworks.get(impl_id)
    seen = impl.devices()
    if device not in seen:
        pytest.skip(f"{impl.framework} sees no {device} on this machine (it sees {seen})")


@pytest.fixture(scope="session")
def circles() -> frameworks.Dataset:
    return frameworks.load_dataset("circles")


@pytest.fixture(scope="session")
def course_circles() -> frameworks.Dataset:
    if not COURSE_CIRCLES.is_file():
        pytest.skip(f"the course file is not at {COURSE_CIRCLES} (it lives in ../shared/data)")
    return frameworks.load_dataset(COURSE_CIRCLES)


def random_problem(seed: int, *, nx: int | None = None, nh: int | None = None, ny: int | None = None,
                   batch: int | None = None) -> tuple[frameworks.Params, np.ndarray, np.ndarray]:
    """Random shapes (unless given), canonical params, a batch X and one-hot Y."""
    rng = np.random.default_rng(seed)
    nx = nx or int(rng.integers(1, 9))
    nh = nh or int(rng.integers(1, 17))
    ny = ny or int(rng.integers(2, 7))
    batch = batch or int(rng.integers(1, 33))
    params = frameworks.init_params(nx, nh, ny, seed=seed)
    params["bh"] = rng.normal(0, 0.3, nh)  # non-zero biases, so their gradients are exercised
    params["by"] = rng.normal(0, 0.3, ny)
    X = rng.normal(0, 1, (batch, nx))
    Y = np.eye(ny)[rng.integers(0, ny, batch)]
    return params, X, Y
