"""Counter-based permutations: bijections, and uniform orders (chi-square over fixed keys)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

# Internal machinery under test (not exported): the counter-based permutation of MinibatchSGD.
from jaxescape._sgd.permutation import permuted_index


def permutations(size, num_keys=50_000, seed=1):
    keys = jax.random.bits(jax.random.key(seed), (num_keys, 2), jnp.uint32)
    indices = jnp.arange(size, dtype=jnp.uint32)
    return np.asarray(jax.vmap(lambda key: permuted_index(indices, size, key))(keys))


@pytest.mark.parametrize("size", [1, 2, 7, 64, 65, 101, 1000, 997])
def test_every_key_gives_a_permutation(size):
    orders = permutations(size, num_keys=200)
    np.testing.assert_array_equal(np.sort(orders, axis=1), np.broadcast_to(np.arange(size),
                                                                           orders.shape))


@pytest.mark.parametrize("size", [3, 5])
def test_small_sets_every_order_equally_likely(size):
    orders = permutations(size)
    codes = {order: index for index, order in enumerate(itertools.permutations(range(size)))}
    counts = np.bincount([codes[tuple(order)] for order in orders], minlength=len(codes))
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("size", [65, 100, 101])
def test_large_sets_ordered_pairs_uniform(size):
    """Feistel sizes (exact grid 65 = 5 × 13, 100 = 10 × 10; cycle walking for prime 101)."""
    orders = permutations(size, num_keys=100_000)
    pairs = np.bincount(orders[:, 5] * size + orders[:, 6], minlength=size * size)
    off_diagonal = pairs.reshape(size, size)[~np.eye(size, dtype=bool)]
    assert scipy.stats.chisquare(off_diagonal).pvalue > 1e-3
    assert scipy.stats.chisquare(np.bincount(orders[:, 0], minlength=size)).pvalue > 1e-3
