"""Devices and sharding: one `shard_map` program runs a wave of chunks, one per device.

The particle axis is sharded over a `Mesh` of the devices; under `shard_map` each device runs its
own chunk with its own block of the pool and of the buffers (no communication), so one compiled
program drives them all. The host loop around it reports progress and shrinks the pool in the
tail, between calls that last about a quarter of a second each (`pacing.py`).
"""

import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .._particle import RUNNING, batch_floor, next_power_of_two
from .pool import advance_chunk, empty_buffers, empty_slots, shrink
from .pacing import CallPacer
from .sizing import SHRINK_FACTOR, minimum_slots


PARTICLE_AXIS = "particles"


def check_devices(devices):
    """The devices to run on: all devices of the default backend when None."""
    if devices is None:
        return jax.devices()
    devices = list(devices)
    if not devices or not all(isinstance(device, jax.Device) for device in devices):
        raise ValueError(f"devices must be a non-empty list of jax.Device, got {devices!r}")
    return devices


def particle_mesh(devices) -> Mesh:
    return Mesh(np.array(devices), (PARTICLE_AXIS,))


@eqx.filter_jit(donate="all-except-first")
def advance(config, slots, buffers, next_particle, num_rounds, check_every, shrink_at, *,
            options, mesh):
    """Runs up to `num_rounds` rounds of `check_every` steps plus a harvest/refill each, and
    stops early on a device once all its particles have started and at most `shrink_at` run.
    Returns the pool, the buffers, each device's next particle and its count of running slots.

    Every device of `mesh` runs its own chunk (`shard_map` over the particle axis: each device
    holds its block of the pool and of the buffers, its own count, first index and next
    particle; the devices never communicate). `config` (not donated) holds the constants; the
    pool and buffers are donated. `check_every` is static (a Python int: a new value compiles
    anew): a loop of known trip count runs without the per-iteration round trip to the host
    that a traced bound costs on a GPU (measured: benchmarks/README.md §8).
    """
    constants, counts, first_indices = config
    arrays, static = eqx.partition(constants, eqx.is_array)
    sharded, replicated = P(PARTICLE_AXIS), P()

    def advance_block(arrays, count, first_index, slots, buffers, next_particle, num_rounds,
                      shrink_at):
        constants = eqx.combine(arrays, static)
        slots, buffers, next_particle = advance_chunk(
            constants, count[0], first_index[0], slots, buffers, next_particle[0], num_rounds,
            check_every, options, shrink_at,
        )
        running = jnp.sum(slots.status == RUNNING, dtype=jnp.int32)
        return slots, buffers, next_particle[None], running[None]

    return jax.shard_map(
        advance_block, mesh=mesh,
        in_specs=(replicated, sharded, sharded, sharded, sharded, sharded, replicated, replicated),
        out_specs=sharded, check_vma=False,
    )(arrays, counts, first_indices, slots, buffers, next_particle, num_rounds, shrink_at)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def sharded_buffers(size, dim, dtype, sharding):
    """`empty_buffers`, made on the devices in their final layout: no host copy to fill, send
    and split (benchmarks/README.md §10)."""
    return jax.lax.with_sharding_constraint(empty_buffers(size, dim, dtype), sharding)


@functools.partial(jax.jit, static_argnums=(0, 2))
def sharded_slots(num_slots, initial_state, sharding):
    """`empty_slots`, made on the devices in their final layout."""
    return jax.lax.with_sharding_constraint(empty_slots(num_slots, initial_state), sharding)


def host_copy(array: jax.Array) -> np.ndarray:
    """A writable host copy of a sharded array, copied once: shard by shard into one array
    (`device_get` copies as much, but returns a read-only array)."""
    copy = np.empty(array.shape, array.dtype)
    for shard in array.addressable_shards:
        copy[shard.index] = shard.data
    return copy


def run_wave(config, counts, first_indices, capacity, pool, dim, dtype, keep_positions,
             check_every, options, bar, mesh):
    """Runs one chunk per device of `mesh` (`counts[i]` particles from `first_indices[i]`, 0 for
    an idle device); returns the host buffers, one block of `capacity` rows per device (their
    positions of width 0 without `keep_positions`)."""
    num_devices = len(counts)
    process = config[0]
    block, floor = process.step_block(dim) or 1, batch_floor(process, dim)
    # Never fewer than the floor, and whole blocks (the numbers do not depend on the size).
    num_slots = max(floor, min(pool, next_power_of_two(max(counts))))
    num_slots = -(-num_slots // block) * block
    smallest = max(floor, minimum_slots(dim))
    sharded, replicated = NamedSharding(mesh, P(PARTICLE_AXIS)), NamedSharding(mesh, P())
    counts = np.array(counts, np.int32)
    per_device = (jnp.asarray(counts), jnp.asarray(first_indices, jnp.uint32))
    # Commit everything, so that the first call and the later ones (which get committed outputs
    # back) share one compilation.
    wave_config = (jax.device_put(config, replicated), *jax.device_put(per_device, sharded))
    slots = sharded_slots(num_devices * num_slots, wave_config[0][2], sharded)
    buffers = sharded_buffers(num_devices * capacity, dim if keep_positions else 0,
                              np.dtype(dtype), sharded)
    next_particle = jax.device_put(np.zeros(num_devices, np.int32), sharded)
    finished_before = 0
    pacer = CallPacer()
    while True:
        # Tail: once every particle has started, the pool shrinks 16-fold whenever it is 1/16
        # busy, so stragglers do not drag the full pool (each pool size compiles once). A call
        # stops at the first round where that holds: when the pool shrinks never depends on how
        # long the calls are, so neither do the numbers.
        smaller = num_slots // SHRINK_FACTOR
        shrink_at = smaller if smaller >= smallest and smaller % block == 0 else -1
        rounds, shrink_array = jax.device_put(
            (np.int32(pacer.rounds), np.int32(shrink_at)), replicated)
        started_at = time.perf_counter()
        slots, buffers, next_particle, running = advance(
            wave_config, slots, buffers, next_particle, rounds, int(check_every), shrink_array,
            options=options, mesh=mesh,
        )
        running = np.asarray(running)
        pacer.record(time.perf_counter() - started_at)
        started = np.asarray(next_particle)
        finished = int(started.sum() - running.sum())
        bar.update(finished - finished_before)
        finished_before = finished
        all_started = np.array_equal(started, counts)
        if all_started and not running.any():
            return jax.tree.map(host_copy, buffers)
        if all_started and shrink_at >= 0 and running.max() <= shrink_at:
            num_slots = smaller
            slots = jax.device_put(shrink(slots, num_slots, num_devices), sharded)
            pacer.recompiled()
