"""The unrolled per-particle reductions equal jnp's reductions."""

import jax.numpy as jnp
import numpy as np
import pytest

# Internal machinery under test (not exported): the engine's fused coordinate loops.
from jaxescape._fused import MAX_UNROLLED, coordinate_all, coordinate_sum, dot


@pytest.mark.parametrize("shape", [(1,), (3,), (10,), (4, 7), (MAX_UNROLLED,), (MAX_UNROLLED + 5,)])
def test_coordinate_sum_matches_jnp_sum(shape):
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    np.testing.assert_allclose(coordinate_sum(x), jnp.sum(x, axis=-1), rtol=1e-6, atol=1e-6)


def test_dot_matches_jnp_dot():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=10), rng.normal(size=10)
    np.testing.assert_allclose(dot(jnp.asarray(a), jnp.asarray(b)), a @ b, rtol=1e-6)


@pytest.mark.parametrize("size", [0, 1, 5, MAX_UNROLLED + 1])
def test_coordinate_all_matches_jnp_all(size):
    x = jnp.ones(size, bool)
    assert bool(coordinate_all(x))
    if size:
        assert not bool(coordinate_all(x.at[size - 1].set(False)))
        assert not bool(coordinate_all(x.at[0].set(False)))
