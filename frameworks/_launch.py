"""Multi-process JAX: what ``torchrun`` is to PyTorch, ``jax.distributed`` is to JAX.

JAX runs one program in every process (multi-controller): there is no launcher
in JAX itself, only a rendezvous. Each process calls

    jax.config.update("jax_cpu_collectives_implementation", "gloo")   # CPUs; GPUs use NCCL
    jax.distributed.initialize(coordinator_address="HOST:PORT", num_processes=P, process_id=i)

before its first JAX computation; process 0 serves the coordinator at
``HOST:PORT``. From then on ``jax.devices()`` lists every process's devices and
``jax.local_devices()`` this process's own, and a ``Mesh`` over global devices is
used exactly like one over local devices. The kit's ``TrainConfig(devices=N)``
builds it (``N`` a multiple of ``P``: ``N/P`` devices from each process, in
process order), every process draws the same init and batch order, each feeds
its own rows of every batch (``jax.make_array_from_process_local_data``: process
``p`` holds the ``p``-th contiguous share), and XLA inserts the all-reduce of the
gradients, carried between processes by gloo. The state and the history come
back replicated, so every process holds the canonical parameters; only process
0 writes files and prints. Against DDP: no wrapper and no backward hooks; the same
compiled program as on one machine with ``N`` devices.

:func:`spawn` starts ``P`` such processes on this machine (a coordinator on
127.0.0.1, a free port); on several hosts, run the per-host form on each one
(``python -m frameworks launch --coordinator HOST:PORT --num-processes P
--process-id i -- train ...``, see ``_cli_launch.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from frameworks._errors import KitError

#: CPU collectives between processes (JAX's option ``jax_cpu_collectives_implementation``).
COLLECTIVES = "gloo"


def initialize(coordinator: str, num_processes: int, process_id: int, *, timeout: int = 300) -> None:
    """Join the run: gloo collectives on CPUs, then ``jax.distributed.initialize`` (waits up to ``timeout``
    seconds for every process). Call it before the first JAX computation of the process."""
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise KitError(f"the coordinator is HOST:PORT (process 0's address), got {coordinator!r}.")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise KitError(f"process id {process_id} is not one of 0..{num_processes - 1} ({num_processes} processes).")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", COLLECTIVES)
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=timeout)
    except (RuntimeError, ValueError) as err:  # a busy port, a coordinator that never came
        raise KitError(f"process {process_id} could not join the run at {coordinator}: "
                       f"{' '.join(str(err).split())[:300]}") from None


def shutdown() -> None:
    """Leave the run (a barrier: every process waits for the others)."""
    import jax

    jax.distributed.shutdown()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for the coordinator."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable() -> str | None:
    """Why multi-process JAX cannot start here (None: it can): no gloo in this jaxlib, no loopback socket."""
    try:
        from jax._src.lib import _jax  # jaxlib's C++ bindings; gloo is compiled into most builds
    except ImportError:
        return "this jaxlib has no cross-process CPU collectives module"
    if not hasattr(_jax, "make_gloo_tcp_collectives"):
        return "this jaxlib was built without gloo collectives"
    try:
        free_port()
    except OSError as err:
        return f"cannot open a loopback socket for the coordinator: {err}"
    return None


def spawn(command: Sequence[str], processes: int, *, port: int | None = None, timeout: int = 300,
          grace: float = 10, env: Mapping[str, str] | None = None) -> int:
    """Run ``python -m frameworks COMMAND`` as ``processes`` JAX processes on this machine; the exit status.

    Process ``i`` is ``python -m frameworks launch --coordinator 127.0.0.1:PORT --num-processes P
    --process-id i -- COMMAND``. Process 0 writes to this process's stdout and stderr; the others' output
    goes to files, shown when one of them fails. ``timeout``: seconds each waits for all to join. When a
    process fails the others are killed ``grace`` seconds later at most (they may be waiting for it in a
    collective). ``JAX_PLATFORMS`` defaults to ``cpu``: processes on one machine share its CPUs, not a GPU.
    """
    if processes < 1:
        raise KitError(f"--processes must be at least 1, got {processes}.")
    coordinator = f"127.0.0.1:{port or free_port()}"
    env = {**os.environ, **(env or {})}
    env.setdefault("JAX_PLATFORMS", "cpu")
    with tempfile.TemporaryDirectory(prefix="kit-launch-") as tmp:
        logs = [Path(tmp) / f"process{i}.log" for i in range(processes)]
        running = []
        for i in range(processes):
            argv = [sys.executable, "-m", "frameworks", "launch", "--coordinator", coordinator,
                    "--num-processes", str(processes), "--process-id", str(i), "--timeout", str(timeout),
                    "--", *command]
            out = None if i == 0 else logs[i].open("w")
            running.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT if out else None))
            if out is not None:
                out.close()
        codes = _wait(running, grace=grace)
        for i, code in enumerate(codes):
            if i and code and not codes[0]:  # a follower's failure alone: its words (process 0's are on stderr)
                lines = logs[i].read_text(errors="replace").splitlines()
                ours = [line for line in lines if line.startswith("error: ")]
                print(ours[0] if ours else f"error: process {i} failed ({code}): {' '.join(lines[-3:])[-500:]}",
                      file=sys.stderr)
                break
    return next((code for code in codes if code), 0)


def _wait(running: list[subprocess.Popen], *, grace: float) -> list[int]:
    """Each process's exit status; once one fails, the others get ``grace`` seconds, then are killed (-9)."""
    failed_at = None
    while None in (codes := [p.poll() for p in running]):
        if failed_at is None and any(codes):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > grace:
            for p in running:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            break
        time.sleep(0.05)
    return [p.returncode for p in running]
