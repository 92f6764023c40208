"""torch.optim in Optax, exactly: the chain ``jax/optax`` trains with, and the naive port beside it.

:func:`optax_from_torch` builds, for an optimizer spec of :mod:`frameworks.optim` (or a real
``torch.optim.Optimizer`` and scheduler, read by :func:`specs_from_torch`), the Optax
transformation that makes the same updates: Optax's own pieces where they compute
PyTorch's formula (``trace``, ``scale_by_adam``, ``scale_by_rms(eps_in_sqrt=False)``,
``add_decayed_weights``, ``exponential_decay(staircase=True)``, ``join_schedules``...),
and a custom ``GradientTransformation`` or schedule where none does, each said below:
SGD's dampening, Adam's amsgrad (PyTorch keeps the maximum of the raw second moment),
Adagrad (eps outside the square root, ``lr_decay``), ``clip_grad_norm_`` (its 1e-6),
the periodic cosine and OneCycleLR (its phase ends at ``pct_start total - 1``).

:func:`naive_optax` is the translation a person writes from the two libraries' docs:
``optax.adamw(lr)`` for ``AdamW(lr)``, ``optax.rmsprop(lr)``, ``optax.adagrad(lr)``,
``optax.cosine_decay_schedule`` for ``CosineAnnealingLR``, ``optax.clip_by_global_norm``;
``frameworks.optim_traps`` measures where each one leaves the exact run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from frameworks import optim
from frameworks._errors import KitError

Schedule = Callable[[Any], Any]


def optax_from_torch(spec: Any, scheduler: Any = None, *, lr: float | None = None,
                     schedule: optim.Schedule | None = None, clip: optim.Clip | None = None,
                     steps_per_epoch: int = 1, interval: str | None = None) -> optax.GradientTransformation:
    """The exact Optax transformation of a ``frameworks.optim`` optimizer spec (with ``lr``, ``schedule``,
    ``clip``), or of a ``torch.optim.Optimizer`` (and ``scheduler``, stepped once an epoch unless
    ``interval="step"``; OneCycleLR once a batch), whose hyperparameters it reads.

    Optax counts updates; PyTorch's epoch schedulers count epochs: ``steps_per_epoch`` converts.
    """
    if not isinstance(spec, tuple(optim.OPTIMIZERS.values())):
        spec, lr, schedule = specs_from_torch(spec, scheduler, interval=interval)
    elif scheduler is not None:
        raise KitError("a spec takes its schedule as schedule=..., not a torch scheduler.")
    if lr is None:
        raise KitError("optax_from_torch(spec) needs lr=... (a torch optimizer carries its own).")
    return _chain(spec, lr, schedule, clip, steps_per_epoch)


def _chain(spec: optim.Optimizer, lr: float, schedule: optim.Schedule | None, clip: optim.Clip | None,
           spe: int) -> optax.GradientTransformation:
    rate = exact_schedule(schedule, lr, spe)
    cycled = isinstance(schedule, optim.OneCycleLR) and schedule.cycle_momentum
    mu: Any = one_cycle(schedule, 1)[1] if cycled else None  # type: ignore[arg-type]  # stepped once a batch
    parts = [clip_transform(clip)] if clip is not None else []
    if isinstance(spec, optim.SGD):
        parts += [optax.add_decayed_weights(spec.weight_decay)] if spec.weight_decay else []
        if spec.momentum or cycled:
            if spec.dampening:  # custom: Optax's trace has no dampening
                parts.append(torch_momentum(mu if cycled else spec.momentum, spec.dampening))
            elif cycled:  # the momentum a schedule of the update count
                parts.append(optax.inject_hyperparams(optax.trace, static_args=("nesterov",))(
                    decay=mu, nesterov=spec.nesterov))
            else:
                parts.append(optax.trace(decay=spec.momentum, nesterov=spec.nesterov))
    elif isinstance(spec, (optim.Adam, optim.AdamW)):
        b1, b2 = (mu if cycled else spec.betas[0]), spec.betas[1]
        if isinstance(spec, optim.Adam) and spec.weight_decay:
            parts.append(optax.add_decayed_weights(spec.weight_decay))  # coupled: into the gradient
        if spec.amsgrad:
            parts.append(torch_amsgrad(b1, b2, spec.eps))  # custom: PyTorch's max of the raw second moment
        elif cycled:
            parts.append(optax.inject_hyperparams(optax.scale_by_adam)(b1=b1, b2=b2, eps=spec.eps))
        else:
            parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=spec.eps))
        if isinstance(spec, optim.AdamW):
            parts.append(optax.add_decayed_weights(spec.weight_decay))  # decoupled: times lr with the update
    elif isinstance(spec, optim.RMSprop):
        parts += [optax.add_decayed_weights(spec.weight_decay)] if spec.weight_decay else []
        scale = optax.scale_by_stddev if spec.centered else optax.scale_by_rms
        parts.append(scale(decay=spec.alpha, eps=spec.eps, eps_in_sqrt=False))
        if cycled:
            parts.append(optax.inject_hyperparams(optax.trace)(decay=mu))
        elif spec.momentum:
            parts.append(optax.trace(decay=spec.momentum))
    elif isinstance(spec, optim.Adagrad):
        parts += [optax.add_decayed_weights(spec.weight_decay)] if spec.weight_decay else []
        parts.append(torch_adagrad(spec.lr_decay, spec.initial_accumulator_value, spec.eps))  # custom
    parts.append(optax.scale_by_learning_rate(rate))
    return optax.chain(*parts)


# Custom transformations: PyTorch's formula where Optax has none ----------------------------------------------------


class _Moments(NamedTuple):
    steps: jax.Array
    first: Any
    second: Any


def _value(x: Any, count: jax.Array) -> Any:
    return x(count) if callable(x) else x


def torch_momentum(momentum: Any, dampening: float) -> optax.GradientTransformation:
    """SGD's buffer with dampening: ``buf = g`` at the first step, then ``momentum buf + (1 - dampening) g``."""

    def init(params: Any) -> _Moments:
        return _Moments(jnp.zeros((), jnp.int32), optax.tree.zeros_like(params), None)

    def update(updates: Any, state: _Moments, params: Any = None) -> tuple[Any, _Moments]:
        m = _value(momentum, state.steps)
        buf = jax.tree.map(lambda b, g: jnp.where(state.steps == 0, g, m * b + (1 - dampening) * g),
                           state.first, updates)
        return buf, _Moments(state.steps + 1, buf, None)

    return optax.GradientTransformation(init, update)


def torch_amsgrad(b1: Any, b2: float, eps: float) -> optax.GradientTransformation:
    """Adam(amsgrad=True) as PyTorch: ``vmax = max(vmax, v)`` of the raw second moment, then the bias
    correction (``optax.scale_by_amsgrad`` keeps the maximum of the bias-corrected one)."""

    def init(params: Any) -> _Moments:
        zeros = optax.tree.zeros_like(params)
        return _Moments(jnp.zeros((), jnp.int32), zeros, (zeros, zeros))

    def update(updates: Any, state: _Moments, params: Any = None) -> tuple[Any, _Moments]:
        beta1, t = _value(b1, state.steps), state.steps + 1
        m = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, state.first, updates)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.second[0], updates)
        vmax = jax.tree.map(jnp.maximum, state.second[1], v)
        root = (1 - b2**t) ** 0.5
        out = jax.tree.map(lambda m, v: m / (1 - beta1**t) / (jnp.sqrt(v) / root + eps), m, vmax)
        return out, _Moments(t, m, (v, vmax))

    return optax.GradientTransformation(init, update)


def torch_adagrad(lr_decay: float, initial: float, eps: float) -> optax.GradientTransformation:
    """Adagrad as PyTorch: ``sum += g^2`` from ``initial``, ``g / (sqrt(sum) + eps) / (1 + t lr_decay)``
    (``optax.scale_by_rss`` puts eps inside the square root and starts the sum at 0.1)."""

    def init(params: Any) -> _Moments:
        return _Moments(jnp.zeros((), jnp.int32), optax.tree.full_like(params, initial), None)

    def update(updates: Any, state: _Moments, params: Any = None) -> tuple[Any, _Moments]:
        acc = jax.tree.map(lambda s, g: s + g * g, state.first, updates)
        scale = 1 / (1 + state.steps * lr_decay)
        out = jax.tree.map(lambda g, s: scale * g / (jnp.sqrt(s) + eps), updates, acc)
        return out, _Moments(state.steps + 1, acc, None)

    return optax.GradientTransformation(init, update)


def clip_transform(rule: optim.Clip) -> optax.GradientTransformation:
    """``clip_grad_value_`` is ``optax.clip``; ``clip_grad_norm_`` divides by ``total_norm + 1e-6``, which
    ``optax.clip_by_global_norm`` does not: custom."""
    if isinstance(rule, optim.ClipGradValue):
        return optax.clip(rule.clip_value)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        coef = jnp.minimum(rule.max_norm / (optax.tree.norm(updates) + 1e-6), 1.0)
        return jax.tree.map(lambda g: g * coef, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# Schedules: PyTorch's, per update count ------------------------------------------------------------------------


def exact_schedule(schedule: optim.Schedule | None, lr: float, spe: int) -> float | Schedule:
    """The lr of update ``count`` as ``torch.optim.lr_scheduler`` sets it (stepped once an epoch of ``spe``
    updates, or once an update for ``interval="step"``)."""
    if schedule is None:
        return lr
    k = spe if schedule.interval == "epoch" else 1
    if isinstance(schedule, optim.StepLR):
        return _real(optax.exponential_decay(lr, schedule.step_size * k, schedule.gamma, staircase=True))
    if isinstance(schedule, optim.ExponentialLR):
        return _real(optax.exponential_decay(lr, k, schedule.gamma, staircase=True))
    if isinstance(schedule, optim.MultiStepLR):  # scaled from the update count equal to a boundary on
        return _real(optax.piecewise_constant_schedule(lr, {m * k: schedule.gamma for m in schedule.milestones}))
    if isinstance(schedule, optim.LinearLR):
        linear = optax.linear_schedule(lr * schedule.start_factor, lr * schedule.end_factor, schedule.total_iters)
        return _real(lambda count: linear(count // k))
    if isinstance(schedule, optim.CosineAnnealingLR):  # custom: PyTorch's is periodic past T_max, Optax's flat
        s = schedule
        return lambda count: s.eta_min + (lr - s.eta_min) * (1 + jnp.cos(jnp.pi * (count // k) / s.T_max)) / 2
    if isinstance(schedule, optim.OneCycleLR):
        return one_cycle(schedule, k)[0]
    if isinstance(schedule, optim.SequentialLR):
        parts = [exact_schedule(sub, lr, spe) for sub in schedule.schedulers]
        return optax.join_schedules([p if callable(p) else optax.constant_schedule(p) for p in parts],
                                    [m * k for m in schedule.milestones])
    raise KitError(f"not a schedule: {schedule!r}")


def _real(schedule: Schedule) -> Schedule:
    """The schedule given the update count as a float of the run's precision: Optax's schedules compute in the
    count's dtype, float32 for the int32 count, even in a float64 run (1e-9 off PyTorch's lr)."""
    return lambda count: schedule(jnp.asarray(count, jnp.result_type(float)))


def one_cycle(s: optim.OneCycleLR, k: int = 1) -> tuple[Schedule, Schedule]:
    """OneCycleLR's lr and momentum (custom: ``optax.cosine_onecycle_schedule`` ends its first phase at
    ``int(pct_start total)``, PyTorch at ``pct_start total - 1``, and cycles no momentum)."""
    initial = s.max_lr / s.div_factor
    ends = [s.pct_start * s.total_steps - 1, s.total_steps - 1]
    lrs = [(initial, s.max_lr), (s.max_lr, initial / s.final_div_factor)]
    moms = [(s.max_momentum, s.base_momentum), (s.base_momentum, s.max_momentum)]
    if s.three_phase:
        ends.insert(1, 2 * s.pct_start * s.total_steps - 2)
        lrs = [(initial, s.max_lr), (s.max_lr, initial), (initial, initial / s.final_div_factor)]
        moms = [(s.max_momentum, s.base_momentum), (s.base_momentum, s.max_momentum),
                (s.max_momentum, s.max_momentum)]
    starts = [0.0, *ends[:-1]]

    def anneal(a: float, b: float, pct: Any) -> Any:
        return b + (a - b) / 2.0 * (jnp.cos(jnp.pi * pct) + 1) if s.anneal_strategy == "cos" else (b - a) * pct + a

    def make(pairs: list[tuple[float, float]]) -> Schedule:
        def value(count: Any) -> Any:
            step = count // k
            out = anneal(*pairs[-1], (step - starts[-1]) / (ends[-1] - starts[-1]))
            for i in range(len(ends) - 2, -1, -1):
                out = jnp.where(step <= ends[i], anneal(*pairs[i], (step - starts[i]) / (ends[i] - starts[i])), out)
            return out
        return value

    return make(lrs), make(moms)


# The naive port: what a person writes from the two libraries' docs ---------------------------------------------


def naive_optax(spec: optim.Optimizer, *, lr: float, schedule: optim.Schedule | None = None,
                clip: optim.Clip | None = None, steps_per_epoch: int = 1) -> optax.GradientTransformation:
    """The translation by name, each library's defaults kept where the PyTorch code left its own implicit:
    ``optax.sgd(lr, momentum, nesterov)`` (no dampening), ``optax.adam`` / ``optax.amsgrad``, ``optax.adamw(lr,
    weight_decay=...)`` for Adam's coupled decay too, ``optax.rmsprop`` and ``optax.adagrad``; the schedules
    ``exponential_decay`` (smooth), ``piecewise_constant_schedule``, ``cosine_decay_schedule`` and
    ``linear_schedule`` over the updates, ``cosine_onecycle_schedule`` (no momentum cycle),
    ``join_schedules``; ``optax.clip_by_global_norm``, ``optax.clip``."""
    rate = naive_schedule(schedule, lr, steps_per_epoch)
    given = {f: getattr(spec, f) for f in spec.__dataclass_fields__
             if getattr(spec, f) != type(spec).__dataclass_fields__[f].default}  # what the PyTorch code wrote
    if isinstance(spec, optim.SGD):
        tx = optax.sgd(rate, momentum=spec.momentum or None, nesterov=spec.nesterov)
        if spec.weight_decay:
            tx = optax.chain(optax.add_decayed_weights(spec.weight_decay), tx)
    elif isinstance(spec, (optim.Adam, optim.AdamW)):
        b1, b2 = spec.betas
        if isinstance(spec, optim.AdamW) or spec.weight_decay:  # Adam(weight_decay=...) read as AdamW
            options = {"weight_decay": given["weight_decay"]} if "weight_decay" in given else {}
            tx = optax.adamw(rate, b1=b1, b2=b2, eps=spec.eps, **options)
        else:
            tx = (optax.amsgrad if spec.amsgrad else optax.adam)(rate, b1=b1, b2=b2, eps=spec.eps)
    elif isinstance(spec, optim.RMSprop):
        options = {"decay": spec.alpha} if "alpha" in given else {}
        options |= {"eps": spec.eps} if "eps" in given else {}
        tx = optax.rmsprop(rate, centered=spec.centered, momentum=spec.momentum or None, **options)
        if spec.weight_decay:
            tx = optax.chain(optax.add_decayed_weights(spec.weight_decay), tx)
    else:
        options = {k: given[k] for k in ("initial_accumulator_value", "eps") if k in given}
        tx = optax.adagrad(rate, **options)
        if spec.weight_decay:
            tx = optax.chain(optax.add_decayed_weights(spec.weight_decay), tx)
    if isinstance(clip, optim.ClipGradNorm):
        tx = optax.chain(optax.clip_by_global_norm(clip.max_norm), tx)
    elif isinstance(clip, optim.ClipGradValue):
        tx = optax.chain(optax.clip(clip.clip_value), tx)
    return tx


def naive_schedule(schedule: optim.Schedule | None, lr: float, spe: int) -> float | Schedule:
    """Each scheduler by its Optax namesake, over the updates."""
    if schedule is None:
        return lr
    k = spe if schedule.interval == "epoch" else 1
    s = schedule
    if isinstance(s, optim.StepLR):
        return optax.exponential_decay(lr, s.step_size * k, s.gamma)
    if isinstance(s, optim.ExponentialLR):
        return optax.exponential_decay(lr, k, s.gamma)
    if isinstance(s, optim.MultiStepLR):
        return optax.piecewise_constant_schedule(lr, {m * k: s.gamma for m in s.milestones})
    if isinstance(s, optim.LinearLR):
        return optax.linear_schedule(lr * s.start_factor, lr * s.end_factor, s.total_iters * k)
    if isinstance(s, optim.CosineAnnealingLR):
        return optax.cosine_decay_schedule(lr, s.T_max * k, alpha=s.eta_min / lr)
    if isinstance(s, optim.OneCycleLR):
        return optax.cosine_onecycle_schedule(s.total_steps, s.max_lr, s.pct_start, s.div_factor, s.final_div_factor)
    if isinstance(s, optim.SequentialLR):
        parts = [naive_schedule(sub, lr, spe) for sub in s.schedulers]
        return optax.join_schedules([p if callable(p) else optax.constant_schedule(p) for p in parts],
                                    [m * k for m in s.milestones])
    raise KitError(f"not a schedule: {s!r}")


# Reading a real torch.optim.Optimizer and scheduler ---------------------------------------------------------------


def specs_from_torch(optimizer: Any, scheduler: Any = None, *, interval: str | None = None) -> tuple[
        optim.Optimizer, float, optim.Schedule | None]:
    """The spec, the base lr and the schedule spec of a ``torch.optim`` optimizer (one parameter group) and
    scheduler; a clear error for what the kit does not translate."""
    import torch

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise KitError(f"optax_from_torch takes a frameworks.optim spec or a torch.optim.Optimizer, got "
                       f"{type(optimizer).__name__}.")
    if len(optimizer.param_groups) != 1:
        raise KitError(f"the optimizer has {len(optimizer.param_groups)} parameter groups; the kit translates one.")
    group = optimizer.param_groups[0]
    if group.get("maximize") or group.get("differentiable"):
        raise KitError("maximize=True and differentiable=True have no counterpart in the kit.")
    kind = type(optimizer).__name__
    names = {"SGD": ("momentum", "dampening", "weight_decay", "nesterov"),
             "Adam": ("betas", "eps", "weight_decay", "amsgrad"), "AdamW": ("betas", "eps", "weight_decay", "amsgrad"),
             "RMSprop": ("alpha", "eps", "weight_decay", "momentum", "centered"),
             "Adagrad": ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")}
    if kind not in names:
        raise KitError(f"the kit translates {', '.join(names)}, not {kind}.")
    defaults = optimizer.defaults  # OneCycleLR rewrites the group's momentum or betas; the defaults keep them
    arguments: dict[str, Any] = {n: tuple(defaults[n]) if n == "betas" else defaults[n] for n in names[kind]}
    spec = optim.OPTIMIZERS[kind](**arguments)
    lr = float(group.get("initial_lr", group["lr"]))
    return spec, lr, None if scheduler is None else schedule_from_torch(scheduler, interval)


def schedule_from_torch(scheduler: Any, interval: str | None = None) -> optim.Schedule:
    """The schedule spec of a ``torch.optim.lr_scheduler`` object (``interval``: how it is stepped; default once
    an epoch, OneCycleLR once a batch)."""
    from torch.optim import lr_scheduler as lrs

    every = interval or ("step" if isinstance(scheduler, lrs.OneCycleLR) else "epoch")
    if isinstance(scheduler, lrs.StepLR):
        return optim.StepLR(scheduler.step_size, scheduler.gamma, every)  # type: ignore[arg-type]
    if isinstance(scheduler, lrs.MultiStepLR):
        return optim.MultiStepLR(tuple(sorted(scheduler.milestones.elements())), scheduler.gamma, every)  # type: ignore[arg-type]
    if isinstance(scheduler, lrs.ExponentialLR):
        return optim.ExponentialLR(scheduler.gamma, every)  # type: ignore[arg-type]
    if isinstance(scheduler, lrs.CosineAnnealingLR):
        return optim.CosineAnnealingLR(scheduler.T_max, scheduler.eta_min, every)  # type: ignore[arg-type]
    if isinstance(scheduler, lrs.LinearLR):
        return optim.LinearLR(scheduler.start_factor, scheduler.end_factor, scheduler.total_iters, every)  # type: ignore[arg-type]
    if isinstance(scheduler, lrs.OneCycleLR):
        group, phases = scheduler.optimizer.param_groups[0], scheduler._schedule_phases
        total = scheduler.total_steps
        return optim.OneCycleLR(
            max_lr=group["max_lr"], total_steps=total, pct_start=(phases[0]["end_step"] + 1) / total,
            anneal_strategy=getattr(scheduler, "_anneal_func_type", "cos"), cycle_momentum=scheduler.cycle_momentum,
            base_momentum=group.get("base_momentum", 0.85), max_momentum=group.get("max_momentum", 0.95),
            div_factor=group["max_lr"] / group["initial_lr"], final_div_factor=group["initial_lr"] / group["min_lr"],
            three_phase=len(phases) == 3, interval=every)  # type: ignore[arg-type]
    if isinstance(scheduler, lrs.SequentialLR):
        return optim.SequentialLR(tuple(schedule_from_torch(s, every) for s in scheduler._schedulers),
                                  tuple(scheduler._milestones), every)  # type: ignore[arg-type]
    raise KitError(f"the kit translates StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR "
                   f"and SequentialLR, not {type(scheduler).__name__}.")
