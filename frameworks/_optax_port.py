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

``frameworks._optax_naive`` holds the naive translation beside it, and
``frameworks._torch_specs`` reads a real torch optimizer and scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from frameworks import optim
from frameworks._errors import KitError
from frameworks._hyper import nonzero

Schedule = Callable[[Any], Any]


def optax_from_torch(spec: Any, scheduler: Any = None, *, lr: float | None = None,
                     schedule: optim.Schedule | None = None, clip: optim.Clip | None = None,
                     steps_per_epoch: int | None = None, interval: str | None = None) -> optax.GradientTransformation:
    """The exact Optax transformation of a ``frameworks.optim`` optimizer spec (with ``lr``, ``schedule``,
    ``clip``), or of a ``torch.optim.Optimizer`` (and ``scheduler``, stepped once an epoch unless
    ``interval="step"``; OneCycleLR once a batch), whose hyperparameters it reads.

    Optax counts updates; PyTorch's epoch schedulers count epochs: ``steps_per_epoch`` converts.
    """
    if not isinstance(spec, tuple(optim.OPTIMIZERS.values())):
        from frameworks._torch_specs import specs_from_torch

        spec, lr, schedule = specs_from_torch(spec, scheduler, interval=interval)
    elif scheduler is not None:
        raise KitError("a spec takes its schedule as schedule=..., not a torch scheduler.")
    if lr is None:
        raise KitError("optax_from_torch(spec) needs lr=... (a torch optimizer carries its own).")
    if steps_per_epoch is None:
        if schedule is not None and schedule.interval == "epoch":
            raise KitError("a schedule stepped once an epoch needs steps_per_epoch=... (Optax counts updates).")
        steps_per_epoch = 1
    return _chain(spec, lr, schedule, clip, steps_per_epoch)


def _chain(spec: optim.Optimizer, lr: float, schedule: optim.Schedule | None, clip: optim.Clip | None,
           spe: int) -> optax.GradientTransformation:
    return optax.chain(*(transform for _, transform in chain_parts(spec, lr, schedule, clip, spe)))


def explain(spec: optim.Optimizer, *, lr: float, schedule: optim.Schedule | None = None,
            clip: optim.Clip | None = None, steps_per_epoch: int = 1) -> str:
    """The exact chain in words, part by part (custom parts starred): the translation table's column."""
    return " -> ".join(text for text, _ in chain_parts(spec, lr, schedule, clip, steps_per_epoch))


def chain_parts(spec: optim.Optimizer, lr: float, schedule: optim.Schedule | None, clip: optim.Clip | None,
                spe: int) -> list[tuple[str, optax.GradientTransformation]]:
    """The parts of the exact chain, each with its name (a star: built by the kit, no Optax piece computes it)."""
    rate = exact_schedule(schedule, lr, spe)
    cycled = isinstance(schedule, optim.OneCycleLR) and schedule.cycle_momentum
    mu: Any = one_cycle(schedule, 1)[1] if cycled else None  # type: ignore[arg-type]  # stepped once a batch
    parts = []
    if isinstance(clip, optim.ClipGradNorm):
        parts.append(("clip_grad_norm*", clip_transform(clip)))
    elif clip is not None:
        parts.append(("clip", clip_transform(clip)))
    decay = [("add_decayed_weights", optax.add_decayed_weights(spec.weight_decay))] if nonzero(spec.weight_decay) \
        else []
    if isinstance(spec, optim.SGD):
        parts += decay
        if nonzero(spec.momentum) or cycled:
            if nonzero(spec.dampening):  # custom: Optax's trace has no dampening
                parts.append(("torch_momentum*", torch_momentum(mu if cycled else spec.momentum, spec.dampening)))
            elif cycled:  # the momentum a schedule of the update count
                parts.append(("inject_hyperparams(trace)", optax.inject_hyperparams(
                    optax.trace, static_args=("nesterov",))(decay=mu, nesterov=spec.nesterov)))
            else:
                parts.append(("trace", optax.trace(decay=spec.momentum, nesterov=spec.nesterov)))
    elif isinstance(spec, (optim.Adam, optim.AdamW)):
        b1, b2 = (mu if cycled else spec.betas[0]), spec.betas[1]
        if isinstance(spec, optim.Adam):
            parts += decay  # coupled: into the gradient
        if spec.amsgrad:  # custom: PyTorch's max of the raw second moment
            parts.append(("torch_amsgrad*", torch_amsgrad(b1, b2, spec.eps)))
        elif cycled:
            parts.append(("inject_hyperparams(scale_by_adam)",
                          optax.inject_hyperparams(optax.scale_by_adam)(b1=b1, b2=b2, eps=spec.eps)))
        else:
            parts.append(("scale_by_adam", optax.scale_by_adam(b1=b1, b2=b2, eps=spec.eps)))
        if isinstance(spec, optim.AdamW):
            parts += decay  # decoupled: times lr with the update
    elif isinstance(spec, optim.RMSprop):
        parts += decay
        name, scale = ("scale_by_stddev", optax.scale_by_stddev) if spec.centered else ("scale_by_rms",
                                                                                      optax.scale_by_rms)
        parts.append((f"{name}(eps_in_sqrt=False)", scale(decay=spec.alpha, eps=spec.eps, eps_in_sqrt=False)))
        if cycled:
            parts.append(("inject_hyperparams(trace)", optax.inject_hyperparams(optax.trace)(decay=mu)))
        elif nonzero(spec.momentum):
            parts.append(("trace", optax.trace(decay=spec.momentum)))
    elif isinstance(spec, optim.Adagrad):
        parts += decay
        parts.append(("torch_adagrad*", torch_adagrad(spec.lr_decay, spec.initial_accumulator_value, spec.eps)))
    parts.append((f"scale_by_learning_rate({schedule_name(schedule)})", optax.scale_by_learning_rate(rate)))
    return parts


def schedule_name(schedule: optim.Schedule | None) -> str:
    """How :func:`exact_schedule` builds a schedule, in words."""
    names = {optim.StepLR: "exponential_decay(staircase)", optim.ExponentialLR: "exponential_decay(staircase)",
             optim.MultiStepLR: "piecewise_constant_schedule", optim.LinearLR: "linear_schedule per epoch",
             optim.CosineAnnealingLR: "periodic cosine*", optim.OneCycleLR: "torch_one_cycle*",
             optim.SequentialLR: "join_schedules"}
    return "lr" if schedule is None else next(n for kind, n in names.items() if isinstance(schedule, kind))


# Custom transformations: PyTorch's formula where Optax has none ----------------------------------------------------


class MomentumState(NamedTuple):
    """:func:`torch_momentum`'s state: the update count and PyTorch's ``momentum_buffer``."""

    steps: jax.Array
    momentum_buffer: Any


class AmsgradState(NamedTuple):
    """:func:`torch_amsgrad`'s state, in PyTorch's names."""

    steps: jax.Array
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any


class AdagradState(NamedTuple):
    """:func:`torch_adagrad`'s state, in PyTorch's names."""

    steps: jax.Array
    sum: Any


def _value(x: Any, count: jax.Array) -> Any:
    return x(count) if callable(x) else x


def torch_momentum(momentum: Any, dampening: float) -> optax.GradientTransformation:
    """SGD's buffer with dampening: ``buf = g`` at the first step, then ``momentum buf + (1 - dampening) g``."""

    def init(params: Any) -> MomentumState:
        return MomentumState(jnp.zeros((), jnp.int32), optax.tree.zeros_like(params))

    def update(updates: Any, state: MomentumState, params: Any = None) -> tuple[Any, MomentumState]:
        m = _value(momentum, state.steps)
        buf = jax.tree.map(lambda b, g: jnp.where(state.steps == 0, g, m * b + (1 - dampening) * g),
                           state.momentum_buffer, updates)
        return buf, MomentumState(state.steps + 1, buf)

    return optax.GradientTransformation(init, update)


def torch_amsgrad(b1: Any, b2: float, eps: float) -> optax.GradientTransformation:
    """Adam(amsgrad=True) as PyTorch: ``vmax = max(vmax, v)`` of the raw second moment, then the bias
    correction (``optax.scale_by_amsgrad`` keeps the maximum of the bias-corrected one)."""

    def init(params: Any) -> AmsgradState:
        zeros = optax.tree.zeros_like(params)
        return AmsgradState(jnp.zeros((), jnp.int32), zeros, zeros, zeros)

    def update(updates: Any, state: AmsgradState, params: Any = None) -> tuple[Any, AmsgradState]:
        beta1, t = _value(b1, state.steps), state.steps + 1
        m = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, state.exp_avg, updates)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.exp_avg_sq, updates)
        vmax = jax.tree.map(jnp.maximum, state.max_exp_avg_sq, v)
        root = (1 - b2**t) ** 0.5
        out = jax.tree.map(lambda m, v: m / (1 - beta1**t) / (jnp.sqrt(v) / root + eps), m, vmax)
        return out, AmsgradState(t, m, v, vmax)

    return optax.GradientTransformation(init, update)


def torch_adagrad(lr_decay: float, initial: float, eps: float) -> optax.GradientTransformation:
    """Adagrad as PyTorch: ``sum += g^2`` from ``initial``, ``g / (sqrt(sum) + eps) / (1 + t lr_decay)``
    (``optax.scale_by_rss`` puts eps inside the square root and starts the sum at 0.1)."""

    def init(params: Any) -> AdagradState:
        return AdagradState(jnp.zeros((), jnp.int32), optax.tree.full_like(params, initial))

    def update(updates: Any, state: AdagradState, params: Any = None) -> tuple[Any, AdagradState]:
        acc = jax.tree.map(lambda s, g: s + g * g, state.sum, updates)
        scale = 1 / (1 + state.steps * lr_decay)
        out = jax.tree.map(lambda g, s: scale * g / (jnp.sqrt(s) + eps), updates, acc)
        return out, AdagradState(state.steps + 1, acc)

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
        return _real(_exponential_decay(lr, schedule.step_size * k, schedule.gamma))
    if isinstance(schedule, optim.ExponentialLR):
        return _real(_exponential_decay(lr, k, schedule.gamma))
    if isinstance(schedule, optim.MultiStepLR):  # scaled from the update count equal to a boundary on
        return _real(_piecewise_constant(lr, [m * k for m in schedule.milestones], schedule.gamma))
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


def _exponential_decay(lr: Any, steps: int, gamma: Any) -> Schedule:
    """``optax.exponential_decay(lr, steps, gamma, staircase=True)``. A sweep's traced gamma (``_hyper.py``)
    cannot pass its Python checks (``gamma == 0``): Optax's formula then, written out."""
    if isinstance(gamma, (int, float)):
        return optax.exponential_decay(lr, steps, gamma, staircase=True)
    return lambda count: jnp.where(count <= 0, lr, lr * jnp.power(gamma, jnp.floor(count / steps)))


def _piecewise_constant(lr: Any, boundaries: list[int], gamma: Any) -> Schedule:
    """``optax.piecewise_constant_schedule(lr, {b: gamma for b in boundaries})``; a traced gamma: Optax's
    formula, written out (its check ``gamma >= 0`` is Python's)."""
    if isinstance(gamma, (int, float)):
        return optax.piecewise_constant_schedule(lr, {b: gamma for b in boundaries})

    def schedule(count: Any) -> Any:
        v = lr
        for b in boundaries:
            indicator = jnp.maximum(0.0, jnp.sign(b - count))
            v = v * indicator + (1 - indicator) * gamma * v
        return v

    return schedule


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


# The chain's state in PyTorch's names (checkpoints) -------------------------------------------------------------

#: Optax's state fields under PyTorch's buffer names; the custom states already use PyTorch's.
_NAMES: dict[type, dict[str, str]] = {
    optax.TraceState: {"trace": "momentum_buffer"}, optax.ScaleByAdamState: {"mu": "exp_avg", "nu": "exp_avg_sq"},
    optax.ScaleByRmsState: {"nu": "square_avg"}, optax.ScaleByRStdDevState: {"mu": "grad_avg", "nu": "square_avg"},
    MomentumState: {"momentum_buffer": "momentum_buffer"},
    AmsgradState: {k: k for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}, AdagradState: {"sum": "sum"},
}
_COUNTS = ("count", "steps")


def buffers(opt_state: Any) -> dict[str, Any]:
    """The buffers of a chain's state built by :func:`optax_from_torch`, by PyTorch's names (subtrees shaped
    like the parameters)."""
    found: dict[str, Any] = {}
    for part in opt_state if isinstance(opt_state, tuple) and not hasattr(opt_state, "_fields") else (opt_state,):
        inner = part.inner_state if isinstance(part, optax.InjectStatefulHyperparamsState) else part
        for field, name in _NAMES.get(type(inner), {}).items():
            found[name] = getattr(inner, field)
    return found


def with_buffers(opt_state: Any, values: dict[str, Any], step: int) -> Any:
    """``opt_state`` with its buffers replaced by ``values`` (PyTorch's names) and every count set to ``step``."""

    def rebuild(part: Any) -> Any:
        if isinstance(part, optax.InjectStatefulHyperparamsState):
            states = {k: v._replace(count=jnp.asarray(step, jnp.int32)) if hasattr(v, "count") else v
                      for k, v in part.hyperparams_states.items()}
            return part._replace(count=jnp.asarray(step, jnp.int32), hyperparams_states=states,
                                 inner_state=rebuild(part.inner_state))
        if not hasattr(part, "_replace"):
            return part
        changes = {field: values[name] for field, name in _NAMES.get(type(part), {}).items() if name in values}
        changes |= {f: jnp.asarray(step, jnp.int32) for f in _COUNTS if f in part._fields}
        return part._replace(**changes)

    if isinstance(opt_state, tuple) and not hasattr(opt_state, "_fields"):
        return tuple(rebuild(part) for part in opt_state)
    return rebuild(opt_state)
