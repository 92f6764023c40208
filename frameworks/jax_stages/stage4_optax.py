"""Stage 4 (JAX): the update by ``optax.sgd``.

The twin of ``torch_stages/stage4_optim.py``: the model, loss and gradients of
stage 3, unchanged, and an Optax optimizer. Optax is functional where
``torch.optim`` is stateful: ``tx.update(grads, opt_state)`` returns the updates
and the new optimizer state, and ``optax.apply_updates`` adds them to the
parameters. (NNX also wraps this in ``nnx.Optimizer``; the kit keeps the
functional form so the whole epoch can be jitted and scanned.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from flax import nnx, struct

from frameworks import optim
from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._optax_port import optax_from_torch
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages.stage3_flax import (  # stage 3's
    canonical,
    evaluate,
    gradients,
    grads_of,
    native_dropout,
    split,
    trace,
)


def init_optimizer(eta: float, config: TrainConfig | None = None, steps_per_epoch: int = 1
                   ) -> optax.GradientTransformation:
    """``optax.sgd``, the lab's; another optimizer, schedule or clipping of the config: the Optax chain that
    makes PyTorch's updates (``frameworks.port.optax_from_torch``)."""
    if config is None or (config.optimizer == optim.SGD() and config.schedule is None and config.clip is None):
        return optax.sgd(learning_rate=eta)
    return optax_from_torch(config.optimizer, lr=eta, schedule=config.schedule, clip=config.clip,
                            steps_per_epoch=steps_per_epoch)


@struct.dataclass
class State:
    """Stage 3's split model (static ``graphdef``, ``params``, dropout's ``key``) and the optimizer's state."""

    graphdef: Any = struct.field(pytree_node=False)
    params: nnx.State
    key: jax.Array
    opt_state: optax.OptState
    arch: Architecture = struct.field(pytree_node=False, default=LAB)


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> State:
    """The kit's canonical parameters as the split model, and the optimizer's initial state."""
    graphdef, flax_params = split(config, params, device)
    key = jax.device_put(jax.random.key(config.seed), device)
    return State(graphdef, flax_params, key, init_optimizer(config.eta, config).init(flax_params), config.arch)


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., State]:
    """One training step: the gradients, then ``tx.update`` and ``optax.apply_updates`` (the optimizer holds eta)."""
    tx = init_optimizer(config.eta, config, steps_per_epoch)
    native = native_dropout(config)

    def step(state: State, X: jax.Array, Y: jax.Array, masks: tuple = ()) -> State:
        key, dropout_key = jax.random.split(state.key) if native else (state.key, None)
        _, grads = grads_of(state, X, Y, reduction=config.loss_reduction, masks=masks, key=dropout_key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return State(state.graphdef, optax.apply_updates(state.params, updates), key, opt_state, state.arch)

    return step


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return canonical(state.params, state.arch)


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/optax") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, shares={"forward": "jax/flax", "gradients": "jax/flax"}, has_model=True)
