"""Figures: training curves, the lab's four-panel figure, decision boundaries, parity heat maps.

Drawn with Matplotlib's object API (``matplotlib.figure.Figure``), never
through pyplot: writing a file needs no screen, and the kit leaves the
caller's backend (a notebook's inline one, say) untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def subplots(*grid: int, figsize: tuple[float, float], **options: Any) -> tuple[Any, Any]:
    """A new figure and its axes, like ``pyplot.subplots`` but outside pyplot's global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **options)


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def history_axes(axes: Sequence[Any], history: Mapping[str, Sequence[float]], *, label: str = "", style: str = "-") -> None:
    """Loss on ``axes[0]``, accuracy on ``axes[1]``; train and test for each."""
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            ax.plot(epochs, history[f"{split}_{metric}"], style, color=color, label=f"{label} {split}".strip())
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)


def curves(history: Mapping[str, Sequence[float]], path: Path, *, title: str) -> Path:
    """Loss and accuracy curves of one run (train and test)."""
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    history_axes(axes, history)
    axes[1].legend()
    fig.suptitle(title)
    return _save(fig, path)


def stage_panels(runs: Mapping[str, Mapping[str, Any]], stages: Mapping[str, Mapping[str, str]], path: Path,
                 *, title: str) -> Path:
    """The lab's figure: a column per stage, loss above accuracy; PyTorch solid, JAX dashed."""
    fig, axes = subplots(2, len(stages), figsize=(4.2 * len(stages), 6.4), sharex=True, squeeze=False)
    for column, (stage, ids) in enumerate(stages.items()):
        for framework, impl_id in ids.items():
            if impl_id in runs:
                history_axes(axes[:, column], runs[impl_id]["history"], label=framework,
                             style="-" if framework == "torch" else "--")
        axes[0, column].set_title(f"{stage}: {' | '.join(ids.values())}", fontsize=9)
    for ax in axes[1]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
            break
    fig.suptitle(title)
    return _save(fig, path)


def decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, Y: np.ndarray, path: Path,
                      *, title: str) -> Path:
    """The classes the model predicts over the plane, with the (test) points on top (2-D data only)."""
    pad = 0.3
    (x0, y0), (x1, y1) = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    classes = predict(grid).argmax(axis=1).reshape(gx.shape)
    fig, ax = subplots(figsize=(4.4, 4.2))
    ax.contourf(gx, gy, classes, levels=np.arange(Y.shape[1] + 1) - 0.5, cmap="coolwarm", alpha=0.35)
    ax.scatter(X[:, 0], X[:, 1], c=Y.argmax(axis=1), cmap="coolwarm", s=12, edgecolors="k", linewidths=0.3)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def parity_heatmaps(tables: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One heat map a (dtype, device): log10 of the max relative error, row against column."""
    fig, axes = subplots(1, len(tables), figsize=(6.2 * len(tables), 5.4), squeeze=False)
    for ax, table in zip(axes[0], tables):
        ids = table["ids"]
        matrix = np.log10(np.maximum(np.asarray(table["matrix"], dtype=float), 1e-18))
        image = ax.imshow(matrix, cmap="viridis", vmin=-18, vmax=0)
        for i in range(len(ids)):
            for j in range(len(ids)):
                ax.text(j, i, f"{table['matrix'][i][j]:.0e}" if i != j else "", ha="center", va="center",
                        fontsize=6, color="w")
        ax.set_xticks(range(len(ids)), ids, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(ids)), ids, fontsize=8)
        ax.set_title(f"{table['dtype']} on {table['device']}: max rel. error (tol {table['tolerance']:.0e})", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.7, label="log10 max relative error")
    return _save(fig, path)


def trap_curves(runs: Mapping[str, Mapping[str, Any]], path: Path, *, title: str) -> Path:
    """Test accuracy and loss of each mode (first implementation of each framework) against the lab's run."""
    fig, axes = subplots(1, 2, figsize=(11, 4))
    colors = dict(zip(runs, ("black", "tab:red", "tab:green", "tab:purple", "tab:brown")))
    for mode, results in runs.items():
        shown = set()
        for impl_id, result in results.items():
            framework = impl_id.split("/")[0]
            if framework in shown:
                continue
            shown.add(framework)
            history = result.history
            epochs = np.arange(1, len(history["test_acc"]) + 1)
            style = "-" if framework == "torch" else "--"
            axes[0].plot(epochs, history["test_acc"], style, color=colors[mode], label=f"{mode} ({impl_id})")
            axes[1].plot(epochs, history["test_loss"], style, color=colors[mode])
    axes[0].set_ylabel("test accuracy")
    axes[1].set_ylabel("test loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def bench_bars(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The benchmark's rows: horizontal bars of us/step, one panel a workload, log scale."""
    import math

    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colors = {"torch": "tab:red", "jax": "tab:blue"}
    fig, axes = subplots(1, len(workloads), figsize=(5 * len(workloads), 0.35 * len(labels) + 1.5), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        mine = {r["label"]: r for r in rows if r["workload"] == workload}
        values = [mine[label]["us_per_step"] if label in mine and not mine[label]["error"] else 0.0 for label in labels]
        y = np.arange(len(labels))
        bar_colors = [colors.get(mine[label]["framework"], "gray") if label in mine else "gray" for label in labels]
        ax.barh(y, values, color=bar_colors)
        ax.set_yticks(y, labels if ax is axes[0][0] else [""] * len(labels))
        ax.invert_yaxis()
        positive = [v for v in values if v > 0]
        if positive:  # bars from a common decade below the fastest, so lengths compare
            ax.set_xscale("log")
            ax.set_xlim(10 ** math.floor(math.log10(min(positive))), max(positive) * 4)
        ax.set_xlabel("us / step (log)")
        ax.set_title(workload)
        for yi, value in zip(y, values):
            text = f" {value:.1f}" if value > 0 else " failed"
            ax.text(value if value > 0 else ax.get_xlim()[0], yi, text, va="center", fontsize=7)
        ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
