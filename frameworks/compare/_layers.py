"""What Flax's layer defaults would change in this run's network, measured on its first batch.

A port that keeps each library's defaults computes another function: ``nnx.gelu`` is
the tanh approximation where ``nn.GELU()`` is exact, ``nnx.LayerNorm`` adds eps 1e-6
where ``nn.LayerNorm`` adds 1e-5. The kit builds Flax's layers with PyTorch's
choices; this section of the report measures, on the inputs those layers see in
this run, how far the defaults would have moved them (``frameworks.layer_traps``).
"""

from __future__ import annotations

from frameworks import layer_traps, oracle
from frameworks._config import TrainConfig
from frameworks._data import Dataset


def layer_defaults(dataset: Dataset, config: TrainConfig) -> list[str]:
    """The report's section on the GELU and LayerNorm defaults (empty for a network with neither)."""
    from frameworks.parity import first_batch

    arch = config.arch
    if "gelu" not in arch.activations and not arch.norm:
        return []
    params, X, _, _ = first_batch(dataset, config)
    values = oracle.forward(params, X, arch)
    names = arch.trace_names
    found = []
    if "gelu" in arch.activations:
        name = next(n for n in names if n.endswith(".gelu"))
        inputs = values[names[names.index(name) - 1]].ravel()
        gap = layer_traps.gelu_gap(inputs)
        found.append(
            f"`nnx.gelu` defaults to the tanh approximation, `nn.GELU()` is exact: on the inputs of `{name}` in this "
            f"run's first batch the two differ by up to {gap['max_gap']:.1e} (at x = {gap['at']:.2f}); with "
            f"`approximate=False`, as the kit builds it, by {gap['exact_gap']:.1e}.")
    if arch.norm:
        name = next(n for n in names if n.endswith(".layer_norm"))
        gap = layer_traps.layer_norm_gap(values[names[names.index(name) - 1]])
        found.append(
            f"`nnx.LayerNorm` adds eps {gap['flax_eps']:g} to the variance, `nn.LayerNorm` {gap['torch_eps']:g}: on "
            f"the inputs of `{name}` the outputs differ by up to {gap['default_gap']:.1e} (relative); given PyTorch's "
            f"eps, as the kit builds it, by {gap['same_eps_gap']:.1e}.")
    return ["### Flax's layer defaults, on this network", "", " ".join(found), ""]


def optimizer_port(dataset: Dataset, config: TrainConfig) -> list[str]:
    """For a run with another optimizer, schedule or clipping than the lab's SGD: the exact Optax chain jax/optax
    trained with, and where the naive Optax port of the same PyTorch setup leaves it on this run (float64)."""
    from frameworks import optim_traps
    from frameworks.optim import SGD

    if config.optimizer == SGD() and config.schedule is None and config.clip is None:
        return []
    if config.dropout:
        return ["### The optimizer in Optax, exactly and naively", "",
                "Not measured for a network with dropout: `python -m frameworks optimizers` compares the exact and "
                "the naive chains on runs without it.", ""]
    row = optim_traps.measure(dataset, config)
    where = (f"after update {row.first_step} of {row.steps} (`{row.tensor}`, {row.error:.1e} relative)"
             if row.first_step is not None else f"nowhere in its {row.steps} updates")
    return ["### The optimizer in Optax, exactly and naively", "",
            f"PyTorch: `{row.pytorch}`. `jax/optax` trains with the exact chain `{row.exact}` (`*`: built by the kit, "
            f"no Optax piece computes PyTorch's formula). The naive port, `{row.naive}`, leaves it {where}; final "
            f"test accuracy {row.exact_acc:.3f} exact, {row.naive_acc:.3f} naive (float64, `python -m frameworks "
            "optimizers` for every row).", ""]
