"""The counter-based noise: the unrolled Threefry hash and the variates built from it."""

import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p
from scipy import special, stats

from jaxescape import _noise


def test_unrolled_threefry_equals_jax_primitive_bit_for_bit():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 2**32, 2, dtype=np.uint32)
    counters = rng.integers(0, 2**32, (2, 4096), dtype=np.uint32)
    expected = threefry2x32_p.bind(
        jnp.uint32(key[0]), jnp.uint32(key[1]), jnp.asarray(counters[0]), jnp.asarray(counters[1])
    )
    actual = _noise.threefry_2x32(
        jnp.uint32(key[0]), jnp.uint32(key[1]), jnp.asarray(counters[0]), jnp.asarray(counters[1])
    )
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def test_normals_from_words_are_standard_normal():
    """KS test of 2·10^5 variates from consecutive counters (fixed key): p > 0.01."""
    words = _noise.threefry_2x32(
        jnp.uint32(1), jnp.uint32(2), jnp.zeros(200_000, jnp.uint32),
        jnp.arange(200_000, dtype=jnp.uint32),
    )[0]
    normals = np.asarray(_noise.normal_from_uniform(_noise.uniform_from_words(words, jnp.float32)))
    assert stats.kstest(normals, "norm").pvalue > 0.01


def test_float32_normals_match_the_exact_quantile_for_every_uniform():
    """All 2^23 float32 uniforms k·2^-23: |z − Φ⁻¹(u)| <= 1e-6 (Φ⁻¹ from scipy in float64;
    u = 0 is mapped to 2^-25), and the transform is odd about u = 1/2."""
    uniforms = np.arange(2**23, dtype=np.float64) * 2.0**-23
    normals = np.asarray(_noise.normal_from_uniform(jnp.asarray(uniforms, jnp.float32)))
    exact = special.ndtri(np.maximum(uniforms, 2.0**-25))
    assert np.max(np.abs(normals - exact)) <= 1e-6
    np.testing.assert_array_equal(normals[1:], -normals[1:][::-1])
