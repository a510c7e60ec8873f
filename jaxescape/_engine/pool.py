"""The working pool: slots stepped in lockstep, harvested and refilled.

A fixed pool of `num_slots` slots is stepped in lockstep (the particle process's pure
single-particle `step`, vmapped, inside a loop); every `check_every` steps the slots whose
particle has finished are written into the chunk's result buffers and refilled with the next
particles of the chunk. The work is close to the sum of the escape steps, not N times the
longest one. Nothing here depends on which kind of particle process it steps.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._particle import CENSORED, DIVERGED, EMPTY, ESCAPED, RUNNING


class Slots(NamedTuple):
    """The working pool, one row per slot."""

    state: object  # pytree, leaves (num_slots, ...): the particle process's state
    particle: jax.Array  # shape=(num_slots,), int32: index within the chunk; -1 if empty
    step: jax.Array  # shape=(num_slots,), int32: steps taken by that particle
    status: jax.Array  # shape=(num_slots,), int8: RUNNING, CENSORED, DIVERGED, EMPTY, ESCAPED + k


class Buffers(NamedTuple):
    """Per-particle results of one chunk."""

    step: jax.Array  # shape=(chunk,), int32
    status: jax.Array  # shape=(chunk,), int8
    position: jax.Array  # shape=(chunk, dim), or (chunk, 0): positions not kept


def final_status(outside, finite, new_step, max_steps):
    """The status after a step: the first criterion that holds wins; a non-finite state is
    DIVERGED whatever the criteria say; CENSORED at max_steps."""
    new_status = jnp.where(new_step >= max_steps, CENSORED, RUNNING).astype(jnp.int8)
    for index in reversed(range(len(outside))):  # reversed, so the first one overrides
        new_status = jnp.where(outside[index], ESCAPED + index, new_status).astype(jnp.int8)
    return jnp.where(finite, new_status, DIVERGED).astype(jnp.int8)


def slot_step(process, criteria, keys, dt, max_steps, options, first_index):
    """The step of one slot: (state, particle, step, status) -> same. Only running slots move;
    finished ones keep their final state, step and status."""

    def step_one(state, particle, step, status):
        running = status == RUNNING
        new_state, outside, finite = process.step(
            state, keys, first_index + particle.astype(jnp.uint32), step, dt, criteria, options,
            running=running,
        )
        new_status = final_status(outside, finite, step + 1, max_steps)
        step = step + running.astype(step.dtype)
        return new_state, particle, step, jnp.where(running, new_status, status)

    return step_one


def blocked_vmap(function, block: int | None):
    """`jax.vmap(function)`, or with `block`, the same over consecutive blocks of `block` rows,
    one after the other (`lax.map`): every row is then computed in a batch of exactly `block`
    rows by the same compiled code, whatever the number of rows, so its numbers do not depend
    on the pool's size (XLA picks a batched contraction's algorithm by its shape: measured,
    tests/test_pool_invariance.py). The number of rows must be a multiple of `block`."""
    batched = jax.vmap(function)
    if block is None:
        return batched

    def step_blocks(*rows):
        blocks = jax.tree.map(lambda leaf: leaf.reshape((-1, block) + leaf.shape[1:]), rows)
        stepped = lax.map(lambda block_rows: batched(*block_rows), blocks)
        return jax.tree.map(lambda leaf: leaf.reshape((-1,) + leaf.shape[2:]), stepped)

    return step_blocks


def harvest_and_refill(slots, buffers, positions, initial_state, next_particle, count,
                       start_states=None):
    """Write finished slots into the buffers, then start the next particles in free slots.

    Every new particle starts in `initial_state`, or, with `start_states`, in row i of
    `start_states(new_particle)` (a batch of states, one per slot)."""
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
        return jnp.where(assign.reshape((-1,) + (1,) * (current.ndim - 1)), initial, current)

    starts = initial_state if start_states is None else start_states(new_particle)
    slots = Slots(
        jax.tree.map(refill, starts, slots.state),
        jnp.where(assign, new_particle, jnp.where(free, -1, slots.particle)),
        jnp.where(assign, 0, slots.step),
        jnp.where(assign, RUNNING, jnp.where(free, EMPTY, slots.status)).astype(jnp.int8),
    )
    next_particle = jnp.minimum(next_particle + jnp.sum(free, dtype=jnp.int32), count)
    return slots, buffers, next_particle


def advance_chunk(constants, count, first_index, slots, buffers, next_particle, num_rounds,
                  check_every, options, shrink_at=-1):
    """Up to `num_rounds` rounds of `check_every` steps plus a harvest/refill each, on one
    device: its block of the pool works through its own chunk. Stops after the first round
    where every particle has started and at most `shrink_at` slots run (the host then shrinks
    the pool; -1: never)."""
    process, criteria, initial_state, keys, dt, max_steps = constants
    dim = jax.eval_shape(process.position, initial_state).shape[0]
    step_all = blocked_vmap(
        slot_step(process, criteria, keys, dt, max_steps, options, first_index),
        process.step_block(dim),
    )
    steps_per_iteration = type(process).steps_per_iteration
    start_states = None
    if process.random_start:
        def start_states(new_particle):
            identities = first_index + jnp.maximum(new_particle, 0).astype(jnp.uint32)
            return jax.vmap(lambda identity: process.start_state(initial_state, keys, identity))(
                identities
            )

    def step_body(_, slots):
        for _step in range(steps_per_iteration):
            slots = Slots(*step_all(*slots))
        return slots

    def harvest(slots, buffers, next_particle):
        # Buffers of width 0 keep no positions (nothing of them is computed).
        positions = jax.vmap(process.position)(slots.state)[:, :buffers.position.shape[1]]
        return harvest_and_refill(
            slots, buffers, positions, initial_state, next_particle, count, start_states
        )

    def round_body(carry):
        slots, buffers, next_particle, round_index = carry
        # With several steps per iteration check_every is rounded up (harvests do not change
        # any number).
        iterations = -(-check_every // steps_per_iteration)
        slots = lax.fori_loop(0, iterations, step_body, slots)
        slots, buffers, next_particle = harvest(slots, buffers, next_particle)
        return slots, buffers, next_particle, round_index + 1

    # Fill free slots first: a chunk's pool starts empty, and its first round would otherwise
    # step nothing but empty slots (a whole round wasted: half the work of a two-round run). On
    # later calls every finished slot was already refilled by the last round's harvest: no-op.
    slots, buffers, next_particle = harvest(slots, buffers, next_particle)

    def not_done(carry):
        slots, _, next_particle, round_index = carry
        running = jnp.sum(slots.status == RUNNING, dtype=jnp.int32)
        all_started = next_particle >= count
        busy = (running > 0) | ~all_started
        shrink_due = all_started & (running <= shrink_at)
        return busy & ~shrink_due & (round_index < num_rounds)

    slots, buffers, next_particle, _ = lax.while_loop(
        not_done, round_body, (slots, buffers, next_particle, jnp.int32(0))
    )
    return slots, buffers, next_particle


def empty_slots(num_slots, initial_state):
    return Slots(
        jax.tree.map(lambda leaf: jnp.zeros((num_slots,) + leaf.shape, leaf.dtype), initial_state),
        jnp.full((num_slots,), -1, jnp.int32),
        jnp.zeros((num_slots,), jnp.int32),
        jnp.full((num_slots,), EMPTY, jnp.int8),
    )


def empty_buffers(size, dim, dtype):
    return Buffers(
        jnp.zeros(size, jnp.int32), jnp.full(size, EMPTY, jnp.int8), jnp.zeros((size, dim), dtype)
    )


def shrink(slots, num_slots, num_blocks=1):
    """Keep the running slots only, in `num_blocks` blocks of `num_slots` rows (one block per
    device, each keeping its own slots; on the host: the number kept changes every time, and
    device operations would compile anew for each)."""
    slots = jax.device_get(slots)
    old_size = slots.status.shape[0] // num_blocks
    fresh = jax.device_get(
        empty_slots(num_blocks * num_slots, jax.tree.map(lambda leaf: leaf[0], slots.state))
    )
    keep = [block * old_size + np.flatnonzero(slots.status[block * old_size:][:old_size]
                                              == RUNNING) for block in range(num_blocks)]

    def move(empty, full):
        empty = np.array(empty)
        for block, rows in enumerate(keep):
            empty[block * num_slots:][: rows.size] = full[rows]
        return empty

    return jax.tree.map(move, fresh, slots)
