"""Counter-based noise: particle i's random numbers at step n are a pure function of (key, i, n).

One Threefry-2x32 hash of the counter (n, i) gives two 32-bit words, i.e. two float32 variates
(or one float64). That is the same hash count per variate as `jax.random.normal` with partitionable
Threefry (which XORs the two words away), with no per-particle `fold_in`. Because a particle's
noise depends only on its global index and its own step count, results do not depend on chunk
size, on the number of working slots, on device count, or on the order particles are scheduled.
"""

import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax


def _rotate_left(x: jax.Array, distance: int) -> jax.Array:
    return (x << jnp.uint32(distance)) | (x >> jnp.uint32(32 - distance))


def threefry_2x32(key_high, key_low, counter_high, counter_low) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), bit-identical to JAX's primitive.

    Written out in `jnp` operations rather than calling `threefry2x32_p`, whose CPU lowering is a
    rolled loop: unrolled, XLA fuses the hash with the normal transform and the particle step
    into one kernel (no nested loop, no intermediate arrays).
    """
    keys = (key_high, key_low, key_high ^ key_low ^ jnp.uint32(0x1BD11BDA))
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    x0, x1 = counter_high + keys[0], counter_low + keys[1]
    for block in range(5):
        for distance in rotations[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, distance) ^ x0
        x0 = x0 + keys[(block + 1) % 3]
        x1 = x1 + keys[(block + 2) % 3] + jnp.uint32(block + 1)
    return x0, x1


def stream_keys(key: jax.Array, num_streams: int) -> jax.Array:
    """Raw uint32 key words, shape (num_streams, 2): one independent stream per hash of a step."""
    return jnp.stack([jr.key_data(jr.fold_in(key, stream)) for stream in range(num_streams)])


def words_per_step(num_values: int, dtype) -> int:
    """Number of 32-bit words that `num_values` variates of `dtype` need."""
    return num_values * (2 if jnp.dtype(dtype).itemsize == 8 else 1)


def num_streams(num_values: int, dtype) -> int:
    """Number of Threefry hashes per step (each gives two words)."""
    return -(-words_per_step(num_values, dtype) // 2)


def uniform_from_words(words: jax.Array, dtype) -> jax.Array:
    """Uniform variates in [0, 1): one per word for float32, one per word pair for float64."""
    if jnp.dtype(dtype).itemsize == 8:
        pairs = words.reshape(-1, 2).astype(jnp.uint64)
        bits = (pairs[:, 0] << jnp.uint64(32)) | pairs[:, 1]
        mantissa = (bits >> jnp.uint64(12)) | jnp.uint64(0x3FF0000000000000)
        return lax.bitcast_convert_type(mantissa, jnp.float64) - 1.0
    mantissa = (words >> jnp.uint32(9)) | jnp.uint32(0x3F800000)
    return lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


# Giles (2010), "Approximating the erfinv function" (GPU Computing Gems Jade, ch. 10): the
# single-precision polynomials in w − 2.5 (w < 5) and sqrt(w) − 3 (w >= 5), w = −log(1 − x²).
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def normal_from_uniform(uniform: jax.Array) -> jax.Array:
    """Standard normal variates Φ⁻¹(u) = sqrt(2)·erfinv(2u − 1).

    float32: Giles's (2010) erfinv with 1 − x² = 4u(1 − u) formed from u, which is exact up to
    one rounding (from x = 2u − 1 it cancels near |x| = 1); u = 0 maps to Φ⁻¹(2^-25). Its error is
    in docs/THEORY.md §9.4 (measured: benchmarks/README.md §1). float64: `lax.erf_inv`, with
    u = 0 mapped to Φ⁻¹(2^-54).
    """
    dtype = uniform.dtype
    if jnp.dtype(dtype).itemsize == 8:
        lowest = jnp.nextafter(jnp.asarray(-1.0, dtype), jnp.asarray(0.0, dtype))
        symmetric = jnp.maximum(2 * uniform - 1, lowest)
        return jnp.sqrt(jnp.asarray(2.0, dtype)) * lax.erf_inv(symmetric)
    w = -jnp.log(jnp.maximum(4 * uniform * (1 - uniform), jnp.float32(2.0**-23)))
    central = w < 5
    argument = jnp.where(central, w - 2.5, jnp.sqrt(w) - 3)
    polynomial = jnp.where(central, jnp.float32(_ERFINV_CENTRAL[0]), jnp.float32(_ERFINV_TAIL[0]))
    for central_coefficient, tail_coefficient in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:]):
        coefficient = jnp.where(central, jnp.float32(central_coefficient),
                                jnp.float32(tail_coefficient))
        polynomial = coefficient + polynomial * argument
    return jnp.float32(2**0.5) * polynomial * (2 * uniform - 1)


def rademacher_from_uniform(uniform: jax.Array) -> jax.Array:
    """±1 with probability ½ each (the sign of u − ½): mean 0, variance 1, third moment 0."""
    return jnp.where(uniform < 0.5, -1.0, 1.0).astype(uniform.dtype)


def particle_uniforms(
    keys: jax.Array, particle_index: jax.Array, step: jax.Array, dtype
) -> list[jax.Array]:
    """The uniforms of one particle at one step (no batch axis), a scalar each.

    Hash k of the step gives words k and len(keys) + k; float32 takes one word per uniform,
    float64 a pair of consecutive words. One variate at a time, stacked by the caller: on CPU,
    XLA vectorises each over the particles, where transforming a stacked (particles, words)
    array is slower (measured: benchmarks/README.md §1).
    """
    counter_high, counter_low = step.astype(jnp.uint32), particle_index.astype(jnp.uint32)
    hashes = [
        threefry_2x32(key_high, key_low, counter_high, counter_low) for key_high, key_low in keys
    ]
    words = [first for first, _ in hashes] + [second for _, second in hashes]
    if jnp.dtype(dtype).itemsize == 8:
        words = [jnp.stack(words[index : index + 2]) for index in range(0, len(words), 2)]
    return [uniform_from_words(word, dtype).reshape(()) for word in words]


# Up to this many values a step's variates are drawn one scalar at a time (fastest on a CPU,
# benchmarks/README.md §1); above it as one vector (`particle_uniform_vector`: the same values up
# to the last bit), so that a program's size does not grow with the number of variates.
UNROLLED_VARIATES = 64


def particle_uniform_vector(
    keys: jax.Array, particle_index: jax.Array, step: jax.Array, dtype
) -> jax.Array:
    """The uniforms of `particle_uniforms` as one vector, hashed by one vmapped Threefry call."""
    counter_high, counter_low = step.astype(jnp.uint32), particle_index.astype(jnp.uint32)
    first, second = jax.vmap(
        lambda key: threefry_2x32(key[0], key[1], counter_high, counter_low))(keys)
    return uniform_from_words(jnp.concatenate([first, second]), dtype)


def particle_normals(
    keys: jax.Array, particle_index: jax.Array, step: jax.Array, count: int, dtype
) -> jax.Array:
    """`count` standard normals of one particle at one step, drawn as one vector: the values
    of `normal_from_uniform` over `particle_uniforms` up to the last bit (XLA's vectorised log
    may round differently, ≤ 1 ulp), for large counts (e.g. one per parameter of a network),
    where one unrolled hash per pair of values makes the compiled program, and its compile
    time, grow with the count."""
    return normal_from_uniform(particle_uniform_vector(keys, particle_index, step, dtype)[:count])


def particle_variates(
    keys: jax.Array, particle_index: jax.Array, step: jax.Array, num_normals: int, dtype,
    distribution: str = "gaussian",
) -> tuple[jax.Array, jax.Array]:
    """`num_normals` standardised increments and one uniform for one particle at one step.

    The increments are standard normals, or Rademacher signs with `distribution="rademacher"`.
    Above `UNROLLED_VARIATES` increments they are drawn as one vector (the same values, ≤ 1 ulp).
    """
    transform = rademacher_from_uniform if distribution == "rademacher" else normal_from_uniform
    if num_normals > UNROLLED_VARIATES:
        uniforms = particle_uniform_vector(keys, particle_index, step, dtype)
        return transform(uniforms[:num_normals]), uniforms[num_normals]
    uniforms = particle_uniforms(keys, particle_index, step, dtype)
    return jnp.stack([transform(u) for u in uniforms[:num_normals]]), uniforms[num_normals]


def stable_from_uniforms(angle_uniform: jax.Array, exponential_uniform: jax.Array,
                         alpha) -> jax.Array:
    r"""Standard symmetric α-stable variates from two uniforms in [0, 1) (Chambers, Mallows &
    Stuck 1976; Weron 1996 for the symmetric case).

    The parametrisation is `scipy.stats.levy_stable`'s S1 (= S0 for β = 0) with scale 1:
    $E\,e^{iuZ} = e^{-|u|^\alpha}$, α ∈ (0, 2]. α = 2 gives N(0, 2) (variance 2, not 1),
    α = 1 the standard Cauchy law. With V uniform on (−π/2, π/2) and W standard exponential,

    $$Z = \frac{\sin(\alpha V)}{(\cos V)^{1/\alpha}}
          \left(\frac{\cos((1 - \alpha) V)}{W}\right)^{(1 - \alpha)/\alpha}.$$

    Each uniform u = k·2^-m (m = 23 for float32, 52 for float64) is moved to the cell midpoint
    u + 2^-(m+1) ∈ (0, 1), so V never reaches ±π/2 and W is never 0; cos V is formed as
    sin(π·min(u, 1 − u)) (> 0 in floating point, where cos of a rounded V near π/2 can be
    negative), and the product is taken in log space, so only variates beyond the dtype's
    range overflow.

    **Arguments:**

    - `angle_uniform`, `exponential_uniform`: uniforms in [0, 1) of one dtype (same shape).
    - `alpha`: the stability index in (0, 2] (scalar or broadcastable array; traced).

    **Returns:** the variates, the uniforms' shape and dtype.
    """
    dtype = angle_uniform.dtype
    half_cell = jnp.asarray(2.0 ** -(53 if jnp.dtype(dtype).itemsize == 8 else 24), dtype)
    alpha = jnp.asarray(alpha, dtype)
    u = angle_uniform + half_cell
    distance = jnp.minimum(u, 1 - u)  # V = ±(π/2 − π·distance), exact in (0, 1/2]
    pi = jnp.asarray(jnp.pi, dtype)
    v = pi / 2 - pi * distance  # |V|
    w = -jnp.log(exponential_uniform + half_cell)
    log_magnitude = (
        jnp.log(jnp.sin(alpha * v)) - jnp.log(jnp.sin(pi * distance)) / alpha
        + (1 - alpha) / alpha * (jnp.log(jnp.cos((1 - alpha) * v)) - jnp.log(w))
    )
    return jnp.where(u < 0.5, -1, 1).astype(dtype) * jnp.exp(log_magnitude)


def positive_stable_from_uniforms(angle_uniform: jax.Array, exponential_uniform: jax.Array,
                                  alpha) -> jax.Array:
    r"""Positive α-stable variates A with $E\,e^{-\lambda A} = e^{-\lambda^\alpha}$, α ∈ (0, 1]
    (Chambers, Mallows & Stuck 1976 with β = 1; Kanter 1975), from two uniforms in [0, 1).

    With V uniform on (−π/2, π/2) and W standard exponential,

    $$A = \frac{\sin(\alpha(V + \pi/2))}{(\cos V)^{1/\alpha}}
          \left(\frac{\cos(V - \alpha(V + \pi/2))}{W}\right)^{(1 - \alpha)/\alpha},$$

    `scipy.stats.levy_stable`(α, β = 1) with scale cos(πα/2)^{1/α}; α = 1 gives A = 1. Then
    $\sqrt{A}\,G$, A of index α/2 and G ~ N(0, 2I), is the isotropic α-stable vector with
    $E\,e^{iu\cdot X} = e^{-|u|^\alpha}$ (Samorodnitsky & Taqqu 1994, Prop. 2.5.2). Uniforms
    are moved to cell midpoints and the product is formed in log space, as in
    `stable_from_uniforms`.

    **Arguments:** `angle_uniform`, `exponential_uniform`: uniforms in [0, 1) of one dtype;
    `alpha` in (0, 1].

    **Returns:** the variates (> 0), the uniforms' shape and dtype.
    """
    dtype = angle_uniform.dtype
    half_cell = jnp.asarray(2.0 ** -(53 if jnp.dtype(dtype).itemsize == 8 else 24), dtype)
    alpha = jnp.asarray(alpha, dtype)
    pi = jnp.asarray(jnp.pi, dtype)
    u = angle_uniform + half_cell  # V + π/2 = π·u
    w = -jnp.log(exponential_uniform + half_cell)
    # sin(x) as sin(π·min(x/π, 1 − x/π)), and cos(V − α(V + π/2)) = sin(π(1 − α)u): exact
    # near x = π in floating point (α = 1 gives A = 1 for every u).
    def sin_pi(fraction):
        return jnp.sin(pi * jnp.minimum(fraction, 1 - fraction))

    log_ratio = jnp.log(sin_pi((1 - alpha) * u)) - jnp.log(w)
    log_value = (
        jnp.log(sin_pi(alpha * u)) - jnp.log(sin_pi(u)) / alpha
        + jnp.where(alpha < 1, (1 - alpha) / alpha * log_ratio, 0)  # α = 1: sin(0) = 0
    )
    return jnp.exp(log_value)
