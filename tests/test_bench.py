"""``python -m frameworks bench --quick``: it runs, and writes its JSON and figure (no timing assertions)."""

from __future__ import annotations

import json

from frameworks.__main__ import main


def test_bench_quick_writes_rows_and_figure(tmp_path, capsys):
    only = ["torch/manual", "jax/manual"]
    assert main(["bench", "--quick", "--out", str(tmp_path), "--only", ",".join(only)]) == 0

    report = json.loads((tmp_path / "bench.json").read_text())
    rows = report["rows"]
    assert {row["implementation"] for row in rows} == set(only)
    assert {row["mode"] for row in rows if row["framework"] == "jax"} == {"fused", "step", "fused-run"}
    assert len({row["workload"] for row in rows}) == 3
    for row in rows:
        assert row["error"] is None, row
        assert row["median_s"] > 0 and row["us_per_step"] > 0 and row["steps_per_s"] > 0
        assert all(t > 0 for t in row["times_s"])
        assert row["gflops"] > 0
    assert report["matmul"]["numpy_gflops"] > 0
    assert report["import"]["imports_torch"] is False and report["import"]["imports_jax"] is False
    assert {"platform", "cpu_count", "torch", "jax"} <= set(report["machine"])
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert "| workload |" in capsys.readouterr().out


def test_bench_rejects_unknown_implementation(tmp_path, capsys):
    assert main(["bench", "--quick", "--out", str(tmp_path), "--only", "torch/manul"]) == 2
    assert "torch/manual" in capsys.readouterr().err
