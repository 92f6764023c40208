"""``python -m frameworks compare``: all eight side by side, the lab's traps, and a report.

Trains every implementation with one config, one init and one batch order,
then (on circles) the trap modes students fall into, each beside the
lab-faithful run, and writes a report folder:

* ``curves.png``: the lab's figure, a column per stage, PyTorch solid, JAX dashed;
* ``traps.png``: the test curves of each trap mode against the lab-faithful run;
* ``boundaries/<impl>.png``: the decision boundary of each implementation (2-D data);
* ``results.md`` / ``results.csv``: final losses and accuracies, wall time, and
  the max parameter difference (relative) to the first implementation of the same
  mode (the PyTorch manual stage, or torch/nn for the double-softmax trap);
* ``report.md``: all of it with the parity summary, the seed study and the text
  that explains each difference from the numbers measured in this run;
* ``report.json``: every history.
"""

from __future__ import annotations

import argparse
import csv
import json
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from frameworks._cli_train import add_config_arguments, config_from
from frameworks._config import TrainConfig
from frameworks._data import Dataset, load_dataset
from frameworks._errors import KitError
from frameworks._registry import FRAMEWORKS, IMPLEMENTATIONS, MODULE_STAGES, STAGES, get, native_init
from frameworks._training import TrainResult
from frameworks.tolerances import max_relative_error

REFERENCE = "torch/manual"


@dataclass(frozen=True)
class Mode:
    """A way to run the lab: its name, what it changes, and which implementations it applies to."""

    name: str
    changes: dict[str, Any]
    implementations: tuple[str, ...]


def trap_modes() -> list[Mode]:
    """The lab's traps (each explained in the report by :func:`explain`)."""
    return [
        Mode("sum", {"loss_reduction": "sum"}, IMPLEMENTATIONS),  # the cheat-sheet's summed batch gradient
        Mode("native-init", {"init": "native"}, IMPLEMENTATIONS),  # each framework's own initializer
        Mode("double-softmax", {"model": "double_softmax"}, MODULE_STAGES),  # a softmax before the loss's own
    ]


def train_all(dataset: Dataset, config: TrainConfig, implementations: tuple[str, ...], *, label: str,
              progress: bool = True) -> dict[str, TrainResult]:
    """Each implementation trained on ``dataset`` with ``config`` (one init, one batch order)."""
    results = {}
    for impl_id in implementations:
        with warnings.catch_warnings():  # a divergence is printed below and written in the report
            warnings.simplefilter("ignore", RuntimeWarning)
            results[impl_id] = get(impl_id).train(dataset, config, progress=progress)
        result = results[impl_id]
        status = f"  DIVERGED at epoch {result.diverged}" if result.diverged else ""
        print(f"  {label:<15} {impl_id:<15} test acc {result.final('test_acc'):.3f}  "
              f"({result.wall_time:.2f} s){status}", flush=True)
    return results


def seed_study(dataset: Dataset, config: TrainConfig, *, seeds: range, impl_id: str = "jax/manual") -> dict[str, Any]:
    """Final test accuracy over ``seeds``: averaged and summed gradients, and each framework's default init.

    Runs on ``impl_id`` (the fastest; all eight give the same numbers), the
    native inits drawn by each framework and passed in as the starting weights.
    """
    impl = get(impl_id)
    inits = {"PyTorch default init": partial(native_init, "torch"), "Flax default init": partial(native_init, "jax")}
    study = {}
    for name in ("mean (lab-faithful)", "sum", *inits):
        accs = []
        for seed in seeds:
            run = config.replace(seed=seed, loss_reduction="sum" if name == "sum" else config.loss_reduction)
            params = inits[name](dataset.nx, config.nh, dataset.ny, seed=seed) if name in inits else None
            with warnings.catch_warnings():  # a diverged seed counts as NaN in the table
                warnings.simplefilter("ignore", RuntimeWarning)
                accs.append(impl.train(dataset, run, params=params).final("test_acc"))
        study[name] = {"accs": accs, "mean": float(np.mean(accs)), "min": float(np.min(accs)), "max": float(np.max(accs))}
    return {"implementation": impl_id, "dataset": dataset.name, "seeds": list(seeds), "rows": study}


def result_rows(runs: dict[str, dict[str, TrainResult]]) -> list[dict[str, Any]]:
    rows = []
    for mode, results in runs.items():
        ref = next(iter(results.values()))  # torch/manual, or the first stage the mode applies to
        for impl_id, result in results.items():
            rows.append({
                "mode": mode,
                "implementation": impl_id,
                **{metric: result.final(metric) for metric in ("train_loss", "train_acc", "test_loss", "test_acc")},
                "diverged_at_epoch": result.diverged or "",
                "wall_time_s": result.wall_time,
                "max_param_diff_to_first": max_relative_error(result.params, ref.params),
            })
    return rows


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.2e}" if (value != 0 and abs(value) < 1e-3) else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def max_curve_difference(results: dict[str, TrainResult]) -> float:
    """The largest difference, over epochs, metrics and implementations, to the reference's curves."""
    ref = results[REFERENCE].history
    return max(
        max((abs(a - b) for a, b in zip(r.history[m], ref[m])), default=0.0) for r in results.values() for m in ref
    )


def explain(runs: dict[str, dict[str, TrainResult]], study: dict[str, Any] | None, config: TrainConfig) -> str:
    """The report's text, from the numbers of this run."""
    lab = runs["lab"]
    acc = {impl_id: r.final("test_acc") for impl_id, r in lab.items()}
    text = [
        "## What the curves show",
        "",
        f"All {len(lab)} implementations start from the same weights (the lab's init, drawn once in NumPy) "
        f"and see the same batches. Their curves coincide: the largest difference of any loss or accuracy, "
        f"at any epoch, to `{REFERENCE}` is {max_curve_difference(lab):.1e} ({config.dtype}). "
        f"Final test accuracy: {min(acc.values()):.3f} to {max(acc.values()):.3f}.",
        "",
    ]
    if "sum" in runs:
        finished = [r.final("test_acc") for r in runs["sum"].values() if not r.diverged]
        diverged = {i: r.diverged for i, r in runs["sum"].items() if r.diverged}
        lines = [
            f"The course's cheat-sheet sums the gradient over the batch while its loss is a mean, so a manual "
            f"stage written from it steps {config.batch_size} times further than autograd at the same eta "
            f"(an effective eta of {config.eta * config.batch_size:g})."
        ]
        if finished:
            lines.append(f"Test accuracy with the summed gradient: {np.mean(finished):.3f}, against "
                         f"{np.mean(list(acc.values())):.3f} with the averaged one.")
        if diverged:
            lines.append("With the summed gradient the loss became infinite for "
                         + ", ".join(f"{i} (epoch {e})" for i, e in diverged.items()) + ": the step is too long.")
        elif finished and np.mean(finished) > np.mean(list(acc.values())):
            lines.append(f"It trains faster, not slower: at eta={config.eta} and {config.epochs} epochs the "
                         "averaged gradient under-trains, and students who see their manual stage (summed) beat "
                         "their autograd stages (averaged) are seeing this, not accumulated error.")
        text += ["### Summed against averaged gradient", "", " ".join(lines), ""]
    if "native-init" in runs:
        n = runs["native-init"]
        firsts = {impl_id.split("/")[0]: r for impl_id, r in reversed(list(n.items()))}
        text += [
            "### Each framework's default init",
            "",
            "With `init=\"native\"` each framework draws its own default weights (PyTorch's `nn.Linear`: "
            "Kaiming-uniform weights and uniform biases; Flax's `nnx.Linear`: LeCun-normal kernels, zero "
            "biases), so PyTorch and JAX no longer start, nor end, at the same place"
            + (f": max parameter difference after the run "
               f"{max_relative_error(firsts['jax'].params, firsts['torch'].params):.2f} (relative)"
               if len(firsts) == 2 else "")
            + ". Final test accuracy: "
            + ", ".join(f"{fw} stages {r.final('test_acc'):.3f}" for fw, r in firsts.items())
            + f", against {acc[REFERENCE]:.3f} from the lab's init.",
            "",
        ]
    if "double-softmax" in runs:
        d = runs["double-softmax"]
        text += [
            "### A softmax before CrossEntropyLoss",
            "",
            "`CrossEntropyLoss` (and `optax.softmax_cross_entropy`) apply log-softmax to what they get. A model "
            "that already ends in a softmax feeds them probabilities in [0, 1]: their second softmax is nearly "
            "flat, the loss cannot go below log(1 + (ny - 1)/e) (0.313 for two classes) and its gradient is "
            "squashed by the first softmax's Jacobian. Final test accuracy "
            + ", ".join(f"{i} {r.final('test_acc'):.3f}" for i, r in d.items())
            + f", final train loss {next(iter(d.values())).final('train_loss'):.3f} against "
            f"{lab[next(iter(d))].final('train_loss'):.3f} without the extra softmax.",
            "",
        ]
    if study:
        rows = study["rows"]
        text += [
            f"### Over seeds {study['seeds'][0]} to {study['seeds'][-1]} ({study['implementation']}, "
            "identical for all eight)",
            "",
            "| run | mean test acc | min | max |",
            "|---|---|---|---|",
        ]
        text += [f"| {name} | {r['mean']:.3f} | {r['min']:.3f} | {r['max']:.3f} |" for name, r in rows.items()]
        text += [
            "",
            f"Averaged gradient: {rows['mean (lab-faithful)']['mean']:.3f} on average; summed: "
            f"{rows['sum']['mean']:.3f}" + (" (students publish 0.92 to 0.96)" if study["dataset"] == "circles" else "")
            + ". From PyTorch's default init the "
            f"averaged gradient reaches {rows['PyTorch default init']['mean']:.3f}, from Flax's "
            f"{rows['Flax default init']['mean']:.3f}: "
            + ("both train faster than the lab's N(0, 0.3^2) weights with zero biases."
               if min(rows['PyTorch default init']['mean'], rows['Flax default init']['mean'])
               > rows['mean (lab-faithful)']['mean'] else "compare with the lab's init above."),
            "",
        ]
    return "\n".join(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="report folder (default reports/<dataset>)")
    parser.add_argument("--only", default=None, help="comma-separated implementation ids (default: all eight)")
    parser.add_argument("--no-traps", dest="traps", action="store_false", help="skip the trap modes")
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the seed study (0 skips it)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from frameworks import parity, plots

    dataset = load_dataset(args.dataset, path=args.data_dir)
    config = config_from(args)
    implementations = tuple(get(i).id for i in args.only.split(",")) if args.only else IMPLEMENTATIONS
    if REFERENCE not in implementations:
        implementations = (REFERENCE, *implementations)
    out = args.out or Path("reports") / dataset.name
    out.mkdir(parents=True, exist_ok=True)
    print(f"compare on {dataset.name}: {len(implementations)} implementations, {config}", flush=True)

    traps = args.traps and dataset.name != "mnist"
    modes = [Mode("lab", {}, IMPLEMENTATIONS), *(trap_modes() if traps else [])]
    modes = [mode for mode in modes if set(implementations) & set(mode.implementations)]  # e.g. --only jax/manual
    runs: dict[str, dict[str, TrainResult]] = {mode.name: {} for mode in modes}
    # Every PyTorch run before any JAX one: once XLA has run on a small CPU its threads can slow
    # PyTorch's small products in the same process (seen tenfold on 2 cores), skewing wall times.
    for framework in FRAMEWORKS:
        for mode in modes:
            ids = tuple(i for i in implementations if i in mode.implementations and i.startswith(f"{framework}/"))
            runs[mode.name] |= train_all(dataset, config.replace(**mode.changes), ids, label=mode.name,
                                         progress=args.progress)
    runs = {mode: {i: results[i] for i in IMPLEMENTATIONS if i in results} for mode, results in runs.items()}
    study = seed_study(dataset, config, seeds=range(args.seeds)) if traps and args.seeds else None

    title = (f"{dataset.name}: nh={config.nh}, eta={config.eta}, batch {config.batch_size}, {config.dtype}; "
             "PyTorch solid, JAX dashed")
    plots.stage_panels({i: r.__dict__ for i, r in runs["lab"].items()}, STAGES, out / "curves.png", title=title)
    if len(runs) > 1:
        plots.trap_curves(runs, out / "traps.png", title=f"{dataset.name}: the lab's traps (test accuracy and loss)")
    if dataset.nx == 2:
        for impl_id, result in runs["lab"].items():
            from frameworks import oracle

            plots.decision_boundary(lambda G, p=result.params: oracle.forward(p, G)["yhat"], dataset.Xtest,
                                    dataset.Ytest, out / "boundaries" / f"{impl_id.replace('/', '-')}.png",
                                    title=f"{impl_id}: test acc {result.final('test_acc'):.3f}")

    rows = result_rows(runs)
    columns = list(rows[0])
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows, columns)
    (out / "results.md").write_text(table + "\n")

    params, X, Y = parity.lab_batch(seed=config.seed)
    parity_tables = [parity.gradient_table(params, X, Y, dtype=d, device="cpu") for d in ("float64", "float32")]
    svm = []
    if dataset.nx == 2:
        try:
            from frameworks._svm import svm_baseline

            svm = svm_baseline(dataset)
        except KitError as err:  # scikit-learn is an optional extra
            print(f"  (no SVM reference: {err})")
    report = [f"# Comparison report: {dataset.name}", "", f"Config: `{config}`", "",
              "![curves](curves.png)", ""]
    if len(runs) > 1:
        report += ["![traps](traps.png)", ""]
    report += [explain(runs, study, config), "## Results", "",
               "Final metrics after the last epoch. `wall_time_s`: the whole run, JIT compilation included "
               "(JAX compiles once a run; `python -m frameworks bench` times the steps alone). "
               "`max_param_diff_to_first`: max relative difference of the final parameters to the mode's "
               "first implementation.", "", table, ""]
    if svm:
        report += ["## Reference: the lab's SVM bonus (scikit-learn, default hyperparameters)", "",
                   markdown_table(svm, list(svm[0])), "", "Published on the course's circles.mat: linear kernel "
                   "0.62 to 0.64, RBF 0.93 to 0.96.", ""]
    report += ["## Gradient parity (the lab's first batch, CPU)", ""]
    report += ["```", *(parity.format_table(t) for t in parity_tables), "```", ""]
    (out / "report.md").write_text("\n".join(report))
    (out / "report.json").write_text(json.dumps({
        "dataset": dataset.name, "config": config.to_dict(),
        "runs": {mode: {i: r.to_dict() for i, r in results.items()} for mode, results in runs.items()},
        "seed_study": study, "svm": svm, "parity": parity_tables}, indent=1))
    print(f"wrote {out / 'report.md'} (and curves.png, results.csv, report.json)")
    return 0
