"""The accelerator code paths of the engine's sizing, on a CPU: the backend name and the device's
`memory_stats()` are mocked (jaxescape/_engine/sizing.py), the sizes are checked against their
rules, and small simulations through the accelerator sizes give the CPU path's numbers bit for
bit (a particle's noise depends only on (key, particle, step))."""

import jax
import numpy as np
import pytest

import jaxescape as jxe
import jaxescape._engine.driver as driver_module
from jaxescape import _defaults
from jaxescape._engine import sizing


MIB = 2**20


@pytest.fixture
def accelerator(monkeypatch):
    """Makes the sizing see a "gpu" backend whose device reports `limit` bytes (None: no
    memory_stats, as on backends that give none); returns a setter for the limit."""
    stats = {"value": None}
    monkeypatch.setattr(sizing, "backend", lambda: "gpu")
    monkeypatch.setattr(sizing, "device_memory_stats", lambda: stats["value"])

    def set_limit(limit):
        stats["value"] = None if limit is None else {"bytes_limit": limit, "bytes_in_use": 0}

    return set_limit


def double_well():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    return landscape, jxe.OverdampedLangevin(landscape, 0.5), jxe.past_saddle(landscape)


def test_cpu_sizes_are_unchanged_and_the_cpu_reports_no_memory_limit():
    landscape, dynamics, _ = double_well()
    assert sizing.backend() == "cpu" and sizing.memory_limit() is None
    assert sizing.default_num_slots(dynamics, 1) == dynamics.cpu_pool_size(1)
    assert sizing.default_num_slots(None, 10) == max(2**10, 2**16 // 8)
    assert sizing.default_chunk_size(dynamics, 1) == _defaults.CHUNK_SIZE
    assert sizing.initial_pool_size(dynamics, 1, 2**22) == min(dynamics.cpu_pool_size(1), 2**18)


def test_cpu_chunks_of_large_particles_stay_within_the_host_budget():
    """Networks on a CPU: a chunk's result buffers (5 + 4·dim bytes a particle) stay within
    HOST_CHUNK_BYTES (2 GiB): 2^17 particles of 2410 float32 parameters; up to dim 126 the
    chunk stays 2^22."""
    assert sizing.default_chunk_size(None, 126) == _defaults.CHUNK_SIZE
    assert sizing.default_chunk_size(None, 127) == _defaults.CHUNK_SIZE // 2
    assert sizing.default_chunk_size(None, 2410) == 2**17
    assert 2**17 * (5 + 4 * 2410) <= sizing.HOST_CHUNK_BYTES < 2**18 * (5 + 4 * 2410)


def test_accelerator_pool_is_2_22_slots_and_the_chunk_sixteen_pools(accelerator):
    _, dynamics, _ = double_well()
    accelerator(None)  # no memory figures
    assert sizing.default_num_slots(dynamics, 1) == sizing.default_num_slots(None, 64) == 2**22
    assert sizing.default_chunk_size(dynamics, 1) == 2**26
    # The 1/16 rule keeps the full pool for a default chunk, and cuts it for the CPU's chunk.
    assert sizing.initial_pool_size(dynamics, 1, 2**26) == 2**22
    assert sizing.initial_pool_size(dynamics, 1, _defaults.CHUNK_SIZE) == 2**18
    accelerator(141 * 2**30)  # an H200's memory: nothing changes
    assert sizing.default_num_slots(dynamics, 1) == 2**22
    assert sizing.default_chunk_size(dynamics, 1) == 2**26


@pytest.mark.parametrize("dim, itemsize", [(1, 4), (10, 4), (3, 8), (100_000, 4)])
@pytest.mark.parametrize("limit", [64 * MIB, 2**30, 16 * 2**30])
def test_memory_derived_sizes_are_the_largest_powers_of_two_that_fit(accelerator, limit, dim,
                                                                       itemsize):
    accelerator(limit)
    slots = sizing.default_num_slots(None, dim, itemsize)
    pool_budget = limit * sizing.POOL_MEMORY_FRACTION
    assert slots & (slots - 1) == 0 and 1 <= slots <= 2**22
    assert slots == 1 or slots * sizing.slot_bytes(dim, itemsize) <= pool_budget
    assert slots == 2**22 or 2 * slots * sizing.slot_bytes(dim, itemsize) > pool_budget
    chunk = sizing.default_chunk_size(None, dim, itemsize)
    wanted = max(_defaults.CHUNK_SIZE, 16 * slots)
    buffers, budget = chunk * (5 + dim * itemsize), min(limit * sizing.CHUNK_MEMORY_FRACTION,
                                                        sizing.HOST_CHUNK_BYTES)
    assert chunk & (chunk - 1) == 0 and 1 <= chunk <= wanted
    assert chunk == 1 or buffers <= budget
    assert chunk == wanted or 2 * buffers > budget


def test_a_small_memory_limit_shrinks_the_pool_below_its_other_bounds(accelerator):
    accelerator(64 * MIB)  # 4 MiB for the pool: 2^15 slots of 80 bytes in 1-D, not 2^22
    assert sizing.default_num_slots(None, 1) == 2**15
    assert sizing.initial_pool_size(None, 1, 2**26) == 2**15


def run(num_particles, **options):
    landscape, dynamics, criterion = double_well()
    result = jxe.simulate(dynamics, criterion, landscape.minimum(), jax.random.key(12),
                          num_particles=num_particles, dt=0.02, max_steps=300, **options)
    return [result.escape_step, result.boundary, result.censored, result.diverged,
            result.position]


def test_simulations_through_the_accelerator_sizes_equal_the_cpu_path_bit_for_bit(
        accelerator, monkeypatch):
    num_particles = 2**14
    cpu = run(num_particles)
    pools = []

    def recording_run_wave(config, counts, first_indices, capacity, pool, *rest):
        pools.append((capacity, pool))
        return run_wave(config, counts, first_indices, capacity, pool, *rest)

    run_wave = driver_module.run_wave
    monkeypatch.setattr(driver_module, "run_wave", recording_run_wave)
    # Memory-derived pool: a limit that holds 2^9 slots, below the chunk's sixteenth; the
    # driver's default chunk is memory-derived too (2^13 here: two chunks).
    accelerator(2**9 * sizing.slot_bytes(1) * 16)
    accelerated = run(num_particles)
    # Memory-derived chunks: the accelerator's default chunk under a limit that holds 2^12
    # particles' buffers, so the run takes four chunks (and 2^7 slots in 1/16 of it).
    accelerator(2**12 * 9 * 8)
    chunk = sizing.default_chunk_size(None, 1)
    chunked = run(num_particles, chunk_size=chunk)
    # No memory figures: the 2^26 chunk, its 2^22 pool cut to a sixteenth of the 2^14 particles.
    accelerator(None)
    big_chunk = run(num_particles, chunk_size=sizing.default_chunk_size(None, 1))
    assert chunk == 2**12
    assert pools == [*[(2**13, 2**9)] * 2, *[(2**12, 2**7)] * 4, (2**14, 2**10)]
    for other in (accelerated, chunked, big_chunk):
        for ours, theirs in zip(other, cpu):
            np.testing.assert_array_equal(ours, theirs)


def test_accelerator_step_blocks_hold_about_2_24_coordinates(monkeypatch):
    """On an accelerator a blocked process steps about 2^24 coordinates a block, within 2^10 to
    2^18 slots: one block for a pool of cheap particles (small blocks left an H200 idle between
    launches), 2^12 for the digits MLP, 2^10 for the mori MLP (a pool is at least a block, so
    a larger block steps empty slots in runs of fewer networks). On a CPU 256, or about 2^19
    coordinates for particles of over 2^11 (a block's networks stay in cache), at least 8
    slots (benchmarks/README.md §8, §10)."""
    from jaxescape import _particle

    cpu_blocks = [_particle.default_step_block(dim) for dim in (1, 10, 2048, 2049, 2410, 17610,
                                                                10**7)]
    assert cpu_blocks == [256, 256, 256, 128, 128, 16, 8]
    monkeypatch.setattr(_particle.jax, "default_backend", lambda: "gpu")
    blocks = [_particle.default_step_block(dim)
              for dim in (1, 10, 64, 65, 139, 512, 2410, 17610, 10**7)]
    assert blocks == [2**18, 2**18, 2**18, 2**17, 2**16, 2**15, 2**12, 2**10, 2**10]
