"""Multi-process runs: split the particles over the processes of a `jax.distributed` program.

Every process runs the same call. Process p of P simulates the contiguous range
[first_particle + ⌊pN/P⌋, first_particle + ⌊(p+1)N/P⌋) on its `jax.local_devices()`; since a
particle's noise depends only on (key, global particle index, its step), the gathered result is
bit-identical to one `simulate` call with the same key. The shares are gathered with
`jax.experimental.multihost_utils.process_allgather`, which on CPU runs over the cross-process
collectives of `jax_cpu_collectives_implementation` (gloo, the default in JAX 0.10; see the JAX
guide "Multi-process environments" and `jax.distributed.initialize`).
"""

import hashlib
import inspect

import jax
import numpy as np
from jax.experimental import multihost_utils

from .driver import simulate, simulate_chunks
from .result import EscapeResult
from .validation import check_simulation_inputs


def process_share(num_particles: int, process_index: int, process_count: int) -> tuple[int, int]:
    """The range [start, stop) of particles (relative to first_particle) run by one process."""
    start = num_particles * process_index // process_count
    stop = num_particles * (process_index + 1) // process_count
    return start, stop


def simulate_distributed(
    dynamics, criteria, initial_position, key: jax.Array, **options
) -> EscapeResult:
    """`simulate` with the particles split over all processes; every process gets all N results.

    Call it on every process of a program started with `jax.distributed.initialize(...)`, with
    the same arguments (checked: key, sizes and dt must agree across processes). Each process
    runs its contiguous share of the particles on its local devices; the per-particle results
    are then gathered (`multihost_utils.process_allgather`) so that the returned `EscapeResult`
    equals, bit for bit, `simulate(...)` with the same key in one process. With a single process
    it is `simulate`. The arguments are those of `simulate` but `devices`; `progress` is shown on
    process 0 only.
    """
    if "devices" in options:
        raise TypeError("simulate_distributed takes no devices: each process uses its local ones")
    arguments = inspect.signature(simulate_chunks).bind(
        dynamics, criteria, initial_position, key, **options
    )
    arguments.apply_defaults()
    settings = dict(arguments.arguments)
    num_particles, first_particle = settings["num_particles"], settings["first_particle"]
    progress, max_steps = settings["progress"], settings["max_steps"]
    criteria = tuple(criteria) if isinstance(criteria, list | tuple) else (criteria,)
    position, dt_array = check_simulation_inputs(
        dynamics, criteria, initial_position, num_particles=num_particles, dt=settings["dt"],
        max_steps=max_steps, chunk_size=settings["chunk_size"], num_slots=settings["num_slots"],
        check_every=settings["check_every"], first_particle=first_particle,
        keep_positions=settings["keep_positions"],
    )
    try:
        key_words = np.asarray(jax.random.key_data(key))
    except TypeError:
        raise TypeError(f"key must be a single jax.random.key, got {key!r}") from None
    if key_words.ndim != 1:
        raise ValueError(f"key must be a single jax.random.key, got shape {key_words.shape}")
    process_index, process_count = jax.process_index(), jax.process_count()
    options = {name: value for name, value in settings.items() if name not in (
        "dynamics", "criteria", "initial_position", "key", "num_particles", "first_particle",
        "progress", "devices")}
    if process_count == 1:
        return simulate(
            dynamics, criteria, position, key, num_particles=num_particles,
            first_particle=first_particle, progress=progress, **options,
        )
    _check_same_everywhere(key_words, num_particles, first_particle, max_steps, dt_array, position)

    start, stop = process_share(num_particles, process_index, process_count)
    width = -(-num_particles // process_count)  # the largest share; every share is padded to it
    dim, dtype = position.shape[0], np.dtype(position.dtype)
    if stop > start:
        share = simulate(
            dynamics, criteria, position, key, num_particles=stop - start,
            first_particle=first_particle + start, devices=jax.local_devices(),
            progress=progress if process_index == 0 else False, **options,
        )
    else:  # fewer particles than processes
        share = EscapeResult(
            np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0, bool),
            np.zeros((0, dim if settings["keep_positions"] else 0), dtype), float(dt_array),
        )
    padded = [_pad(field, width) for field in share[:-1]]
    gathered = multihost_utils.process_allgather(padded)  # each (process_count, width, ...)
    fields = []
    for field in gathered:
        field = np.asarray(field)
        pieces = [
            field[p, : stop_p - start_p]
            for p in range(process_count)
            for start_p, stop_p in [process_share(num_particles, p, process_count)]
        ]
        fields.append(np.concatenate(pieces))
    return EscapeResult(*fields, float(dt_array))


def _pad(array: np.ndarray, width: int) -> np.ndarray:
    padding = [(0, width - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, padding)


def _check_same_everywhere(key_words, num_particles, first_particle, max_steps, dt, position):
    """Raises on every process if the processes were given different keys, sizes or dt."""
    digest = hashlib.sha256()
    digest.update(key_words.tobytes())
    digest.update(np.array([num_particles, first_particle, max_steps], np.int64).tobytes())
    digest.update(np.asarray(dt).tobytes() + np.asarray(position).tobytes())
    local = np.frombuffer(digest.digest(), np.uint32)
    everywhere = np.asarray(multihost_utils.process_allgather(local))
    if not (everywhere == local).all():
        raise ValueError(
            "simulate_distributed must get the same key, num_particles, first_particle, "
            "max_steps, dt and initial_position on every process; they differ across processes"
        )
