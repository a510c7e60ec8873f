r"""Counter-based random permutations: element j of a random permutation of {0, …, n−1} in O(1).

SGD without replacement visits the data set in a fresh random order every epoch. Storing one
permutation per particle would cost n integers per particle; instead the order is a keyed
bijection evaluated on demand: a Feistel network with modular addition on a grid a × b (any
round functions give a bijection; Luby & Rackoff 1988; Black & Rogaway 2002). With a·b = n (most
data-set sizes factor) it is a permutation of [0, n) in one pass; otherwise a·b > n and it is
restricted to [0, n) by cycle walking (apply it again until the value lands in range).
The round function is a 32-bit multiply–xorshift mixer keyed by two words from Threefry, so a
particle's order in an epoch depends only on (key, particle, epoch).
"""

import math

import jax
import jax.numpy as jnp
from jax import lax


# Feistel rounds, for data sets larger than _SMALL (grids of at least 8 x 8). Measured with
# chi-square tests over 10^5 keys (tests/test_permutation.py): positions and ordered pairs are
# uniform. On tiny grids (3 x 3) even 24 rounds left all 7! orders measurably non-uniform, which
# is why small data sets rank random words instead.
_NUM_ROUNDS = 12
_ROUNDS_PER_ITERATION = 4  # a divisor of _NUM_ROUNDS, even (`_feistel`)
_SMALL = 65
_LANES = 8  # uint32 lanes of a 256-bit vector, the width XLA's CPU code uses
# Minibatch sizes B whose rows of indices XLA's CPU loops vectorise badly, batched over
# particles (measured: benchmarks/README.md §3): rows shorter than two vectors and not a whole
# one, and B = 19–23, 29–31. They are computed with the particles on the last axis
# (`_particles_last`).
_SLOW_ROWS = frozenset(
    [size for size in range(1, 2 * _LANES) if size % _LANES] + [*range(19, 24), *range(29, 32)]
)


def _by_ranks(index: jax.Array, size: int, key_words: jax.Array) -> jax.Array:
    """Small sets: the order of n random words, by counting ranks (O(n²) compares, no sort).

    Word ties are broken by position, so the ranks are always a permutation; a tie has
    probability < n²/2^33 < 1e-6.
    """
    positions = jnp.arange(size, dtype=jnp.uint32)
    words = mix(positions * jnp.uint32(0x9E3779B9) + key_words[0], key_words[1])
    before = (words[None, :] < words[:, None]) | (
        (words[None, :] == words[:, None]) & (positions[None, :] < positions[:, None])
    )
    ranks = jnp.sum(before, axis=1, dtype=jnp.uint32)  # rank of each element
    return jnp.sum(jnp.where(ranks[None, :] == index[:, None], positions[None, :], 0), axis=1,
                   dtype=jnp.uint32)


def mix(x: jax.Array, key: jax.Array) -> jax.Array:
    """A keyed 32-bit avalanche mixer (the murmur3 finaliser of x xor key)."""
    x = (x ^ key) * jnp.uint32(0x9E3779B1)
    x = x ^ (x >> jnp.uint32(16))
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> jnp.uint32(13))
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> jnp.uint32(16))


def _factors(size: int) -> tuple[int, int, bool]:
    """A grid a × b ≥ size for the Feistel halves, and whether it needs cycle walking.

    The most balanced exact factorisation a·b = size when one exists with b <= 16a (then no
    walking at all: every evaluation is one pass); otherwise a = b = ceil(sqrt(size)).
    """
    root = math.isqrt(size)
    for a in range(root, 1, -1):
        if size % a == 0 and size // a <= 16 * a:
            return a, size // a, False
    a = max(2, root + (root * root < size))
    return a, max(2, -(-size // a)), True


def _feistel(x: jax.Array, left_size: int, right_size: int, round_keys: jax.Array) -> jax.Array:
    """A keyed bijection of [0, left_size·right_size): a Feistel network with modular addition.

    On a CPU the rounds run four per iteration of a loop: unrolled, XLA fuses all twelve into
    one loop over the indices whose chain of dependent multiplies runs slower (measured:
    benchmarks/README.md §3). The same values either way."""
    left, right = x // jnp.uint32(right_size), x % jnp.uint32(right_size)

    def rounds(index, halves):
        left, right = halves
        for pair in range(_ROUNDS_PER_ITERATION // 2):
            first = _ROUNDS_PER_ITERATION * index + 2 * pair
            left = _add_mod(left, mix(right, round_keys[first]) % jnp.uint32(left_size),
                            left_size)
            right = _add_mod(right, mix(left, round_keys[first + 1]) % jnp.uint32(right_size),
                             right_size)
        return left, right

    iterations = _NUM_ROUNDS // _ROUNDS_PER_ITERATION
    if jax.default_backend() == "cpu":
        left, right = lax.fori_loop(0, iterations, rounds, (left, right))
    else:  # an accelerator fuses the rounds into its step kernel: no loop
        for index in range(iterations):
            left, right = rounds(index, (left, right))
    return left * jnp.uint32(right_size) + right


def _add_mod(a: jax.Array, b: jax.Array, size: int) -> jax.Array:
    """(a + b) mod size for a, b in [0, size): one compare and subtract, not a remainder."""
    total = a + b
    return jnp.where(total >= jnp.uint32(size), total - jnp.uint32(size), total)


def permuted_index(index: jax.Array, size: int, key_words: jax.Array) -> jax.Array:
    """π(index) for the random permutation π of [0, size) selected by `key_words` (2 uint32).

    `index` is a uint32 array with values in [0, size); `size` is a static Python int.
    """
    if size < _SMALL:
        return _by_ranks(index, size, key_words)
    if jax.default_backend() == "cpu" and index.size in _SLOW_ROWS:
        return _particles_last(size)(index, key_words)
    return _permuted(index, size, key_words)


def _particles_last(size: int):
    """`_permuted`, whose batched form computes with the batch (particle) axis last.

    Batched over particles, a minibatch's B indices form an array (particles, B), and XLA's CPU
    loops vectorise its rows. Some row lengths (`_SLOW_ROWS`: B < 16 not a multiple of 8,
    19–23, 29–31) vectorised badly: LLVM packed 8 rows into each vector with scalar loads and
    stores. With the particles last, the rounds run on whole vectors, and one transposed copy
    returns the rows (measured for B from 1 to 100: benchmarks/README.md §3). The same values:
    each index is computed alone.
    """

    @jax.custom_batching.custom_vmap
    def permuted(index, key_words):
        return _permuted(index, size, key_words)

    @permuted.def_vmap
    def permuted_batched(axis_size, in_batched, index, key_words):
        index, key_words = (
            value if batched else jnp.broadcast_to(value, (axis_size,) + value.shape)
            for value, batched in zip((index, key_words), in_batched)
        )
        # key_words (2, …, particles) broadcasts against index (…, particles) from the right
        value = permuted(jnp.moveaxis(index, 0, -1), jnp.moveaxis(key_words, 0, -1))
        return _rows_copy(value), True

    return permuted


def _rows_copy(value: jax.Array) -> jax.Array:
    """`moveaxis(value, -1, 0)`, copied into row-major order.

    A bare transpose costs nothing in XLA: layout assignment gives `value` the column-major
    layout instead, and the gathers that read the indices then read them strided, slower than
    the copy. A loop's flat carry has one layout, so the transpose into it is a copy; its trip
    count, 1, is computed from the data so that XLA cannot remove the loop.
    """
    rows = jnp.moveaxis(value, -1, 0)
    once = ((value.reshape(-1)[0] | jnp.uint32(1)) & jnp.uint32(1)).astype(jnp.int32)
    flat = lax.fori_loop(0, once, lambda _, __: rows.reshape(-1),
                         jnp.zeros(value.size, value.dtype))
    return flat.reshape(rows.shape)


def _permuted(index: jax.Array, size: int, key_words: jax.Array) -> jax.Array:
    """The Feistel permutation of [0, size), restricted to it by cycle walking if needed."""
    left_size, right_size, walk_needed = _factors(size)
    round_keys = jnp.stack([
        mix(key_words[0] + jnp.uint32(0x9E3779B9 * (round_index + 1) % 2**32), key_words[1])
        for round_index in range(_NUM_ROUNDS)
    ])
    value = _feistel(index, left_size, right_size, round_keys)
    if not walk_needed:
        return value

    def outside(value):
        return jnp.any(value >= size)

    def walk(value):
        return jnp.where(value >= size, _feistel(value, left_size, right_size, round_keys), value)

    return lax.while_loop(outside, walk, value)
