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

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages.stage3_flax import canonical, evaluate, gradients, grads_of, init_model, trace  # stage 3's


def init_optimizer(eta: float) -> optax.GradientTransformation:
    return optax.sgd(learning_rate=eta)


@struct.dataclass
class State:
    """Stage 3's split model (static ``graphdef``, ``params``) and the optimizer's state."""

    graphdef: Any = struct.field(pytree_node=False)
    params: nnx.State
    opt_state: optax.OptState


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> State:
    """The kit's canonical parameters as the split model, and the optimizer's initial state."""
    graphdef, flax_params = nnx.split(init_model(params, dtype=config.dtype, model=config.model), nnx.Param)
    flax_params = jax.device_put(flax_params, device)
    return State(graphdef, flax_params, init_optimizer(config.eta).init(flax_params))


def make_step(config: TrainConfig) -> Callable[[State, jax.Array, jax.Array], State]:
    """One training step: the gradients, then ``tx.update`` and ``optax.apply_updates`` (the optimizer holds eta)."""
    tx = init_optimizer(config.eta)

    def step(state: State, X: jax.Array, Y: jax.Array) -> State:
        _, grads = grads_of(state, X, Y, reduction=config.loss_reduction)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return State(state.graphdef, optax.apply_updates(state.params, updates), opt_state)

    return step


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return canonical(state.params)


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/optax") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, shares={"forward": "jax/flax", "gradients": "jax/flax"}, has_model=True)
