"""The optimizers, schedules and clipping of :mod:`frameworks.optim` once more, in float64 NumPy: the oracle.

Written apart from the by-hand twins (``torch_stages/optimizers.py``, ``jax_stages/optimizers.py``),
straight from PyTorch's documented algorithms, one parameter at a time with explicit state, so
that a test can train the lab's network in NumPy (``oracle.gradients``) and hold each
implementation's trajectory against it (``tests/test_optimizers.py``).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from frameworks import optim, oracle
from frameworks._params import Params


def lr_and_momentum(config: Any, t: int, spe: int) -> tuple[float, float | None]:
    """The lr of update ``t`` (0-based) and, under OneCycleLR's cycle, its momentum (else None)."""
    s = config.schedule
    if s is None:
        return config.eta, None
    step = t // spe if s.interval == "epoch" else t
    if isinstance(s, optim.OneCycleLR):
        return _one_cycle(s, step)
    return _scheduled(s, config.eta, step), None


def _scheduled(s: Any, eta: float, e: int) -> float:
    if isinstance(s, optim.StepLR):
        return eta * s.gamma ** math.floor(e / s.step_size)
    if isinstance(s, optim.MultiStepLR):
        return eta * s.gamma ** bisect.bisect_right(list(s.milestones), e)
    if isinstance(s, optim.ExponentialLR):
        return eta * s.gamma**e
    if isinstance(s, optim.CosineAnnealingLR):
        return s.eta_min + (eta - s.eta_min) * 0.5 * (1.0 + math.cos(math.pi * e / s.T_max))
    if isinstance(s, optim.LinearLR):
        return eta * (s.start_factor + (s.end_factor - s.start_factor) * min(e, s.total_iters) / s.total_iters)
    if isinstance(s, optim.SequentialLR):
        i = bisect.bisect_right(list(s.milestones), e)
        return _scheduled(s.schedulers[i], eta, e - (s.milestones[i - 1] if i else 0))
    raise TypeError(s)


def _one_cycle(s: optim.OneCycleLR, step: int) -> tuple[float, float | None]:
    initial, total = s.max_lr / s.div_factor, s.total_steps
    if s.three_phase:
        table = [(s.pct_start * total - 1, initial, s.max_lr, s.max_momentum, s.base_momentum),
                 (2 * s.pct_start * total - 2, s.max_lr, initial, s.base_momentum, s.max_momentum),
                 (total - 1, initial, initial / s.final_div_factor, s.max_momentum, s.max_momentum)]
    else:
        table = [(s.pct_start * total - 1, initial, s.max_lr, s.max_momentum, s.base_momentum),
                 (total - 1, s.max_lr, initial / s.final_div_factor, s.base_momentum, s.max_momentum)]
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(table):
        if step <= end or i == len(table) - 1:
            pct = (step - start) / (end - start)
            if s.anneal_strategy == "cos":
                shape = (1 + math.cos(math.pi * pct)) / 2  # 1 at the phase's start, 0 at its end
                lr, mom = lr1 + (lr0 - lr1) * shape, m1 + (m0 - m1) * shape
            else:
                lr, mom = lr0 + (lr1 - lr0) * pct, m0 + (m1 - m0) * pct
            return lr, (mom if s.cycle_momentum else None)
        start = end
    raise AssertionError("unreachable")


def clip(rule: Any, grads: Params) -> Params:
    if isinstance(rule, optim.ClipGradNorm):
        norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
        return {n: g * min(1.0, rule.max_norm / (norm + 1e-6)) for n, g in grads.items()}
    if isinstance(rule, optim.ClipGradValue):
        return {n: np.clip(g, -rule.clip_value, rule.clip_value) for n, g in grads.items()}
    return grads


def step(spec: Any, p: np.ndarray, g: np.ndarray, state: dict[str, Any], t: int, lr: float,
         momentum: float | None) -> np.ndarray:
    """One parameter's update; ``state`` (this parameter's buffers) is updated in place."""
    if isinstance(spec, optim.SGD):
        mu = spec.momentum if momentum is None else momentum
        d = g + spec.weight_decay * p
        if mu != 0:
            state["buf"] = d.copy() if t == 0 else mu * state["buf"] + (1 - spec.dampening) * d
            d = d + mu * state["buf"] if spec.nesterov else state["buf"]
        return p - lr * d
    if isinstance(spec, (optim.Adam, optim.AdamW)):
        b1 = spec.betas[0] if momentum is None else momentum
        b2 = spec.betas[1]
        if isinstance(spec, optim.AdamW):
            p = p * (1 - lr * spec.weight_decay)
        else:
            g = g + spec.weight_decay * p
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        v = state["v"]
        if spec.amsgrad:
            state["vmax"] = v = np.maximum(state.get("vmax", 0.0), v)
        m_hat = state["m"] / (1 - b1 ** (t + 1))
        v_hat = v / (1 - b2 ** (t + 1))
        return p - lr * m_hat / (np.sqrt(v_hat) + spec.eps)
    if isinstance(spec, optim.RMSprop):
        mu = spec.momentum if momentum is None else momentum
        g = g + spec.weight_decay * p
        state["v"] = spec.alpha * state.get("v", 0.0) + (1 - spec.alpha) * g * g
        v = state["v"]
        if spec.centered:
            state["gavg"] = spec.alpha * state.get("gavg", 0.0) + (1 - spec.alpha) * g
            v = v - state["gavg"] ** 2
        d = g / (np.sqrt(v) + spec.eps)
        if mu > 0:
            state["buf"] = mu * state.get("buf", 0.0) + d
            d = state["buf"]
        return p - lr * d
    if isinstance(spec, optim.Adagrad):
        g = g + spec.weight_decay * p
        state["sum"] = state.get("sum", spec.initial_accumulator_value) + g * g
        return p - lr / (1 + t * spec.lr_decay) * g / (np.sqrt(state["sum"]) + spec.eps)
    raise TypeError(spec)


def train(config: Any, params: Params, batches: list[tuple[np.ndarray, np.ndarray]], *, spe: int) -> Params:
    """The lab's network trained in float64 NumPy on ``batches`` (the lab's derivation for the gradients)."""
    params = {n: np.array(v, dtype=np.float64) for n, v in params.items()}
    states: dict[str, dict[str, Any]] = {n: {} for n in params}
    for t, (X, Y) in enumerate(batches):
        _, grads = oracle.gradients(params, X, Y, reduction=config.loss_reduction)
        grads = clip(config.clip, grads)
        lr, momentum = lr_and_momentum(config, t, spe)
        params = {n: step(config.optimizer, params[n], grads[n], states[n], t, lr, momentum) for n in params}
    return params
