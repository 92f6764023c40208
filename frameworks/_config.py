"""``TrainConfig``: every setting of a training run, as one frozen dataclass.

Defaults are the lab's for the circles data (nh=10, eta=0.03, batch 10, 150
epochs); :meth:`TrainConfig.mnist` gives its MNIST settings. A config is
passed explicitly to whatever needs it: the kit has no global state.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from frameworks._arch import Architecture, architecture
from frameworks._errors import KitError, unknown
from frameworks.optim import (
    CLIPS,
    OPTIMIZERS,
    SCHEDULES,
    SGD,
    Adagrad,
    Clip,
    OneCycleLR,
    Optimizer,
    Schedule,
    from_dict,
    to_dict,
)

DType = Literal["float32", "float64"]
Device = Literal["cpu", "gpu", "tpu"]
Reduction = Literal["mean", "sum"]
Precision = Literal["highest", "native"]

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "gpu", "tpu")
LOSS_REDUCTIONS = ("mean", "sum")
PRECISIONS = ("highest", "native")
INITS = ("lab", "torch", "flax", "xavier", "he", "native")
MODELS = ("lab", "double_softmax")
DROPOUT_RNGS = ("kit", "native")
#: Below this many multiply-adds in a batch's first product (batch_size x inputs x the first width), PyTorch runs
#: on one thread when ``torch_threads`` is None: its intra-op threads cost more than they save on such products.
SMALL_TORCH_WORK = 1_000_000


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (validated on construction; NumPy numbers are stored as Python ones).

    Attributes:
      nh: hidden units of the lab's one hidden layer (the shorthand for ``hidden=(nh,)``).
      hidden: the hidden widths of a deeper network, e.g. ``(128, 64)``; empty (the default) for ``(nh,)``.
        When given, ``nh`` is not used.
      activation: the hidden activation, one name for every hidden layer or a tuple of one a layer:
        "tanh" (the lab's), "relu", "leaky_relu" (slope 0.01), "sigmoid", "gelu" (exact, PyTorch's
        default), "gelu_tanh" (the tanh approximation, Flax's default), "silu".
      norm: None, or "layer": a LayerNorm (eps 1e-5, PyTorch's; with its affine weights) after each
        hidden Linear, before the activation.
      dropout: the dropout rate after each hidden activation while training (0: none). Inverted
        dropout, as both libraries do it: kept units are scaled by 1 / (1 - dropout).
      dropout_rng: "kit": the dropout masks are drawn once in NumPy from the seed (one a batch and a
        layer, like the batch order) and applied by every implementation, which then stay on one
        trajectory; "native": each framework draws its own masks with its own generator (module
        stages only) -- a trap: the runs part at the first step.
      eta: the learning rate (``lr`` in PyTorch; a schedule scales it).
      optimizer: ``frameworks.optim``'s SGD (the lab's, plain, by default), Adam, AdamW, RMSprop or Adagrad,
        with PyTorch's argument names and defaults.
      schedule: None, or a learning-rate schedule of ``frameworks.optim`` (StepLR, MultiStepLR,
        ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR, SequentialLR), stepped once an epoch or
        once a batch as its ``interval`` says.
      clip: None, or ``ClipGradNorm(max_norm)`` / ``ClipGradValue(clip_value)``, applied to the gradients
        before the optimizer's step.
      batch_size: rows per minibatch; the remainder of each epoch is dropped.
      epochs: passes over the training set.
      seed: seeds the initial weights and the batch order (both drawn in NumPy).
      dtype: "float32" or "float64", the dtype every framework computes in.
      device: None for the framework's default device, or "cpu", "gpu", "tpu".
      loss_reduction: "mean" (the loss and its gradient are batch means) or
        "sum" (the course's cheat-sheet: the gradient is summed over the batch
        while the reported loss stays a mean, so each step is ``batch_size``
        times longer).
      precision: "highest" runs float32 matrix products in full float32 on
        both sides (JAX precision HIGHEST, PyTorch TF32 off), as parity needs;
        "native" leaves each framework's default (TF32 on recent NVIDIA GPUs
        for JAX, bfloat16 passes on TPUs).
      init: the initial weights, drawn once in NumPy so that every framework
        starts from the same numbers: "lab" (the lab's N(0, 0.3^2) weights and
        zero biases), "torch" (torch.nn.Linear's default, drawn in NumPy),
        "flax" (nnx.Linear's default), "xavier" (Glorot uniform), "he" (He
        normal); or "native": each framework draws its own default with its own
        generator -- a trap: the frameworks then differ from the first step.
      model: "lab" (logits into the loss) or "double_softmax" (a softmax inside
        the model before a loss that applies log-softmax itself: the trap of
        section 2 of the lab; torch.nn, torch.optim, Flax and Optax stages).
      fuse: JAX only: run each epoch as one jitted ``lax.scan`` (True) or one
        jitted step per call (False); both give the same trajectory.
      devices: data parallelism over this many devices of ``device``'s kind
        (JAX: a ``jax.sharding.Mesh``, each batch split across it, parameters
        replicated; PyTorch: start ``frameworks.torch_stages.ddp`` under
        ``torchrun`` instead). ``batch_size`` must be divisible by it.
      torch_threads: PyTorch's intra-op threads during the run (set inside the
        kit's scope, restored after; JAX has no such knob). 1 by default: as fast
        or faster for the lab's circles and the digits on an idle 2-core machine,
        and 1.5 to 6 times faster than 2 threads with another busy process beside
        it (the suite, a docs build, CI). None chooses by size
        (:meth:`threads_for_torch`): 1 thread below :data:`SMALL_TORCH_WORK`
        multiply-adds a batch, PyTorch's own count for MNIST-sized products, 1.4 to
        1.6 times faster on an idle machine (README, "Speed"; ``bench --end-to-end``
        runs PyTorch so).
      compile: PyTorch's opt-in ``torch.compile`` of the model's forward,
        for the module stages ``torch/nn`` and ``torch/optim``; its compilation
        (the first calls) is reported apart in ``TrainResult.compile_time``. JAX
        always compiles (``jax.jit``), so the JAX stages refuse it.
    """

    nh: int = 10
    hidden: tuple[int, ...] = ()
    activation: str | tuple[str, ...] = "tanh"
    norm: Literal["layer"] | None = None
    dropout: float = 0.0
    dropout_rng: Literal["kit", "native"] = "kit"
    eta: float = 0.03
    optimizer: Optimizer = SGD()
    schedule: Schedule | None = None
    clip: Clip | None = None
    batch_size: int = 10
    epochs: int = 150
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["cpu", "gpu", "tpu"] | None = None
    loss_reduction: Literal["mean", "sum"] = "mean"
    precision: Literal["highest", "native"] = "highest"
    init: Literal["lab", "torch", "flax", "xavier", "he", "native"] = "lab"
    model: Literal["lab", "double_softmax"] = "lab"
    fuse: bool = True
    devices: int = 1
    torch_threads: int | None = 1
    compile: bool = False

    def __post_init__(self) -> None:
        self._store_numpy_numbers_as_python()
        for name in ("nh", "batch_size", "epochs", "devices", "torch_threads"):
            value = getattr(self, name)
            if name == "torch_threads" and value is None:  # chosen by size
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise KitError(f"TrainConfig.{name} must be a positive integer, got {value!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise KitError(f"TrainConfig.seed must be a non-negative integer, got {self.seed!r}.")
        if (
            isinstance(self.eta, bool)
            or not isinstance(self.eta, (int, float))
            or not self.eta > 0
            or self.eta == float("inf")
        ):
            raise KitError(f"TrainConfig.eta must be a positive finite number, got {self.eta!r}.")
        for name, choices in (
            ("dtype", DTYPES),
            ("loss_reduction", LOSS_REDUCTIONS),
            ("precision", PRECISIONS),
            ("init", INITS),
            ("model", MODELS),
        ):
            if getattr(self, name) not in choices:
                raise unknown(f"TrainConfig.{name}", getattr(self, name), choices)
        if self.device is not None and self.device not in DEVICES:
            raise unknown("TrainConfig.device (None for the default)", self.device, DEVICES)
        if self.batch_size % self.devices:
            raise KitError(
                f"batch_size {self.batch_size} is not divisible by devices={self.devices}: each device must get "
                "an equal share of every batch, so that the mean over shards is the mean over the batch."
            )
        for name in ("fuse", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise KitError(f"TrainConfig.{name} must be True or False, got {getattr(self, name)!r}.")
        if self.dropout_rng not in DROPOUT_RNGS:
            raise unknown("TrainConfig.dropout_rng", self.dropout_rng, DROPOUT_RNGS)
        self.arch  # noqa: B018 -- validates hidden, activation, norm and dropout
        for name, kinds in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("clip", CLIPS)):
            value = getattr(self, name)
            if isinstance(value, dict):  # from JSON: a checkpoint's or a report's config
                object.__setattr__(self, name, value := from_dict(value, kinds))
            if not (value is None and name != "optimizer") and not isinstance(value, tuple(kinds.values())):
                raise KitError(f"TrainConfig.{name} must be one of frameworks.optim's {', '.join(kinds)}"
                               f"{' (or None)' if name != 'optimizer' else ''}, got {value!r}.")
        if isinstance(self.schedule, OneCycleLR) and self.schedule.cycle_momentum \
                and isinstance(self.optimizer, Adagrad):
            raise KitError("OneCycleLR(cycle_momentum=True) cycles the momentum or beta1, which Adagrad has not "
                           "(PyTorch refuses it too): set cycle_momentum=False.")

    def threads_for_torch(self, caller: int, features: int | None = None) -> int:
        """PyTorch's intra-op threads for this run: ``torch_threads``; or, when None, by size: ``caller``'s count
        (the threads PyTorch had before the run) when a batch's first product of ``features`` inputs has
        :data:`SMALL_TORCH_WORK` multiply-adds or more (MNIST's 784 inputs), else 1 (the circles, the 8x8 digits,
        or ``features`` unknown)."""
        if self.torch_threads is not None:
            return self.torch_threads
        big = features is not None and self.batch_size * features * self.arch.hidden[0] >= SMALL_TORCH_WORK
        return caller if big else 1

    @property
    def arch(self) -> Architecture:
        """The network: ``hidden`` (or ``(nh,)``), the activations, the norm and the dropout rate."""
        try:
            return architecture(self.hidden or (self.nh,), self.activation, self.norm, self.dropout)
        except KitError as err:
            raise KitError(f"TrainConfig: {err}") from None

    def _store_numpy_numbers_as_python(self) -> None:
        """NumPy integers (and NumPy floats for ``eta``) become Python ones: the config stays hashable and
        JSON-serialisable whatever numbers the caller computed it from."""
        for name in ("nh", "batch_size", "epochs", "seed", "devices", "torch_threads"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and type(value) not in (bool, int):
                object.__setattr__(self, name, int(value))
        for name in ("eta", "dropout"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and type(value) not in (bool, int, float):  # numpy.float64 too
                object.__setattr__(self, name, float(value))
        if self.dropout == 0:
            object.__setattr__(self, "dropout", 0.0)
        # sequences as tuples (a list from JSON or a caller): the config stays hashable
        if isinstance(self.hidden, (list, tuple)):
            object.__setattr__(self, "hidden", tuple(int(w) if isinstance(w, numbers.Integral) and
                                                     not isinstance(w, bool) else w for w in self.hidden))
        if isinstance(self.activation, list):
            object.__setattr__(self, "activation", tuple(self.activation))
        if isinstance(self.activation, tuple) and len(set(self.activation)) == 1 \
                and len(self.activation) == len(self.hidden or (self.nh,)):
            object.__setattr__(self, "activation", self.activation[0])  # one name for all: stored once

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise KitError(f"TrainConfig has no field {', '.join(sorted(unknown))}.")
        return dataclasses.replace(self, **changes)

    @classmethod
    def mnist(cls, **changes: Any) -> TrainConfig:
        """The lab's MNIST settings (section 2.5): nh=100, batch 100, eta 0.03, 100 epochs."""
        return cls(nh=100, batch_size=100, eta=0.03, epochs=100).replace(**changes)

    def to_dict(self) -> dict[str, object]:
        """The config as JSON-ready data (the optimizer, schedule and clip under their class names)."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("optimizer", "schedule", "clip"):
            value = getattr(self, name)
            out[name] = None if value is None else to_dict(value)
        return out
