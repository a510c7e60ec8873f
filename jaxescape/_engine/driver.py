"""The public front of the engine: `simulate` and `simulate_chunks`.

Validates everything, then streams the particles through the pool (`pool.py`) in chunks, a wave
of one chunk per device at a time (`devices.py`), and returns the per-particle records
(`result.py`). A particle's noise is a pure function of (key, global particle index, its own
step) (`_noise.py`), and a step that contracts is computed in blocks of a fixed size
(`AbstractParticleProcess.step_block`), so results are bit-identical for any chunk size, pool
size, check_every and device count.
"""

import inspect
import warnings
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from .. import _defaults, _noise
from .._particle import NOISE_KINDS, StepOptions
from .auto_dt import DtChoice, choose_dt_with, resolve_auto_dt
from .devices import check_devices, particle_mesh, run_wave
from .result import EscapeResult, concatenate_results, wave_result
from .sizing import default_check_every, default_chunk_size, initial_pool_size
from .validation import check_simulation_inputs


def simulate_chunks(dynamics, criteria, initial_position, key: jax.Array,
                    **options) -> Iterator[tuple[int, EscapeResult]]:
    """Like `simulate`, but yields `(offset, EscapeResult)` per chunk of `chunk_size` particles.

    Memory is bounded by the chunk: reduce or store each chunk as it arrives (e.g. for 10^8
    particles, or to keep finished chunks of a run that may be interrupted), and drop it before
    asking for the next (a chunk is a view of its wave's arrays: held, it keeps the whole wave
    alive while the next one runs). `offset` is the chunk's first particle relative to
    `first_particle`. All inputs are validated before the first chunk is compiled. With several
    `devices` (default: all of the default backend) the chunks go out in waves of one per
    device, run as one `shard_map` program, and each wave's chunks are yielded when the wave is
    done. The arguments are those of `simulate`.
    """
    return _chunks(*_checked_arguments(dynamics, criteria, initial_position, key, **options))


def _checked_arguments(
    dynamics,
    criteria,
    initial_position,
    key: jax.Array,
    *,
    num_particles: int,
    dt=None,
    max_steps: int = _defaults.MAX_STEPS,
    chunk_size: int | None = None,
    num_slots: int | None = None,
    crossing_correction: bool = True,
    check_every: int | None = None,
    first_particle: int = 0,
    progress: bool | str = False,
    devices: list | None = None,
    noise: str = "gaussian",
    keep_positions: bool = True,
):
    """The validated arguments of `_waves` (all checks happen here, before any compilation)."""
    criteria = tuple(criteria) if isinstance(criteria, list | tuple) else (criteria,)
    if isinstance(dt, str):
        dt = resolve_auto_dt(
            simulate, dt, dynamics, criteria, initial_position, key, num_particles=num_particles,
            max_steps=max_steps, chunk_size=chunk_size, num_slots=num_slots,
            check_every=check_every, first_particle=first_particle,
            crossing_correction=crossing_correction, devices=devices, noise=noise)
    initial_position, dt_array = check_simulation_inputs(
        dynamics, criteria, initial_position, num_particles=num_particles, dt=dt,
        max_steps=max_steps, chunk_size=chunk_size, num_slots=num_slots,
        check_every=check_every, first_particle=first_particle, keep_positions=keep_positions,
    )
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
    if check_every is None:
        check_every = default_check_every(max_steps)
    if noise == "rademacher":
        warnings.warn(
            "noise='rademacher' is kept for measuring it, not for results: its first-passage "
            "bias was several times the Gaussian scheme's on one of the two measured "
            "problems (benchmarks/README.md §4)", UserWarning, stacklevel=3,
        )
    return (
        dynamics, criteria, initial_position, key, dt_array, float(dt_array), num_particles,
        max_steps, chunk_size, num_slots, StepOptions(bool(crossing_correction), noise),
        check_every, first_particle, progress, check_devices(devices), bool(keep_positions),
    )


def _waves(process, criteria, initial_position, key, dt, dt_value, num_particles, max_steps,
           chunk_size, num_slots, options, check_every, first_particle, progress, devices,
           keep_positions):
    """Yields `(start, capacity, EscapeResult)` per wave of one chunk per device: chunk i of the
    wave holds rows [i·capacity, i·capacity + its count) of the host buffers, and every chunk
    but the wave's last is full, so the wave's particles are the buffers' first rows, in order."""
    dim, dtype = initial_position.shape[0], initial_position.dtype
    chunk_size = chunk_size or default_chunk_size(process, dim, dtype.itemsize)
    keys = _noise.stream_keys(key, process.num_streams(dim, dtype))
    initial_state = process.initial_state(initial_position)
    config = (process, criteria, initial_state, keys, dt, jnp.int32(max_steps))
    # Every device gets at least one chunk; chunking never changes the numbers.
    chunk_capacity = min(chunk_size, -(-num_particles // len(devices)))
    pool = num_slots or initial_pool_size(process, dim, chunk_capacity, dtype.itemsize)
    mesh = particle_mesh(devices)
    label = progress if isinstance(progress, str) else "particles"
    # Chunks go out in waves of one per device: chunk i runs on device i mod D.
    wave_size = chunk_capacity * len(devices)
    with tqdm(total=num_particles, disable=not progress, desc=label, unit="particle") as bar:
        for wave_start in range(0, num_particles, wave_size):
            starts = [wave_start + chunk_capacity * lane for lane in range(len(devices))]
            counts = [max(0, min(chunk_capacity, num_particles - start)) for start in starts]
            # No name here holds the wave's host buffers while the next wave runs (a streamed
            # run keeps one wave, not two: benchmarks/README.md §10).
            yield wave_start, chunk_capacity, wave_result(run_wave(
                config, counts, [first_particle + start for start in starts], chunk_capacity,
                pool, dim, dtype, keep_positions, check_every, options, bar, mesh,
            ), sum(counts), dt_value)


def _chunks(*arguments):
    for wave_start, capacity, wave in _waves(*arguments):
        for begin in range(0, wave.escape_step.shape[0], capacity):
            rows = slice(begin, begin + capacity)
            yield wave_start + begin, EscapeResult(*(field[rows] for field in wave[:-1]), wave.dt)
        del wave  # not held while the next wave runs


def simulate(dynamics, criteria, initial_position, key: jax.Array, **options) -> EscapeResult:
    """Simulates `num_particles` independent particles from `initial_position` until each escapes.

    **Arguments:**

    - `dynamics`: the particle process: an SDE (e.g. `OverdampedLangevin(landscape,
      temperature)`), or real minibatch SGD on a data set (`MinibatchSGD`), whose iterates are
      checked for escape.
    - `criteria`: one escape criterion or a sequence of them; `boundary` records which one was
      hit.
    - `initial_position`: start point, shape (dim,), inside the basin.
    - `key`: a `jax.random.key`. Particle i's noise depends only on (key, first_particle + i,
      step).
    - `num_particles`: N >= 1, run in chunks of `chunk_size` (`simulate_chunks` streams them).
    - `dt`: time step > 0; times are reported as step · dt. For `MinibatchSGD` it only sets the
      time unit (default 1: times in iterations; dt = η gives the SDE time t = ηk). `"auto"`
      (SDEs): the largest dt whose relative bias of the mean escape time is below 0.5 %, from
      two pilot runs of 2^16 particles at a pilot dt and twice it (`choose_dt`; they cost
      1.5·2^16/(N·2^k) of the main run when the chosen dt is the pilot's / 2^k); the chosen
      dt is the result's `dt`. A numeric dt gives the same numbers as before this option.
    - `max_steps`: steps after which a particle still inside is censored (< 2^31; default 10^7).
    - `chunk_size`: particles per compiled chunk (device memory is bounded by it; default
      2^22 on a CPU, on accelerators 2^26 or what fits in their memory: `default_chunk_size`).
    - `num_slots`: size of the working pool (default: sized by the particle process to stay in a
      CPU's cache, 2^22 on accelerators, and at most a sixteenth of the chunk, so that the tail
      of the escape-time distribution does not keep a large pool half idle). Raised to at least
      8 slots and to whole blocks of the process's `step_block` (the numbers do not change).
    - `crossing_correction`: sample the Brownian-bridge crossings of the criteria between steps
      (removes the O(sqrt(dt)) bias of missed crossings; SDEs only: SGD has no path between its
      iterates).
    - `check_every`: steps between harvests of finished particles (default: max_steps in
      equal rounds of at most 32 steps, `default_check_every`). Static: each value compiles
      once.
    - `first_particle`: global index of the first particle (to extend a run with new particles).
    - `progress`: show a progress bar (a string is used as its label).
    - `devices`: devices to spread the chunks over (default: all devices of the default
      backend); the numbers do not depend on it.
    - `noise`: the SDE increments: "gaussian" (default), or "rademacher" (±1 with probability
      ½: weak order 1, Kloeden & Platen 1992 §14.1), kept for the benchmarks that measure it; it
      warns, since its first-passage bias was several times the Gaussian scheme's on one of
      the two problems measured (benchmarks/README.md §4).
    - `keep_positions`: keep each particle's final position (default). False: `position` has
      shape (N, 0), and the N·dim numbers are neither stored on the devices nor copied to the
      host (for runs that need only the escape records, e.g. of networks). The escape records
      do not change.

    **Returns:** an `EscapeResult` of NumPy arrays of length N. The same key gives the same
    numbers for any chunk_size, num_slots, check_every and device count.
    """
    arguments = _checked_arguments(dynamics, criteria, initial_position, key, **options)
    # Whole waves, joined only across waves (a copy of every position would cost as much as the
    # host's copy from the devices).
    waves = [wave for _, _, wave in _waves(*arguments)]
    return waves[0] if len(waves) == 1 else concatenate_results(waves)


simulate_chunks.__signature__ = inspect.signature(_checked_arguments).replace(
    return_annotation=Iterator[tuple[int, EscapeResult]]
)
simulate.__signature__ = inspect.signature(_checked_arguments).replace(
    return_annotation=EscapeResult
)


def choose_dt(dynamics, criteria, initial_position, key: jax.Array, **options) -> DtChoice:
    """The largest dt = pilot_dt/2^k whose estimated relative bias of the mean escape time is
    at most `target`, from two pilot runs of `simulate` (`simulate(dt="auto")` calls it with
    its defaults). The arguments and the rule: `auto_dt.choose_dt_with`."""
    return choose_dt_with(simulate, dynamics, criteria, initial_position, key, **options)
