"""The machine ``bench`` ran on: its description, the versions, ``import frameworks`` and a matmul rate.

The matrix product is the roofline the rows are held against: a float32
2048 x 2048 @ 2048 x 2048 product (2*n^3 flops; 256 x 256 with ``--quick``)
measured in the same run, jitted ``jnp.dot`` for the JAX rows, ``torch.mm`` for
the PyTorch rows, NumPy for reference, each at the precision the rows run at.

``import frameworks`` is timed in fresh interpreters (median of three runs),
checking that it imports neither torch nor jax.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from frameworks._config import TrainConfig
from frameworks._errors import KitError
from frameworks.bench._timing import reason
from frameworks.bench._workloads import SEED

ROOT = Path(__file__).resolve().parents[2]


def measure_import(runs: int = 3) -> dict[str, Any]:
    """Seconds of ``import frameworks`` in fresh interpreters (median), and whether torch or jax got imported."""
    code = (
        "import json, sys, time; t = time.perf_counter(); import frameworks; dt = time.perf_counter() - t; "
        "print(json.dumps({'seconds': dt, 'torch': 'torch' in sys.modules, 'jax': 'jax' in sys.modules}))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
        )
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "runs_s": [r["seconds"] for r in results],
        "imports_torch": any(r["torch"] for r in results),
        "imports_jax": any(r["jax"] for r in results),
    }


def matmul_rate(library: str, device: str, *, n: int, repeats: int = 5, torch_threads: int = 1) -> float:
    """GFLOP/s of a float32 n x n @ n x n product in ``library`` (2 n^3 flops), median of ``repeats`` after a warm-up.

    "numpy" (the CPU), "torch" (``torch.mm``, TF32 off as the rows run) or "jax" (jitted ``jnp.dot`` at
    precision "highest", as the rows run), on ``device`` ("cpu" or "gpu").
    """
    rng = np.random.default_rng(SEED)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    if library == "numpy":
        return _rate(lambda: a @ b, n, repeats)
    if library == "torch":
        import torch

        from frameworks.torch_stages import _backend

        dev = torch.device("cuda", 0) if device == "gpu" else torch.device("cpu")
        ta, tb = (torch.as_tensor(m, device=dev) for m in (a, b))
        with _backend.scope(TrainConfig(torch_threads=torch_threads)):  # TF32 off, the rows' threads
            return _rate(lambda: _backend.wait(torch.mm(ta, tb)), n, repeats)
    if library == "jax":
        import jax
        import jax.numpy as jnp

        dev = jax.devices("gpu" if device == "gpu" else "cpu")[0]
        ja, jb = (jax.device_put(m, dev) for m in (a, b))
        with jax.default_matmul_precision("highest"):
            dot = jax.jit(jnp.dot)
            return _rate(lambda: dot(ja, jb).block_until_ready(), n, repeats)
    raise KitError(f"unknown matmul library {library!r}")


def _rate(fn: Callable[[], Any], n: int, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def machine_info(device: str, frameworks_used: set[str]) -> dict[str, Any]:
    """The platform, the CPU, the versions of the frameworks used and the device each ran on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numpy": np.__version__,
        "device": device,
    }
    if "torch" in frameworks_used:
        import torch

        info["torch"] = torch.__version__
        info["torch_default_threads"] = torch.get_num_threads()  # the process default; runs use settings' own
        on_gpu = device == "gpu" and torch.cuda.is_available()
        info["torch_device"] = torch.cuda.get_device_name(0) if on_gpu else info["processor"]
    if "jax" in frameworks_used:
        import jax

        info["jax"] = jax.__version__
        info["jaxlib"] = getattr(jax.lib, "__version__", None) or _version("jaxlib")
        info["flax"] = _version("flax")
        info["optax"] = _version("optax")
        info["jax_backend"] = jax.default_backend()
        try:
            info["jax_device"] = str(jax.devices("gpu" if device == "gpu" else "cpu")[0].device_kind)
        except RuntimeError as err:
            info["jax_device"] = reason(err)
    return info


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
