"""A sweep's runs at once in PyTorch: ``torch.func`` (``functional_call``, ``vmap``, ``grad``) over the model.

The counterpart of the JAX sweep (``frameworks._sweep``) for the module stages: the
runs' parameters stacked along a leading axis, the model called functionally on each
run's own batch, the gradients of the mean loss by ``vmap(grad(...))`` and the lab's SGD
step ``p <- p - eta g`` with each run's eta. PyTorch runs eagerly: each step is a handful
of batched kernels for all the runs, where a loop would launch them run after run. Used
for the lab's plain SGD without dropout (another optimizer or dropout: run by run).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from frameworks import convert
from frameworks._config import TrainConfig
from frameworks._data import Dataset
from frameworks._params import Params
from frameworks._stage import place
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages.stage3_nn import STAGE, init_model


def supports(config: TrainConfig) -> bool:
    """The lab's plain SGD, no dropout, the lab's model: what this path runs."""
    from frameworks.optim import SGD

    return (config.optimizer == SGD() and config.schedule is None and config.clip is None and not config.dropout
            and config.model == "lab")


def vmapped(dataset: Dataset, configs: list[TrainConfig], starts: list[Params], batches: np.ndarray
            ) -> tuple[list[Params], np.ndarray, np.ndarray]:
    """Train ``configs`` (one shape; seeds, etas and inits differ) from ``starts`` on ``batches`` (runs, epochs,
    batches, batch_size): the final canonical parameters (each run's last finite epoch), the metrics (runs,
    epochs, 4 or 6) and the epoch each run diverged at (0: never)."""
    base = configs[0]
    with place(STAGE, base, starts[0], *dataset.arrays) as placed:
        data, device = placed.data, placed.device
        model = init_model(starts[0], dtype=base.dtype, device=device, arch=base.arch)
        names = [name for name, _ in model.named_parameters()]
        params = {name: torch.stack([convert.to_torch_state_dict(p, arch=base.arch)[name] for p in starts]).to(
            device=device, dtype=backend.DTYPES[base.dtype]) for name in names}
        scale = 1.0 if base.loss_reduction == "mean" else float(base.batch_size)

        def loss(p: dict, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(functional_call(model, p, (X,)), Y) * scale

        def metrics(p: dict, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
            logits = functional_call(model, p, (X,))
            accuracy = (logits.argmax(dim=1) == Y.argmax(dim=1)).to(logits.dtype).mean()
            return torch.stack([torch.nn.functional.cross_entropy(logits, Y), accuracy])

        gradients, evaluate = vmap(grad(loss)), vmap(metrics, in_dims=(0, None, None))
        etas = torch.tensor([c.eta for c in configs], dtype=backend.DTYPES[base.dtype], device=device)
        rows = torch.as_tensor(batches, device=device).long()
        runs, epochs = rows.shape[:2]
        last = {n: p.clone() for n, p in params.items()}
        diverged = torch.zeros(runs, dtype=torch.int64)
        history = []
        for e in range(epochs):
            for i in range(rows.shape[2]):
                picked = rows[:, e, i]  # (runs, batch): each run's own rows
                g = gradients(params, data[0][picked], data[1][picked])
                with torch.no_grad():
                    params = {n: p - etas.view(-1, *[1] * (p.ndim - 1)) * g[n] for n, p in params.items()}
            with torch.no_grad():
                values = torch.cat([evaluate(params, X, Y) for X, Y in zip(data[0::2], data[1::2])], dim=1)
            fine = torch.isfinite(values).all(dim=1) & (diverged == 0)
            diverged = torch.where(~torch.isfinite(values).all(dim=1) & (diverged == 0), e + 1, diverged)
            last = {n: torch.where(fine.view(-1, *[1] * (p.ndim - 1)), p, last[n]) for n, p in params.items()}
            history.append(values)
        finals = [convert.from_torch_state_dict({n: last[n][r] for n in names}, check=False, arch=base.arch)
                  for r in range(runs)]
        return finals, torch.stack(history, dim=1).detach().to(torch.float64).numpy(), diverged.numpy()
