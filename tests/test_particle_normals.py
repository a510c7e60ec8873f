"""The optimizer's normals of a network-sized SGD particle, drawn as one vector
(`particle_normals`), are the values drawn one scalar at a time, up to the last bit (XLA's
vectorised log and sqrt may round differently from the scalar ones: ≤ 1 ulp, measured on 3 of
64 values), and the same on every call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxescape import _noise


@pytest.mark.parametrize("count", [1, 65])
def test_vector_normals_equal_the_unrolled_ones(count):
    dtype = jnp.zeros(()).dtype
    streams = _noise.num_streams(count, dtype)
    keys = jax.random.bits(jax.random.key(count), (streams, 2), jnp.uint32)
    particle, step = jnp.uint32(12345), jnp.uint32(77)

    def unrolled(keys):
        uniforms = _noise.particle_uniforms(keys, particle, step, dtype)
        return jnp.stack([_noise.normal_from_uniform(u) for u in uniforms[:count]])

    expected = np.asarray(jax.jit(unrolled)(keys))
    ulp = np.spacing(np.abs(expected).astype(expected.dtype))
    vector = jax.jit(lambda keys: _noise.particle_normals(keys, particle, step, count, dtype))
    assert np.all(np.abs(np.asarray(vector(keys)) - expected) <= ulp)
    np.testing.assert_array_equal(np.asarray(vector(keys)), np.asarray(vector(keys)))
    # ... and inside a vmap over particles, as the engine runs them.
    batch = jax.jit(jax.vmap(lambda k: _noise.particle_normals(k, particle, step, count, dtype)))
    assert np.all(np.abs(np.asarray(batch(keys[None])[0]) - expected) <= ulp)


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_sde_variates_above_the_unrolled_limit_are_the_unrolled_values(distribution):
    # An SDE with more than UNROLLED_VARIATES normals a step (e.g. MinibatchNoiseSDE with
    # per_sample_noise: one per sample) draws them as one vector; the bridge uniform follows.
    dtype = jnp.zeros(()).dtype
    count = _noise.UNROLLED_VARIATES + 37
    streams = _noise.num_streams(count + 1, dtype)
    keys = jax.random.bits(jax.random.key(3), (streams, 2), jnp.uint32)
    particle, step = jnp.uint32(9), jnp.uint32(1001)
    transform = (_noise.rademacher_from_uniform if distribution == "rademacher"
                 else _noise.normal_from_uniform)

    def unrolled(keys):
        uniforms = _noise.particle_uniforms(keys, particle, step, dtype)
        return jnp.stack([transform(u) for u in uniforms[:count]]), uniforms[count]

    expected, expected_uniform = (np.asarray(value) for value in jax.jit(unrolled)(keys))
    normals, uniform = jax.jit(lambda keys: _noise.particle_variates(
        keys, particle, step, count, dtype, distribution))(keys)
    assert normals.shape == (count,)
    ulp = np.spacing(np.abs(expected).astype(expected.dtype))
    assert np.all(np.abs(np.asarray(normals) - expected) <= ulp)
    assert float(uniform) == float(expected_uniform)
