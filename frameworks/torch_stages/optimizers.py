"""torch.optim's optimizers, schedules and clipping, written by hand (PyTorch): the update of the by-hand stages.

The lab writes its SGD step by hand (``p <- p - eta g``); the manual, autograd and
torch.nn stages write every other update the same way, from the formulas of
PyTorch's documentation, over a dict of tensors. The twin of
``jax_stages/optimizers.py``: only the names bound below differ (``torch`` ->
``jnp``, a Python ``if`` -> ``where``), so that the JAX stages can trace the same
lines. ``t`` counts the updates done before this one (0 for the first). Whether a
hyperparameter is set is asked with ``nonzero`` (``bool`` here; the JAX twin's sweeps
trace the numbers, ``frameworks/_hyper.py``), so the two files keep the same statements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from frameworks import optim
from frameworks._config import TrainConfig
from frameworks._hyper import nonzero

sqrt, maximum, zeros_like, cos, pi = torch.sqrt, torch.maximum, torch.zeros_like, math.cos, math.pi


def where(condition: Any, a: Any, b: Any) -> Any:
    return a if condition else b


def minimum(a: Any, b: Any) -> Any:
    return min(a, b)


def tree_map(f: Callable[..., Any], *trees: dict) -> dict:
    """``f`` applied name by name to dicts of tensors of the same names."""
    return {name: f(*(tree[name] for tree in trees)) for name in trees[0]}


def total(values: dict) -> Any:
    return sum(values.values())


# The learning rate (and, for OneCycleLR, the momentum) of update t ----------------------------------------------


def learning_rate(schedule: optim.Schedule | None, eta: float, t: Any, steps_per_epoch: int) -> Any:
    """The lr of update ``t``: ``eta`` scaled by the schedule at its epoch (``t // steps_per_epoch``, the schedule
    stepped after each epoch) or at its step (``interval="step"``), as ``torch.optim.lr_scheduler`` sets it."""
    if schedule is None:
        return eta
    e = t // steps_per_epoch if schedule.interval == "epoch" else t
    if isinstance(schedule, optim.OneCycleLR):
        return one_cycle(schedule, e)[0]
    return eta * factor(schedule, e, eta)


def factor(s: optim.Schedule, e: Any, eta: float) -> Any:
    """The schedule's factor of eta at epoch (or step) ``e``."""
    if isinstance(s, optim.StepLR):
        return s.gamma ** (e // s.step_size)
    if isinstance(s, optim.MultiStepLR):  # gamma to the number of milestones passed
        return s.gamma ** sum(where(e >= m, 1, 0) for m in s.milestones)
    if isinstance(s, optim.ExponentialLR):
        return s.gamma ** e
    if isinstance(s, optim.CosineAnnealingLR):  # eta_min + (eta - eta_min) (1 + cos(pi e / T_max)) / 2
        return (s.eta_min + (eta - s.eta_min) * (1 + cos(pi * e / s.T_max)) / 2) / eta
    if isinstance(s, optim.LinearLR):
        return s.start_factor + (s.end_factor - s.start_factor) * minimum(e, s.total_iters) / s.total_iters
    if isinstance(s, optim.SequentialLR):  # each scheduler restarts from 0 at its milestone
        value = factor(s.schedulers[0], e, eta)
        for milestone, later in zip(s.milestones, s.schedulers[1:]):
            value = where(e >= milestone, factor(later, e - milestone, eta), value)
        return value
    raise TypeError(f"not a schedule: {s!r}")


def one_cycle(s: optim.OneCycleLR, step: Any) -> tuple[Any, Any]:
    """OneCycleLR's (lr, momentum) at ``step``: phases end at ``pct_start total_steps - 1`` and ``total_steps - 1``
    (three: ``2 pct_start total_steps - 2`` in between); within one, ``pct`` runs from 0 to 1 and the value
    anneals from the phase's start to its end, ``end + (start - end) (1 + cos(pi pct)) / 2`` (or linearly)."""
    initial = s.max_lr / s.div_factor
    low, high = s.base_momentum, s.max_momentum
    phases = [(s.pct_start * s.total_steps - 1, initial, s.max_lr, high, low)]
    if s.three_phase:
        phases += [(2 * s.pct_start * s.total_steps - 2, s.max_lr, initial, low, high),
                   (s.total_steps - 1, initial, initial / s.final_div_factor, high, high)]
    else:
        phases += [(s.total_steps - 1, s.max_lr, initial / s.final_div_factor, low, high)]

    def anneal(start: Any, end: Any, pct: Any) -> Any:
        if s.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (cos(pi * pct) + 1)
        return (end - start) * pct + start

    values, begin = [], 0.0
    for end, lr0, lr1, m0, m1 in phases:
        pct = (step - begin) / (end - begin)
        values.append((anneal(lr0, lr1, pct), anneal(m0, m1, pct)))
        begin = end
    lr, momentum = values[-1]
    for (end, *_), (lr_i, m_i) in zip(phases[-2::-1], values[-2::-1]):
        lr, momentum = where(step <= end, lr_i, lr), where(step <= end, m_i, momentum)
    return lr, momentum


def momentum(schedule: optim.Schedule | None, spec: optim.Optimizer, t: Any) -> Any:
    """The momentum (SGD, RMSprop) or beta1 (Adam, AdamW) of update ``t``: the spec's, or OneCycleLR's cycle."""
    if isinstance(schedule, optim.OneCycleLR) and schedule.cycle_momentum:
        return one_cycle(schedule, t)[1]
    return spec.betas[0] if isinstance(spec, (optim.Adam, optim.AdamW)) else getattr(spec, "momentum", 0.0)


# Clipping, then the update ---------------------------------------------------------------------------------------


def clip(rule: optim.Clip | None, grads: dict) -> dict:
    """``clip_grad_norm_``: every gradient times min(1, max_norm / (total_norm + 1e-6)), total_norm the 2-norm of
    all of them together; ``clip_grad_value_``: each entry clamped to [-clip_value, clip_value]."""
    if isinstance(rule, optim.ClipGradNorm):
        norm = sqrt(total(tree_map(lambda g: (g * g).sum(), grads)))
        coef = minimum(rule.max_norm / (norm + 1e-6), 1.0)
        return tree_map(lambda g: g * coef, grads)
    if isinstance(rule, optim.ClipGradValue):
        return tree_map(lambda g: g.clip(-rule.clip_value, rule.clip_value), grads)
    return grads


def init(spec: optim.Optimizer, params: dict) -> dict:
    """The optimizer's state: its buffers, zeros shaped like the parameters (Adagrad's sum starts at
    ``initial_accumulator_value``), named as ``torch.optim`` names them in its ``state_dict``."""
    zeros = tree_map(zeros_like, params)
    if isinstance(spec, optim.Adagrad):
        return {"sum": tree_map(lambda p: zeros_like(p) + spec.initial_accumulator_value, params)}
    if isinstance(spec, (optim.Adam, optim.AdamW)):
        return {"exp_avg": zeros, "exp_avg_sq": zeros, "max_exp_avg_sq": zeros}
    if isinstance(spec, optim.RMSprop):
        return {"square_avg": zeros, "grad_avg": zeros, "momentum_buffer": zeros}
    return {"momentum_buffer": zeros}


def update(spec: optim.Optimizer, params: dict, grads: dict, state: dict, t: Any, lr: Any, mu: Any,
           *, uses_momentum: bool) -> tuple[dict, dict]:
    """One step of ``spec`` from the (clipped) gradients: the new parameters and state. ``mu``: the momentum or
    beta1 of this step; ``uses_momentum``: whether momentum is on at all (a static fact, for JAX's tracing)."""
    if isinstance(spec, optim.SGD):
        # g <- g + weight_decay p; buf <- g at the first step, else momentum buf + (1 - dampening) g;
        # g <- g + momentum buf (Nesterov) or buf; p <- p - lr g
        g = tree_map(lambda p, g: g + spec.weight_decay * p, params, grads) if nonzero(spec.weight_decay) else grads
        if not uses_momentum:
            return tree_map(lambda p, g: p - lr * g, params, g), state
        buf = tree_map(lambda b, g: where(t == 0, g, mu * b + (1 - spec.dampening) * g), state["momentum_buffer"], g)
        step = tree_map(lambda g, b: g + mu * b, g, buf) if spec.nesterov else buf
        return tree_map(lambda p, s: p - lr * s, params, step), {"momentum_buffer": buf}
    if isinstance(spec, (optim.Adam, optim.AdamW)):
        # AdamW: p <- p (1 - lr weight_decay); Adam: g <- g + weight_decay p. Then m <- b1 m + (1 - b1) g,
        # v <- b2 v + (1 - b2) g^2, vmax <- max(vmax, v) (amsgrad), and
        # p <- p - lr / (1 - b1^(t+1)) m / (sqrt(v or vmax) / sqrt(1 - b2^(t+1)) + eps)
        if isinstance(spec, optim.AdamW):
            params = tree_map(lambda p: p * (1 - lr * spec.weight_decay), params)
            g = grads
        else:
            g = tree_map(lambda p, g: g + spec.weight_decay * p, params, grads) if nonzero(spec.weight_decay) else grads
        b2 = spec.betas[1]
        m = tree_map(lambda m, g: mu * m + (1 - mu) * g, state["exp_avg"], g)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["exp_avg_sq"], g)
        vmax = tree_map(maximum, state["max_exp_avg_sq"], v) if spec.amsgrad else state["max_exp_avg_sq"]
        root = (1 - b2 ** (t + 1)) ** 0.5
        step_size = lr / (1 - mu ** (t + 1))
        denominators = tree_map(lambda v: sqrt(v) / root + spec.eps, vmax if spec.amsgrad else v)
        params = tree_map(lambda p, m, d: p - step_size * m / d, params, m, denominators)
        return params, {"exp_avg": m, "exp_avg_sq": v, "max_exp_avg_sq": vmax}
    if isinstance(spec, optim.RMSprop):
        # g <- g + weight_decay p; v <- alpha v + (1 - alpha) g^2; centered: gavg <- alpha gavg + (1 - alpha) g,
        # avg = sqrt(v - gavg^2) + eps, else sqrt(v) + eps; momentum: buf <- momentum buf + g / avg, p <- p - lr buf;
        # else p <- p - lr g / avg
        a = spec.alpha
        g = tree_map(lambda p, g: g + spec.weight_decay * p, params, grads) if nonzero(spec.weight_decay) else grads
        v = tree_map(lambda v, g: a * v + (1 - a) * g * g, state["square_avg"], g)
        gavg = tree_map(lambda m, g: a * m + (1 - a) * g, state["grad_avg"], g) if spec.centered else state["grad_avg"]
        avg = tree_map(lambda v, m: sqrt(v - m * m) + spec.eps, v, gavg) if spec.centered else \
            tree_map(lambda v: sqrt(v) + spec.eps, v)
        if uses_momentum:
            buf = tree_map(lambda b, g, d: mu * b + g / d, state["momentum_buffer"], g, avg)
            return tree_map(lambda p, b: p - lr * b, params, buf), {"square_avg": v, "grad_avg": gavg,
                                                                    "momentum_buffer": buf}
        return tree_map(lambda p, g, d: p - lr * g / d, params, g, avg), {
            "square_avg": v, "grad_avg": gavg, "momentum_buffer": state["momentum_buffer"]}
    if isinstance(spec, optim.Adagrad):
        # clr = lr / (1 + t lr_decay); g <- g + weight_decay p; sum <- sum + g^2; p <- p - clr g / (sqrt(sum) + eps)
        clr = lr / (1 + t * spec.lr_decay)
        g = tree_map(lambda p, g: g + spec.weight_decay * p, params, grads) if nonzero(spec.weight_decay) else grads
        acc = tree_map(lambda s, g: s + g * g, state["sum"], g)
        return tree_map(lambda p, g, s: p - clr * g / (sqrt(s) + spec.eps), params, g, acc), {"sum": acc}
    raise TypeError(f"not an optimizer: {spec!r}")


# What a by-hand stage calls -----------------------------------------------------------------------------------------


def is_lab(config: TrainConfig) -> bool:
    """The lab's plain SGD: no other optimizer, no schedule, no clipping (the stages then run the lab's ``sgd``)."""
    return config.optimizer == optim.SGD() and config.schedule is None and config.clip is None


def init_state(config: TrainConfig, params: Any) -> Any:
    """The state the update carries: the count of updates done ``t`` and the optimizer's buffers (nothing for the
    lab's SGD)."""
    return {} if is_lab(config) else {"t": 0, "buffers": init(config.optimizer, params)}


def updater(config: TrainConfig, steps_per_epoch: int) -> Callable[[Any, Any, Any], tuple[Any, Any]] | None:
    """``(params, grads, state) -> (params, state)``: clipping, the schedule's lr (and momentum) of update ``t``,
    then the optimizer's step; None for the lab's SGD."""
    if is_lab(config):
        return None
    spec, schedule = config.optimizer, config.schedule
    cycled = isinstance(schedule, optim.OneCycleLR) and schedule.cycle_momentum
    uses_momentum = cycled or nonzero(getattr(spec, "momentum", 0.0))

    def apply(params: Any, grads: Any, state: Any) -> tuple[Any, Any]:
        t = state["t"]
        lr = learning_rate(schedule, config.eta, t, steps_per_epoch)
        params, buffers = update(spec, params, clip(config.clip, grads), state["buffers"], t, lr,
                                 momentum(schedule, spec, t), uses_momentum=uses_momentum)
        return params, {"t": t + 1, "buffers": buffers}

    return apply


# The state in a checkpoint: PyTorch's buffer names, the kit's canonical parameter names ------------------------------


def save(opt: dict, canonical: Callable[[dict], dict]) -> dict | None:
    """``{"step": updates done, "buffers": {buffer name: canonical parameters}}``; None for the lab's SGD.
    ``canonical`` turns a tree shaped like the stage's parameters into canonical float64 arrays."""
    if not opt:
        return None
    return {"step": int(opt["t"]), "buffers": {name: canonical(tree) for name, tree in opt["buffers"].items()}}


def restore(opt: dict, saved: dict, load: Callable[[dict, dict], dict]) -> dict:
    """The inverse of :func:`save` into ``opt``'s trees (``load(canonical, like)`` builds a tree like ``like``)."""
    return {"t": int(saved["step"]), "buffers": {name: load(saved["buffers"][name], tree)
                                                  for name, tree in opt["buffers"].items()}}
