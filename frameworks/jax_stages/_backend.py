"""What the four JAX stages share: devices, x64, precision, conversion, the jitted epoch.

x64 is handled here, per call: a float64 run executes inside
``jax.enable_x64(True)`` and a float32 run inside ``jax.enable_x64(False)``,
so the kit never flips the caller's global setting. Float32 matrix products run
at precision "highest" (true float32, no TF32 or bfloat16 passes) unless the
config asks for the framework's native precision.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from frameworks import convert
from frameworks._arch import Architecture, Norm
from frameworks._config import TrainConfig
from frameworks._errors import KitError
from frameworks._params import Params

NAME = "jax"
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
_PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}


def devices() -> list[str]:
    """The kit's names of the devices JAX sees here ("cpu" first)."""
    seen = ["cpu"]
    for name in ("gpu", "tpu"):
        try:
            jax.devices(name)
        except RuntimeError:
            continue
        seen.append(name)
    return seen


def resolve_device(name: str | None, count: int = 1) -> jax.Device | NamedSharding:
    """Where a run's arrays live.

    ``None`` is JAX's default kind of device (a GPU or TPU when there is one).
    With ``count=1``, the first device of that kind; with ``count=N``, a
    sharding that replicates arrays over a one-axis ``Mesh`` of the first N
    (data parallelism: :func:`batch_sharding` then splits each batch across it).
    """
    try:
        seen = jax.devices() if name is None else jax.devices(_PLATFORMS[name])
    except (RuntimeError, KeyError):
        raise KitError(f"JAX sees no {name!r} device here; it sees {devices()}.") from None
    if jax.process_count() > 1:  # several processes (jax.distributed): a mesh over every process's devices
        return _global_placement(seen, count)
    if count == 1:
        return seen[0]
    if count > len(seen):
        raise KitError(
            f"devices={count} asked, but JAX sees {len(seen)} {seen[0].platform} device(s) here. On a CPU, set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={count} before JAX starts to get virtual devices."
        )
    mesh = Mesh(np.array(seen[:count]), ("data",))
    return NamedSharding(mesh, PartitionSpec())


def _global_placement(seen: list[jax.Device], count: int) -> NamedSharding:
    """A multi-process run's mesh: ``count // processes`` devices of each process, in process order, so
    process ``p`` holds the ``p``-th contiguous share of every batch's rows."""
    processes = jax.process_count()
    if count % processes:
        raise KitError(f"this run spans {processes} processes; devices={count} must be a multiple of it (each "
                       f"process gives devices/{processes} of its own devices): pass --devices {processes} or a "
                       "multiple.")
    mine = [[d for d in seen if d.process_index == p][:count // processes] for p in range(processes)]
    if min(map(len, mine)) < count // processes:
        raise KitError(f"devices={count} over {processes} processes needs {count // processes} device(s) in each; "
                       f"the fewest a process has is {min(map(len, mine))}.")
    return NamedSharding(Mesh(np.array([d for ds in mine for d in ds]), ("data",)), PartitionSpec())


def process_rows(a: np.ndarray, placement: jax.Device | NamedSharding | None) -> Any:
    """Batch-shaped host data, ``(epochs, batches, batch_size, ...)``: unchanged in one process; in a
    multi-process run, a global array built from this process's own rows of each batch (the columns its
    devices hold: ``jax.make_array_from_process_local_data``)."""
    if not isinstance(placement, NamedSharding) or placement.is_fully_addressable:
        return a
    sharding = NamedSharding(placement.mesh, PartitionSpec(None, None, "data"))
    spans = [index[2] for index in sharding.addressable_devices_indices_map(a.shape).values() if index is not None]
    lo, hi = min(s.start for s in spans), max(s.stop for s in spans)
    return jax.make_array_from_process_local_data(sharding, a[:, :, lo:hi], a.shape)


def batch_sharding(placement: jax.Device | NamedSharding) -> NamedSharding | None:
    """For a data-parallel placement: rows split over the mesh's "data" axis (None on one device)."""
    if isinstance(placement, NamedSharding):
        return NamedSharding(placement.mesh, PartitionSpec("data"))
    return None


@contextlib.contextmanager
def scope(config: TrainConfig, *, features: int | None = None) -> Iterator[None]:
    """x64 on exactly for float64 runs, and the config's matmul precision, restored on exit (``features``:
    PyTorch's, for its threads)."""
    if config.dtype == "float64" and (config.device or jax.default_backend()) == "tpu":
        raise KitError("float64 is not supported on TPUs; use dtype='float32' or device='cpu'.")
    with contextlib.ExitStack() as stack:
        stack.enter_context(jax.enable_x64(config.dtype == "float64"))
        if config.precision == "highest":
            stack.enter_context(jax.default_matmul_precision("highest"))
        yield


def jax_dtype(dtype: str) -> Any:
    """The JAX dtype of a kit dtype name; float64 only where x64 is on (in :func:`scope`, or the
    caller's own ``jax.enable_x64``): outside it JAX would silently give float32."""
    if dtype == "float64" and jax.dtypes.canonicalize_dtype(jnp.float64) != jnp.float64:
        raise KitError(
            "float64 JAX arrays need x64, which is off here: JAX would silently compute in float32. Call this "
            "inside `with jax.enable_x64(True):` (the kit's own runs do), or use dtype='float32'."
        )
    return DTYPES[dtype]


def asarray(a: np.ndarray, dtype: str, device: jax.Device | NamedSharding) -> jax.Array:
    try:
        return jax.device_put(np.asarray(a, dtype=jax_dtype(dtype)), device)
    except AssertionError:  # several processes: JAX checks that each passed the same array
        raise KitError(f"the processes hold different values for an array of shape {np.shape(a)}: every process "
                       "must run the same command (options, seed) on the same data.") from None


def random_key(seed: int, device: jax.Device | NamedSharding | None) -> jax.Array:
    """``jax.random.key(seed)`` on ``device``. A key array cannot be ``device_put`` on a multi-process
    sharding, so there it is drawn by a jitted call whose output is placed on it."""
    if isinstance(device, NamedSharding) and not device.is_fully_addressable:
        return jax.jit(jax.random.key, static_argnums=0, out_shardings=device)(seed)
    return jax.device_put(jax.random.key(seed), device)


def shard_batch(x: jax.Array, placement: jax.Device | NamedSharding) -> jax.Array:
    """A batch split by rows over a data-parallel placement (unchanged on one device)."""
    sharding = batch_sharding(placement)
    return x if sharding is None else jax.device_put(x, sharding)


def to_numpy(x: Any) -> np.ndarray:
    return np.array(jax.device_get(x), dtype=np.float64)  # a writable copy


def from_canonical(params: Params, dtype: str, device: jax.Device | None) -> dict[str, jax.Array]:
    """Canonical parameters as JAX arrays in the same (PyTorch) layout: nothing is transposed."""
    return {name: asarray(value, dtype, device or resolve_device(None)) for name, value in params.items()}


def native_init(nx: int, nh: int | tuple[int, ...], ny: int, *, seed: int, norm: Norm = None) -> Params:
    """Flax's own default init (``nnx.Linear``: LeCun-normal kernels, zero biases; ``nnx.LayerNorm``: unit
    scale, zero bias), one ``Linear`` a layer drawn in order from ``nnx.Rngs(seed)``."""
    from flax import nnx

    hidden = (nh,) if isinstance(nh, int) else tuple(nh)
    arch = Architecture(hidden, ("tanh",) * len(hidden), norm)
    rngs, layers = nnx.Rngs(seed), list[Any]()
    for fan_in, fan_out in zip((nx, *hidden), hidden):
        layers += [nnx.Linear(fan_in, fan_out, rngs=rngs), *([nnx.LayerNorm(fan_out, rngs=rngs)] if norm else []),
                   nnx.tanh]
    model = nnx.Sequential(*layers, nnx.Linear(hidden[-1], ny, rngs=rngs))
    return convert.from_flax_params(nnx.to_pure_dict(nnx.state(model, nnx.Param)), arch=arch)


Step = Callable[[Any, jax.Array, jax.Array], Any]
Evaluate = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def epoch_runner(step: Step, evaluate: Evaluate | None, *, fuse: bool,
                 placement: jax.Device | NamedSharding | None = None, compile: bool = False) -> Callable:
    """``run(state, data, batches, masks=()) -> (state, metrics)``: epochs of the pure ``step`` in the shared
    batch order, ``batches`` shaped (epochs, batches_per_epoch, batch_size), with the kit's dropout
    ``masks`` (one bool array a hidden layer, (epochs, batches_per_epoch, batch_size, width); none
    without dropout) given to each step; after each epoch the
    loss and accuracy on the train and test sets, and validation when ``data`` has it ((Xtrain,
    Ytrain, Xtest, Ytest[, Xval, Yval]); ``metrics``, a list of 4 or 6 floats an epoch; None
    when ``evaluate`` is None, for timing the steps alone).

    ``fuse=True``: all the epochs are one jitted function, a ``lax.scan`` over epochs of a
    ``lax.scan`` over batches, the metrics computed inside: one dispatch and one transfer back
    for the whole call. ``fuse=False``: one jitted step a batch, called from Python (the same
    numbers, slower). On a data-parallel ``placement`` each batch is constrained to be split by
    rows over the mesh; the compiler partitions the step and inserts the all-reduce of the
    gradients (whose batch mean is then the mean over all shards).

    The fused program is compiled ahead of time once for each shape of its arguments and kept: ``run.compiled_in``
    holds the seconds the last call spent compiling (0.0 when it reused a program; None with ``fuse=False``,
    whose steps jit as they go). ``compile`` is PyTorch's option (JAX always compiles).
    """
    del compile
    rows_sharding = batch_sharding(placement) if placement is not None else None

    def batch(X: jax.Array, rows: jax.Array) -> jax.Array:
        Xb = X[rows]
        return Xb if rows_sharding is None else jax.lax.with_sharding_constraint(Xb, rows_sharding)

    def metrics_of(state: Any, data: tuple[jax.Array, ...]) -> jax.Array | None:
        if evaluate is None:
            return None
        # loss and accuracy on each (X, Y) pair of the data: train, test (and validation, when the dataset has one)
        return jnp.stack([m for X, Y in zip(data[0::2], data[1::2]) for m in evaluate(state, X, Y)])

    def to_host(metrics: Any) -> list[list[float]] | None:
        return None if evaluate is None else np.asarray(metrics, dtype=np.float64).tolist()

    if fuse:

        def epoch(state: Any, data: tuple[jax.Array, ...], xs: tuple[jax.Array, tuple]) -> tuple[Any, Any]:
            Xtrain, Ytrain = data[:2]

            def body(state: Any, x: tuple[jax.Array, tuple]) -> tuple[Any, None]:
                rows, masks = x
                return step(state, batch(Xtrain, rows), batch(Ytrain, rows), *((masks,) if masks else ())), None

            state, _ = jax.lax.scan(body, state, xs)
            return state, metrics_of(state, data)

        # several processes: the state and metrics come back replicated, readable in every process
        multi = isinstance(placement, NamedSharding) and not placement.is_fully_addressable

        @functools.partial(jax.jit, out_shardings=placement if multi else None)
        def fused(state: Any, data: tuple[jax.Array, ...], batches: jax.Array, masks: tuple) -> tuple[Any, Any]:
            return jax.lax.scan(lambda state, xs: epoch(state, data, xs), state, (batches, masks))

        def run(state: Any, data: tuple[jax.Array, ...], batches: np.ndarray, masks: tuple = ()) -> tuple[Any, Any]:
            state, metrics = program(state, data, process_rows(np.asarray(batches, dtype=np.int32), placement),
                                     tuple(process_rows(m, placement) for m in masks))
            run.compiled_in = program.compiled_in  # type: ignore[attr-defined]
            return state, to_host(metrics)

        program = AheadOfTime(fused)
        run.compiled_in = 0.0  # type: ignore[attr-defined]
        return run

    step_on_rows = jax.jit(lambda state, X, Y, rows, masks: step(state, batch(X, rows), batch(Y, rows),
                                                                  *((masks,) if masks else ())))
    jitted_metrics = jax.jit(metrics_of)

    def run_stepwise(state: Any, data: tuple[jax.Array, ...], batches: np.ndarray, masks: tuple = ()) -> tuple[
            Any, Any]:
        metrics = []
        for e, rows_of_epoch in enumerate(np.asarray(batches, dtype=np.int32)):
            for i, rows in enumerate(rows_of_epoch):
                state = step_on_rows(state, data[0], data[1], rows, tuple(m[e, i] for m in masks))
            metrics.append(jitted_metrics(state, data))
        return state, to_host(metrics)

    run_stepwise.compiled_in = None  # type: ignore[attr-defined]
    return run_stepwise


class AheadOfTime:
    """``jitted``, compiled ahead of time once for each shape of its arguments and kept (``lower`` alone would
    retrace on every call); ``compiled_in`` holds the seconds the last call spent compiling (0.0: reused)."""

    def __init__(self, jitted: Any, **static: Any) -> None:
        self.jitted, self.static, self.programs, self.compiled_in = jitted, static, dict[Any, Any](), 0.0

    def __call__(self, *args: Any) -> Any:
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple((np.shape(x), x.dtype, getattr(x, "weak_type", False), getattr(x, "sharding", None))
                           for x in leaves))
        self.compiled_in = 0.0
        if key not in self.programs:
            start = time.perf_counter()
            self.programs[key] = self.jitted.lower(*args, **self.static).compile()
            self.compiled_in = time.perf_counter() - start
        return self.programs[key](*args)


def wait(state: Any) -> Any:
    """Block until ``state`` is computed (JAX dispatches asynchronously); for timing."""
    return jax.block_until_ready(state)
