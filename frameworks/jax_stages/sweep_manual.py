"""Stage 1 for a sweep: many runs of the hand-written network at once, the runs as the last axis.

``jax.vmap`` of a whole run (``sweep.py``) turns each of the lab's tiny products, ``X Wh^T``
for a batch of 10 rows of 2 inputs and 10 hidden units, into a batched matrix product:
one 10x2 by 2x10 product a run, which a CPU computes one run after the other, paying a
product's overhead for 200 multiply-adds. Here every array carries the runs as its last
axis, and each product is written as the sum of its broadcast multiply-adds:

    htilde[b, j, r] = sum_i X[b, i, r] Wh[j, i, r] + bh[j, r]

one multiply-add over all (b, j, r) for each i: elementwise loops over a thousand runs,
which XLA fuses and vectorizes along the runs. The math is stage 1's, line for line
(``stage1_manual.py``): only the layout changes, and with it the order of the sums, so a
run here equals its single ``train`` to a few ulp, not bit for bit. Each run keeps its own
batch order (the rows of an epoch gathered once, before its steps), its own learning rate
and its own last finite epoch.

Measured (``bench --sweep 1000``): the lab's circles network, 1000 runs, in about a fifth
of the time of the vmapped run. Used for ``sweep("jax/manual", ...)`` with the lab's plain
SGD, no LayerNorm or dropout, and every dimension of the products at most :data:`SMALL`
(beyond it the program grows with each size, and XLA's matrix products win).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from frameworks._arch import Architecture
from frameworks._config import TrainConfig
from frameworks._params import Params
from frameworks.jax_stages.layers import ACTIVATIONS, DERIVATIVES

#: The largest input count, width, class count or batch size written as broadcast multiply-adds.
SMALL = 64


def supports(config: TrainConfig, nx: int, ny: int) -> bool:
    """The lab's plain SGD on the lab's model, no LayerNorm or dropout, every product's dimensions small."""
    from frameworks.optim import SGD

    return (config.optimizer == SGD() and config.schedule is None and config.clip is None and not config.dropout
            and not config.norm and config.model == "lab"
            and max(nx, ny, config.batch_size, *config.arch.hidden) <= SMALL)


def _sum(terms: Iterable[jax.Array]) -> jax.Array:
    """``t0 + t1 + ...``, left to right: elementwise adds, which XLA fuses into one loop."""
    it = iter(terms)
    total = next(it)
    for term in it:
        total = total + term
    return total


def times_transposed(A: jax.Array, W: jax.Array) -> jax.Array:
    """``A W^T`` for every run: A (B, n, R) (or (B, n, 1): one matrix for all runs), W (m, n, R) -> (B, m, R)."""
    return _sum(A[:, k, None, :] * W[None, :, k, :] for k in range(W.shape[1]))


def times(A: jax.Array, W: jax.Array) -> jax.Array:
    """``A W`` for every run: A (B, m, R), W (m, n, R) -> (B, n, R)."""
    return _sum(A[:, k, None, :] * W[None, k, :, :] for k in range(W.shape[0]))


def transposed_times(D: jax.Array, H: jax.Array) -> jax.Array:
    """``D^T H`` for every run, a sum over the batch's rows: D (B, m, R), H (B, n, R) -> (m, n, R)."""
    return _sum(D[b, :, None, :] * H[b, None, :, :] for b in range(D.shape[0]))


def forward(params: dict, X: jax.Array, arch: Architecture) -> tuple[jax.Array, list]:
    """The logits ytilde (B, ny, R), and each hidden layer's input, z and h, for the backward pass."""
    h, layers = X, []
    for k, f in enumerate(arch.activations):
        names = arch.hidden_names(k)
        z = times_transposed(h, params[names["W"]]) + params[names["b"]][None]  # htilde = h_prev W^T + b
        layers.append((h, z, ACTIVATIONS[f](z)))
        h = layers[-1][2]
    return times_transposed(h, params["Wy"]) + params["by"][None], layers


def step(params: dict, X: jax.Array, Y: jax.Array, eta: jax.Array, arch: Architecture, reduction: str) -> dict:
    """One step of every run: stage 1's backward pass and gradient descent, each run with its own eta (R,)."""
    ytilde, layers = forward(params, X, arch)
    B = Y.shape[0] if reduction == "mean" else 1
    dytilde = (jax.nn.softmax(ytilde, axis=1) - Y) / B  # dL/dytilde, softmax and cross-entropy together
    grads = {"Wy": transposed_times(dytilde, layers[-1][2]), "by": _sum(dytilde)}  # _sum of the rows
    dh = times(dytilde, params["Wy"])
    for k in reversed(range(arch.depth)):
        h_prev, z, h = layers[k]
        names = arch.hidden_names(k)
        dz = dh * DERIVATIVES[arch.activations[k]](z, h)  # tanh' = 1 - tanh^2, ...
        grads[names["W"]], grads[names["b"]] = transposed_times(dz, h_prev), _sum(dz)
        if k:
            dh = times(dz, params[names["W"]])
    return {name: params[name] - eta * grads[name] for name in params}


def evaluate(params: dict, X: jax.Array, Y: jax.Array, arch: Architecture) -> tuple[jax.Array, jax.Array]:
    """Every run's mean loss and accuracy (R,) on a whole set X (N, nx), Y (N, ny), shared by the runs."""
    ytilde, _ = forward(params, X[:, :, None], arch)
    L = -(Y[:, :, None] * jax.nn.log_softmax(ytilde, axis=1)).sum(axis=1).mean(axis=0)
    acc = (ytilde.argmax(axis=1) == Y.argmax(axis=1)[:, None]).astype(ytilde.dtype).mean(axis=0)
    return L, acc


@partial(jax.jit, static_argnames=("arch", "reduction"))
def train(params: dict, rows: jax.Array, etas: jax.Array, data: tuple, *, arch: Architecture,
          reduction: str) -> tuple[dict, jax.Array, jax.Array]:
    """Every run's whole training: ``params`` (runs last), ``rows`` (R, epochs, batches, B) each run's batches,
    ``etas`` (R,), ``data`` (Xtrain, Ytrain, Xtest, Ytest[, Xval, Yval]). Returns each run's parameters after its
    last finite epoch, the epoch it diverged at (0: never) and the metrics (epochs, metrics, R)."""
    Xtrain, Ytrain = data[0], data[1]

    def epoch(carry: tuple, epoch_rows: jax.Array) -> tuple[tuple, jax.Array]:
        params, last, diverged, e = carry
        X = jnp.moveaxis(Xtrain[epoch_rows], 0, -1)  # (batches, B, nx, R): the epoch's rows, gathered once
        Y = jnp.moveaxis(Ytrain[epoch_rows], 0, -1)
        params, _ = jax.lax.scan(lambda p, xy: (step(p, *xy, etas, arch, reduction), None), params, (X, Y))
        metrics = jnp.stack([m for X, Y in zip(data[0::2], data[1::2]) for m in evaluate(params, X, Y, arch)])
        finite = jnp.all(jnp.isfinite(metrics), axis=0)
        fine = finite & (diverged == 0)
        last = {name: jnp.where(fine, p, last[name]) for name, p in params.items()}
        diverged = jnp.where(~finite & (diverged == 0), e + 1, diverged)
        return (params, last, diverged, e + 1), metrics

    zero = jnp.zeros(etas.shape, jnp.int32)
    (_, last, diverged, _), metrics = jax.lax.scan(epoch, (params, params, zero, jnp.int32(0)),
                                                   jnp.moveaxis(rows, 1, 0))
    return last, diverged, metrics


def stack(starts: list[Params], dtype: np.dtype) -> dict[str, np.ndarray]:
    """The runs' canonical parameters, each with the runs as its last axis."""
    return {name: np.stack([p[name] for p in starts], axis=-1).astype(dtype) for name in starts[0]}


def unstack(params: dict) -> list[Params]:
    """Each run's canonical float64 parameters back from the runs-last arrays (one transfer a parameter)."""
    arrays = {name: np.asarray(jax.device_get(value), dtype=np.float64) for name, value in params.items()}
    runs = next(iter(arrays.values())).shape[-1]
    return [{name: np.ascontiguousarray(value[..., r]) for name, value in arrays.items()} for r in range(runs)]


def runner(config: TrainConfig, fallback: Callable[..., Any]) -> Callable[..., Any]:
    """jax/manual's epoch runner (``Stage.runner``): a single run is a sweep of one, so ``train`` of the
    configs this program supports runs it with one run (one epoch of the lab's circles in a third of the time
    of the fused ``lax.scan`` of stage 1's step: a handful of fused elementwise loops a step where the
    matrix products are a score of small operations); ``fallback`` (the backend's runner of stage 1's
    step) otherwise: larger products, another optimizer, LayerNorm or dropout, ``fuse=False``, several devices.
    Same contract: ``run(net, data, batches, masks=()) -> (net, metrics)``, ``run.compiled_in``."""
    from frameworks.jax_stages._backend import AheadOfTime
    from frameworks.jax_stages.stage1_manual import Net

    if not config.fuse or config.devices != 1:
        return fallback
    program = AheadOfTime(train, arch=config.arch, reduction=config.loss_reduction)

    def run(net: Any, data: tuple, batches: np.ndarray, masks: tuple = ()) -> tuple[Any, Any]:
        nx, ny = data[0].shape[1], data[1].shape[1]
        if masks or not supports(config, nx, ny):
            state, metrics = fallback(net, data, batches, masks)
            run.compiled_in = fallback.compiled_in  # type: ignore[attr-defined]
            return state, metrics
        params = {name: value[..., None] for name, value in net.params.items()}  # one run: a last axis of 1
        eta = jnp.full((1,), config.eta, data[0].dtype)
        last, _, metrics = program(params, np.asarray(batches, dtype=np.int32)[None], eta, data)
        run.compiled_in = program.compiled_in  # type: ignore[attr-defined]
        metrics = np.asarray(metrics, dtype=np.float64)[:, :, 0].tolist()
        return Net({name: value[..., 0] for name, value in last.items()}, net.arch, net.opt), metrics

    run.compiled_in = 0.0  # type: ignore[attr-defined]
    return run
