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

from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages.stage3_flax import canonical, evaluate, gradients, grads_of, split, trace  # stage 3's


def init_optimizer(eta: float) -> optax.GradientTransformation:
    return optax.sgd(learning_rate=eta)


@struct.dataclass
class State:
    """Stage 3's split model (static ``graphdef``, ``params``, ``rngs``) and the optimizer's state."""

    graphdef: Any = struct.field(pytree_node=False)
    params: nnx.State
    rngs: nnx.State
    opt_state: optax.OptState
    arch: Architecture = struct.field(pytree_node=False, default=LAB)


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> State:
    """The kit's canonical parameters as the split model, and the optimizer's initial state."""
    graphdef, flax_params, rngs = split(config, params, device)
    return State(graphdef, flax_params, rngs, init_optimizer(config.eta).init(flax_params), config.arch)


def make_step(config: TrainConfig) -> Callable[..., State]:
    """One training step: the gradients, then ``tx.update`` and ``optax.apply_updates`` (the optimizer holds eta)."""
    tx = init_optimizer(config.eta)

    def step(state: State, X: jax.Array, Y: jax.Array, masks: tuple = ()) -> State:
        _, grads, rngs = grads_of(state, X, Y, reduction=config.loss_reduction, masks=masks)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return State(state.graphdef, optax.apply_updates(state.params, updates), rngs, opt_state, state.arch)

    return step


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return canonical(state.params, state.arch)


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/optax") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, shares={"forward": "jax/flax", "gradients": "jax/flax"}, has_model=True)
