"""A real ``torch.optim`` optimizer and ``lr_scheduler`` read back as :mod:`frameworks.optim` specs."""

from __future__ import annotations

from typing import Any

from frameworks import optim
from frameworks._errors import KitError


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
    states = [optimizer.state[p] for p in group["params"]]
    if any(float(s.get("step", 0)) > 0 or s.get("momentum_buffer") is not None for s in states):
        raise KitError("the optimizer has already stepped (it holds buffers): translate it before training, or "
                       "carry its state through a kit checkpoint.")
    if scheduler is not None and scheduler.last_epoch > 0:
        raise KitError(f"the scheduler has already stepped {scheduler.last_epoch} times: translate it fresh.")
    if group.get("maximize") or group.get("differentiable"):
        raise KitError("maximize=True and differentiable=True have no counterpart in the kit.")
    kind = type(optimizer).__name__
    names = {"SGD": ("momentum", "dampening", "weight_decay", "nesterov"),
             "Adam": ("betas", "eps", "weight_decay", "amsgrad"), "AdamW": ("betas", "eps", "weight_decay", "amsgrad"),
             "RMSprop": ("alpha", "eps", "weight_decay", "momentum", "centered"),
             "Adagrad": ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")}
    if kind not in names:
        raise KitError(f"the kit translates {', '.join(names)}, not {kind}.")
    if kind == "Adam" and group.get("decoupled_weight_decay"):
        kind = "AdamW"  # torch.optim.Adam(decoupled_weight_decay=True) is AdamW
    from torch.optim.lr_scheduler import OneCycleLR

    cycled = isinstance(scheduler, OneCycleLR) and scheduler.cycle_momentum

    def value(name: str) -> Any:
        # the group's own value; OneCycleLR rewrites the group's momentum or beta1, the defaults keep the given one
        source = optimizer.defaults if cycled and name in ("momentum", "betas") else group
        return tuple(source[name]) if name == "betas" else source[name]

    spec = optim.OPTIMIZERS[kind](**{name: value(name) for name in names[kind]})
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


