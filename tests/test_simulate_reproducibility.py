"""Bit-for-bit reproducibility: the noise of particle i at step n is a pure function of
(key, first_particle + i, n), so neither chunking, nor the pool size, nor the harvest interval,
nor splitting a run by `first_particle` may change any number. Also: the pooled driver equals a
plain one-particle-at-a-time loop.

Every distinct (chunk capacity, pool size, crossing_correction, model) compiles the kernel anew
(seconds each on CPU; so does each check_every), so the variants below are few and chosen to cover:
several chunks with a short last one, pool smaller than the chunk, pool shrinking in the tail
(4096 → 256), check_every 1, 7 and the default 32,
first_particle offsets.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape import _noise


NUM_PARTICLES = 3000
DT = 0.04
MAX_STEPS = 300  # about half the particles are censored: every status occurs


@functools.cache
def problem():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    return landscape, dynamics, jxe.past_saddle(landscape)


def run(key=7, num_particles=NUM_PARTICLES, **options):
    landscape, dynamics, criterion = problem()
    return jxe.simulate(
        dynamics, criterion, landscape.minimum(), jax.random.key(key),
        num_particles=num_particles, dt=DT, max_steps=MAX_STEPS, **options,
    )


@functools.cache
def reference():
    """Default chunking; pool min(default, 4096) = 4096, shrinking to 256 in the tail."""
    result = run(num_slots=4096)
    assert 0.2 < result.censored.mean() < 0.8 and result.escaped.any()
    return result


def assert_identical(result, expected):
    assert result.dt == expected.dt
    for name in ("escape_step", "boundary", "censored", "diverged", "position"):
        actual, wanted = getattr(result, name), getattr(expected, name)
        assert actual.dtype == wanted.dtype and actual.shape == wanted.shape, name
        np.testing.assert_array_equal(actual, wanted, err_msg=name)


@pytest.mark.parametrize(
    "options",
    [
        dict(chunk_size=1000),  # three chunks, pool 1024
        dict(chunk_size=777, num_slots=256, check_every=7),  # last chunk short, pool < chunk
        dict(num_slots=512, check_every=1),
        dict(num_slots=4096, check_every=50),  # a divisor of MAX_STEPS
    ],
    ids=["three-chunks", "short-last-chunk-small-pool", "check-every-step", "check-every-50"],
)
def test_chunking_pool_size_and_check_interval_do_not_change_any_number(options):
    assert_identical(run(**options), reference())


def test_simulate_chunks_joined_equal_simulate_whose_arrays_are_writable():
    """`simulate` returns each wave's rows of the host buffers without joining chunks; its arrays
    are ordinary writable NumPy arrays, like `simulate_chunks`' joined."""
    landscape, dynamics, criterion = problem()
    chunks = list(jxe.simulate_chunks(
        dynamics, criterion, landscape.minimum(), jax.random.key(7),
        num_particles=NUM_PARTICLES, dt=DT, max_steps=MAX_STEPS, chunk_size=1000))
    assert [offset for offset, _ in chunks] == [0, 1000, 2000]
    assert_identical(jxe.concatenate_results([chunk for _, chunk in chunks]), reference())
    for name in ("escape_step", "boundary", "censored", "diverged", "position"):
        assert getattr(reference(), name).flags.writeable, name


def test_without_positions_the_escape_records_are_the_same():
    """`keep_positions=False` keeps no positions (shape (N, 0)) and changes no other number,
    chunked or not, through `simulate_chunks` too; a non-boolean is named before running."""
    expected = reference()
    for options in (dict(num_slots=4096), dict(chunk_size=777, num_slots=256, check_every=7)):
        result = run(keep_positions=False, **options)
        assert result.position.shape == (NUM_PARTICLES, 0)
        assert_identical(result, expected._replace(position=expected.position[:, :0]))
    landscape, dynamics, criterion = problem()
    chunks = [chunk for _, chunk in jxe.simulate_chunks(
        dynamics, criterion, landscape.minimum(), jax.random.key(7), keep_positions=False,
        num_particles=NUM_PARTICLES, dt=DT, max_steps=MAX_STEPS, chunk_size=1000)]
    assert [chunk.position.shape for chunk in chunks] == [(1000, 0)] * 3
    with pytest.raises(TypeError, match="keep_positions must be True or False, got 'no'"):
        run(keep_positions="no")


def test_default_check_every_splits_max_steps_into_equal_rounds_of_at_most_32():
    from jaxescape._engine import default_check_every

    for steps in (*range(1, 200), 1009, 4096, 10**6 + 3):
        every = default_check_every(steps)
        rounds = -(-steps // every)
        assert 1 <= every <= 32 and rounds == -(-steps // 32), steps
        assert 0 <= rounds * every - steps < rounds, steps  # idles less than a step per round
    assert default_check_every(4) == 4 and default_check_every(100) == 25
    # few values, so runs of different lengths share compilations: 17 to 32 beyond 32 steps
    assert {default_check_every(steps) for steps in range(33, 10**4)} == set(range(17, 33))


def test_first_particle_offsets_split_a_run_exactly():
    half = NUM_PARTICLES // 2
    first = run(num_particles=half)
    second = run(num_particles=half, first_particle=half)
    joined = [np.concatenate([a, b]) for a, b in zip(first[:-1], second[:-1])]
    assert_identical(jxe.EscapeResult(*joined, first.dt), reference())


def test_censored_and_escaped_particles_are_consistent():
    result = reference()
    assert np.all(result.escape_step[result.censored] == MAX_STEPS)
    assert np.all((result.escape_step[result.escaped] >= 1)
                  & (result.escape_step[result.escaped] <= MAX_STEPS))
    assert np.all(result.boundary[result.censored] == -1)
    assert np.all(result.boundary[result.escaped] == 0)
    assert not result.diverged.any()
    np.testing.assert_array_equal(result.escape_time, result.escape_step * result.dt)


def test_different_keys_give_different_particles():
    other = run(key=8, num_slots=4096)
    expected = reference()
    assert np.all(other.position != expected.position)  # continuous: no coincidences
    # ... and the same statistics (the censored fraction, binomial SE).
    difference = other.censored.mean() - expected.censored.mean()
    p = expected.censored.mean()
    assert abs(difference) < 4 * np.sqrt(2 * p * (1 - p) / NUM_PARTICLES)


def test_pooled_driver_equals_a_one_particle_loop():
    """A 2-D model (three variates per step: two normals and the bridge uniform, two Threefry
    streams) stepped particle by particle in a Python loop with the engine's noise function."""
    landscape = jxe.AnisotropicWell(1.0, 4.0, jnp.array([2.0]))
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    criterion = jxe.past_saddle(landscape)
    start, key, num_particles, max_steps = landscape.minimum(), jax.random.key(3), 6, 400
    result = jxe.simulate(
        dynamics, criterion, start, key, num_particles=num_particles, dt=DT,
        max_steps=max_steps, first_particle=10,
    )
    keys = _noise.stream_keys(key, _noise.num_streams(3, jnp.float32))
    dt = jnp.float32(DT)

    @jax.jit
    def step(y, particle, n):
        normals, uniform = _noise.particle_variates(keys, particle, n, 2, jnp.float32)
        new, _ = jxe.euler_maruyama_step(dynamics, n.astype(jnp.float32) * dt, y, dt, normals)
        variance = 2 * dynamics.temperature  # |g·n|² for g = √(2T), unit normal
        probability = criterion.crossing_probability(y, new, lambda normal: variance, dt)
        return new, criterion.is_outside(new) | (uniform < probability)

    for index in range(num_particles):
        y, n, escaped = start, 0, False
        while not escaped and n < max_steps:
            y, escaped = step(y, jnp.uint32(10 + index), jnp.int32(n))
            n += 1
        assert result.escape_step[index] == n, index
        assert result.censored[index] == (not escaped)
        np.testing.assert_allclose(result.position[index], y, rtol=1e-6, atol=1e-6)
    assert result.escaped.any()
