"""What ``bench`` reports: the derived columns, a Markdown table, ``bench.json`` and ``bench.png``.

Derived columns: the speed-up over torch/optim on the same workload (its time
over the row's), and GFLOP/s with :attr:`Workload.flops_per_step` flops a step,
against the matrix product of the row's framework ("% own matmul") and the
fastest of the three ("% best matmul").

``DIR/bench.json`` (machine, settings, every row) and ``DIR/bench.png``
(us/step, log scale) are written under temporary names and renamed once both
are complete, so an interrupted run leaves the earlier results whole; a run
whose rows all failed writes neither (see :func:`frameworks.bench.run`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from frameworks.bench._workloads import BASELINE


def relate(rows: list[dict[str, Any]], matmul: dict[str, Any]) -> None:
    """Speed-ups over torch/optim (same workload) and GFLOP/s against the framework's matmul rate."""
    baselines = {
        (r["workload"], key): r[key]
        for r in rows
        if r["implementation"] == BASELINE and r["mode"] == "eager" and not r["error"]
        for key in ("median_s", "runner_median_s")
    }
    best = max((v for k, v in matmul.items() if k.endswith("_gflops")), default=None)
    for r in rows:
        if r["error"]:
            continue
        base = baselines.get((r["workload"], "median_s"))
        r["speedup_vs_torch_optim"] = base / r["median_s"] if base else None
        base = baselines.get((r["workload"], "runner_median_s"))
        mine = r.get("runner_median_s")
        r["runner_speedup_vs_torch_optim"] = base / mine if base and mine else None
        r["gflops"] = r["flops_per_step"] * r["steps_per_s"] / 1e9
        reference = matmul.get(f"{r['framework']}_gflops")
        r["matmul_fraction"] = r["gflops"] / reference if reference else None
        r["best_matmul_fraction"] = r["gflops"] / best if best else None


def describe(row: dict[str, Any]) -> str:
    """A row as its progress line says it: its times, or why it failed."""
    if row.get("error"):
        return f"FAILED: {row['error']}"
    text = f"{row['us_per_step']:10.1f} us/step  compile {row['compile_s']:.2f} s"
    if row.get("runner_us_per_step") is not None:
        text += f"  epoch_runner {row['runner_us_per_step']:.1f} us/step"
    return text


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _pct(fraction: float | None) -> str:
    return _fmt(None if fraction is None else 100 * fraction, ".0f", "%")


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the machine, the matmul rates, ``import frameworks``, then a row a line."""
    machine, matmul, imp = report["machine"], report["matmul"], report["import"]
    lines = [
        f"## Benchmark ({report['settings']['device']}, median of {report['settings']['repeats']} repeats)",
        "",
        f"Machine: {machine['processor']}, {machine['cpus_usable']} usable cores, {machine['platform']}; "
        + ", ".join(f"{k} {machine[k]}" for k in ("torch", "jax", "flax", "optax") if machine.get(k)),
        "",
        f"Float32 {matmul['n']}x{matmul['n']} matmul: "
        + ", ".join(f"{k.split('_')[0]} {matmul[k]:.1f} GFLOP/s" for k in matmul if k.endswith("_gflops")),
    ]
    if "error" in imp:
        lines.append(f"`import frameworks`: failed ({imp['error']})")
    else:
        lines.append(
            f"`import frameworks` in a fresh interpreter: {imp['seconds'] * 1e3:.0f} ms; imports torch: "
            f"{imp['imports_torch']}, imports jax: {imp['imports_jax']}"
        )
    for implementation, why in report["settings"].get("skipped", {}).items():
        lines.append(f"Not timed: {implementation} ({why})")
    lines += [
        "",
        "us/step: steps only (the kit's runner without metrics); runner: `backend.epoch_runner` with its "
        "per-epoch evaluation. xT = speed-up over torch/optim on the same workload. % own matmul: GFLOP/s over "
        "the row's framework's matmul rate (jnp.dot or torch.mm); % best matmul: over the fastest of the three.",
        "",
        "| workload | implementation | us/step | steps/s | xT | compile s | runner us/step | runner xT "
        "| GFLOP/s | % own matmul | % best matmul | final loss |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report["rows"]:
        if r["error"]:
            lines.append(f"| {r['workload']} | {r['label']} | failed: {r['error'].replace('|', '/')} ||||||||||")
            continue
        cells = [
            r["workload"],
            r["label"],
            _fmt(r["us_per_step"], ".1f"),
            _fmt(r["steps_per_s"], ",.0f"),
            _fmt(r.get("speedup_vs_torch_optim"), ".1f", "x"),
            _fmt(r["compile_s"], ".2f"),
            _fmt(r.get("runner_us_per_step"), ".1f"),
            _fmt(r.get("runner_speedup_vs_torch_optim"), ".1f", "x"),
            _fmt(r["gflops"], ".2f"),
            _pct(r["matmul_fraction"]),
            _pct(r["best_matmul_fraction"]),
            _fmt(r.get("final_loss"), ".5f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from frameworks import plots

    plots.bench_bars(rows, path)


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``out/bench.json`` and ``out/bench.png``, each renamed into place only once both are written."""
    out.mkdir(parents=True, exist_ok=True)
    final = (out / "bench.json", out / "bench.png")
    temporary = (out / f".bench.json.{os.getpid()}.tmp", out / f".bench.{os.getpid()}.tmp.png")
    try:
        temporary[0].write_text(json.dumps(report, indent=2) + "\n")
        plot(report["rows"], temporary[1])
        for source, target in zip(temporary, final):
            os.replace(source, target)
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)
    return final
