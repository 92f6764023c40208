"""Stage 4 (JAX): the update by ``optax.sgd``.

The twin of ``torch_stages/stage4_optim.py``: the model and loss of stage 3,
and an Optax optimizer. Optax is functional where ``torch.optim`` is stateful:
``tx.update(grads, opt_state)`` returns the updates and the new optimizer
state, and ``optax.apply_updates`` adds them to the parameters. (NNX also
wraps this in ``nnx.Optimizer``; the kit keeps the functional form so the
whole epoch can be jitted and scanned.)
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from flax import nnx, struct

from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages.stage3_flax import canonical, evaluate, gradients, grads_of, init_model, trace


def init_optimizer(eta: float) -> optax.GradientTransformation:
    return optax.sgd(learning_rate=eta)


# The kit's contract: what frameworks.get("jax/optax") runs.


@struct.dataclass
class State:
    """The split model (static ``graphdef``, ``params``), the optimizer ``tx`` and its state."""

    graphdef: Any = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    params: nnx.State
    opt_state: optax.OptState


def prepare(params: Params, config: TrainConfig, device: jax.Device) -> State:
    graphdef, flax_params = nnx.split(init_model(params, dtype=config.dtype, model=config.model), nnx.Param)
    flax_params = jax.device_put(flax_params, device)
    tx = init_optimizer(config.eta)
    return State(graphdef, tx, flax_params, tx.init(flax_params))


def make_step(config: TrainConfig):
    def step(state: State, X: jax.Array, Y: jax.Array) -> State:
        _, grads = grads_of(state, X, Y, reduction=config.loss_reduction)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state)

    return step


def export(state: State) -> Params:
    return canonical(state.params)


__all__ = ["State", "backend", "evaluate", "export", "gradients", "init_optimizer", "make_step", "prepare", "trace"]
