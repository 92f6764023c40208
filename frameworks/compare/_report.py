"""The report's files: the results table, the gradient parity of this run's first batch, report.md and .json."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._errors import KitError
from frameworks._registry import STAGES
from frameworks._training import TrainResult
from frameworks.compare._explain import explain
from frameworks.compare._figures import boundary_file
from frameworks.compare._layers import layer_defaults, optimizer_port
from frameworks.tolerances import max_relative_error

Runs = Mapping[str, Mapping[str, TrainResult]]


def result_rows(runs: Runs) -> list[dict[str, Any]]:
    """One row a (mode, implementation): final metrics, wall time, parameter difference to the mode's first."""
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


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.2e}" if (value != 0 and abs(value) < 1e-3) else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def gradient_parity(dataset: Dataset, config: TrainConfig, implementations: Sequence[str]) -> dict[str, Any]:
    """The gradient tables (float64, float32; CPU) of ``implementations`` on this run's first batch."""
    from frameworks import parity

    params, X, Y, rows = parity.first_batch(dataset, config)
    masks = parity.first_masks(config, len(dataset.Xtrain))
    tables = [parity.gradient_table(params, X, Y, dtype=d, device="cpu", implementations=implementations,
                                    arch=config.arch, masks=masks)
              for d in ("float64", "float32")]
    batch = {"dataset": dataset.name, "nh": config.nh, "batch_size": config.batch_size, "seed": config.seed,
             "rows": rows.tolist()}
    if not config.arch.is_lab or config.hidden:
        batch = {**batch, "nh": None, "network": config.arch.describe()}
    return {"batch": batch, "tables": tables}


def svm_reference(dataset: Dataset) -> list[dict[str, Any]]:
    """The lab's SVM bonus on 2-D data; none elsewhere, or without scikit-learn (said on the console)."""
    if dataset.nx != 2:
        return []
    try:
        from frameworks._svm import svm_baseline

        return svm_baseline(dataset)
    except KitError as err:  # scikit-learn is an optional extra
        print(f"  (no SVM reference: {err})")
        return []


def boundaries_table(runs: Runs) -> str:
    """The decision boundary images of the lab's runs, a column per stage, a row per framework."""
    lab = runs["lab"]
    lines = ["| | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for framework, name in (("torch", "PyTorch"), ("jax", "JAX")):
        cells = [f"![{ids[framework]}](boundaries/{boundary_file(ids[framework])})" if ids[framework] in lab else ""
                 for ids in STAGES.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_markdown(dataset: Dataset, config: TrainConfig, runs: Runs, study: dict[str, Any] | None,
                    svm: list[dict[str, Any]], parity: dict[str, Any], table: str) -> str:
    """report.md: the figures, the explanation, the results, the boundaries, the SVMs, the gradient parity."""
    report = [f"# Comparison report: {dataset.name}", "", f"Config: `{config}`", "", "![curves](curves.png)", ""]
    if len(runs) > 1:
        report += ["![traps](traps.png)", ""]
    report += [explain(runs, study, config, classes=dataset.ny), *layer_defaults(dataset, config),
               *optimizer_port(dataset, config), *_results(table)]
    if dataset.nx == 2:
        report += _boundaries(runs)
    if svm:
        report += _svm(svm)
    return "\n".join(report + _parity(parity))


def _results(table: str) -> list[str]:
    note = ("Final metrics after the last epoch. `wall_time_s`: the whole run, JIT compilation included "
            "(JAX compiles once per stage and shape, so the first run of a shape carries it; "
            "`python -m frameworks bench` times the steps alone). "
            "`max_param_diff_to_first`: max relative difference of the final parameters to the mode's "
            "first implementation.")
    return ["## Results", "", note, "", table, ""]


def _boundaries(runs: Runs) -> list[str]:
    note = "The class each lab-faithful run predicts over the plane (shaded), the test points on top (`boundaries/`)."
    return ["## Decision boundaries", "", note, "", boundaries_table(runs), ""]


def _svm(svm: list[dict[str, Any]]) -> list[str]:
    return ["## Reference: the lab's SVM bonus (scikit-learn, default hyperparameters)", "",
            markdown_table(svm, list(svm[0])), "",
            "Published on the course's circles.mat: linear kernel 0.62 to 0.64, RBF 0.93 to 0.96.", ""]


def _parity(parity: dict[str, Any]) -> list[str]:
    from frameworks.parity import format_table

    batch = parity["batch"]
    network = f"nh={batch['nh']}" if batch.get("network") is None else f"hidden ({batch['network']})"
    title = (f"## Gradient parity (the first batch of this run: {batch['dataset']}, {network}, "
             f"batch {batch['batch_size']})")
    start = ("The lab's init for this network" if batch.get("network") is None else
             "The run's init for this network (and the dropout masks of its first batch, if any)")
    note = (f"{start} (seed {batch['seed']}) and the first batch of the run's first epoch: "
            "the loss gradients of each implementation against each other (max relative error, row against "
            "column) and against the references the table names, on the CPU.")
    return [title, "", note, "", "```", *(format_table(t) for t in parity["tables"]), "```", ""]


def write_report(out: Path, dataset: Dataset, config: TrainConfig, runs: Runs, study: dict[str, Any] | None,
                 svm: list[dict[str, Any]], parity: dict[str, Any]) -> list[Path]:
    """results.csv, results.md, report.md and report.json in ``out``; returns their paths."""
    rows = result_rows(runs)
    columns = list(rows[0])
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows, columns)
    (out / "results.md").write_text(table + "\n")
    (out / "report.md").write_text(report_markdown(dataset, config, runs, study, svm, parity, table))
    (out / "report.json").write_text(json.dumps({
        "dataset": dataset.name, "config": config.to_dict(),
        "runs": {mode: {i: r.to_dict() for i, r in results.items()} for mode, results in runs.items()},
        "seed_study": study, "svm": svm, "parity": parity["tables"], "parity_batch": parity["batch"]}, indent=1))
    return [out / name for name in ("report.md", "report.json", "results.md", "results.csv")]
