"""``python -m frameworks bench``: it runs, writes its JSON and figure, and never replaces them with a failed run
(no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import frameworks
from frameworks import bench
from frameworks.__main__ import main
from frameworks._errors import KitError
from frameworks._registry import Implementation, get

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_rows_and_figure(tmp_path, capsys):
    only = ["torch/manual", "jax/manual"]
    assert main(["bench", "--quick", "--out", str(tmp_path), "--only", ",".join(only)]) == 0

    report = json.loads((tmp_path / "bench.json").read_text())
    rows = report["rows"]
    assert {row["implementation"] for row in rows} == set(only)
    assert {row["mode"] for row in rows if row["framework"] == "jax"} == {"fused", "step", "fused-run"}
    assert len({row["workload"] for row in rows}) == 4  # circles, circles with Adam + cosine + clipping, two tiny
    for row in rows:
        assert row["error"] is None, row
        assert row["median_s"] > 0 and row["us_per_step"] > 0 and row["steps_per_s"] > 0
        assert all(t > 0 for t in row["times_s"])
        assert row["gflops"] > 0
    assert report["matmul"]["numpy_gflops"] > 0
    assert report["import"]["imports_torch"] is False and report["import"]["imports_jax"] is False
    assert {"platform", "cpu_count", "torch", "jax"} <= set(report["machine"])
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.png"]  # no temporary file left
    assert "| workload |" in capsys.readouterr().out


def test_bench_rejects_unknown_implementation(tmp_path, capsys):
    assert main(["bench", "--quick", "--out", str(tmp_path), "--only", "torch/manul"]) == 2
    assert "torch/manual" in capsys.readouterr().err


def _sees_gpu() -> bool:
    return any("gpu" in get(impl_id).devices() for impl_id in ("torch/manual", "jax/manual"))


def test_bench_refuses_a_device_no_framework_sees_and_keeps_earlier_results(tmp_path):
    if _sees_gpu():
        pytest.skip("a framework sees a GPU here: bench --device gpu would run")
    earlier = b'{"rows": "an earlier good run"}\n'
    (tmp_path / "bench.json").write_bytes(earlier)
    command = [sys.executable, "-m", "frameworks", "bench", "--device", "gpu", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "gpu" in done.stderr, done.stderr
    assert done.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
    assert (tmp_path / "bench.json").read_bytes() == earlier


def test_bench_whose_rows_all_fail_keeps_earlier_results(tmp_path, monkeypatch, capsys):
    def failed(variant: bench.Variant, workload: bench.Workload, *, device: str, repeats: int) -> dict:
        return {
            "workload": workload.name,
            "implementation": variant.implementation,
            "mode": variant.mode,
            "label": variant.label,
            "framework": variant.framework,
            "error": "RuntimeError: broken",
        }

    monkeypatch.setattr(bench, "measure", failed)
    monkeypatch.setattr(bench, "measure_import", lambda runs: {"error": "not measured"})
    monkeypatch.setattr(bench, "matmul_rate", lambda library, device, *, n: 1.0)
    earlier = b'{"rows": "an earlier good run"}\n'
    (tmp_path / "bench.json").write_bytes(earlier)

    assert main(["bench", "--quick", "--out", str(tmp_path), "--only", "torch/manual"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
    assert (tmp_path / "bench.json").read_bytes() == earlier
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "all 4 rows failed" in captured.err.splitlines()[-1] and "RuntimeError: broken" in captured.err


def test_bench_times_only_the_frameworks_that_see_the_device(monkeypatch):
    seen = {"torch": ["cpu", "gpu"], "jax": ["cpu"]}
    monkeypatch.setattr(Implementation, "devices", lambda self: seen[self.framework])
    variants = bench._workloads.variants({"torch/manual", "jax/manual"})

    kept, skipped = bench.on_device(variants, "gpu")
    assert [v.implementation for v in kept] == ["torch/manual"]
    assert set(skipped) == {"jax/manual"} and skipped["jax/manual"] == "jax sees only cpu"
    with pytest.raises(KitError, match="torch sees only cpu, gpu; jax sees only cpu"):
        bench.on_device(variants, "tpu")


def test_bench_sweep_times_the_vmapped_grid_against_the_torch_loop(tmp_path, capsys):
    assert main(["bench", "--sweep", "40", "--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench_sweep.json").read_text())["sweep"]
    assert report["runs"] == 40 and report["groups"] == 1 and report["jax_steady_s"] > 0 < report["vmap_steady_s"]
    assert report["torch_runs_timed"] == 2 and report["speedup_vs_torch_optim_loop"] > 0
    out = capsys.readouterr().out
    assert "jax/manual sweep (runs last), steady state" in out and "jax/grad sweep (vmap" in out
    assert main(["bench", "--sweep", "30", "--quick", "--out", str(tmp_path)]) == 2  # not a multiple of 20


def test_end_to_end_counts_the_products_and_times_whole_train_calls(tmp_path, capsys):
    from frameworks.bench._end_to_end import flops

    # the lab's circles run, counted by hand: 2-10-2, per training row 2(20+20) forward + 2(20+20) weight
    # gradients + 2(20) for dL/dh; 200 rows trained and 400 evaluated (train and test) each of 150 epochs
    assert flops(frameworks.TrainConfig(), 2, 2, train_rows=200, eval_rows=400) == 150 * (200 * 200 + 400 * 80)
    assert main(["bench", "--end-to-end", "--quick", "--only", "jax/grad", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench_end_to_end.json").read_text())["end_to_end"]
    assert list(report["workloads"]) == ["circles", "mnist-size", "full-mnist-size"]
    for workload in report["workloads"].values():
        assert list(workload["rows"]) == ["torch/optim", "jax/grad"]  # PyTorch first; torch/optim the baseline
        assert workload["rows"]["jax/grad"]["compile_s"] >= 0 and workload["rows"]["torch/optim"]["compile_s"] == 0
    full = report["workloads"]["full-mnist-size"]["rows"]["jax/grad"]
    assert full["projected_100_epochs_s"] == pytest.approx(full["later_s"] + 99 * full["epoch_s"])
    assert "| jax/grad |" in capsys.readouterr().out
