"""``python -m frameworks bench``: time every implementation side by side, in one run.

Rows: every implementation of the registry (:data:`frameworks.IMPLEMENTATIONS`),
PyTorch ones eager, JAX ones three ways -- ``fused-run`` (config.fuse=True and
all the epochs of a repeat in one call of the runner: one jitted scan over
epochs of a scan over batches, what ``fit`` does by default), ``fused`` (one
call an epoch) and ``step`` (fuse=False: one jitted step a batch, called from
Python) -- plus
``torch/optim + torch.compile`` (the torch/optim training step through
``torch.compile``; id ``torch/optim+compile`` for ``--only``; if compiling fails
the row records why instead of a time).

Workloads (float32, the lab's SGD, init and batch order from seed 0):

* ``circles``: the shipped circles data at the lab's defaults (``TrainConfig()``:
  nh=10, batch 10, 200 rows -> 20 batches an epoch); a repeat is ``--epochs``
  epochs (default 150, i.e. 3000 steps);
* ``mnist784 b100`` and ``mnist784 b256``: an MNIST-sized 784-100-10 problem,
  12800 random float32 rows in [0, 1) with random one-hot labels (NumPy seed 0);
  a repeat is one epoch (128 and 50 steps).

Timing method -- chosen: **steps only, through the kit's own runner**. For each
row the stage's ``prepare()`` builds the state and ``make_step(config)`` the
step, and the framework backend's ``epoch_runner(step, evaluate=None, ...)`` --
the very loop ``fit`` uses, without the per-epoch metrics -- runs it over the
batches ``fit`` would draw; ``backend.wait`` (``jax.block_until_ready``, or
``torch.cuda.synchronize`` on a GPU) closes each repeat.

One warm-up repeat comes first (it compiles/traces; a repeat rather than one
epoch, since ``fused-run`` compiles for the shape of a whole repeat); ``compile_s``
is the warm-up time minus one steady repeat. Then the median of ``--repeats``
timed repeats (their minimum is kept in the JSON too) gives us/step, steps/s,
the speed-up over torch/optim (its time over the row's), and GFLOP/s with
``4*B*nx*nh + 6*B*nh*ny`` flops a step (forward
``2*B*nx*nh + 2*B*nh*ny``, backward ``2*B*nx*nh`` for dWh and ``4*B*nh*ny`` for
dWy and dH; no gradient with respect to the input), against a float32 matrix
product measured in the same run (2048 x 2048 @ 2048 x 2048, 2*n^3 flops: jitted
``jnp.dot`` for the JAX rows, ``torch.mm`` for the PyTorch rows, NumPy for
reference; "% best matmul" divides by the fastest of the three).
``final_loss`` is the training loss after the warm-up and timed repeats: every
row runs the same steps on the same batches, so it should agree across rows to
float32 rounding.

Each row also times the runner with the stage's ``evaluate`` over the same
epochs (``runner us/step``, same warm-up and median): that is exactly what
``fit`` runs, with, after every epoch, the loss and accuracy on the full train
and test sets (computed inside the fused call for JAX).

Order: all PyTorch rows first, then all JAX rows (registry order of
frameworks), numpy's matmul last. Once XLA has run on the CPU, PyTorch's small
MKL products in the same process were seen to slow down tenfold or more on a
2-core machine (the threads of both runtimes contend for the cores); running
PyTorch first keeps its rows clean. PyTorch's intra-op threads are its default
unless ``--torch-threads`` says otherwise (recorded in the JSON). On a machine
shared with other work the numbers move a lot: compare rows of one run only.

``--quick``: circles for one epoch, a 64-16-10 problem of 256 rows at batch 16
and 32, a 256 x 256 matmul, one timed repeat: a smoke test of the bench itself.

Also measured: ``import frameworks`` in a fresh interpreter (median of three runs),
checking that it imports neither torch nor jax. Writes ``DIR/bench.json``
(machine, settings, every row) and ``DIR/bench.png`` (us/step, log scale), and
prints a Markdown table on stdout; progress goes to stderr. Never assert on
these timings in tests: they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frameworks._batches import BatchOrder
from frameworks._config import TrainConfig
from frameworks._data import Dataset, from_arrays, load_dataset
from frameworks._errors import KitError, unknown
from frameworks._params import init_params
from frameworks._registry import FRAMEWORKS, IMPLEMENTATIONS, get

BASELINE = "torch/optim"
COMPILE_ID = "torch/optim+compile"
SEED = 0


@dataclass(frozen=True)
class Workload:
    """A dataset, a config and how many epochs one timed repeat runs."""

    name: str
    dataset: Dataset
    config: TrainConfig
    epochs: int

    @property
    def batches_per_epoch(self) -> int:
        return len(self.dataset.Xtrain) // self.config.batch_size

    @property
    def steps(self) -> int:
        """Steps in one repeat."""
        return self.epochs * self.batches_per_epoch

    @property
    def flops_per_step(self) -> int:
        B, nx, nh, ny = self.config.batch_size, self.dataset.nx, self.config.nh, self.dataset.ny
        return 4 * B * nx * nh + 6 * B * nh * ny

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset": self.dataset.name,
            "n_train": len(self.dataset.Xtrain),
            "n_test": len(self.dataset.Xtest),
            "nx": self.dataset.nx,
            "nh": self.config.nh,
            "ny": self.dataset.ny,
            "batch_size": self.config.batch_size,
            "epochs_per_repeat": self.epochs,
            "steps_per_repeat": self.steps,
            "flops_per_step": self.flops_per_step,
            "config": self.config.to_dict(),
        }


@dataclass(frozen=True)
class Variant:
    """One row's implementation and how it runs: eager, compile, fused, step or fused-run."""

    implementation: str
    mode: str

    @property
    def framework(self) -> str:
        return get(self.implementation).framework

    @property
    def label(self) -> str:
        if self.mode == "eager":
            return self.implementation
        if self.mode == "compile":
            return f"{self.implementation} + torch.compile"
        return f"{self.implementation} {self.mode}"


# ----------------------------------------------------------------------------- the command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="device to time on (default cpu)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats, median reported (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs a circles repeat runs (default 150; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the bench itself")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for bench.json and bench.png")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for the PyTorch rows (default: PyTorch's own choice, recorded in bench.json)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated implementation ids to time (of {', '.join(IMPLEMENTATIONS)}, {COMPILE_ID})",
    )


def run(args: argparse.Namespace) -> int:
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 150)
    threads = 1 if args.torch_threads is None else args.torch_threads
    for name, value in (("--repeats", repeats), ("--epochs", epochs), ("--torch-threads", threads)):
        if value <= 0:
            raise KitError(f"{name} must be a positive integer, got {value}.")
    selected = _selected(args.only)
    variants = _variants(selected)
    workloads = _workloads(quick=args.quick, epochs=epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    _progress("bench: `import frameworks` in a fresh interpreter")
    import_check = measure_import(runs=1 if args.quick else 3)
    matmul_n = 256 if args.quick else 2048
    matmul: dict[str, Any] = {"n": matmul_n}
    if args.torch_threads is not None and any(v.framework == "torch" for v in variants):
        import torch

        torch.set_num_threads(args.torch_threads)

    # One framework after the other (registry order: torch first): once XLA has run on the CPU,
    # PyTorch's small MKL products in the same process can slow down tenfold or more on a small
    # machine (threads of both runtimes contend for the cores), so no PyTorch row runs after JAX work.
    plan = [(w, v) for framework in FRAMEWORKS for w in workloads for v in variants if v.framework == framework]
    rows_at: dict[tuple[int, int], dict[str, Any]] = {}
    for framework in FRAMEWORKS:
        if not any(v.framework == framework for v in variants):
            continue
        _progress(f"bench: float32 {matmul_n}x{matmul_n} matrix product, {framework}")
        try:
            matmul[f"{framework}_gflops"] = matmul_rate(framework, args.device, n=matmul_n)
        except Exception as err:
            matmul[f"{framework}_error"] = _reason(err)
        for workload, variant in plan:
            if variant.framework != framework:
                continue
            row = measure(variant, workload, device=args.device, repeats=repeats)
            rows_at[workloads.index(workload), variants.index(variant)] = row
            _progress(f"[{len(rows_at)}/{len(plan)}] {workload.name:>14} {variant.label:<30} {_describe(row)}")
    rows = [rows_at[key] for key in sorted(rows_at)]
    _progress(f"bench: float32 {matmul_n}x{matmul_n} matrix product, numpy")  # last: OpenBLAS's threads linger
    matmul["numpy_gflops"] = matmul_rate("numpy", args.device, n=matmul_n)
    _relate(rows, matmul)

    report = {
        "machine": machine_info(args.device, {v.framework for v in variants}),
        "settings": {
            "device": args.device,
            "repeats": repeats,
            "quick": args.quick,
            "torch_threads": args.torch_threads,
            "only": sorted(selected),
            "timing": "steps only, backend.epoch_runner without evaluation (see frameworks/bench.py); "
            "runner_* columns: the same with the per-epoch evaluation, as fit runs it",
            "order": "all PyTorch rows (and torch.mm) first, then all JAX rows (and jnp.dot), numpy's matmul last",
            "workloads": [w.describe() for w in workloads],
        },
        "import": import_check,
        "matmul": matmul,
        "rows": rows,
    }
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(rows, out / "bench.png")
    print(markdown(report))
    _progress(f"bench: wrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0


def _selected(only: str | None) -> set[str]:
    choices = (*IMPLEMENTATIONS, COMPILE_ID)
    if only is None:
        return set(choices)
    selected = {name.strip() for name in only.split(",") if name.strip()}
    if not selected:
        raise KitError("--only needs at least one implementation id.")
    for name in selected:
        if name not in choices:
            raise unknown("implementation", name, choices)
    return selected


def _variants(selected: set[str]) -> list[Variant]:
    """The rows, in the registry's order; the torch.compile row right after torch/optim."""
    variants = []
    for implementation in IMPLEMENTATIONS:
        if implementation in selected:
            modes = ("fused-run", "fused", "step") if get(implementation).framework == "jax" else ("eager",)
            variants += [Variant(implementation, mode) for mode in modes]
        if implementation == BASELINE and COMPILE_ID in selected:
            variants.append(Variant(BASELINE, "compile"))
    return variants


def _workloads(*, quick: bool, epochs: int) -> list[Workload]:
    circles = Workload("circles", load_dataset("circles"), TrainConfig(epochs=epochs), epochs)
    if quick:
        n_train, n_test, nx, nh, ny, sizes = 256, 64, 64, 16, 10, (16, 32)
    else:
        n_train, n_test, nx, nh, ny, sizes = 12800, 2000, 784, 100, 10, (100, 256)
    data = synthetic(n_train, n_test, nx, ny, seed=SEED)
    prefix = "tiny" if quick else f"mnist{nx}"
    return [circles] + [
        Workload(f"{prefix} b{B}", data, TrainConfig(nh=nh, batch_size=B, eta=0.03, epochs=1), 1) for B in sizes
    ]


def synthetic(n_train: int, n_test: int, nx: int, ny: int, *, seed: int) -> Dataset:
    """Random float32 features in [0, 1) and random one-hot labels (an MNIST-sized stand-in)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "Xtrain": rng.random((n_train, nx), dtype=np.float32),
        "Ytrain": rng.integers(0, ny, n_train),
        "Xtest": rng.random((n_test, nx), dtype=np.float32),
        "Ytest": rng.integers(0, ny, n_test),
    }
    arrays["Ytrain"][:ny] = np.arange(ny)  # every class present, so one-hot has ny columns
    arrays["Ytest"][:ny] = np.arange(ny)
    return from_arrays(arrays, name=f"synthetic{nx}")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _describe(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"FAILED: {row['error']}"
    text = f"{row['us_per_step']:10.1f} us/step  compile {row['compile_s']:.2f} s"
    if row.get("runner_us_per_step") is not None:
        text += f"  epoch_runner {row['runner_us_per_step']:.1f} us/step"
    return text


# ----------------------------------------------------------------------------- measuring


def measure(variant: Variant, workload: Workload, *, device: str, repeats: int) -> dict[str, Any]:
    """One row: steps-only timings (warm-up, median of ``repeats``), then the epoch_runner's."""
    row: dict[str, Any] = {
        "workload": workload.name,
        "implementation": variant.implementation,
        "mode": variant.mode,
        "label": variant.label,
        "framework": get(variant.implementation).framework,
        "batch_size": workload.config.batch_size,
        "steps_per_repeat": workload.steps,
        "flops_per_step": workload.flops_per_step,
        "error": None,
    }
    try:
        _measure(variant, workload, device, repeats, row)
    except Exception as err:  # a row that cannot run says why; the others still run
        row["error"] = _reason(err)
    return row


def _measure(variant: Variant, workload: Workload, device: str, repeats: int, row: dict[str, Any]) -> None:
    impl = get(variant.implementation)
    stage, backend = impl.module, impl.module.backend
    config = workload.config.replace(device=device, fuse=variant.mode != "step")
    dataset = workload.dataset
    params = init_params(dataset.nx, config.nh, dataset.ny, seed=config.seed)
    with backend.scope(config):
        dev = backend.resolve_device(config.device)
        data = tuple(backend.asarray(a, config.dtype, dev) for a in dataset[:4])
        state = stage.prepare(params, config, dev)
        step = stage.make_step(config)
        if variant.mode == "compile":
            step = _torch_compile(step)
        order = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed)
        try:
            state, timing = _time(_loop(backend, variant.mode, step, None, data, dev), state, order, workload, repeats)
        except Exception as err:
            if variant.mode == "compile":
                raise CompileFailed(f"torch.compile failed: {_reason(err)}") from err
            raise
        row.update(timing)
        row["final_loss"] = float(stage.evaluate(state, data[0], data[1])[0])
        runner = _loop(backend, variant.mode, step, stage.evaluate, data, dev)
        _, timing = _time(runner, state, order, workload, repeats)
        row.update({f"runner_{key}": value for key, value in timing.items()})


def _loop(backend: Any, mode: str, step: Callable, evaluate: Callable | None, data: tuple, device: Any) -> Callable:
    """``loop(state, batches (epochs, nb, B)) -> state``, finished on return: the kit's own runner.

    ``evaluate=None`` times the steps alone; with the stage's ``evaluate`` it is what ``fit``
    runs (the metrics of every epoch, brought back to the host). JAX "fused" calls the runner
    once an epoch; "fused-run" once a repeat (``fit``'s default: the whole run in one call).
    """
    run = backend.epoch_runner(step, evaluate, fuse=mode != "step", placement=device)

    def loop(state: Any, batches: np.ndarray) -> Any:
        for part in ([batches] if mode == "fused-run" else np.split(batches, len(batches))):
            state, _ = run(state, data, part)
        return backend.wait(state)

    return loop


def _time(loop: Callable, state: Any, order: BatchOrder, workload: Workload, repeats: int) -> tuple[Any, dict]:
    """Warm-up repeat, then ``repeats`` timed ones (the batch order drawn outside the clock)."""
    batches = order.epochs(workload.epochs)
    start = time.perf_counter()
    state = loop(state, batches)
    warmup = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        batches = order.epochs(workload.epochs)
        start = time.perf_counter()
        state = loop(state, batches)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return state, {
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "warmup_s": warmup,
        "compile_s": max(warmup - median, 0.0),
        "us_per_step": median / workload.steps * 1e6,
        "steps_per_s": workload.steps / median,
    }


def _torch_compile(step: Callable) -> Callable:
    import torch

    torch._dynamo.reset()  # a fresh cache: compile_s counts this row's compilation
    return torch.compile(step)


class CompileFailed(RuntimeError):
    """torch.compile (or the first call of its result) failed; the message says why."""


def _reason(err: BaseException) -> str:
    if isinstance(err, CompileFailed):
        return str(err)[:400]
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


def measure_import(runs: int = 3) -> dict[str, Any]:
    """Seconds of ``import frameworks`` in fresh interpreters (median), and whether torch or jax got imported."""
    code = (
        "import json, sys, time; t = time.perf_counter(); import frameworks; dt = time.perf_counter() - t; "
        "print(json.dumps({'seconds': dt, 'torch': 'torch' in sys.modules, 'jax': 'jax' in sys.modules}))"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=120
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


def matmul_rate(library: str, device: str, *, n: int, repeats: int = 5) -> float:
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

        dev = torch.device("cuda", 0) if device == "gpu" else torch.device("cpu")
        from frameworks.torch_stages import _backend

        ta, tb = (torch.as_tensor(m, device=dev) for m in (a, b))
        with _backend.scope(TrainConfig()):  # TF32 off, as the rows run
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


def _relate(rows: list[dict[str, Any]], matmul: dict[str, Any]) -> None:
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


def machine_info(device: str, frameworks_used: set[str]) -> dict[str, Any]:
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
        info["torch_threads"] = torch.get_num_threads()
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
            info["jax_device"] = _reason(err)
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


# ----------------------------------------------------------------------------- the report


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _pct(fraction: float | None) -> str:
    return _fmt(None if fraction is None else 100 * fraction, ".0f", "%")


def markdown(report: dict[str, Any]) -> str:
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
    lines += [
        "",
        "us/step: steps only (the kit's runner without metrics); runner: `backend.epoch_runner` with its per-epoch evaluation. "
        "xT = speed-up over torch/optim on the same workload. % own matmul: GFLOP/s over the row's framework's "
        "matmul rate (jnp.dot or torch.mm); % best matmul: over the fastest of the three.",
        "",
        "| workload | implementation | us/step | steps/s | xT | compile s | runner us/step | runner xT "
        "| GFLOP/s | % own matmul | % best matmul | final loss |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report["rows"]:
        if r["error"]:
            lines.append(f"| {r['workload']} | {r['label']} | failed: {r['error'].replace('|', '/')} ||||||||||")
            continue
        lines.append(
            "| "
            + " | ".join(
                [
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
            )
            + " |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from frameworks import plots

    plots.bench_bars(rows, path)
