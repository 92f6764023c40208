"""Data-parallel training of the torch.nn and torch.optim stages with DistributedDataParallel.

One process a device, started by ``torchrun``:

    torchrun --standalone --nproc-per-node 2 -m frameworks.torch_stages.ddp torch/optim --dataset circles

Every process builds the same model from the same canonical init and draws the
same batch order; each takes its own contiguous share of every batch (the
batch size must be divisible by the process count). DDP all-reduces the
gradients, averaging them over processes: with the mean loss of each share that
average is exactly the mean over the whole batch, so the run is the
single-process run, up to the order of the sums. The summed loss of the
course's cheat-sheet is scaled by the process count so the same holds for it.
Backend: gloo on CPUs, nccl on GPUs. Rank 0 writes ``history.json`` and
``params.npz`` (canonical float64) under ``--out``.

The same module is also what ``frameworks.torch_stages.ddp.run_ddp`` starts
from Python (for tests and notebooks).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from frameworks.__main__ import Parser
from frameworks._batches import BatchOrder
from frameworks._cli_train import add_config_arguments, config_from, dataset_from
from frameworks._errors import KitError
from frameworks._registry import get
from frameworks._stage import place
from frameworks._training import METRICS, initial_params

STAGES = ("torch/nn", "torch/optim")


class ScaledLoss(nn.Module):
    """``factor`` times a loss: undoes DDP's averaging for a summed loss."""

    def __init__(self, loss: nn.Module, factor: int) -> None:
        super().__init__()
        self.loss, self.factor = loss, factor

    def forward(self, Ytilde: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.factor * self.loss(Ytilde, Y)


def train(impl_id: str, args: argparse.Namespace) -> dict:
    """This process's part of the run; returns the history and canonical parameters."""
    if impl_id not in STAGES:
        raise KitError(f"DDP trains the module stages {STAGES}; {impl_id!r} has no nn.Module to wrap.")
    rank, world = dist.get_rank(), dist.get_world_size()
    dataset = dataset_from(args)
    config = config_from(args)
    if config.batch_size % world:
        raise KitError(f"batch_size {config.batch_size} is not divisible by the {world} processes.")
    if config.dropout and config.dropout_rng == "kit":
        raise KitError("DDP runs the model through its wrapper, which takes no dropout masks: train dropout with "
                       "the kit's masks in one process (or --dropout-rng native under torchrun).")
    if config.devices != 1:
        raise KitError("--devices is JAX's data parallelism; under torchrun the process count sets it.")
    stage = get(impl_id).stage
    if config.device == "gpu":
        local = int(os.environ.get("LOCAL_RANK", rank))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    params = initial_params(stage, config, dataset.nx, dataset.ny)  # the same draw in every process
    with place(stage, config, params, *dataset[:4], device=device) as placed:
        data, state = placed.data, placed.state  # the state is evaluated and exported unwrapped
        replica = copy.copy(state)  # trained wrapped: the same parameters, through DDP
        replica.model = DistributedDataParallel(state.model, device_ids=[device] if device.type == "cuda" else None)
        if config.loss_reduction == "sum":
            replica.loss = ScaledLoss(state.loss, world)
        order = BatchOrder(len(dataset.Xtrain), config.batch_size, seed=config.seed)
        step = stage.step(config, order.batches_per_epoch) if config.schedule is not None else stage.step(config)
        share = config.batch_size // world
        history: dict[str, list[float]] = {m: [] for m in METRICS}
        for _ in range(config.epochs):
            for rows in torch.as_tensor(order.next_epoch(), device=device):
                mine = rows[rank * share:(rank + 1) * share]
                step(replica, data[0][mine], data[1][mine])
            metrics = (*stage.evaluate(state, data[0], data[1]), *stage.evaluate(state, data[2], data[3]))
            for name, value in zip(METRICS, metrics):
                history[name].append(float(value))
        return {"history": history, "params": stage.export(state), "config": config.to_dict(), "world_size": world}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="torchrun ... -m frameworks.torch_stages.ddp", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("implementation", choices=STAGES)
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/ddp"))
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        print("error: start this module with torchrun (see its docstring).", file=sys.stderr)
        return 2
    dist.init_process_group(backend="nccl" if args.device == "gpu" else "gloo")
    try:
        result = train(args.implementation, args)
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        dist.destroy_process_group()
    if int(os.environ["RANK"]) == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(args.out / "params.npz", **result.pop("params"))
        (args.out / "history.json").write_text(json.dumps(result, indent=1))
        print(f"{args.implementation} on {result['world_size']} processes: test acc "
              f"{result['history']['test_acc'][-1]:.3f}; wrote {args.out}")
    return 0


def run_ddp(impl_id: str, nproc: int, out: Path, *options: str, timeout: float = 600) -> dict:
    """Start ``torchrun --standalone --nproc-per-node nproc`` on this module; returns history and params."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "frameworks.torch_stages.ddp", impl_id, "--out", str(out), *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        ours = [line[len("error: "):] for line in done.stderr.splitlines() if line.startswith("error: ")]
        raise KitError(ours[0] if ours else f"torchrun failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result = json.loads((Path(out) / "history.json").read_text())
    with np.load(Path(out) / "params.npz") as npz:
        result["params"] = {k: npz[k] for k in npz.files}
    return result


if __name__ == "__main__":
    sys.exit(main())
