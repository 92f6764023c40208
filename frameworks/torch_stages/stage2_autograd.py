"""Stage 2 (PyTorch): the same forward, gradients by autograd.

The forward pass and the loss are stage 1's, unchanged: autograd records them
because the parameters are leaf tensors with ``requires_grad=True``, and
``L.backward()`` fills their ``.grad``. The update runs under ``torch.no_grad()`` (it is not
part of the model) and the gradients are zeroed for the next batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages import optimizers
from frameworks.torch_stages.stage1_manual import (  # stage 1's
    Net,
    evaluate,
    export,
    forward,
    loss_accuracy,
    restore_optimizer,
    save_optimizer,
    trace,
)


def load(params: Params, config: TrainConfig, device: torch.device | None = None) -> Net:
    """The kit's canonical parameters as leaf tensors that record their gradient."""
    tensors = backend.from_canonical(params, config.dtype, device or torch.device("cpu"))
    return Net({name: value.requires_grad_(True) for name, value in tensors.items()}, config.arch,
               optimizers.init_state(config, tensors))


def backward(net: Net, X: torch.Tensor, Y: torch.Tensor, masks: tuple = (), *, reduction: str = "mean") -> \
        torch.Tensor:
    """Forward, then ``backward()`` of the mean loss (or of the summed loss, ``reduction="sum"``).

    Fills each parameter's ``.grad``; returns the mean loss."""
    _, outputs = forward(net.params, X, net.arch, masks)
    L, _ = loss_accuracy(outputs["ytilde"], Y)
    (L if reduction == "mean" else L * Y.shape[0]).backward()
    return L.detach()


def sgd(params: dict, eta: float) -> None:
    """One step of gradient descent, in place, then clear the gradients."""
    with torch.no_grad():
        for value in params.values():
            value -= eta * value.grad
            value.grad.zero_()


def gradients(net: Net, X: torch.Tensor, Y: torch.Tensor, *, reduction: str, masks: tuple = ()) -> tuple[
        torch.Tensor, dict]:
    """The mean loss of a batch and the gradients autograd leaves in ``.grad`` (copied, then cleared)."""
    L = backward(net, X, Y, masks, reduction=reduction)
    grads = {name: value.grad.clone() for name, value in net.params.items()}
    for value in net.params.values():
        value.grad = None
    return L, grads


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., Net]:
    """One training step: ``backward()``, then gradient descent (or the config's optimizer, schedule and
    clipping, written by hand in ``optimizers.py``, applied in place)."""
    update = optimizers.updater(config, steps_per_epoch)  # None: the lab's SGD

    def step(net: Net, X: torch.Tensor, Y: torch.Tensor, masks: tuple = ()) -> Net:
        backward(net, X, Y, masks, reduction=config.loss_reduction)
        if update is None:
            sgd(net.params, config.eta)
            return net
        with torch.no_grad():
            params, net.opt = update({n: p.detach() for n, p in net.params.items()},
                                     {n: p.grad for n, p in net.params.items()}, net.opt)
            for name, value in net.params.items():
                value.copy_(params[name])
                value.grad = None
        return net

    return step


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("torch/autograd") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=torch.inference_mode()(evaluate),
              gradients=gradients, trace=torch.no_grad()(trace), export=export, save_optimizer=save_optimizer,
              restore_optimizer=restore_optimizer, shares={"forward": "torch/manual"})
