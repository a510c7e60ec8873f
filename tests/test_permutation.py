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


def _numpy_mix(x, key):
    """The murmur3 finaliser of x xor key (multiply, then xor with a right shift, three times)."""
    x = x ^ key
    with np.errstate(over="ignore"):  # uint32 products wrap, as in JAX
        for multiplier, shift in ((0x9E3779B1, 16), (0x85EBCA6B, 13), (0xC2B2AE35, 16)):
            x = x * np.uint32(multiplier)
            x = x ^ (x >> np.uint32(shift))
    return x


def _numpy_permuted_index(index, size, key_words):
    """The Feistel permutation written out in NumPy, rounds unrolled, plain remainders."""
    from jaxescape._sgd.permutation import _NUM_ROUNDS, _factors

    left_size, right_size, _ = _factors(size)
    key_words = np.asarray(key_words, np.uint32)
    with np.errstate(over="ignore"):
        round_keys = [_numpy_mix(key_words[0] + np.uint32(0x9E3779B9 * (r + 1) % 2**32),
                                 key_words[1]) for r in range(_NUM_ROUNDS)]

    def feistel(x):
        left, right = x // np.uint32(right_size), x % np.uint32(right_size)
        for r, key in enumerate(round_keys):
            if r % 2 == 0:
                left = (left + _numpy_mix(right, key) % np.uint32(left_size)) % np.uint32(left_size)
            else:
                right = (right + _numpy_mix(left, key) % np.uint32(right_size)) % np.uint32(
                    right_size)
        return left * np.uint32(right_size) + right

    value = feistel(np.asarray(index, np.uint32))
    while np.any(value >= size):  # cycle walking
        value = np.where(value >= size, feistel(value), value)
    return value


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
@pytest.mark.parametrize("size", [65, 1000, 101, 997])
def test_feistel_equals_the_unrolled_numpy_reference(size, backend, monkeypatch):
    """The rounds run in a loop on a CPU and unrolled on an accelerator (`_feistel`); both give
    the values of the plain unrolled network (so a change of form changes no number)."""
    monkeypatch.setattr(jax, "default_backend", lambda: backend)  # "gpu": the unrolled form
    keys = np.asarray(jax.random.bits(jax.random.key(3), (20, 2), jnp.uint32))
    indices = np.arange(size, dtype=np.uint32)
    # A new function per call: traced now, under this backend (no cached trace).
    function = jax.vmap(lambda key: permuted_index(jnp.asarray(indices), size, key))
    assert ("scan" in str(jax.make_jaxpr(function)(keys))) == (backend == "cpu")  # the form
    actual = jax.jit(function)(keys)
    expected = [_numpy_permuted_index(indices, size, key) for key in keys]
    np.testing.assert_array_equal(np.asarray(actual), np.stack(expected))


@pytest.mark.parametrize("size", [1000, 997])
@pytest.mark.parametrize("batch", [1, 5, 10, 12, 20, 31])
def test_particles_last_form_equals_the_numpy_reference(size, batch, monkeypatch):
    """On a CPU the batches of indices that rows vectorise badly (B < 16 not a multiple of 8,
    19–23, 29–31) are computed with the particles on the last axis (`_particles_last`); batched
    once or twice, with the indices shared or per particle, every value is the plain network's."""
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")  # the form chosen on a CPU
    keys = np.asarray(jax.random.bits(jax.random.key(4), (3, 7, 2), jnp.uint32))
    starts = np.array([0, size - batch, size // 2], np.uint32)
    slots = starts[:, None] + np.arange(batch, dtype=np.uint32)  # one row per outer batch
    expected = np.stack([
        np.stack([_numpy_permuted_index(slots[outer], size, key) for key in keys[outer]])
        for outer in range(3)
    ])
    per_particle = jax.jit(jax.vmap(jax.vmap(
        lambda index, key: permuted_index(index, size, key), in_axes=(None, 0))))
    assert "custom_vmap" in str(jax.make_jaxpr(
        jax.vmap(lambda key: permuted_index(jnp.asarray(slots[0]), size, key)))(keys[0]))
    np.testing.assert_array_equal(np.asarray(per_particle(slots, keys)), expected)
    shared = jax.jit(jax.vmap(lambda key: permuted_index(jnp.asarray(slots[1]), size, key)))
    np.testing.assert_array_equal(np.asarray(shared(keys[1])), expected[1])
