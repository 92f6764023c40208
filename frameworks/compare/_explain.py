"""The report's prose: what each mode did, in the numbers of this run.

Nothing here is written before it is measured: a claim that the runs coincide is
made only where :func:`~frameworks.compare._agreement.agreement` found them
together, and runs that disagree are given as a range, never one averaged figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from frameworks._config import TrainConfig
from frameworks._training import TrainResult
from frameworks.compare._agreement import agreement, describe, spread
from frameworks.tolerances import max_relative_error

Runs = Mapping[str, Mapping[str, TrainResult]]


def double_softmax_bound(classes: int) -> float:
    """The lowest cross-entropy a model ending in a softmax can reach: log(1 + (classes - 1)/e)."""
    return math.log(1 + (classes - 1) / math.e)


def explain(runs: Runs, study: dict[str, Any] | None, config: TrainConfig, *, classes: int) -> str:
    """The report's text, from the numbers of this run (``classes``: the dataset's class count)."""
    text = _lab(runs["lab"], config)
    if "sum" in runs:
        text += _summed(runs["sum"], runs["lab"], config)
    if "native-init" in runs:
        text += _native_init(runs["native-init"], runs["lab"], config)
    if "double-softmax" in runs:
        text += _double_softmax(runs["double-softmax"], runs["lab"], config, classes)
    if "native-dropout" in runs:
        text += _native_dropout(runs["native-dropout"], runs["lab"], config)
    if study:
        text += _seed_study(study, runs, config.init)
    return "\n".join(text)


#: How the report names each NumPy init scheme (``TrainConfig.init``).
INIT_NAMES = {"lab": "the lab's init, N(0, 0.3^2) weights and zero biases", "torch": "PyTorch's nn.Linear default",
              "flax": "Flax's nnx.Linear default", "xavier": "Xavier/Glorot uniform", "he": "He normal"}


def _section(title: str, paragraph: str) -> list[str]:
    return [title, "", paragraph, ""]


def _lab(lab: Mapping[str, TrainResult], config: TrainConfig) -> list[str]:
    together = agreement(lab, config.dtype)
    start = (f"All {len(lab)} implementations start from the same weights ({INIT_NAMES[config.init]}, drawn "
             "once in NumPy) and see the same batches.")
    if together.agree:
        body = (f"Their curves coincide: the largest difference of any loss or accuracy, at any epoch, to "
                f"`{together.reference}` is {together.largest:.1e} ({config.dtype}).")
    else:
        body = (f"Yet their curves part from epoch {together.parted_at}: there `{together.first_to_part}`'s loss "
                f"leaves `{together.reference}`'s by more than {together.criterion} ({config.dtype}).")
    return _section("## What the curves show",
                    f"{start} {body} Final test accuracy: {describe(lab, 'test_acc', config.dtype)}.")


def _summed(summed: Mapping[str, TrainResult], lab: Mapping[str, TrainResult], config: TrainConfig) -> list[str]:
    cause = (f"The course's cheat-sheet sums the gradient over the batch while its loss is a mean, so a manual "
             f"stage written from it steps {config.batch_size} times further than autograd at the same eta "
             f"(an effective eta of {config.eta * config.batch_size:g}).")
    lines = [cause]
    finished = {i: r for i, r in summed.items() if not r.diverged}
    diverged = {i: r.diverged for i, r in summed.items() if r.diverged}
    if finished:
        lines.append(f"Test accuracy with the summed gradient: {describe(summed, 'test_acc', config.dtype)}; "
                     f"with the averaged one: {describe(lab, 'test_acc', config.dtype)}.")
    if diverged:
        where = ", ".join(f"{i} (epoch {e})" for i, e in diverged.items())
        lines.append(f"With the summed gradient the loss became infinite for {where}: the step is too long.")
    together = agreement(finished, config.dtype) if finished else None
    if together and not together.agree:
        lines.append(
            f"From the same weights and the same batches the runs part here: at epoch {together.parted_at} "
            f"`{together.first_to_part}`'s loss leaves `{together.reference}`'s by more than {together.criterion}. "
            f"At this step training is unstable: the rounding differences of the implementations (a few ulp of "
            f"{config.dtype} a step, the gradient parity below) grow until the runs no longer resemble each other, "
            "so no one figure stands for the summed gradient here.")
    elif together and not diverged and spread(finished, "test_acc")[0] > spread(lab, "test_acc")[1]:
        lines.append(f"It trains faster, not slower: at eta={config.eta} and {config.epochs} epochs the "
                     "averaged gradient under-trains, and students who see their manual stage (summed) beat "
                     "their autograd stages (averaged) are seeing this, not accumulated error.")
    return _section("### Summed against averaged gradient", " ".join(lines))


def _native_init(native: Mapping[str, TrainResult], lab: Mapping[str, TrainResult], config: TrainConfig) -> list[str]:
    groups = {fw: {i: r for i, r in native.items() if i.startswith(f"{fw}/")} for fw in ("torch", "jax")}
    groups = {fw: runs for fw, runs in groups.items() if runs}
    firsts = {fw: next(iter(runs.values())) for fw, runs in groups.items()}
    apart = (f": max parameter difference after the run "
             f"{max_relative_error(firsts['jax'].params, firsts['torch'].params):.2f} (relative)"
             if len(firsts) == 2 else "")
    finals = "; ".join(f"{fw} stages {describe(runs, 'test_acc', config.dtype)}" for fw, runs in groups.items())
    reference = next(iter(lab))
    return _section("### Each framework's default init", (
        "With `init=\"native\"` each framework draws its own default weights (PyTorch's `nn.Linear`: "
        "Kaiming-uniform weights and uniform biases; Flax's `nnx.Linear`: LeCun-normal kernels, zero "
        f"biases), so PyTorch and JAX no longer start, nor end, at the same place{apart}. Final test accuracy: "
        f"{finals}; against {lab[reference].final('test_acc'):.3f} from {INIT_NAMES[config.init]} "
        f"(`{reference}`)."))


def _double_softmax(trap: Mapping[str, TrainResult], lab: Mapping[str, TrainResult], config: TrainConfig,
                    classes: int) -> list[str]:
    without = describe({i: r for i, r in lab.items() if i in trap}, "train_loss", config.dtype)
    return _section("### A softmax before CrossEntropyLoss", (
        "`CrossEntropyLoss` (and `optax.softmax_cross_entropy`) apply log-softmax to what they get. A model "
        "that already ends in a softmax feeds them probabilities in [0, 1]: their second softmax is nearly "
        f"flat, the loss cannot go below log(1 + (ny - 1)/e) ({double_softmax_bound(classes):.3f} for "
        f"{classes} classes) and its gradient is squashed by the first softmax's Jacobian. Final test "
        f"accuracy {describe(trap, 'test_acc', config.dtype)}; final train loss "
        f"{describe(trap, 'train_loss', config.dtype)}, against {without} for the same stages without the extra "
        "softmax."))


def _native_dropout(native: Mapping[str, TrainResult], lab: Mapping[str, TrainResult], config: TrainConfig
                    ) -> list[str]:
    kit = {i: r for i, r in lab.items() if i in native}
    together, apart = agreement(kit, config.dtype), agreement(native, config.dtype)
    torch_run, jax_run = (next((r for i, r in native.items() if i.startswith(f"{fw}/")), None)
                          for fw in ("torch", "jax"))
    gap = (f"; after the run their parameters differ by {max_relative_error(jax_run.params, torch_run.params):.2f} "
           "(relative)" if torch_run and jax_run else "")
    shared = ("with the kit's masks (drawn once in NumPy, applied by every implementation) the same stages stay "
              f"together (largest difference {together.largest:.1e})" if together.agree else
              f"even with the kit's masks these stages part from epoch {together.parted_at}")
    parted = (f"part from epoch {apart.parted_at}" if apart.parted_at is not None else
              f"keep loss curves within the report's tolerance over these {config.epochs} epochs, on other weights")
    return _section("### Each framework's own dropout generator", (
        f"Dropout at rate {config.dropout:g} is inverted in both libraries (kept units scaled by "
        f"1 / (1 - p) = {1 / (1 - config.dropout):.3f}), but `nn.Dropout` draws its masks from PyTorch's "
        "generator and `nnx.Dropout` from a JAX key: with `dropout_rng=\"native\"` the runs "
        f"{parted}{gap}. Final test accuracy {describe(native, 'test_acc', config.dtype)}; {shared}, at "
        f"{describe(kit, 'test_acc', config.dtype)}."))


def _seed_study(study: dict[str, Any], runs: Runs, init: str) -> list[str]:
    rows, impl_id, dtype, seeds = study["rows"], study["implementation"], study["dtype"], study["seeds"]
    scope = (f"The study trains one implementation, `{impl_id}`, in {dtype}. The trajectory tests "
             f"(`tests/test_trajectories.py`) prove the eight equal on the lab-faithful circles run; "
             f"{_study_scope(runs, dtype)}")
    table = ["| run | mean test acc | min | max | diverged seeds |", "|---|---|---|---|---|"]
    table += [f"| {name} | {r['mean']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {r['diverged']} |"
              for name, r in rows.items()]
    mean, summed = rows["mean (lab-faithful)"]["mean"], rows["sum"]["mean"]
    torch_init, flax_init = rows["PyTorch default init"]["mean"], rows["Flax default init"]["mean"]
    published = " (students publish 0.92 to 0.96)" if study["dataset"] == "circles" else ""
    verdict = (f"both train faster than {INIT_NAMES[init]}." if min(torch_init, flax_init) > mean
               else f"compare with {INIT_NAMES[init]} above.")
    summary = (f"Averaged gradient: {mean:.3f} on average over the seeds; summed: {summed:.3f}{published}. "
               f"From PyTorch's default init the averaged gradient reaches {torch_init:.3f}, from Flax's "
               f"{flax_init:.3f}: {verdict}")
    return [f"### Over seeds {seeds[0]} to {seeds[-1]} ({impl_id} alone, {dtype})", "", scope, "", *table, "",
            summary, ""]


def _study_scope(runs: Runs, dtype: str) -> str:
    """What this run's own curves say about how far the study's one implementation speaks for all eight."""
    lab = agreement(runs["lab"], dtype)
    if lab.agree:
        scope = ("in this report the lab-faithful runs of all implementations agree too, so its first row stands "
                 "for them.")
    else:
        scope = (f"in this report the lab-faithful runs part from epoch {lab.parted_at}, so its rows are this "
                 "implementation's alone.")
    if "sum" in runs and not agreement(runs["sum"], dtype).agree:
        scope += (" The summed-gradient row is this implementation's alone: the summed runs above part between "
                  "implementations, and another implementation would give other numbers.")
    return scope
