"""The report's figures: the lab's four-panel curves, the traps, and a decision boundary per implementation."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import numpy as np

from frameworks._arch import Architecture
from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._params import Params
from frameworks._registry import STAGES
from frameworks._training import TrainResult
from frameworks.compare._agreement import agreement

Runs = Mapping[str, Mapping[str, TrainResult]]


def boundary_file(impl_id: str) -> str:
    """The file name of an implementation's decision boundary in ``boundaries/``."""
    return f"{impl_id.replace('/', '-')}.png"


def curves_title(dataset: Dataset, config: TrainConfig, lab: Mapping[str, TrainResult]) -> str:
    """The curves' title: the settings, which line is which, and whether the frameworks' lines coincide."""
    together = agreement(lab, config.dtype)
    verdict = ("they coincide: each JAX line lies on its PyTorch line" if together.agree
               else f"the runs part from epoch {together.parted_at}")
    return (f"{dataset.name}: {config.arch.label}, eta={config.eta}, batch {config.batch_size}, {config.dtype}\n"
            f"PyTorch: thick light lines; JAX: thin dashed lines with rings, drawn over them; {verdict}")


def draw_figures(out: Path, dataset: Dataset, config: TrainConfig, runs: Runs) -> list[Path]:
    """curves.png, traps.png (when traps ran) and ``boundaries/`` (2-D data) in ``out``; returns their paths."""
    from frameworks import plots

    lab = runs["lab"]
    written = [plots.stage_panels({i: r.__dict__ for i, r in lab.items()}, STAGES, out / "curves.png",
                                  title=curves_title(dataset, config, lab))]
    if len(runs) > 1:
        written.append(plots.trap_curves(runs, out / "traps.png",
                                         title=f"{dataset.name}: the lab's traps against the lab-faithful run"))
    if dataset.nx == 2:
        for impl_id, result in lab.items():
            title = f"{impl_id}: test acc {result.final('test_acc'):.3f}"
            written.append(plots.decision_boundary(
                partial(_probabilities, result.params, result.config.arch), dataset.Xtest, dataset.Ytest,
                out / "boundaries" / boundary_file(impl_id), title=title))
    return written


def _probabilities(params: Params, arch: Architecture, grid: np.ndarray) -> np.ndarray:
    """The network's class probabilities on a grid of points (the oracle's forward pass, no dropout)."""
    from frameworks import oracle

    return oracle.forward(params, grid, arch)["yhat"]
