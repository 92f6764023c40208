"""A cross-framework reimplementation kit for the one-hidden-layer MLP of the RDFIA lab.

    x -> Linear -> tanh -> Linear -> softmax, cross-entropy, minibatch SGD

in eight implementations (the lab's four PyTorch stages and their JAX twins),
which compute the same function, the same gradients and the same training run;
and for the MLPs people port beyond it (``TrainConfig(hidden=(128, 64),
activation="relu", norm="layer", dropout=0.1)``: any depth, seven activations,
LayerNorm, dropout with shared masks).

Importing this package imports neither PyTorch nor JAX: a framework is loaded
when one of its implementations is first used.

    >>> import frameworks
    >>> data = frameworks.load_dataset("circles")
    >>> result = frameworks.get("jax/optax").train(data, frameworks.TrainConfig(epochs=5))

Each implementation is a :class:`Stage` (the typed contract at the bottom of its
stage module); ``frameworks.register("mine/x", stage)`` adds one of your own.
"""

import logging

from frameworks._arch import ACTIVATIONS, Architecture
from frameworks._batches import BatchOrder
from frameworks._checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from frameworks._config import TrainConfig
from frameworks._data import Dataset, load_dataset
from frameworks._errors import KitError
from frameworks._params import Params, init_params
from frameworks._registry import (
    FRAMEWORKS,
    IMPLEMENTATIONS,
    MODULE_STAGES,
    STAGES,
    Implementation,
    get,
    implementations,
    native_init,
    register,
    unregister,
)
from frameworks._stage import Stage
from frameworks._sweep import SweepResult, SweepRun, sweep
from frameworks._training import METRICS, TrainResult

__all__ = [
    "ACTIVATIONS",
    "FRAMEWORKS",
    "IMPLEMENTATIONS",
    "METRICS",
    "MODULE_STAGES",
    "STAGES",
    "Architecture",
    "BatchOrder",
    "Checkpoint",
    "Dataset",
    "Implementation",
    "KitError",
    "Params",
    "Stage",
    "SweepResult",
    "SweepRun",
    "TrainConfig",
    "TrainResult",
    "get",
    "implementations",
    "init_params",
    "load_checkpoint",
    "load_dataset",
    "native_init",
    "register",
    "save_checkpoint",
    "sweep",
    "unregister",
]
__version__ = "0.1.0"

# The kit logs through the "frameworks" logger (and its children), silent unless the application configures
# logging (the command line's -v does): the library's convention, a NullHandler and no level set.
logging.getLogger(__name__).addHandler(logging.NullHandler())
