"""Conversion of numeric hyperparameters to arrays, so that sweeping them never recompiles."""

import jax.numpy as jnp


def float_array(value):
    """`value` as a JAX array of the default floating dtype (float32, or float64 under x64)."""
    return jnp.asarray(value, dtype=jnp.result_type(float))
