"""Do the runs of one mode agree? Where their curves part, and how far their results spread.

Runs that start from one init and see one batch order follow one trajectory up to
rounding; a run whose step is unstable amplifies those rounding differences until
the runs no longer resemble each other. Such runs are never averaged into one
figure: the report gives their range and says from which epoch they parted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from frameworks._training import TrainResult
from frameworks.tolerances import tolerance

#: The curves compared epoch by epoch (accuracies move in steps of one sample, so losses decide).
LOSSES = ("train_loss", "test_loss")
#: How far two losses may be apart before the runs count as parted: absolute for losses under 1, relative above
#: (the "parting_loss" rows of the tolerance table, where the numbers are justified).
PARTING = {dtype: tolerance("parting_loss", dtype) for dtype in ("float32", "float64")}


@dataclass(frozen=True)
class Agreement:
    """How one mode's runs compare with its first run's.

    ``parted_at`` is the first epoch at which some run's train or test loss differs
    from the reference's by more than ``tolerance`` (:data:`PARTING`) times max(1,
    the reference's loss), or at which one run diverged and another did not; None
    when the curves stay together to the end.
    ``largest`` is the largest difference of any loss or accuracy, at any epoch.
    """

    reference: str
    tolerance: float
    parted_at: int | None
    first_to_part: str | None
    largest: float

    @property
    def agree(self) -> bool:
        return self.parted_at is None

    @property
    def criterion(self) -> str:
        """The tolerance in words."""
        return f"{self.tolerance:.0e} (relative where the loss exceeds 1)"


def agreement(results: Mapping[str, TrainResult], dtype: str) -> Agreement:
    """Compare every run of ``results`` with the first one's curves, epoch by epoch."""
    reference, ref = next(iter(results.items()))
    tol = PARTING[dtype]
    parted = {impl_id: epoch for impl_id, result in results.items()
              if (epoch := _parting_epoch(result, ref, tol)) is not None}
    first = min(parted, key=parted.__getitem__) if parted else None
    return Agreement(reference, tol, parted.get(first) if first else None, first, _largest_difference(results))


def _parting_epoch(run: TrainResult, ref: TrainResult, tol: float) -> int | None:
    """The first epoch (from 1) at which ``run``'s losses leave ``ref``'s by more than ``tol``."""
    for epoch, pairs in enumerate(zip(*(zip(run.history[m], ref.history[m]) for m in LOSSES)), start=1):
        if any(abs(a - b) > tol * max(1.0, abs(b)) for a, b in pairs):
            return epoch
    if run.epochs_done != ref.epochs_done:  # one diverged: the curves part where the shorter one ends
        return min(run.epochs_done, ref.epochs_done) + 1
    return None


def _largest_difference(results: Mapping[str, TrainResult]) -> float:
    ref = next(iter(results.values())).history
    return max((abs(a - b) for r in results.values() for m in ref for a, b in zip(r.history[m], ref[m])),
               default=0.0)


def spread(results: Mapping[str, TrainResult], metric: str) -> tuple[float, float]:
    """The smallest and largest final ``metric`` over the runs that finished (NaN, NaN when none did)."""
    values = [r.final(metric) for r in results.values() if not r.diverged]
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def describe(results: Mapping[str, TrainResult], metric: str, dtype: str) -> str:
    """The final ``metric`` of the runs that finished, in words: one figure where they agree, a range where not."""
    finished = {i: r for i, r in results.items() if not r.diverged}
    if not finished:
        return "none (every run diverged)"
    low, high = spread(finished, metric)
    count = f"all {len(finished)}" if len(finished) == len(results) else f"the {len(finished)} that finished"
    together = agreement(finished, dtype)
    if together.agree:
        figure = f"{low:.3f}" if f"{low:.3f}" == f"{high:.3f}" else f"{low:.3f} to {high:.3f}"
        return f"{figure} ({count} agree)" if len(finished) > 1 else figure
    each = ", ".join(f"{i} {r.final(metric):.3f}" for i, r in finished.items())
    return f"{low:.3f} to {high:.3f}, the runs disagreeing from epoch {together.parted_at} on ({each})"
