"""``python -m frameworks sweep IMPL --eta 0.003,0.01,0.03 --nh 2,5,10 --seeds 0-9``: a grid of runs at once.

Writes ``results.csv`` and ``results.json`` (a row a run: the swept fields, the seed,
final and best metrics, the epoch of divergence), ``heatmap.png`` (mean validation
accuracy, a panel for each pair of swept axes, the spread over seeds in each cell) and, when
eta is swept, ``eta.png`` (validation loss per epoch for each eta: divergence and crawl,
the lab's question 11); prints each setting's mean over seeds and the setting chosen on
validation, with its test accuracy reported apart (the lab's question 1).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from frameworks._arch import ACTIVATIONS
from frameworks._cli_train import _activations, _widths, add_progress_argument, config_from, progress_enabled
from frameworks._config import INITS, TrainConfig
from frameworks._data import load_dataset
from frameworks._errors import KitError
from frameworks._registry import IMPLEMENTATIONS
from frameworks._sweep import SweepResult, sweep

#: The axes the command line sweeps, their parsers.
AXES = {"eta": float, "nh": int, "batch_size": int, "init": str}
#: The options fixed for every run of the sweep (``train``'s).
FIXED = ("hidden", "activation", "norm", "dropout", "optimizer", "schedule", "clip", "loss_reduction")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("implementation", help=f"one of {', '.join(IMPLEMENTATIONS)} (JAX ones run vmapped)")
    parser.add_argument("--dataset", default="circles", help="circles, digits, or a .mat/.npz path (default circles)")
    parser.add_argument("--validation", type=float, default=0.2, metavar="FRACTION",
                        help="training rows held out to choose on (default 0.2; stratified, fixed)")
    parser.add_argument("--eta", help="learning rates, comma-separated, e.g. 0.003,0.01,0.03,0.1,0.3,1")
    parser.add_argument("--nh", help="hidden widths, comma-separated, e.g. 2,5,10,20,50")
    parser.add_argument("--batch-size", help="batch sizes, comma-separated")
    parser.add_argument("--init", help=f"init schemes, comma-separated, of {', '.join(INITS[:-1])}")
    parser.add_argument("--seeds", default="0-4", help="seeds, a range 0-9 or a list 0,3,7 (default 0-4)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs a run (default: the dataset's preset)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    fixed = parser.add_argument_group("fixed for every run", "as train's options (default: the lab's)")
    fixed.add_argument("--hidden", type=_widths, metavar="W1,W2,...", help="hidden widths of a deeper network")
    fixed.add_argument("--activation", type=_activations, metavar="NAME[,NAME...]",
                       help=f"hidden activation(s): {', '.join(ACTIVATIONS)}")
    fixed.add_argument("--norm", choices=("none", "layer"), help="layer: a LayerNorm after each hidden Linear")
    fixed.add_argument("--dropout", type=float, help="dropout rate after each hidden activation")
    fixed.add_argument("--optimizer", metavar="SPEC", help="e.g. adam or \"SGD(momentum=0.9)\" (default plain SGD)")
    fixed.add_argument("--schedule", metavar="SPEC", help="e.g. \"StepLR(30, gamma=0.5)\" or cosine")
    fixed.add_argument("--clip", metavar="SPEC", help="\"ClipGradNorm(1.0)\" or \"ClipGradValue(0.5)\"")
    fixed.add_argument("--loss-reduction", choices=("mean", "sum"), help="the batch loss's reduction")
    parser.add_argument("--yes", action="store_true", help="confirm a grid of over 100,000 runs")
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output folder (default runs/sweep)")
    add_progress_argument(parser)


def seeds_of(text: str) -> list[int]:
    """``0-9`` (inclusive) or ``0,3,7``."""
    try:
        bounds = [int(v) for v in text.split("-")] if "-" in text else None
        seeds = [int(v) for v in text.split(",")] if bounds is None else []
    except ValueError:
        raise KitError(f"--seeds {text!r}: a range like 0-9 or a list like 0,3,7 of non-negative integers.") from None
    if bounds is not None:
        if len(bounds) != 2 or bounds[1] < bounds[0]:
            raise KitError(f"--seeds {text}: the range runs backwards or is not LOW-HIGH; write e.g. 0-9.")
        seeds = list(range(bounds[0], bounds[1] + 1))
    return seeds


def grid_of(args: argparse.Namespace) -> dict[str, list[Any]]:
    grid = {}
    for axis, kind in AXES.items():
        text = getattr(args, axis)
        if text is None:
            continue
        try:
            grid[axis] = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise KitError(f"--{axis.replace('_', '-')} {text!r}: expected {kind.__name__} values separated by "
                           "commas.") from None
        if not grid[axis]:
            raise KitError(f"--{axis.replace('_', '-')} names no value.")
    if not grid:
        raise KitError("name at least one axis to sweep: --eta, --nh, --batch-size or --init.")
    return grid


def run(args: argparse.Namespace) -> int:
    grid, seeds = grid_of(args), seeds_of(args.seeds)
    dataset = load_dataset(args.dataset, validation=args.validation)
    base = TrainConfig.mnist() if args.dataset in ("digits", "mnist") else TrainConfig()
    base = config_from(argparse.Namespace(dataset=args.dataset, dtype=args.dtype, epochs=args.epochs,
                                          **{name: getattr(args, name) for name in FIXED}), base)
    result = sweep(args.implementation, dataset, grid, seeds=seeds, config=base, confirm=args.yes,
                   progress=progress_enabled(args))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = result.rows()
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = result.best()
    (args.out / "results.json").write_text(json.dumps({"implementation": result.implementation, "grid": grid,
                                                       "seeds": seeds, "wall_time_s": result.wall_time,
                                                       "groups": result.groups, "best": best, "runs": rows},
                                                      indent=1, default=str))
    print(summary(result))
    print(f"chosen on validation: {best['setting']} (val acc {best['val_acc']:.3f}); its test accuracy "
          f"{best['test_acc']:.3f}, reported apart")
    written = [args.out / "results.csv", args.out / "results.json", *figures(result, args.out)]
    print(f"{len(result.runs)} runs in {result.groups} group(s), {result.wall_time:.2f} s; wrote "
          + ", ".join(str(p) for p in written))
    return 0


def summary(result: SweepResult) -> str:
    """A line a setting: its mean (and spread) of validation and test accuracy over the seeds, divergences."""
    lines = [" | ".join([*result.axes, "val acc (mean +- sd; diverged count 0)", "test acc (finished runs)",
                         "diverged"])]
    for setting, runs in result.by_setting().items():
        val = [0.0 if r.diverged else r.final("val_acc") for r in runs]
        test = [r.final("test_acc") for r in runs if not r.diverged]
        cells = [str(v) for v in setting]
        cells += [f"{np.mean(val):.3f} +- {np.std(val):.3f}", f"{np.mean(test):.3f}" if test else "-",
                  f"{sum(1 for r in runs if r.diverged)}/{len(runs)}"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def figures(result: SweepResult, out: Path) -> list[Path]:
    """The heat maps of validation accuracy, a panel for each pair of swept axes (a bar-like row for one axis),
    and eta's validation-loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    settings = result.by_setting()
    pairs: list[tuple[int, int | None]] = [*itertools.combinations(range(len(result.axes)), 2)] or [(0, None)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(sum(_size(settings, p)[0] for p in pairs),
                                                      max(_size(settings, p)[1] for p in pairs)), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        image = _heatmap(ax, result, settings, *pair)
    fig.colorbar(image, ax=list(axes[0]))
    fig.suptitle(f"{result.implementation}: mean validation accuracy over seeds (± spread); diverged runs count 0",
                 fontsize=9)
    fig.savefig(out / "heatmap.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(out / "heatmap.png")
    if "eta" in result.axes:
        k = result.axes.index("eta")
        fig, ax = plt.subplots(figsize=(6, 4))
        for eta in sorted({s[k] for s in settings}):
            curves = [r.history["val_loss"] for s, runs in settings.items() if s[k] == eta for r in runs]
            length = max(len(c) for c in curves)
            padded = np.array([c + [np.nan] * (length - len(c)) for c in curves])
            ax.plot(np.arange(1, length + 1), np.nanmean(padded, axis=0), label=f"eta={eta:g}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss (mean over the runs)")
        ax.set_title("too large diverges (the line stops), too small crawls")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "eta.png", dpi=110)
        plt.close(fig)
        written.append(out / "eta.png")
    return written


def _values(settings: dict, k: int | None) -> list[Any]:
    return [None] if k is None else sorted({s[k] for s in settings}, key=_order)


def _size(settings: dict, pair: tuple[int, int | None]) -> tuple[float, float]:
    return 1.2 * len(_values(settings, pair[0])) + 2, 0.8 * len(_values(settings, pair[1])) + 1.8


def _heatmap(ax: Any, result: SweepResult, settings: dict, a: int, b: int | None) -> Any:
    """Axis ``a`` across, ``b`` down; a cell pools every setting of its two values (the other axes too)."""
    across, down = _values(settings, a), _values(settings, b)
    cells: dict[tuple[int, int], list[float]] = {}
    for setting, runs in settings.items():
        i, j = down.index(None if b is None else setting[b]), across.index(setting[a])
        cells.setdefault((i, j), []).extend(0.0 if r.diverged else r.final("val_acc") for r in runs)
    mean = np.full((len(down), len(across)), np.nan)
    spread = np.full_like(mean, np.nan)
    for (i, j), accs in cells.items():
        mean[i, j], spread[i, j] = np.mean(accs), np.std(accs)
    image = ax.imshow(mean, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(len(down)):
        for j in range(len(across)):
            ax.text(j, i, f"{mean[i, j]:.2f}\n±{spread[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_xticks(range(len(across)), [str(v) for v in across])
    ax.set_xlabel(result.axes[a])
    ax.set_yticks(range(len(down)), [str(v) for v in down])
    ax.set_ylabel("" if b is None else result.axes[b])
    others = [axis for k, axis in enumerate(result.axes) if k not in (a, b)]
    if others:
        ax.set_title(f"pooled over {', '.join(others)}", fontsize=8)
    return image


def _order(value: Any) -> Any:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))
