"""Stage 3 (PyTorch): the model as ``torch.nn`` modules, the loss as ``nn.CrossEntropyLoss``.

``Sequential(Linear, Tanh, Linear)`` outputs the logits ``ytilde``: no softmax
in the model, since ``CrossEntropyLoss`` applies log-softmax itself (a softmax
before it is the "double softmax" trap, ``TrainConfig(model="double_softmax")``).
The update is still written by hand, over ``model.parameters()``. A deeper
network is the same ``Sequential``, longer: ``Linear``, ``LayerNorm``, the
activation's module, ``Dropout``, a hidden layer at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import skip_init

from frameworks import convert
from frameworks._arch import LAB, LAYER_NORM_EPS, LEAKY_SLOPE, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.torch_stages import _backend as backend
from frameworks.torch_stages import optimizers

#: Each activation's module: GELU is exact unless asked for its tanh form.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE), "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "silu": nn.SiLU,
}


def init_model(params: Params, *, dtype: str = "float32", device: torch.device | None = None,
               model: str = "lab", arch: Architecture = LAB) -> nn.Sequential:
    """The MLP, loaded with the kit's canonical parameters (the lab's layout is ``Linear``'s).

    ``skip_init`` builds each ``Linear`` without drawing its default weights, which
    are overwritten anyway: the caller's random generator is left as it was.
    """
    widths = [params["Wh" if arch.depth == 1 else f"W{k + 1}"].shape for k in range(arch.depth)]
    layers: list[nn.Module] = []
    for (nh, nin), f in zip(widths, arch.activations):
        layers.append(skip_init(nn.Linear, nin, nh))
        if arch.norm:
            layers.append(nn.LayerNorm(nh, eps=LAYER_NORM_EPS))
        layers.append(ACTIVATIONS[f]())
        if arch.dropout:
            layers.append(nn.Dropout(arch.dropout))
    ny, nh = params["Wy"].shape
    layers.append(skip_init(nn.Linear, nh, ny))
    if model == "double_softmax":
        layers.append(nn.Softmax(dim=1))  # the trap: CrossEntropyLoss softmaxes again
    mlp = nn.Sequential(*layers).to(device=device or "cpu", dtype=backend.DTYPES[dtype])
    mlp.load_state_dict(convert.to_torch_state_dict(params, arch=arch))
    return mlp


def logits(model: nn.Sequential, X: torch.Tensor, masks: tuple = ()) -> torch.Tensor:
    """``model(X)``; given the kit's dropout masks, each ``Dropout`` layer applies the next one instead of
    drawing its own (the same inverted scaling, 1 / (1 - p))."""
    if not masks:
        return model(X)
    keep = iter(masks)
    for layer in model:
        X = X * next(keep) / (1 - layer.p) if isinstance(layer, nn.Dropout) else layer(X)
    return X


def loss_accuracy(loss: nn.Module, Ytilde: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``loss(Ytilde, Y)`` (one-hot ``Y`` as class probabilities) and the accuracy."""
    L = loss(Ytilde, Y)
    acc = (Ytilde.argmax(dim=1) == Y.argmax(dim=1)).to(Ytilde.dtype).mean()
    return L, acc


class State:
    """The model and the loss it trains on (``reduction`` "mean", or "sum" as in the cheat-sheet)."""

    def __init__(self, model: nn.Sequential, reduction: str = "mean", arch: Architecture = LAB,
                 opt: dict | None = None) -> None:
        self.model = model
        self.loss: nn.Module = nn.CrossEntropyLoss(reduction=reduction)
        self.arch = arch
        self.opt = opt or {}  # the state of an optimizer other than the lab's SGD (optimizers.py)


def load(params: Params, config: TrainConfig, device: torch.device | None = None) -> State:
    """The kit's canonical parameters as the model, with the config's loss. With ``dropout_rng="native"``
    the model trains in training mode, each ``Dropout`` drawing its own masks from PyTorch's generator."""
    model = init_model(params, dtype=config.dtype, device=device, model=config.model, arch=config.arch)
    if config.compile:
        backend.compiled(model)  # opt-in torch.compile of the forward (and its backward)
    opt = optimizers.init_state(config, {n: p.detach() for n, p in model.named_parameters()})
    return State(model.train(config.dropout_rng == "native"), config.loss_reduction, config.arch, opt)


def backward(model: nn.Sequential, loss: nn.Module, X: torch.Tensor, Y: torch.Tensor, masks: tuple = ()) -> \
        torch.Tensor:
    """Forward through the model, then ``backward()`` of ``loss``: fills each parameter's ``.grad``.

    Returns the batch's mean loss, whatever ``loss`` reduces by."""
    Ytilde = logits(model, X, masks)
    L, _ = loss_accuracy(loss, Ytilde, Y)
    L.backward()
    return nn.functional.cross_entropy(Ytilde.detach(), Y)


def sgd(model: nn.Module, eta: float) -> None:
    """One step of gradient descent over ``model.parameters()``, then clear the gradients."""
    with torch.no_grad():
        for param in model.parameters():
            param -= eta * param.grad  # type: ignore[operator,misc]
    model.zero_grad()


def gradients(state: State, X: torch.Tensor, Y: torch.Tensor, *, reduction: str, masks: tuple = ()) -> tuple[
        torch.Tensor, Params]:
    """The mean loss of a batch and the gradients autograd leaves in the model (of the mean or summed loss)."""
    L = backward(state.model, nn.CrossEntropyLoss(reduction=reduction), X, Y, masks)
    grads = convert.from_torch_state_dict({n: p.grad for n, p in state.model.named_parameters()}, check=False,
                                          arch=state.arch)
    state.model.zero_grad(set_to_none=True)
    return L, grads


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., State]:
    """One training step: ``backward()`` of the state's loss, then gradient descent (or the config's optimizer,
    schedule and clipping, written by hand in ``optimizers.py``, over ``model.named_parameters()``)."""
    update = optimizers.updater(config, steps_per_epoch)  # None: the lab's SGD

    def step(state: State, X: torch.Tensor, Y: torch.Tensor, masks: tuple = ()) -> State:
        backward(state.model, state.loss, X, Y, masks)
        if update is None:
            sgd(state.model, config.eta)
            return state
        named = {name.removeprefix("module."): p for name, p in state.model.named_parameters()}  # DDP's wrapper
        with torch.no_grad():
            params, state.opt = update({n: p.detach() for n, p in named.items()},
                                       {n: p.grad for n, p in named.items()}, state.opt)
            for name, param in named.items():
                param.copy_(params[name])
        state.model.zero_grad()
        return state

    return step


@torch.inference_mode()
def evaluate(state: State, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy of a whole set (in evaluation mode: no dropout; no autograd bookkeeping)."""
    training = state.model.training
    try:
        return loss_accuracy(nn.CrossEntropyLoss(), state.model.eval()(X), Y)
    finally:
        state.model.train(training)


@torch.no_grad()
def trace(state: State, X: torch.Tensor) -> dict:
    """The intermediates, layer by layer (for the first-divergence view), in evaluation mode."""
    outputs, h = [], X
    for layer in list(state.model.children())[:len(state.arch.trace_names)]:
        h = h if isinstance(layer, nn.Dropout) else layer(h)  # dropout is the identity in evaluation
        outputs.append(h)
    ytilde = outputs[-1]
    return {"X": X, **dict(zip(state.arch.trace_names, outputs)), "yhat": torch.softmax(ytilde, dim=1)}


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return convert.from_torch_state_dict(state.model.state_dict(), check=False, arch=state.arch)


def save_optimizer(state: State) -> dict | None:
    """The by-hand optimizer's step count and buffers, canonical (None for the lab's SGD)."""
    return optimizers.save(state.opt, lambda tree: convert.from_torch_state_dict(tree, check=False, arch=state.arch))


def restore_optimizer(state: State, saved: dict) -> State:
    """``state`` with the optimizer's state of a checkpoint (:func:`save_optimizer`'s form)."""

    def load(canonical: Params, like: dict) -> dict:
        tensors = convert.to_torch_state_dict(canonical, arch=state.arch)
        return {name: tensors[name].to(dtype=value.dtype, device=value.device) for name, value in like.items()}

    state.opt = optimizers.restore(state.opt, saved, load)
    return state


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("torch/nn") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, has_model=True, save_optimizer=save_optimizer, restore_optimizer=restore_optimizer)
