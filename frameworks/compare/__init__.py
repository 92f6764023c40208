"""``python -m frameworks compare``: all eight side by side, the lab's traps, and a report.

Trains every implementation with one config, one init and one batch order,
then (on circles and digits) the trap modes students fall into, each beside the
lab-faithful run, and writes a report folder:

* ``curves.png``: the lab's figure, a column per stage, PyTorch and JAX drawn so both show where they coincide;
* ``traps.png``: the test curves of each trap mode against the lab-faithful run;
* ``boundaries/<impl>.png``: the decision boundary of each implementation (2-D data);
* ``results.md`` / ``results.csv``: final losses and accuracies, wall time, and
  the max parameter difference (relative) to the first implementation of the same
  mode (the PyTorch manual stage, or torch/nn for the double-softmax trap);
* ``report.md``: all of it with the text that explains each difference from the
  numbers measured in this run (where runs part, and from which epoch), the seed
  study and the gradient parity of this run's own first batch;
* ``report.json``: every history, the seed study, the parity tables.

The package, one job a module: ``_runs`` (the modes, the training, the seed
study), ``_agreement`` (where runs part), ``_explain`` (the prose), ``_figures``
and ``_report`` (the files).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from frameworks._cli_train import (
    add_config_arguments,
    add_progress_argument,
    config_from,
    dataset_from,
    progress_enabled,
)
from frameworks._errors import KitError
from frameworks._params import check_memory
from frameworks._registry import implementations as registered
from frameworks.compare._agreement import Agreement, agreement, describe, spread
from frameworks.compare._explain import double_softmax_bound, explain
from frameworks.compare._figures import draw_figures
from frameworks.compare._report import (
    gradient_parity,
    markdown_table,
    result_rows,
    svm_reference,
    write_report,
)
from frameworks.compare._runs import (
    REFERENCE,
    Mode,
    check_seed_count,
    seed_study,
    selected_implementations,
    train_all,
    train_modes,
    trap_modes,
)

__all__ = [
    "REFERENCE", "Agreement", "Mode", "add_arguments", "agreement", "describe", "double_softmax_bound", "explain",
    "gradient_parity", "markdown_table", "result_rows", "run", "seed_study", "spread", "train_all",
    "train_modes", "trap_modes",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="report folder (default reports/<dataset>)")
    parser.add_argument("--only", default=None, help="comma-separated implementation ids (default: all eight)")
    parser.add_argument("--no-traps", dest="traps", action="store_false", help="skip the trap modes")
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the seed study (0 skips it)")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    seeds = check_seed_count(args.seeds)  # every argument checked before anything trains
    implementations = selected_implementations(args.only)
    dataset = dataset_from(args)
    config = config_from(args)
    if config.model != "lab" or config.init == "native" or (config.dropout and config.dropout_rng == "native"):
        trap = ("the double softmax" if config.model != "lab" else "each framework's native init"
                if config.init == "native" else "each framework's own dropout generator")
        raise KitError(f"compare runs {trap} as one of its trap modes, beside the lab-faithful run; "
                       "drop the option (or use train IMPL with it for one run).")
    check_memory(dataset.nx, config.arch.hidden, dataset.ny, rows=len(dataset.Xtrain) + len(dataset.Xtest))
    out = args.out or Path("reports") / dataset.name
    out.mkdir(parents=True, exist_ok=True)
    print(f"compare on {dataset.name}: {len(implementations)} implementations, {config}", flush=True)

    traps = args.traps and dataset.name != "mnist"
    modes = [Mode("lab", {}, registered()), *(trap_modes(config) if traps else [])]
    modes = [mode for mode in modes if set(implementations) & set(mode.implementations)]  # e.g. --only jax/manual
    runs = train_modes(dataset, config, implementations, modes, progress=progress_enabled(args))
    study = seed_study(dataset, config, seeds=seeds) if traps and seeds else None

    written = draw_figures(out, dataset, config, runs)
    parity = gradient_parity(dataset, config, implementations)
    written += write_report(out, dataset, config, runs, study, svm_reference(dataset), parity)
    print(wrote_line(out, written))
    return 0


def wrote_line(out: Path, written: Sequence[Path]) -> str:
    """The closing line: every file written, those in sub-folders grouped by folder."""
    names = [str(Path(p).relative_to(out)) for p in written]
    top = [n for n in names if "/" not in n]
    folders: dict[str, list[str]] = {}
    for name in names:
        if "/" in name:
            folder, file = name.split("/", 1)
            folders.setdefault(folder, []).append(file)
    parts = top + [f"{folder}/ ({len(files)}: {', '.join(files)})" for folder, files in folders.items()]
    return f"wrote {out}/: {', '.join(parts)}"
