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


def history_axes(axes: Sequence[Any], history: Mapping[str, Sequence[float]], *, label: str = "", style: str = "-",
                 **line: Any) -> None:
    """Loss on ``axes[0]``, accuracy on ``axes[1]``; train (blue) and test (orange) for each.

    ``line``: more Matplotlib line options for every curve (``linewidth``, ``marker``, ``markevery``...).
    """
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            ax.plot(epochs, history[f"{split}_{metric}"], style, color=color, label=f"{label} {split}".strip(), **line)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)


def framework_line(framework: str, epochs: int) -> dict[str, Any]:
    """How a framework's curve is drawn where two frameworks' curves coincide, so that both stay visible.

    PyTorch: a thick, light solid line; JAX: a thin dashed line with a ring every few
    epochs, drawn on top, so a reader sees the rings sit on the PyTorch line.
    """
    if framework == "torch":
        return {"style": "-", "linewidth": 3.2, "alpha": 0.45}
    return {"style": "--", "linewidth": 1.1, "marker": "o", "markersize": 4, "markerfacecolor": "none",
            "markevery": max(1, epochs // 12)}


def curves(history: Mapping[str, Sequence[float]], path: Path, *, title: str) -> Path:
    """Loss and accuracy curves of one run (train and test)."""
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    history_axes(axes, history)
    axes[1].legend()
    fig.suptitle(title)
    return _save(fig, path)


def stage_panels(runs: Mapping[str, Mapping[str, Any]], stages: Mapping[str, Mapping[str, str]], path: Path,
                 *, title: str) -> Path:
    """The lab's figure: a column per stage, loss above accuracy; each framework drawn by :func:`framework_line`.

    The panels of a row share their y axis (labels on the first column only) and one
    legend sits below them all.
    """
    fig, axes = subplots(2, len(stages), figsize=(3.6 * len(stages), 6.2), sharex=True, sharey="row", squeeze=False)
    fig.set_layout_engine("constrained")
    names = {"torch": "PyTorch", "jax": "JAX"}
    for column, (stage, ids) in enumerate(stages.items()):
        for framework, impl_id in ids.items():
            if impl_id in runs:
                history = runs[impl_id]["history"]
                history_axes(axes[:, column], history, label=names.get(framework, framework),
                             **framework_line(framework, len(history["train_loss"])))
        axes[0, column].set_title(f"{stage}\n{' | '.join(ids.values())}", fontsize=9)
    for ax in axes.flat:
        ax.label_outer()
    handles, labels = next((ax.get_legend_handles_labels() for ax in axes[1] if ax.lines), ([], []))
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, Y: np.ndarray, path: Path,
                      *, title: str) -> Path:
    """The classes the model predicts over the plane (shaded), with the (test) points on top (2-D data only)."""
    from matplotlib.lines import Line2D

    pad = 0.3
    (x0, y0), (x1, y1) = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    classes = predict(grid).argmax(axis=1).reshape(gx.shape)
    colors = _class_colors(Y.shape[1])
    fig, ax = subplots(figsize=(5.6, 4.2))
    ax.contourf(gx, gy, classes, levels=np.arange(Y.shape[1] + 1) - 0.5, colors=colors, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=colors[Y.argmax(axis=1)], s=12, edgecolors="k", linewidths=0.3)
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title, fontsize=9)
    handles = [Line2D([], [], linestyle="", marker="s", markersize=11, markerfacecolor=(*color[:3], 0.3),
                      markeredgecolor="none") for color in colors]
    points = [Line2D([], [], linestyle="", marker="o", markerfacecolor=color, markeredgecolor="k",
                     markeredgewidth=0.3) for color in colors]
    from matplotlib.legend_handler import HandlerTuple

    ax.legend(list(zip(handles, points)), [f"class {k}" for k in range(len(colors))], title="shade: predicted\n"
              "dots: test points", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1),
              handler_map={tuple: HandlerTuple(ndivide=None)})
    return _save(fig, path)


def _class_colors(count: int) -> np.ndarray:
    """One RGBA colour a class, from the two ends of coolwarm for two classes, spread over tab10 beyond."""
    from matplotlib import colormaps

    if count <= 2:
        return colormaps["coolwarm"](np.linspace(0, 1, count))
    return colormaps["tab10"](np.arange(count) % 10)


def parity_heatmaps(tables: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One heat map a (dtype, device): log10 of the max relative error, row against column; pairs that
    run one gradient code path are grey and read "same code"."""
    fig, axes = subplots(1, len(tables), figsize=(6.2 * len(tables), 5.4), squeeze=False)
    for ax, table in zip(axes[0], tables):
        ids = table["ids"]
        errors = np.column_stack([np.asarray(table["matrix"], dtype=float), table["vs_oracle"]])  # + the reference
        matrix = np.log10(np.maximum(errors, 1e-18))
        shared = {tuple(pair) for pair in table.get("same_code", [])}
        shared |= {(j, i) for i, j in shared}
        for i, j in shared:  # one code path on both sides: no evidence, drawn grey
            matrix[i, j] = np.nan
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=-18, vmax=0)
        ax.set_facecolor("0.75")
        for i in range(len(ids)):
            for j in range(len(ids)):
                text = "same\ncode" if (i, j) in shared else f"{table['matrix'][i][j]:.0e}" if i != j else ""
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color="k" if (i, j) in shared else "w")
            ax.text(len(ids), i, f"{table['vs_oracle'][i]:.0e}", ha="center", va="center", fontsize=6, color="w")
        ax.axvline(len(ids) - 0.5, color="w", linewidth=2)
        ax.set_xticks(range(len(ids) + 1), [*ids, "complex step"], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(ids)), ids, fontsize=8)
        ax.set_title(f"{table['dtype']} on {table['device']}: max rel. error (tol {table['tolerance']:.0e})",
                     fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.7, label="log10 max relative error")
    return _save(fig, path)


def trap_curves(runs: Mapping[str, Mapping[str, Any]], path: Path, *, title: str) -> Path:
    """Test accuracy and loss (log scale) of each mode against the lab's run: the first implementation of each
    framework a mode ran, each framework drawn by :func:`framework_line`; the legend below the panels."""
    fig, axes = subplots(1, 2, figsize=(11, 4.2))
    fig.set_layout_engine("constrained")
    colors = dict(zip(runs, ("black", "tab:red", "tab:green", "tab:purple", "tab:brown")))
    for mode, results in runs.items():
        firsts = {impl_id.split("/")[0]: (impl_id, result) for impl_id, result in reversed(list(results.items()))}
        for framework, (impl_id, result) in sorted(firsts.items(), key=lambda item: item[0] != "torch"):
            history = result.history
            epochs = np.arange(1, len(history["test_acc"]) + 1)
            line = framework_line(framework, len(epochs))
            style = line.pop("style")
            axes[0].plot(epochs, history["test_acc"], style, color=colors[mode], label=f"{mode} ({impl_id})", **line)
            axes[1].plot(epochs, history["test_loss"], style, color=colors[mode], **line)
    axes[0].set_ylabel("test accuracy")
    axes[1].set_ylabel("test loss (log scale)")
    _log_axis(axes[1])
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].grid(alpha=0.12, which="minor")
    fig.legend(loc="outside lower center", ncol=min(4, len(axes[0].lines)), fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _log_axis(ax: Any) -> None:
    """A log y axis labelled in plain numbers (0.1, 1, 10), minor ticks too where it spans under two decades."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    class PlainMinor(LogFormatter):  # LogFormatter picks which minor ticks to label; written plainly
        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(PlainMinor(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


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
