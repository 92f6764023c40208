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
import jax.numpy as jnp
import optax
from flax import nnx, struct

from frameworks import optim
from frameworks._arch import LAB, Architecture
from frameworks._config import TrainConfig
from frameworks._optax_port import buffers, optax_from_torch, with_buffers
from frameworks._params import Params
from frameworks._stage import Stage
from frameworks.jax_stages import _backend as backend
from frameworks.jax_stages import optimizers
from frameworks.jax_stages.stage3_flax import (  # stage 3's
    canonical,
    evaluate,
    gradients,
    grads_of,
    like_params,
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
    """Stage 3's split model (static ``graphdef``, ``params``, dropout's ``key``), the optimizer's state and
    the count of updates (``steps``, for checkpoints: Optax's own counts live inside the chain)."""

    graphdef: Any = struct.field(pytree_node=False)
    params: nnx.State
    key: jax.Array
    opt_state: optax.OptState
    arch: Architecture = struct.field(pytree_node=False, default=LAB)
    steps: jax.Array = struct.field(default_factory=lambda: jnp.zeros((), jnp.int32))
    spec: optim.Optimizer | None = struct.field(pytree_node=False, default=None)  # None: the lab's SGD


def load(params: Params, config: TrainConfig, device: jax.Device | None = None) -> State:
    """The kit's canonical parameters as the split model, and the optimizer's initial state."""
    graphdef, flax_params = split(config, params, device)
    key = backend.random_key(config.seed, device)
    return State(graphdef, flax_params, key, init_optimizer(config.eta, config).init(flax_params), config.arch,
                 jnp.zeros((), jnp.int32), None if optimizers.is_lab(config) else config.optimizer)


def make_step(config: TrainConfig, steps_per_epoch: int = 1) -> Callable[..., State]:
    """One training step: the gradients, then ``tx.update`` and ``optax.apply_updates`` (the optimizer holds eta)."""
    tx = init_optimizer(config.eta, config, steps_per_epoch)
    native = native_dropout(config)

    def step(state: State, X: jax.Array, Y: jax.Array, masks: tuple = ()) -> State:
        key, dropout_key = jax.random.split(state.key) if native else (state.key, None)
        _, grads = grads_of(state, X, Y, reduction=config.loss_reduction, masks=masks, key=dropout_key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return State(state.graphdef, optax.apply_updates(state.params, updates), key, opt_state, state.arch,
                     state.steps + 1, state.spec)

    return step


def export(state: State) -> Params:
    """The model's parameters as canonical float64 NumPy arrays."""
    return canonical(state.params, state.arch)


def save_optimizer(state: State) -> dict | None:
    """The Optax chain's buffers in the canonical layout, by PyTorch's names (zeros for a buffer PyTorch's
    optimizer would have and this chain has not, e.g. Adam's max_exp_avg_sq); None for the lab's SGD."""
    if state.spec is None:
        return None
    found = {name: canonical(tree, state.arch) for name, tree in buffers(state.opt_state).items()}
    zeros = {name: 0 * value for name, value in canonical(state.params, state.arch).items()}
    names = optimizers.init(state.spec, {"w": jnp.zeros(())})  # the buffers PyTorch's optimizer keeps
    return {"step": int(state.steps), "buffers": {name: found.get(name, zeros) for name in names}}


def restore_optimizer(state: State, saved: dict) -> State:
    """The chain's state with a checkpoint's buffers and its counts set to the checkpoint's step."""
    present = buffers(state.opt_state)
    trees = {name: like_params(saved["buffers"][name], tree, state.arch) for name, tree in present.items()}
    opt_state = with_buffers(state.opt_state, trees, saved["step"])
    return State(state.graphdef, state.params, state.key, opt_state, state.arch,
                 jnp.asarray(saved["step"], jnp.int32), state.spec)


# ---------------------------------------------------------------------------------------------------------------
# The kit's contract: what frameworks.get("jax/optax") runs.

STAGE = Stage(backend=backend, load=load, step=make_step, evaluate=evaluate, gradients=gradients, trace=trace,
              export=export, shares={"forward": "jax/flax", "gradients": "jax/flax"}, has_model=True,
              save_optimizer=save_optimizer, restore_optimizer=restore_optimizer)
