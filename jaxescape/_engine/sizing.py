"""How many working slots and particles per chunk: sized to the device.

On a CPU the pool is sized by the particle process to stay in cache
(`AbstractParticleProcess.cpu_pool_size`); on accelerators it is large enough to fill the
device. A pool much larger than a sixteenth of the chunk would spend most of the run in the
tail of the escape-time distribution, where few of its slots are busy (benchmarks/README.md).
"""

import jax

from .._particle import next_power_of_two


ACCELERATOR_SLOTS = 2**22
SHRINK_FACTOR = 16
MINIMUM_SLOTS = 256


def default_num_slots(process=None, dim: int = 1) -> int:
    """The pool size for a particle process of dimension `dim` on the default backend."""
    if jax.default_backend() != "cpu":
        return ACCELERATOR_SLOTS
    if process is None:
        return max(2**10, 2**16 // (1 << max(0, int(dim).bit_length() - 1)))
    return process.cpu_pool_size(dim)


def initial_pool_size(process, dim: int, chunk_capacity: int) -> int:
    """The default pool of a chunk: `default_num_slots`, at most a sixteenth of the chunk."""
    return min(
        default_num_slots(process, dim),
        max(MINIMUM_SLOTS, next_power_of_two(chunk_capacity // SHRINK_FACTOR)),
    )


def default_check_every(max_steps: int) -> int:
    """Steps between harvests: 32, or the divisor of max_steps nearest above (up to 64), else
    below (down to 16); max_steps itself up to 64.

    Particles start at harvests, so with a divisor a particle censored at max_steps is
    harvested at once instead of idling in its slot until the next harvest. Escapes are
    harvested up to check_every steps late either way (no number changes).
    """
    if max_steps <= 64:
        return int(max_steps)
    candidates = [32, *range(33, 65), *range(31, 15, -1)]
    return next((every for every in candidates if max_steps % every == 0), 32)
