"""How many working slots and particles per chunk: sized to the device.

On a CPU the pool is sized by the particle process to stay in cache
(`AbstractParticleProcess.cpu_pool_size`); on accelerators it is large enough to fill the
device (2^22 slots), less where the device's memory (`device.memory_stats()["bytes_limit"]`)
would not hold it. A pool much larger than a sixteenth of the chunk would spend most of the run
in the tail of the escape-time distribution, where few of its slots are busy (measured:
benchmarks/README.md §2), so on accelerators the default chunk is sixteen pools, within the
device's and the host's memory. None of these sizes changes a number: a particle's noise
depends only on (key, particle, step).
"""

import jax

from .. import _defaults
from .._particle import coordinate_pool_size, next_power_of_two, previous_power_of_two


ACCELERATOR_SLOTS = 2**22
SHRINK_FACTOR = 16
MINIMUM_SLOTS = 256  # the smallest default pool, and the smallest tail pool of a 1-D particle
MINIMUM_COORDINATES = 256  # the tail pool shrinks while it holds at least this many coordinates
# Bytes a slot takes per coordinate of float32 state: the state, the new state, the noise,
# the drift and the step's temporaries (a bound, not a measurement), plus index, step, status.
SLOT_WORDS_PER_COORDINATE = 16
SLOT_BYTES_FIXED = 16
POOL_MEMORY_FRACTION = 1 / 16  # of the device's bytes_limit, for the pool
CHUNK_MEMORY_FRACTION = 1 / 8  # of the device's bytes_limit, for one chunk's result buffers
HOST_CHUNK_BYTES = 2**31  # one chunk's results on the host (they are copied there)


def backend() -> str:
    """The default backend's platform ("cpu", "gpu", "tpu"); the pool and chunk sizes follow it."""
    return jax.default_backend()


def device_memory_stats() -> dict | None:
    """`memory_stats()` of the default backend's first device (None on a CPU)."""
    return jax.devices()[0].memory_stats()


def memory_limit() -> int | None:
    """The bytes the default device may allocate (`memory_stats()["bytes_limit"]`), or None where
    the backend does not say."""
    limit = (device_memory_stats() or {}).get("bytes_limit")
    return int(limit) if limit else None


def slot_bytes(dim: int, itemsize: int = 4) -> int:
    """Device bytes of one working slot of a `dim`-coordinate particle (an upper estimate)."""
    return SLOT_WORDS_PER_COORDINATE * int(dim) * int(itemsize) + SLOT_BYTES_FIXED


def accelerator_num_slots(dim: int = 1, itemsize: int = 4) -> int:
    """`ACCELERATOR_SLOTS`, or the largest power of two of slots that fits in
    `POOL_MEMORY_FRACTION` of the device's memory limit (at least one)."""
    limit = memory_limit()
    if limit is None:
        return ACCELERATOR_SLOTS
    fitting = int(limit * POOL_MEMORY_FRACTION) // slot_bytes(dim, itemsize)
    return min(ACCELERATOR_SLOTS, previous_power_of_two(max(1, fitting)))


def default_num_slots(process=None, dim: int = 1, itemsize: int = 4) -> int:
    """The pool size for a particle process of dimension `dim` on the default backend."""
    if backend() != "cpu":
        return accelerator_num_slots(dim, itemsize)
    if process is None:
        return coordinate_pool_size(dim)
    return process.cpu_pool_size(dim)


def initial_pool_size(process, dim: int, chunk_capacity: int, itemsize: int = 4) -> int:
    """The default pool of a chunk: `default_num_slots`, at most a sixteenth of the chunk."""
    return min(
        default_num_slots(process, dim, itemsize),
        max(MINIMUM_SLOTS, next_power_of_two(chunk_capacity // SHRINK_FACTOR)),
    )


def minimum_slots(dim: int) -> int:
    """The smallest pool the tail shrinks to: `MINIMUM_COORDINATES` coordinates, at least one
    slot. A 1-D straggler keeps 256 slots stepping (a step of them costs about what one host
    call does); a network particle's straggler steps alone (a slot of it costs as much as a
    step of hundreds of 1-D slots)."""
    return max(1, previous_power_of_two(max(1, MINIMUM_COORDINATES // int(dim))))


def default_chunk_size(process=None, dim: int = 1, itemsize: int = 4) -> int:
    """Particles per chunk: `_defaults.CHUNK_SIZE` (2^22) on a CPU, less for particles so large
    (dim above 126 in float32, e.g. networks) that a chunk's result buffers would pass
    `HOST_CHUNK_BYTES`. On accelerators sixteen default pools (2^26 for 2^22 slots), so that
    the 1/16 rule of `initial_pool_size` keeps the full pool; at most a power of two whose result
    buffers (step, status, position) fit in `CHUNK_MEMORY_FRACTION` of the device's memory limit
    and in `HOST_CHUNK_BYTES` on the host, and never below `_defaults.CHUNK_SIZE` unless memory
    requires it (at least one)."""
    particle_bytes = 5 + int(dim) * int(itemsize)
    host_fitting = previous_power_of_two(max(1, HOST_CHUNK_BYTES // particle_bytes))
    if backend() == "cpu":
        return min(_defaults.CHUNK_SIZE, host_fitting)
    wanted = max(_defaults.CHUNK_SIZE, SHRINK_FACTOR * default_num_slots(process, dim, itemsize))
    budget = HOST_CHUNK_BYTES
    limit = memory_limit()
    if limit is not None:
        budget = min(budget, int(limit * CHUNK_MEMORY_FRACTION))
    fitting = previous_power_of_two(max(1, budget // particle_bytes))
    return min(wanted, fitting)


def default_check_every(max_steps: int) -> int:
    """Steps between harvests: max_steps split into equal rounds of at most 32,
    ⌈max_steps / ⌈max_steps / 32⌉⌉ (max_steps itself up to 32; 17 to 32 beyond).

    `check_every` is static (a loop of known trip count: a traced bound costs a round trip to
    the host every step on a GPU, benchmarks/README.md §8), so each value compiles once; this
    rule keeps the values few (max_steps below 33, or one of 16 values above) while a particle
    that runs to max_steps from a chunk's first round is harvested at once instead of idling
    up to 31 steps (a 4-step run in rounds of 32 did eight times its work). Harvest times never
    change a number.
    """
    rounds = -(-max_steps // 32)
    return -(-max_steps // rounds)
