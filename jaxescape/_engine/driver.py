"""The driver: many particles, each stepped until it escapes, diverges or reaches max_steps.

Work follows the surviving particles. A fixed pool of `num_slots` working slots is stepped in
lockstep (vmap of the single-particle step inside a loop); every `check_every` steps the slots
whose particle has finished are harvested into the result buffers and refilled with the next
particles of the chunk. Once no particles are left to start and few slots are still running, the
pool shrinks (by powers of two) so the slowest particles do not drag the whole pool along. The
total work is close to the sum of the escape steps, not N times the longest one.

Devices: the particle axis is sharded over a `Mesh` of the devices; under `shard_map` each
device runs its own chunk with its own block of the pool (no communication), so one program
drives them all.

Reproducibility: a particle's noise is a pure function of (key, global particle index, its own
step) (see `_noise.py`), so results are bit-identical for any chunk size, pool size,
check_every and device count.
"""

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from .. import _noise
from .._criteria import AbstractEscapeCriterion
from .._dynamics.sde import AbstractDynamics
from .._fused import coordinate_all
from .._dynamics.euler_maruyama import escape_step
from .validation import check_simulation_inputs


if TYPE_CHECKING:
    from .._sgd.minibatch_sgd import MinibatchSGD


# Slot and particle status codes; an escape through criterion k has status ESCAPED + k.
RUNNING, CENSORED, DIVERGED, EMPTY, ESCAPED = 0, 1, 2, 3, 4


class Slots(NamedTuple):
    """The working pool, one row per slot."""

    state: object  # pytree, leaves (num_slots, ...): the position, or (position, optimizer state)
    particle: jax.Array  # shape=(num_slots,), int32: index within the chunk; -1 if empty
    step: jax.Array  # shape=(num_slots,), int32: steps taken by that particle
    status: jax.Array  # shape=(num_slots,), int8: RUNNING, CENSORED, DIVERGED, EMPTY, ESCAPED + k


class Buffers(NamedTuple):
    """Per-particle results of one chunk."""

    step: jax.Array  # shape=(chunk,), int32
    status: jax.Array  # shape=(chunk,), int8
    position: jax.Array  # shape=(chunk, dim)


def _final_status(outside, new_step, max_steps, new_state):
    """The status after a step; of the criteria that hold, the first one wins."""
    new_status = jnp.where(new_step >= max_steps, CENSORED, RUNNING).astype(jnp.int8)
    for index in reversed(range(len(outside))):  # reversed, so the first one overrides
        new_status = jnp.where(outside[index], ESCAPED + index, new_status).astype(jnp.int8)
    finite = [coordinate_all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(new_state)]
    return jnp.where(coordinate_all(jnp.stack(finite)), new_status, DIVERGED).astype(jnp.int8)


def _keep_running(state, new_state, step, status, new_status):
    """Only running slots move; finished ones keep their final state, step and status."""
    running = status == RUNNING
    return (
        jax.tree.map(lambda new, old: jnp.where(running, new, old), new_state, state),
        step + running.astype(step.dtype),
        jnp.where(running, new_status, status),
    )


class EscapeResult(NamedTuple):
    """Per-particle first-passage results (NumPy arrays on the host).

    `escape_step` is the number of steps taken when the particle was first found outside (or at
    censoring / divergence); `escape_time` = escape_step · dt. `boundary` is the index of the
    criterion hit (−1 if none). Censored particles were still inside after `max_steps`; diverged
    particles reached a non-finite state and are neither escapes nor censored.
    """

    escape_step: np.ndarray  # (N,) int32
    boundary: np.ndarray  # (N,) int8
    censored: np.ndarray  # (N,) bool
    diverged: np.ndarray  # (N,) bool
    position: np.ndarray  # (N, dim): where each particle was when it stopped
    dt: float

    @property
    def escape_time(self) -> np.ndarray:
        return self.escape_step * self.dt

    @property
    def escaped(self) -> np.ndarray:
        return ~(self.censored | self.diverged)


class StepOptions(NamedTuple):
    """Static choices of the SDE step (hashable: part of the compiled kernel's identity)."""

    crossing_correction: bool = True
    noise: str = "gaussian"  # or "rademacher": ±1 increments (weak order 1, no erfinv)


NOISE_KINDS = ("gaussian", "rademacher")
# Up to this dimension the step selects the kept position first and tests that (XLA's CPU
# backend then reads it back instead of recomputing the step for the status); above it, XLA
# fuses the wider step worse that way. Measured on a 2-core CPU with the noise drawn one variate
# at a time (`_noise.particle_variates`), M particle-steps/s with and without: d = 1 118 / 85,
# 2: 16 / 61, 3: 11 / 48, 4: 9 / 38, 10: 13 / 12.
_SELECT_FIRST_MAX_DIM = 1


def _steps_per_iteration(dynamics) -> int:
    """Steps per iteration of the inner loop: 2 for SGD, 1 for SDEs.

    A loop iteration that reads the old state for the tests while writing the new one makes XLA
    copy the pool's arrays once per iteration; two steps per iteration halve the copies.
    Measured on a 2-core CPU, best of 3 in M particle-steps/s with one / two steps (results are
    bit-identical): SGD, linear regression d = 10, B = 10, alternating in one process: 3.0–3.4 /
    4.2–4.5; in separate processes, with replacement 6.2–6.7 / 7.3–8.3, Adam 1.1 / 1.1–1.3, an
    MLP with 16 hidden units 0.30 / 0.35–0.38. The first call compiles 1–2 s longer (3.5–4.2 →
    4.9–6.4 s for a linear and an MLP model). SDEs gain nothing worth that: 1-D, 10^6
    particles × 256 steps, 156–196 / 162–190 with the crossing correction and 207–250 /
    230–279 without, while the default experiment's first call took 2.5 → 3.3 s; in 2, 3 and
    10 dimensions they lose (63–80 / 48–57, 52–56 / 33–40, 15–17 / 11–13).
    """
    return 1 if isinstance(dynamics, AbstractDynamics) else 2


def _particle_step(dynamics, criteria, keys, dt, max_steps, options, first_index):
    """Returns the step of one slot: (position, particle, step, status) -> same."""
    crossing_correction = options.crossing_correction

    def step_one(position, particle, step, status):
        running = status == RUNNING
        t = step.astype(position.dtype) * dt
        # `running=`: finished slots stay where they are, and the escape tests read the very
        # position the step writes out, so XLA reads it back instead of recomputing the step
        # (for low dimensions, see _SELECT_FIRST_MAX_DIM).
        select_first = position.shape[0] <= _SELECT_FIRST_MAX_DIM
        new_position, outside, probabilities, uniform = escape_step(
            dynamics, criteria, keys, first_index + particle.astype(jnp.uint32), step, t,
            position, dt, crossing_correction, options.noise,
            running=running if select_first else None,
        )
        if crossing_correction:
            if len(criteria) == 1:
                outside = [outside[0] | (uniform < probabilities[0])]
            else:
                no_crossing = jnp.prod(1 - jnp.stack(probabilities))
                bridged = jnp.arange(len(criteria)) == jnp.argmax(jnp.stack(probabilities))
                bridged = bridged & (uniform < 1 - no_crossing)
                outside = [o | b for o, b in zip(outside, bridged)]
        new_status = _final_status(outside, step + 1, max_steps, new_position)
        if select_first:
            step = step + running.astype(step.dtype)
            return new_position, particle, step, jnp.where(running, new_status, status)
        position, step, status = _keep_running(position, new_position, step, status, new_status)
        return position, particle, step, status

    return step_one


def _iteration_step(process, criteria, keys, max_steps, first_index):
    """The step of one slot for a discrete-time process (SGD): escapes are checked on iterates."""

    def step_one(state, particle, step, status):
        new_state = process.update(state, keys, first_index + particle.astype(jnp.uint32), step)
        position = process.position(new_state)
        outside = [criterion.is_outside(position) for criterion in criteria]
        new_status = _final_status(outside, step + 1, max_steps, new_state)
        state, step, status = _keep_running(state, new_state, step, status, new_status)
        return state, particle, step, status

    return step_one


def _positions(dynamics, state):
    """The positions of a batch of slot states (the state itself for an SDE)."""
    if isinstance(dynamics, AbstractDynamics):
        return state
    return jax.vmap(dynamics.position)(state)


def _harvest_and_refill(slots, buffers, positions, initial_state, next_particle, count):
    """Write finished slots into the buffers, then start the next particles in free slots."""
    finished = (slots.status != RUNNING) & (slots.particle >= 0)
    chunk = buffers.step.shape[0]
    target = jnp.where(finished, slots.particle, chunk)  # out of range: dropped
    buffers = Buffers(
        buffers.step.at[target].set(slots.step, mode="drop"),
        buffers.status.at[target].set(slots.status, mode="drop"),
        buffers.position.at[target].set(positions, mode="drop"),
    )
    free = slots.status != RUNNING
    new_particle = next_particle + jnp.cumsum(free, dtype=jnp.int32) - 1
    assign = free & (new_particle < count)

    def refill(initial, current):
        return jnp.where(assign.reshape((-1,) + (1,) * initial.ndim), initial, current)

    slots = Slots(
        jax.tree.map(refill, initial_state, slots.state),
        jnp.where(assign, new_particle, jnp.where(free, -1, slots.particle)),
        jnp.where(assign, 0, slots.step),
        jnp.where(assign, RUNNING, jnp.where(free, EMPTY, slots.status)).astype(jnp.int8),
    )
    next_particle = jnp.minimum(next_particle + jnp.sum(free, dtype=jnp.int32), count)
    return slots, buffers, next_particle


PARTICLE_AXIS = "particles"


@eqx.filter_jit(donate="all-except-first")
def _advance(
    config, slots, buffers, next_particle, num_rounds, check_every, *, options, mesh
):
    """Runs up to `num_rounds` rounds of `check_every` steps plus a harvest/refill each.

    Every device of `mesh` runs its own chunk (`shard_map` over the particle axis: each device
    holds its block of the pool and of the buffers, its own count, first index and next
    particle; the devices never communicate). `config` (not donated) holds the constants; the
    pool and buffers are donated. `check_every` is traced (a loop bound, as cheap as a
    fixed-length scan on CPU), so the default that depends on max_steps never recompiles.
    """
    constants, counts, first_indices = config
    arrays, static = eqx.partition(constants, eqx.is_array)
    sharded, replicated = P(PARTICLE_AXIS), P()

    def advance_block(arrays, count, first_index, slots, buffers, next_particle, num_rounds,
                      check_every):
        constants = eqx.combine(arrays, static)
        slots, buffers, next_particle = _advance_chunk(
            constants, count[0], first_index[0], slots, buffers, next_particle[0], num_rounds,
            check_every, options,
        )
        return slots, buffers, next_particle[None]

    return jax.shard_map(
        advance_block, mesh=mesh,
        in_specs=(replicated, sharded, sharded, sharded, sharded, sharded, replicated, replicated),
        out_specs=sharded, check_vma=False,
    )(arrays, counts, first_indices, slots, buffers, next_particle, num_rounds, check_every)


def _advance_chunk(constants, count, first_index, slots, buffers, next_particle, num_rounds,
                   check_every, options):
    """`_advance` on one device: its block of the pool works through its own chunk."""
    dynamics, criteria, initial_state, keys, dt, max_steps = constants
    if isinstance(dynamics, AbstractDynamics):
        step_one = _particle_step(
            dynamics, criteria, keys, dt, max_steps, options, first_index
        )
    else:
        step_one = _iteration_step(dynamics, criteria, keys, max_steps, first_index)
    step_all = jax.vmap(step_one)
    steps_per_iteration = _steps_per_iteration(dynamics)

    def step_body(_, slots):
        for _step in range(steps_per_iteration):
            slots = Slots(*step_all(*slots))
        return slots

    def round_body(carry):
        slots, buffers, next_particle, round_index = carry
        # With two steps per iteration an odd check_every is rounded up (harvests do not
        # change any number).
        iterations = -(-check_every // steps_per_iteration)
        slots = lax.fori_loop(0, iterations, step_body, slots)
        slots, buffers, next_particle = _harvest_and_refill(
            slots, buffers, _positions(dynamics, slots.state), initial_state, next_particle, count
        )
        return slots, buffers, next_particle, round_index + 1

    def not_done(carry):
        slots, _, next_particle, round_index = carry
        busy = jnp.any(slots.status == RUNNING) | (next_particle < count)
        return busy & (round_index < num_rounds)

    slots, buffers, next_particle, _ = lax.while_loop(
        not_done, round_body, (slots, buffers, next_particle, jnp.int32(0))
    )
    return slots, buffers, next_particle


def _empty_slots(num_slots, initial_state):
    return Slots(
        jax.tree.map(lambda leaf: jnp.zeros((num_slots,) + leaf.shape, leaf.dtype), initial_state),
        jnp.full((num_slots,), -1, jnp.int32),
        jnp.zeros((num_slots,), jnp.int32),
        jnp.full((num_slots,), EMPTY, jnp.int8),
    )


def _shrink(slots, num_slots, num_blocks=1):
    """Keep the running slots only, in `num_blocks` blocks of `num_slots` rows (one block per
    device, each keeping its own slots; on the host: the number kept changes every time, and
    device operations would compile anew for each)."""
    slots = jax.device_get(slots)
    old_size = slots.status.shape[0] // num_blocks
    fresh = jax.device_get(
        _empty_slots(num_blocks * num_slots, jax.tree.map(lambda leaf: leaf[0], slots.state))
    )
    keep = [block * old_size + np.flatnonzero(slots.status[block * old_size:][:old_size]
                                              == RUNNING) for block in range(num_blocks)]

    def move(empty, full):
        empty = np.array(empty)
        for block, rows in enumerate(keep):
            empty[block * num_slots:][: rows.size] = full[rows]
        return empty

    return jax.tree.map(move, fresh, slots)


def default_num_slots(dynamics=None, dim: int = 1) -> int:
    """Pool size: large enough to fill the device, small enough to stay in cache on a CPU.

    On a CPU the pool of a `dim`-dimensional SDE holds about 2^16 coordinates (measured on a
    2-core CPU for the 10-D well of benchmarks/peers.py: 2^13 slots ran 1.4x faster than 2^16).
    An SGD particle touches its minibatch every step, so its pool is sized to keep the gathered
    minibatches within about 1 MiB (for d = 10, B = 10: 2^12 slots ran 3–6x faster than 2^16).
    """
    if jax.default_backend() != "cpu":
        return 2**22
    if dynamics is None or isinstance(dynamics, AbstractDynamics):
        return max(2**10, 2**16 // _previous_power_of_two(dim))
    return max(2**8, min(2**16, _previous_power_of_two(2**20 // dynamics.bytes_per_step())))


def default_check_every(max_steps: int) -> int:
    """Steps between harvests: 32, or the divisor of max_steps nearest above (up to 64), else
    below (down to 16); max_steps itself up to 64.

    Particles start at harvests, so with a divisor a particle censored at max_steps is
    harvested at once instead of idling in its slot until the next harvest (200 steps with 32:
    24 idle steps in 224; on a 2-core CPU 173 → 202 M particle-steps/s with 40). Escapes are
    harvested up to check_every steps late either way.
    """
    if max_steps <= 64:
        return int(max_steps)
    candidates = [32, *range(33, 65), *range(31, 15, -1)]
    return next((every for every in candidates if max_steps % every == 0), 32)


def simulate_chunks(
    dynamics: "AbstractDynamics | MinibatchSGD",
    criteria: AbstractEscapeCriterion | tuple[AbstractEscapeCriterion, ...],
    initial_position,
    key: jax.Array,
    *,
    num_particles: int,
    dt=None,
    max_steps: int,
    chunk_size: int = 2**22,
    num_slots: int | None = None,
    crossing_correction: bool = True,
    check_every: int | None = None,
    first_particle: int = 0,
    progress: bool | str = False,
    devices: list | None = None,
    noise: str = "gaussian",
) -> Iterator[tuple[int, EscapeResult]]:
    """Like `simulate`, but yields `(offset, EscapeResult)` per chunk of `chunk_size` particles.

    Memory is bounded by the chunk: reduce or store each chunk as it arrives (e.g. for 10^8
    particles, or to keep finished chunks of a run that may be interrupted). `offset` is the
    chunk's first particle relative to `first_particle`. All inputs are validated before the
    first chunk is compiled. With several `devices` (default: all of the default backend) the
    chunks go out in waves of one per device, run as one `shard_map` program, and each wave's
    chunks are yielded when the wave is done.
    """
    if not isinstance(criteria, tuple):
        criteria = (criteria,)
    initial_position, dt_array = check_simulation_inputs(
        dynamics, criteria, initial_position, num_particles=num_particles, dt=dt,
        max_steps=max_steps, chunk_size=chunk_size, num_slots=num_slots,
        check_every=check_every, first_particle=first_particle,
    )
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
    if check_every is None:
        check_every = default_check_every(max_steps)
    if noise == "rademacher":
        warnings.warn(
            "noise='rademacher' is kept for measuring it, not for results: its first-passage "
            "bias was 3.3x the Gaussian scheme's on one of the two measured problems "
            "(benchmarks/README.md)", UserWarning, stacklevel=3,
        )
    return _chunks(
        dynamics, criteria, initial_position, key, dt_array, float(dt_array), num_particles,
        max_steps,
        chunk_size, num_slots, StepOptions(bool(crossing_correction), noise), check_every,
        first_particle, progress, _check_devices(devices),
    )


def _check_devices(devices):
    if devices is None:
        return jax.devices()
    devices = list(devices)
    if not devices or not all(isinstance(device, jax.Device) for device in devices):
        raise ValueError(f"devices must be a non-empty list of jax.Device, got {devices!r}")
    return devices


def _chunks(dynamics, criteria, initial_position, key, dt, dt_value, num_particles, max_steps,
            chunk_size, num_slots, options, check_every, first_particle, progress, devices):
    dim, dtype = initial_position.shape[0], initial_position.dtype
    if isinstance(dynamics, AbstractDynamics):
        num_values = dynamics.noise_dim(dim) + 1  # the normals and one bridge uniform
        streams = _noise.num_streams(num_values, dtype)
        initial_state = initial_position
    else:
        streams = dynamics.num_streams(dtype)
        initial_state = dynamics.initial_state(initial_position)
    keys = _noise.stream_keys(key, streams)
    config = (dynamics, criteria, initial_state, keys, dt, jnp.int32(max_steps))
    # Every device gets at least one chunk; chunking never changes the numbers.
    chunk_capacity = min(chunk_size, -(-num_particles // len(devices)))
    # A default pool much larger than chunk/16 would spend most of the run in the tail, where
    # few of its slots are busy (measured for 10^5 escape times: 2^13 slots 5.2 s, 2^16 9.6 s).
    pool = num_slots or min(
        default_num_slots(dynamics, dim),
        max(_MINIMUM_SLOTS, _next_power_of_two(chunk_capacity // _SHRINK_FACTOR)),
    )
    mesh = Mesh(np.array(devices), (PARTICLE_AXIS,))
    label = progress if isinstance(progress, str) else "particles"
    # Chunks go out in waves of one per device: chunk i runs on device i mod D.
    wave_size = chunk_capacity * len(devices)
    with tqdm(total=num_particles, disable=not progress, desc=label, unit="particle") as bar:
        for wave_start in range(0, num_particles, wave_size):
            starts = [wave_start + chunk_capacity * lane for lane in range(len(devices))]
            counts = [max(0, min(chunk_capacity, num_particles - start)) for start in starts]
            buffers = _run_wave(
                config, counts, [first_particle + start for start in starts], chunk_capacity,
                pool, dim, dtype, check_every, options, bar, mesh,
            )
            for lane, (start, count) in enumerate(zip(starts, counts)):
                if count:
                    yield start, _chunk_result(buffers, lane, chunk_capacity, count, dt_value)


def _chunk_result(buffers, lane, capacity, count, dt):
    """The first `count` particles of device `lane`'s block of the buffers."""
    begin = lane * capacity
    step, status, position = (field[begin : begin + count] for field in buffers)
    return EscapeResult(
        step,
        np.where(status >= ESCAPED, status - ESCAPED, -1).astype(np.int8),
        status == CENSORED,
        status == DIVERGED,
        position,
        dt,
    )


def concatenate_results(results: list[EscapeResult]) -> EscapeResult:
    """Joins per-chunk results (in particle order) into one."""
    fields = [np.concatenate(arrays) for arrays in list(zip(*results))[:-1]]
    return EscapeResult(*fields, results[0].dt)


def simulate(
    dynamics: "AbstractDynamics | MinibatchSGD",
    criteria: AbstractEscapeCriterion | tuple[AbstractEscapeCriterion, ...],
    initial_position,
    key: jax.Array,
    *,
    num_particles: int,
    dt=None,
    max_steps: int,
    chunk_size: int = 2**22,
    num_slots: int | None = None,
    crossing_correction: bool = True,
    check_every: int | None = None,
    first_particle: int = 0,
    progress: bool | str = False,
    devices: list | None = None,
    noise: str = "gaussian",
) -> EscapeResult:
    """Simulates `num_particles` independent particles from `initial_position` until each escapes.

    Args:
        dynamics: the SDE (e.g. `OverdampedLangevin(landscape, temperature)`), or real
            minibatch SGD on a data set (`MinibatchSGD`), whose iterates are checked for escape.
        criteria: one escape criterion or a tuple; `boundary` records which one was hit.
        initial_position: start point, shape (dim,), inside the basin.
        key: a `jax.random.key`. Particle i's noise depends only on (key, first_particle + i, step).
        num_particles: N >= 1, run in chunks of `chunk_size` (see `simulate_chunks` to stream).
        dt: time step > 0; times are reported as step · dt. For `MinibatchSGD` it only sets
            the time unit (default 1: times in iterations; dt = η gives the SDE time t = ηk).
        max_steps: steps after which a particle still inside is censored (< 2^31).
        chunk_size: particles per compiled chunk (device memory is bounded by it).
        num_slots: size of the working pool (default on CPU: 2^16 coordinates' worth, i.e.
            2^16 slots in 1-D and 2^13 in 10-D, fewer for SGD particles so their minibatches
            stay in cache; 2^22 on accelerators; and at most a sixteenth of the chunk, so that
            the tail of the escape-time distribution does not keep a large pool half idle).
        crossing_correction: sample Brownian-bridge crossings of `HalfSpace` criteria between
            steps (removes the O(sqrt(dt)) bias of missed crossings). SDEs only: SGD has no
            path between its iterates.
        check_every: steps between harvests of finished particles (default: 32, or a divisor
            of max_steps near it, so that particles censored at max_steps leave the pool at
            once; `default_check_every`). Traced: changing it does not recompile. SGD steps
            two at a time, so an odd value is rounded up there (the numbers are the same).
        first_particle: global index of the first particle (to extend a run with new particles).
        progress: show a progress bar (a string is used as its label).
        devices: devices to spread the chunks over (default: all devices of the default
            backend); the numbers do not depend on it.
        noise: the SDE increments: "gaussian" (default). "rademacher" (±1 with probability
            ½: weak order 1, Kloeden & Platen 1992 §14.1, 1.2–1.35x faster) is kept for the
            benchmarks that measure it and warns: its first-passage bias was 3.3x the
            Gaussian scheme's on one of the two problems measured (benchmarks/README.md).

    Returns:
        An `EscapeResult` of NumPy arrays of length N. The same key gives the same numbers
        for any chunk_size, num_slots and check_every.
    """
    chunks = simulate_chunks(
        dynamics, criteria, initial_position, key, num_particles=num_particles, dt=dt,
        max_steps=max_steps, chunk_size=chunk_size, num_slots=num_slots,
        crossing_correction=crossing_correction, check_every=check_every,
        first_particle=first_particle, progress=progress, devices=devices, noise=noise,
    )
    return concatenate_results([result for _, result in chunks])


def _run_wave(config, counts, first_indices, capacity, pool, dim, dtype, check_every, options,
              bar, mesh):
    """Runs one chunk per device of `mesh` (`counts[i]` particles from `first_indices[i]`, 0 for
    an idle device); returns the host buffers, one block of `capacity` rows per device."""
    num_devices = len(counts)
    num_slots = min(pool, _next_power_of_two(max(counts)))
    sharded, replicated = NamedSharding(mesh, P(PARTICLE_AXIS)), NamedSharding(mesh, P())
    slots = _empty_slots(num_devices * num_slots, config[2])
    buffers = Buffers(
        jnp.zeros(num_devices * capacity, jnp.int32),
        jnp.full(num_devices * capacity, EMPTY, jnp.int8),
        jnp.zeros((num_devices * capacity, dim), dtype),
    )
    counts = np.array(counts, np.int32)
    per_device = (jnp.asarray(counts), jnp.asarray(first_indices, jnp.uint32))
    # Commit everything, so that the first call and the later ones (which get committed outputs
    # back) share one compilation.
    wave_config = (jax.device_put(config, replicated), *jax.device_put(per_device, sharded))
    slots, buffers, next_particle = jax.device_put(
        (slots, buffers, jnp.zeros(num_devices, jnp.int32)), sharded
    )
    finished_before = 0
    while True:
        # About 2^24 slot-steps per device per call between progress updates.
        loop_bounds = jax.device_put(
            (jnp.int32(max(1, 2**24 // (num_slots * check_every))), jnp.int32(check_every)),
            replicated,
        )
        slots, buffers, next_particle = _advance(
            wave_config, slots, buffers, next_particle, *loop_bounds, options=options, mesh=mesh
        )
        running = np.asarray(
            jnp.sum((slots.status == RUNNING).reshape(num_devices, num_slots), axis=1)
        )
        started = np.asarray(next_particle)
        finished = int(started.sum() - running.sum())
        bar.update(finished - finished_before)
        finished_before = finished
        all_started = np.array_equal(started, counts)
        if all_started and not running.any():
            return jax.device_get(buffers)
        # Tail: once every particle has started, shrink the pool 16-fold whenever it is 1/16
        # busy, so stragglers do not drag the full pool (at most three pool sizes compile).
        smaller = num_slots // _SHRINK_FACTOR
        if all_started and smaller >= _MINIMUM_SLOTS and running.max() <= smaller:
            num_slots = smaller
            slots = jax.device_put(_shrink(slots, num_slots, num_devices), sharded)


_SHRINK_FACTOR = 16
_MINIMUM_SLOTS = 256


def _previous_power_of_two(n: int) -> int:
    return 1 << max(0, int(n).bit_length() - 1)


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())
