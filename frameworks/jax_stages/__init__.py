"""The four stages mirrored in JAX: manual jax.numpy, jax.grad, Flax NNX, Optax.

Imported only when one of them is asked for (``frameworks.get("jax/...")``).
"""
