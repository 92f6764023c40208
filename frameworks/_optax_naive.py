"""The naive port of torch.optim to Optax: what a person writes from the two libraries' docs.

``optax.adamw(lr)`` for ``AdamW(lr)``, ``optax.rmsprop(lr)``, ``optax.adagrad(lr)``,
``optax.cosine_decay_schedule`` for ``CosineAnnealingLR``, ``optax.clip_by_global_norm``
for ``clip_grad_norm_``...: each library's defaults kept where the PyTorch code left its own
implicit. ``frameworks.optim_traps`` runs each beside the exact chain
(``frameworks._optax_port``) and measures where it leaves it.
"""

from __future__ import annotations

from typing import Any

import optax

from frameworks import optim
from frameworks._errors import KitError

Schedule = Any


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




def naive_text(spec: optim.Optimizer, schedule: optim.Schedule | None = None, clip: optim.Clip | None = None) -> str:
    """:func:`naive_optax` in words: the translation table's column."""
    given = {f for f in spec.__dataclass_fields__ if getattr(spec, f) != type(spec).__dataclass_fields__[f].default}
    if isinstance(spec, optim.SGD):
        text = f"sgd(momentum={spec.momentum:g})" if spec.momentum else "sgd"
        text = f"add_decayed_weights -> {text}" if spec.weight_decay else text
    elif isinstance(spec, optim.AdamW) or (isinstance(spec, optim.Adam) and spec.weight_decay):
        text = f"adamw(weight_decay={spec.weight_decay:g})" if "weight_decay" in given else "adamw (weight_decay 1e-4)"
    elif isinstance(spec, optim.Adam):
        text = "amsgrad" if spec.amsgrad else "adam"
    elif isinstance(spec, optim.RMSprop):
        text = "rmsprop (" + (f"decay={spec.alpha:g}" if "alpha" in given else "decay 0.9") + ", eps in the sqrt)"
    else:
        text = "adagrad (" + ("" if "initial_accumulator_value" in given else "accumulator from 0.1, ") + \
            "eps in the sqrt" + (", no lr_decay" if spec.lr_decay else "") + ")"
    words = {optim.StepLR: "exponential_decay (smooth)", optim.ExponentialLR: "exponential_decay (smooth)",
             optim.MultiStepLR: "piecewise_constant_schedule", optim.LinearLR: "linear_schedule over the updates",
             optim.CosineAnnealingLR: "cosine_decay_schedule over the updates",
             optim.OneCycleLR: "cosine_onecycle_schedule (no momentum cycle)", optim.SequentialLR: "join_schedules"}
    if schedule is not None:
        text += f" with {words[type(schedule)]}"
    if clip is not None:
        text = ("clip_by_global_norm" if isinstance(clip, optim.ClipGradNorm) else "clip") + f" -> {text}"
    return text
