"""What the four PyTorch stages share: devices, dtypes, precision, conversion, the epoch loop."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from frameworks._arch import Architecture, Norm
from frameworks._config import TrainConfig
from frameworks._errors import KitError
from frameworks._params import Params

NAME = "torch"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def devices() -> list[str]:
    """The kit's names of the devices PyTorch sees here."""
    return ["cpu"] + (["gpu"] if torch.cuda.is_available() else [])


def resolve_device(name: str | None, count: int = 1) -> torch.device:
    """``None`` is PyTorch's default device (the CPU); "gpu" is the first CUDA device.

    PyTorch's data parallelism runs one process a device: ``count > 1`` is refused
    here and served by ``torchrun -m frameworks.torch_stages.ddp``.
    """
    if count != 1:
        raise KitError(
            f"devices={count}: PyTorch trains data-parallel in one process a device, under torchrun: "
            f"torchrun --nproc-per-node {count} -m frameworks.torch_stages.ddp IMPL ..."
        )
    if name is None or name == "cpu":
        return torch.device("cpu")
    if name == "gpu" and torch.cuda.is_available():
        return torch.device("cuda", 0)
    raise KitError(f"PyTorch sees no {name!r} device here; it sees {devices()}.")


@contextlib.contextmanager
def scope(config: TrainConfig, *, features: int | None = None) -> Iterator[None]:
    """Run under the config's precision and intra-op threads (``TrainConfig.threads_for_torch``, by the size of
    a batch of ``features`` inputs when the config leaves them to the kit); both restored on exit.

    ``precision="highest"`` turns TF32 off for float32 matrix products (PyTorch needs nothing
    for float64). Both settings are process-global in PyTorch (JAX's precision is
    thread-local): two threads running PyTorch stages at the same time race on them.
    """
    matmul = torch.backends.cuda.matmul
    before, threads = matmul.fp32_precision, torch.get_num_threads()
    if config.precision == "highest":
        matmul.fp32_precision = "ieee"
    torch.set_num_threads(config.threads_for_torch(threads, features))
    try:
        if config.dropout and config.dropout_rng == "native":  # nn.Dropout draws from the global generator:
            cuda = [torch.cuda.current_device()] if config.device == "gpu" and torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=cuda):  # seeded here, the caller's (CPU and GPU) restored after
                torch.manual_seed(config.seed)
                yield
        else:
            yield
    finally:
        matmul.fp32_precision = before
        torch.set_num_threads(threads)


def asarray(a: np.ndarray, dtype: str, device: torch.device) -> torch.Tensor:
    """A new tensor (a copy: training updates parameters in place, the caller's arrays must not move)."""
    return torch.tensor(np.asarray(a), dtype=DTYPES[dtype], device=device)


def to_numpy(x: Any) -> np.ndarray:
    """A tensor (or array) as a float64 NumPy array, off the device and the graph."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.array(x, dtype=np.float64)  # a copy, never a view of a live parameter


def from_canonical(params: Params, dtype: str, device: torch.device) -> dict[str, torch.Tensor]:
    """Canonical parameters as tensors; the lab's layout is PyTorch's, so nothing is transposed."""
    return {name: asarray(value, dtype, device) for name, value in params.items()}


def native_init(nx: int, nh: int | tuple[int, ...], ny: int, *, seed: int, norm: Norm = None) -> Params:
    """PyTorch's own default init, ``nn.Linear.reset_parameters``: weights Kaiming-uniform with
    a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases uniform on the same bound
    (``nn.LayerNorm``: unit weight, zero bias), one ``Linear`` a layer, in order.

    Drawn from a private generator seeded by ``seed`` (the numbers ``torch.manual_seed(seed)``
    followed by ``Sequential(Linear, Tanh, Linear)`` would draw), so no torch generator of the
    caller, CPU or CUDA, is seeded or advanced.
    """
    hidden = (nh,) if isinstance(nh, int) else tuple(nh)
    arch = Architecture(hidden, ("tanh",) * len(hidden), norm)
    generator = torch.Generator().manual_seed(seed)
    params: Params = {}
    names = [arch.hidden_names(k) for k in range(arch.depth)] + [{"W": "Wy", "b": "by"}]
    for layer, fan_in, fan_out in zip(names, (nx, *hidden), (*hidden, ny)):
        weight, bias = torch.empty(fan_out, fan_in), torch.empty(fan_out)  # float32, as nn.Linear draws
        torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(fan_in)
        torch.nn.init.uniform_(bias, -bound, bound, generator=generator)
        params[layer["W"]], params[layer["b"]] = to_numpy(weight), to_numpy(bias)
        if "gamma" in layer:
            params[layer["gamma"]], params[layer["beta"]] = np.ones(fan_out), np.zeros(fan_out)
    return {name: params[name] for name in arch.names}


def shard_batch(x: torch.Tensor, placement: torch.device) -> torch.Tensor:
    """One process sees its whole batch: nothing to split (DDP splits across processes)."""
    return x


Step = Callable[[Any, torch.Tensor, torch.Tensor], Any]
Evaluate = Callable[[Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def epoch_runner(step: Step, evaluate: Evaluate | None, *, fuse: bool,
                 placement: torch.device | None = None, compile: bool = False) -> Callable:
    """``run(state, data, batches, masks=()) -> (state, metrics)``: epochs of ``step`` in the shared batch
    order, ``batches`` shaped (epochs, batches_per_epoch, batch_size), with the kit's dropout ``masks``
    (one bool array a hidden layer, (epochs, batches_per_epoch, batch_size, width)); after each epoch the loss
    and accuracy on the train and test sets (and validation, given: ``data`` is (Xtrain, Ytrain, Xtest,
    Ytest[, Xval, Yval]); ``metrics``, a list of 4 or 6 floats an epoch; None when
    ``evaluate`` is None, for timing the steps alone).

    PyTorch runs eagerly, a step a batch (``fuse`` is JAX's; it changes nothing here). With ``compile`` (the
    model's forward under ``torch.compile``), ``run.compiled_in`` holds the seconds of the call's steps and
    evaluations during which ``torch.compile`` made a new graph (their own compute included); 0.0 otherwise.
    """
    del fuse, placement

    def timed(call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, its time added to ``run.compiled_in`` when torch.compile made a graph meanwhile."""
        if not compile:
            return call(*args)
        from torch._dynamo.utils import counters

        graphs, start = counters["stats"]["unique_graphs"], time.perf_counter()
        out = call(*args)
        if counters["stats"]["unique_graphs"] != graphs:
            run.compiled_in += time.perf_counter() - start  # type: ignore[attr-defined]
        return out

    def run(state: Any, data: tuple[torch.Tensor, ...], batches: np.ndarray, masks: tuple = ()) -> tuple[Any, Any]:
        Xtrain, Ytrain = data[:2]
        keep = [torch.as_tensor(m, device=Xtrain.device) for m in masks]
        metrics = []
        run.compiled_in = 0.0  # type: ignore[attr-defined]
        for e, rows_of_epoch in enumerate(torch.as_tensor(batches, device=Xtrain.device)):
            for i, rows in enumerate(rows_of_epoch):
                kept = (tuple(m[e, i] for m in keep),) if keep else ()
                state = timed(step, state, Xtrain[rows], Ytrain[rows], *kept)
            if evaluate is not None:
                metrics.append(timed(lambda state: [float(m) for X, Y in zip(data[0::2], data[1::2])
                                                    for m in evaluate(state, X, Y)], state))
        return state, metrics if evaluate is not None else None

    run.compiled_in = 0.0  # type: ignore[attr-defined]
    return run


def compiled(model: torch.nn.Sequential) -> torch.nn.Sequential:
    """``model`` with its forward under ``torch.compile`` (the opt-in ``TrainConfig(compile=True)``), in place.

    The compiled forward is a method of a subclass, not a function bound to this model: a ``copy.deepcopy``
    (``fit`` keeps one to replay a diverged chunk) then runs its own parameters. The state_dict is unchanged."""
    model.__class__ = _compiled_class()
    return model


@functools.lru_cache(maxsize=1)
def _compiled_class() -> type:
    forward = torch.compile(torch.nn.Sequential.forward, dynamic=False)  # imports dynamo: only when asked
    return type("CompiledSequential", (torch.nn.Sequential,), {"forward": forward})


def wait(state: Any) -> Any:
    """Block until queued GPU work is done (the CPU is synchronous); for timing."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return state
