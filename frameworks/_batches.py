"""The batch order every framework shares.

Each epoch draws a fresh permutation of the training rows from one NumPy
generator seeded by ``config.seed``, cuts it into contiguous batches and drops
the remainder, as the lab does. The order is computed here, once, and handed to
the frameworks as index arrays, so all of them see the very same batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from frameworks._errors import KitError

# The batch order draws from its own stream of the seed, independent of init_params.
_STREAM = 1


class BatchOrder:
    """Per-epoch batch indices, shape (n // batch_size, batch_size).

    Its state (:attr:`state`) is saved in checkpoints so a resumed run draws
    the same batches as an uninterrupted one.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise KitError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise KitError(f"seed must be a non-negative integer, got {seed!r}.")
        if batch_size > n:
            raise KitError(
                f"batch_size {batch_size} is larger than the training set ({n} rows); use at most {n}."
            )
        self.n, self.batch_size = n, batch_size
        self._rng = np.random.default_rng((seed, _STREAM))

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def next_epoch(self) -> np.ndarray:
        """The next epoch's batches as an int64 array (batches, batch_size)."""
        permutation = self._rng.permutation(self.n)
        used = self.batches_per_epoch * self.batch_size
        return permutation[:used].reshape(self.batches_per_epoch, self.batch_size)

    def epochs(self, count: int) -> np.ndarray:
        """The next ``count`` epochs at once: (count, batches, batch_size), the very draws of ``count`` calls of
        :meth:`next_epoch` (``permuted`` shuffles each row as ``permutation`` does, from the same stream)."""
        rows = self._rng.permuted(np.tile(np.arange(self.n), (count, 1)), axis=1)
        return rows[:, : self.batches_per_epoch * self.batch_size].reshape(count, self.batches_per_epoch,
                                                                           self.batch_size)

    @property
    def state(self) -> dict[str, Any]:
        return dict(self._rng.bit_generator.state)

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        self._rng.bit_generator.state = value


# The dropout masks draw from a third stream of the seed, one generator an epoch (so a resumed run draws the
# masks an uninterrupted one would, with no state to save).
_MASKS = 2


def dropout_masks(seed: int, epochs: range, batches: int, batch_size: int, widths: tuple[int, ...],
                  rate: float) -> tuple[np.ndarray, ...]:
    """The kit's dropout masks for ``epochs``: one bool array a hidden layer, (epochs, batches, batch_size,
    width), True where a unit is kept (probability 1 - rate). Each epoch's generator is seeded by
    (seed, 2, epoch) and draws, layer by layer, the masks of all its batches; every framework applies these
    very masks, so dropout runs stay on one trajectory."""
    per_layer: list[list[np.ndarray]] = [[] for _ in widths]
    for epoch in epochs:
        rng = np.random.default_rng((seed, _MASKS, epoch))
        for k, width in enumerate(widths):
            per_layer[k].append(rng.random((batches, batch_size, width)) >= rate)
    return tuple(np.stack(masks) for masks in per_layer)
