"""Optimizers, learning-rate schedules and gradient clipping, as small values in PyTorch's words.

Each is a frozen dataclass named after its ``torch.optim`` class, with PyTorch's
argument names and defaults (PyTorch is the side people port from); the learning
rate is the config's ``eta``. A run combines one of each:

    TrainConfig(eta=0.01, optimizer=Adam(weight_decay=1e-4),
                schedule=CosineAnnealingLR(T_max=100), clip=ClipGradNorm(1.0))

The lab's plain SGD (``SGD()``, no schedule, no clipping) is the default, and stays
bit for bit the lab's update ``p - eta * g``. Who runs what:

* the by-hand stages (manual, autodiff, modules) update with
  ``torch_stages/optimizers.py`` or ``jax_stages/optimizers.py`` (one lesson a
  framework, PyTorch's formulas in the docstrings);
* ``torch/optim`` builds ``torch.optim``, ``torch.optim.lr_scheduler`` and calls
  ``torch.nn.utils.clip_grad_*``;
* ``jax/optax`` runs the Optax chain ``frameworks.port.optax_from_torch`` builds;
* ``frameworks._oracle_optim`` writes each update once more, in float64 NumPy.

A schedule is stepped once an epoch (``interval="epoch"``, as ``scheduler.step()``
after each epoch) or once a batch (``interval="step"``; OneCycleLR's default).
:func:`parse` reads the text form the CLI takes, e.g. ``"AdamW(weight_decay=0.05)"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from frameworks._errors import KitError, unknown

Interval = Literal["epoch", "step"]


def _check(name: str, value: object, *, low: float = 0.0, high: float | None = None, closed: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KitError(f"{name} must be a number, got {value!r}.")
    if value < low or (not closed and value == low) or (high is not None and value > high):
        span = f"{'[' if closed else '('}{low:g}, {'inf' if high is None else f'{high:g}'}]"
        raise KitError(f"{name} must be in {span}, got {value!r}.")


# Optimizers -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SGD:
    """``torch.optim.SGD``: momentum, dampening, Nesterov, weight decay added to the gradient."""

    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        for name in ("momentum", "dampening", "weight_decay"):
            _check(f"SGD.{name}", getattr(self, name))
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise KitError("SGD(nesterov=True) needs momentum > 0 and dampening 0 (as torch.optim.SGD).")


@dataclass(frozen=True)
class Adam:
    """``torch.optim.Adam``: its ``weight_decay`` is added to the gradient (coupled, L2), unlike AdamW's."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False

    def __post_init__(self) -> None:
        _betas(self)


@dataclass(frozen=True)
class AdamW:
    """``torch.optim.AdamW``: decoupled weight decay, ``p <- p (1 - lr weight_decay)``; PyTorch's default 0.01."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    amsgrad: bool = False

    def __post_init__(self) -> None:
        _betas(self)


def _betas(spec: Adam | AdamW) -> None:
    name = type(spec).__name__
    if isinstance(spec.betas, list):
        object.__setattr__(spec, "betas", tuple(spec.betas))
    if not isinstance(spec.betas, tuple) or len(spec.betas) != 2:
        raise KitError(f"{name}.betas must be a pair (beta1, beta2), got {spec.betas!r}.")
    for k, beta in enumerate(spec.betas):
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise KitError(f"{name}.betas[{k}] must be in [0, 1), got {beta!r}.")
    _check(f"{name}.eps", spec.eps)
    _check(f"{name}.weight_decay", spec.weight_decay)


@dataclass(frozen=True)
class RMSprop:
    """``torch.optim.RMSprop``: alpha 0.99, eps 1e-8 added *outside* the square root, optional centering and
    momentum."""

    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    def __post_init__(self) -> None:
        for name in ("alpha", "eps", "weight_decay", "momentum"):
            _check(f"RMSprop.{name}", getattr(self, name))


@dataclass(frozen=True)
class Adagrad:
    """``torch.optim.Adagrad``: the step ``lr / (1 + (t - 1) lr_decay)``, accumulator from
    ``initial_accumulator_value``, eps 1e-10 outside the square root."""

    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10

    def __post_init__(self) -> None:
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check(f"Adagrad.{name}", getattr(self, name))


Optimizer = SGD | Adam | AdamW | RMSprop | Adagrad


# Schedules --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepLR:
    """``lr = eta * gamma ** (e // step_size)``."""

    step_size: int
    gamma: float = 0.1
    interval: Interval = "epoch"

    def __post_init__(self) -> None:
        _check_schedule(self)


@dataclass(frozen=True)
class MultiStepLR:
    """``lr = eta * gamma ** (number of milestones <= e)``."""

    milestones: tuple[int, ...]
    gamma: float = 0.1
    interval: Interval = "epoch"

    def __post_init__(self) -> None:
        _check_schedule(self)


@dataclass(frozen=True)
class ExponentialLR:
    """``lr = eta * gamma ** e``."""

    gamma: float
    interval: Interval = "epoch"

    def __post_init__(self) -> None:
        _check_schedule(self)


@dataclass(frozen=True)
class CosineAnnealingLR:
    """``lr = eta_min + (eta - eta_min) (1 + cos(pi e / T_max)) / 2`` (periodic past T_max, as PyTorch's)."""

    T_max: int
    eta_min: float = 0.0
    interval: Interval = "epoch"

    def __post_init__(self) -> None:
        _check_schedule(self)


@dataclass(frozen=True)
class LinearLR:
    """``lr = eta * (start_factor + (end_factor - start_factor) min(e, total_iters) / total_iters)``: warm-up."""

    start_factor: float = 1.0 / 3
    end_factor: float = 1.0
    total_iters: int = 5
    interval: Interval = "epoch"

    def __post_init__(self) -> None:
        _check_schedule(self)


@dataclass(frozen=True)
class OneCycleLR:
    """``torch.optim.lr_scheduler.OneCycleLR``, stepped once a batch: the lr rises from max_lr / div_factor to
    max_lr over ``pct_start`` of ``total_steps`` and anneals to max_lr / (div_factor final_div_factor); with
    ``cycle_momentum`` (PyTorch's default) the momentum (SGD, RMSprop) or beta1 (Adam, AdamW) moves the other way,
    between ``max_momentum`` and ``base_momentum``. It sets the lr itself: the config's eta is not used."""

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    interval: Interval = "step"

    def __post_init__(self) -> None:
        _check_schedule(self)


@dataclass(frozen=True)
class SequentialLR:
    """One schedule after another, each restarting from its own epoch 0 at its milestone (e.g. a LinearLR
    warm-up, then CosineAnnealingLR)."""

    schedulers: tuple[Schedule, ...]
    milestones: tuple[int, ...]
    interval: Interval = "epoch"

    def __post_init__(self) -> None:
        _check_schedule(self)


Schedule = StepLR | MultiStepLR | ExponentialLR | CosineAnnealingLR | LinearLR | OneCycleLR | SequentialLR


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise KitError(f"{name} must be a positive integer, got {value!r}.")


def _check_schedule(spec: Any) -> None:
    """PyTorch's own checks of a scheduler's arguments, as one-line errors."""
    name = type(spec).__name__
    for field in ("milestones", "schedulers"):
        if isinstance(getattr(spec, field, None), list):
            object.__setattr__(spec, field, tuple(getattr(spec, field)))
    if spec.interval not in ("epoch", "step"):
        raise unknown(f"{name}.interval", spec.interval, ("epoch", "step"))
    if isinstance(spec, StepLR):
        _positive_int("StepLR.step_size", spec.step_size)
    if isinstance(spec, (StepLR, MultiStepLR, ExponentialLR)):
        _check(f"{name}.gamma", spec.gamma, closed=False)
    if isinstance(spec, MultiStepLR):
        for m in spec.milestones:
            _positive_int("MultiStepLR.milestones[...]", m)
        if list(spec.milestones) != sorted(set(spec.milestones)):
            raise KitError(f"MultiStepLR.milestones must increase, got {spec.milestones!r}.")
    if isinstance(spec, CosineAnnealingLR):
        _positive_int("CosineAnnealingLR.T_max", spec.T_max)
        _check("CosineAnnealingLR.eta_min", spec.eta_min)
    if isinstance(spec, LinearLR):
        _check("LinearLR.start_factor", spec.start_factor, high=1.0, closed=False)
        _check("LinearLR.end_factor", spec.end_factor, high=1.0)
        _positive_int("LinearLR.total_iters", spec.total_iters)
    if isinstance(spec, OneCycleLR):
        if spec.interval != "step":
            raise KitError("OneCycleLR is stepped once a batch (as PyTorch's docs say): interval='step'.")
        _check("OneCycleLR.max_lr", spec.max_lr, closed=False)
        _positive_int("OneCycleLR.total_steps", spec.total_steps)
        _check("OneCycleLR.pct_start", spec.pct_start, high=1.0)
        if spec.anneal_strategy not in ("cos", "linear"):
            raise unknown("OneCycleLR.anneal_strategy", spec.anneal_strategy, ("cos", "linear"))
        for field in ("div_factor", "final_div_factor"):
            _check(f"OneCycleLR.{field}", getattr(spec, field), closed=False)
    if isinstance(spec, SequentialLR):
        if len(spec.schedulers) < 1 or len(spec.milestones) != len(spec.schedulers) - 1:
            raise KitError(f"SequentialLR needs one milestone fewer than schedulers; got {len(spec.schedulers)} "
                           f"schedulers and {len(spec.milestones)} milestones.")
        for sub in spec.schedulers:
            if not isinstance(sub, tuple(SCHEDULES.values())) or isinstance(sub, (SequentialLR, OneCycleLR)):
                raise KitError(f"SequentialLR.schedulers holds schedules other than SequentialLR and OneCycleLR; "
                               f"got {sub!r}.")
            if sub.interval != spec.interval:
                raise KitError(f"SequentialLR steps its schedulers once a{'n' if spec.interval == 'epoch' else ''} "
                               f"{spec.interval}; {type(sub).__name__} says interval={sub.interval!r}.")
        for m in spec.milestones:
            _positive_int("SequentialLR.milestones[...]", m)
        if list(spec.milestones) != sorted(set(spec.milestones)):
            raise KitError(f"SequentialLR.milestones must increase, got {spec.milestones!r}.")


# Clipping ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipGradNorm:
    """``torch.nn.utils.clip_grad_norm_``: every gradient times ``min(1, max_norm / (total_norm + 1e-6))``,
    ``total_norm`` the 2-norm of all gradients together."""

    max_norm: float

    def __post_init__(self) -> None:
        _check("ClipGradNorm.max_norm", self.max_norm, closed=False)


@dataclass(frozen=True)
class ClipGradValue:
    """``torch.nn.utils.clip_grad_value_``: every gradient entry clamped to [-clip_value, clip_value]."""

    clip_value: float

    def __post_init__(self) -> None:
        _check("ClipGradValue.clip_value", self.clip_value, closed=False)


Clip = ClipGradNorm | ClipGradValue

OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)}
SCHEDULES = {cls.__name__: cls for cls in (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
                                           OneCycleLR, SequentialLR)}
CLIPS = {cls.__name__: cls for cls in (ClipGradNorm, ClipGradValue)}
_ALL = {**OPTIMIZERS, **SCHEDULES, **CLIPS}


# The text and JSON forms of a spec live in _optim_text.py (one job a module); they are this module's API.
from frameworks._optim_text import describe, from_dict, parse, to_dict  # noqa: E402

for _function in (describe, from_dict, parse, to_dict):
    _function.__module__ = __name__  # documented, and shown in tracebacks, as frameworks.optim's
