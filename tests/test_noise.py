"""The counter-based noise: the unrolled Threefry hash and the variates built from it."""

import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p
from scipy import stats

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
