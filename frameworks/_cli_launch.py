"""``python -m frameworks launch``: a JAX ``train`` run over several processes (``jax.distributed``).

On one machine, ``P`` processes with a coordinator on 127.0.0.1 (gloo between them)::

    python -m frameworks launch --processes 2 -- train jax/manual --devices 2 --dtype float64

On several hosts, the same command on each, naming host 0's address and its own id::

    python -m frameworks launch --coordinator host0:1234 --num-processes 2 --process-id 0 -- train jax/optax --devices 2
    python -m frameworks launch --coordinator host0:1234 --num-processes 2 --process-id 1 -- train jax/optax --devices 2

Every process trains the same run (``--devices``: the devices over all processes, a multiple of
their count); process 0 prints and writes ``--out`` and ``--checkpoint``, the others write nothing.
See ``_launch.py`` for how it works.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

from frameworks._errors import KitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, help="start this many processes on this machine (a coordinator on "
                        "127.0.0.1, a free port)")
    host = parser.add_argument_group("one process of a run over several hosts (run on each host)")
    host.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, reachable from every host")
    host.add_argument("--num-processes", type=int, help="the processes over all hosts")
    host.add_argument("--process-id", type=int, help="this process's id, 0 to num-processes - 1; 0 writes the "
                      "outputs")
    parser.add_argument("--port", type=int, default=None, help="with --processes: the coordinator's port "
                        "(default: a free one)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for every process to join "
                        "(default 300)")
    parser.add_argument("inner", nargs=argparse.REMAINDER, metavar="-- train IMPL [OPTIONS]",
                        help="the train command each process runs (a JAX implementation)")


def run(args: argparse.Namespace) -> int:
    command = args.inner[1:] if args.inner[:1] == ["--"] else args.inner
    train_args = _train_arguments(command)  # bad options are refused here, before any process starts
    per_host = (args.coordinator, args.num_processes, args.process_id)
    if args.processes is not None:
        if any(v is not None for v in per_host):
            raise KitError("give either --processes (processes on this machine) or --coordinator, --num-processes "
                           "and --process-id (one process of a run over several hosts), not both.")
        from frameworks._cli_train import config_from
        from frameworks._launch import spawn

        devices = config_from(train_args).devices if train_args.resume is None else None  # checked before starting
        if devices is not None and devices % args.processes:
            raise KitError(f"--devices {devices} over {args.processes} processes: the devices must be a multiple of "
                           f"the processes (each gives devices/{args.processes} of its own); pass --devices "
                           f"{args.processes} or a multiple.")
        return spawn(command, args.processes, port=args.port, timeout=args.timeout)
    if any(v is None for v in per_host):
        raise KitError("give --processes P (processes on this machine), or --coordinator HOST:PORT, --num-processes "
                       "and --process-id (one process of a run over several hosts).")
    return _process(train_args, args.coordinator, args.num_processes, args.process_id, timeout=args.timeout)


def _train_arguments(command: list[str]) -> argparse.Namespace:
    """The parsed ``train`` command; only JAX implementations train over processes."""
    from frameworks.__main__ import Parser
    from frameworks._cli_train import add_arguments as add_train_arguments
    from frameworks._registry import get

    if command[:1] != ["train"]:
        raise KitError(f"launch runs `train IMPL [OPTIONS]` in each process (after --), got {' '.join(command)!r}.")
    parser = Parser(prog="python -m frameworks launch ... -- train")
    add_train_arguments(parser)
    args = parser.parse_args(command[1:])
    if get(args.implementation).framework != "jax":
        raise KitError(f"launch runs JAX implementations; {args.implementation} is PyTorch's: start its multi-process "
                       "run with torchrun -m frameworks.torch_stages.ddp (README: Beyond one device).")
    return args


def _process(args: argparse.Namespace, coordinator: str, num_processes: int, process_id: int, *,
             timeout: int) -> int:
    """This process's part: join, train as ``train`` does (process 0 writes), leave."""
    from frameworks import _cli_train
    from frameworks._launch import initialize, shutdown

    initialize(coordinator, num_processes, process_id, timeout=timeout)
    # The run is cut into the same chunks in every process (a progress bar cuts it): no bar unless asked for.
    args.progress = bool(args.progress)
    try:
        if process_id == 0:
            code = _cli_train.run(args)
        else:
            with tempfile.TemporaryDirectory(prefix="kit-process-") as tmp, \
                    contextlib.redirect_stdout(io.StringIO()):
                args.out = Path(tmp) / "out"  # the same steps as process 0 (checkpoints too), into a folder dropped
                if args.checkpoint is not None:
                    args.checkpoint = Path(tmp) / "checkpoint"
                code = _cli_train.run(args)
    except BaseException as err:  # noqa: BLE001 (every failure leaves the same way)
        _leave_now(err)
    shutdown()  # a barrier: every process waits here for the others
    return code


def _leave_now(err: BaseException) -> NoReturn:
    """Exit at once after a failure. A normal exit would wait at JAX's shutdown barrier for processes that may
    themselves wait for this one in a collective: a failure in one process would hang them all."""
    if isinstance(err, (KitError, OSError)):
        print(f"error: {err}", file=sys.stderr)
    elif not isinstance(err, KeyboardInterrupt):
        traceback.print_exception(err)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130 if isinstance(err, KeyboardInterrupt) else 2 if isinstance(err, (KitError, OSError)) else 1)
