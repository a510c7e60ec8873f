"""Small per-particle reductions written as chains of elementwise operations.

Inside the vmapped step, a reduction over a particle's few coordinates (n·y, |gᵀn|², "all
finite") becomes a batched reduce. XLA's CPU backend hands such reduces to a library kernel
that does not fuse with the elementwise step around it, so every step pays extra passes over
the pool. Written as a chain of adds over the static coordinate axis, the reduction fuses into
the step's loop (measured: benchmarks/README.md §2). Larger axes keep the library reduction.
"""

import functools
import operator

import jax
import jax.numpy as jnp


MAX_UNROLLED = 32


def coordinate_sum(x: jax.Array) -> jax.Array:
    """Sum over the last axis; unrolled when it has at most `MAX_UNROLLED` entries."""
    if x.ndim == 0:
        return x
    if x.shape[-1] > MAX_UNROLLED:
        return jnp.sum(x, axis=-1)
    return functools.reduce(operator.add, [x[..., i] for i in range(x.shape[-1])])


def coordinate_all(x: jax.Array) -> jax.Array:
    """Logical and over every entry; unrolled when there are at most `MAX_UNROLLED`."""
    flat = jnp.reshape(x, (-1,))
    if flat.shape[0] > MAX_UNROLLED:
        return jnp.all(flat)
    if flat.shape[0] == 0:
        return jnp.ones((), bool)
    return functools.reduce(operator.and_, [flat[i] for i in range(flat.shape[0])])


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """a · b over the last axis (see `coordinate_sum`)."""
    return coordinate_sum(a * b)
