"""The compiled kernel of adaptive multilevel splitting (`estimator.py`; generalized AMS of
Cérou & Guyader 2007 and Bréhier et al. 2016). Jobs (loop particles, or AMS replicas of all runs)
are stepped by a pool of working slots in lockstep (vmap of the single-particle step inside
lax.scan); every `check_every` steps finished slots are written back, every AMS run whose
replicas have all stopped makes its next kill/clone iteration, and free slots are refilled with
pending jobs. Every replica keeps, per level, the state, age and segment id of the step where its
running maximum first reached that level, so a clone branches from its parent's record without
re-simulation. Runs advance asynchronously, so the pool stays busy; each run's numbers depend only
on its own noise, so the schedule (pool size, check_every) never changes them.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax

from .._particle import (
    CENSORED,
    DIVERGED,
    EMPTY,
    ESCAPED,
    LOOPS_DONE,
    RETURNED,
    RUNNING,
    StepOptions,
)


MAX_SEGMENT_ID = 2**32 - 1


# ----------------------------------------------------------------------------------------------
# One Euler–Maruyama step with escape detection (shared by both phases).


def _step_and_escape(process, criteria, keys, identity, age, y, dt, crossing_correction):
    """One step of one job: (new state, escaped and finite, finite). The escape set is entered
    if any criterion holds or (SDEs) the path crossed one between the steps."""
    y_new, outside_each, finite = process.step(
        y, keys, identity, age, dt, criteria, StepOptions(crossing_correction)
    )
    outside = jnp.zeros((), bool)
    for criterion_outside in outside_each:
        outside = outside | criterion_outside
    return y_new, outside & finite, finite


# ----------------------------------------------------------------------------------------------
# The state machine.


class _Jobs(NamedTuple):
    y: jax.Array  # (T, dim): current state
    age: jax.Array  # (T,) int32: the noise step counter (AMS: steps since the entrance into Σ)
    segment: jax.Array  # (T,) uint32: noise identity of the live path segment
    score: jax.Array  # (T,) int32: running maximum of the level (G in B; G + 1: no records)
    status: jax.Array  # (T,) int32
    armed: jax.Array  # (T,) bool   loop particles: visited A since the last entrance
    entrances: jax.Array  # (T,) int32   loop particles: entrances into Σ so far
    last_entrance: jax.Array  # (T,) int32   loop particles: step of the last entrance
    first_entrance: jax.Array  # (T,) int32   loop particles: step of the first entrance (T0)
    loop_sum: jax.Array  # (T,) int32   loop particles: summed steps of completed failed loops
    loop_count: jax.Array  # (T,) int32   loop particles: completed failed loops
    entry_y: jax.Array  # (T, dim)   loop particles: state at the last entrance


class _State(NamedTuple):
    jobs: _Jobs
    record_y: jax.Array  # (T, G + 1, dim): state where the running max first reached a level
    record_age: jax.Array  # (T, G + 1) int32: its age
    record_segment: jax.Array  # (T, G + 1) uint32: segment that wrote the row (valid if current)
    slots: _Jobs  # (P, ...): the working pool
    slot_job: jax.Array  # (P,) int32: job in each slot, T if free
    in_slot: jax.Array  # (T,) bool
    done: jax.Array  # (R,) bool: run finished (or not an AMS run)
    extinct: jax.Array  # (R,) bool
    capped: jax.Array  # (R,) bool: stopped at max_iterations
    iteration: jax.Array  # (R,) int32: kill/clone iterations made
    histogram: jax.Array  # (R, N + 1) int32: how many iterations killed K replicas


def _level(xi_value, sigma_level, spacing, num_levels):
    scaled = jnp.floor((xi_value - sigma_level) / spacing)
    scaled = jnp.clip(jnp.where(jnp.isfinite(scaled), scaled, 0), 0, num_levels - 1)
    return scaled.astype(jnp.int32)


def _select(mask, new, old):
    return jnp.where(mask.reshape(mask.shape + (1,) * (new.ndim - 1)), new, old)


def _empty_jobs(total, dim, dtype, num_levels):
    return _Jobs(
        jnp.zeros((total, dim), dtype), jnp.zeros(total, jnp.int32),
        jnp.zeros(total, jnp.uint32), jnp.full(total, num_levels + 1, jnp.int32),
        jnp.full(total, EMPTY, jnp.int32), jnp.zeros(total, bool), jnp.zeros(total, jnp.int32),
        jnp.zeros(total, jnp.int32), jnp.full(total, -1, jnp.int32),
        jnp.zeros(total, jnp.int32), jnp.zeros(total, jnp.int32),
        jnp.zeros((total, dim), dtype),
    )


def _step_function(config, num_levels, num_loops, max_steps, crossing_correction):
    """One step of one job; `loop_mode` (traced) picks loop particles or AMS excursions."""
    dynamics, criteria, xi, dt, a_level, sigma_level, spacing, keys, loop_mode = config[:9]

    def step_one(job, job_keys):
        y_new, escaped, finite = _step_and_escape(
            dynamics, criteria, job_keys, job.segment, job.age, job.y, dt, crossing_correction
        )
        value = xi(y_new)
        finite = finite & jnp.isfinite(value)
        level = jnp.where(escaped, num_levels, _level(value, sigma_level, spacing, num_levels))
        record = finite & (level > job.score)
        age = job.age + 1
        in_a = value <= a_level
        # Loop particles: an entrance is the first step at or above Σ after a visit to A.
        entrance = loop_mode & job.armed & (value >= sigma_level) & ~escaped & finite
        later = entrance & (job.entrances > 0)
        entrances = job.entrances + entrance.astype(jnp.int32)
        loop_status = jnp.where(entrances > num_loops, LOOPS_DONE, RUNNING)
        status = jnp.where(loop_mode, loop_status, jnp.where(in_a, RETURNED, RUNNING))
        status = jnp.where(age >= max_steps, CENSORED, status)
        status = jnp.where(escaped, ESCAPED, status)
        status = jnp.where(finite, status, DIVERGED)
        new = _Jobs(
            y_new, age, job.segment, jnp.where(record, level, job.score),
            status.astype(jnp.int32),
            jnp.where(entrance, False, job.armed | in_a),
            entrances,
            jnp.where(entrance, age, job.last_entrance),
            jnp.where(entrance & (job.entrances == 0), age, job.first_entrance),
            job.loop_sum + jnp.where(later, age - job.last_entrance, 0),
            job.loop_count + later.astype(jnp.int32),
            jnp.where(entrance, y_new, job.entry_y),
        )
        return new, record, level

    return step_one, keys


def _compact(mask, size, fill):
    """Indices where `mask` holds, in order, padded with `fill` to `size` (extra ones dropped)."""
    position = jnp.cumsum(mask, dtype=jnp.int32) - 1
    target = jnp.where(mask & (position < size), position, size)
    indices = jnp.arange(mask.shape[0], dtype=jnp.int32)
    return jnp.full(size, fill, jnp.int32).at[target].set(indices, mode="drop")


_SEARCH_WINDOW = 8


def _first_record(record_segment, replica, segment, lowest, num_levels, wanted):
    """First row >= `lowest` written by each replica's current segment (windowed search).

    Every parent has such a row (its score > the killing level), usually within a few rows;
    entries that are not `wanted` (padding) are not searched.
    """
    offsets = jnp.arange(_SEARCH_WINDOW, dtype=jnp.int32)

    def search(carry):
        start, row, found = carry
        rows = jnp.minimum(start[:, None] + offsets[None, :], num_levels)
        written = record_segment[replica[:, None], rows] == segment[:, None]
        hit = jnp.any(written, axis=1)
        first = jnp.take_along_axis(rows, jnp.argmax(written, axis=1)[:, None], axis=1)[:, 0]
        new = ~found & hit
        return start + _SEARCH_WINDOW, jnp.where(new, first, row), found | hit

    def searching(carry):
        start, _, found = carry
        return jnp.any(~found & (start <= num_levels))

    _, row, _ = lax.while_loop(
        searching, search,
        (lowest.astype(jnp.int32), jnp.full(lowest.shape, num_levels, jnp.int32), ~wanted),
    )
    return row


def _kill_and_clone(state, ready, select_keys, num_runs, num_replicas, num_kill, num_levels,
                    max_iterations, capacity):
    """Levels, kills and clones of the runs that are `ready` (all their replicas stopped).

    Ready runs are taken in order while their killed replicas fit in `capacity` (>= N, so at
    least one always fits); the others wait for the next round. Work: O(T + capacity · G).
    """
    jobs = state.jobs
    total = num_runs * num_replicas
    scores = jobs.score.reshape(num_runs, num_replicas)
    level = jnp.sort(scores, axis=1)[:, num_kill - 1]
    success = ready & (level >= num_levels)
    below = scores <= level[:, None]
    below_count = jnp.sum(below, axis=1, dtype=jnp.int32)
    extinct = ready & ~success & (below_count == num_replicas)
    capped = ready & ~success & ~extinct & (state.iteration >= max_iterations)
    cloning = ready & ~success & ~extinct & ~capped
    cloning = cloning & (jnp.cumsum(jnp.where(cloning, below_count, 0)) <= capacity)
    killed = (below & cloning[:, None]).reshape(total)

    # Each killed replica picks a survivor of its run uniformly: the pick-th survivor is the
    # first replica whose survivor count reaches pick + 1. The uniforms of run r at its
    # iteration q are a pure function of (key, r, q).
    survivors = num_replicas - below_count
    survivor_count = jnp.cumsum(~below, axis=1, dtype=jnp.int32)
    uniform = jax.vmap(lambda k, q: jr.uniform(jr.fold_in(k, q), (num_replicas,)))(
        select_keys, state.iteration
    )
    pick = jnp.minimum(
        jnp.floor(uniform * survivors[:, None].astype(uniform.dtype)).astype(jnp.int32),
        jnp.maximum(survivors[:, None] - 1, 0),
    )
    parent_local = jax.vmap(lambda c, p: jnp.searchsorted(c, p + 1, side="left"))(
        survivor_count, pick
    ).astype(jnp.int32)
    run_offset = jnp.arange(num_runs, dtype=jnp.int32) * num_replicas
    parent = (parent_local + run_offset[:, None]).reshape(total)

    # The killed replicas, compacted; each branches where its parent's running maximum first
    # reached level Z + 1 or above (the first record row >= Z + 1 of the parent's segment).
    index = _compact(killed, capacity, total)
    valid = index < total
    safe = jnp.minimum(index, total - 1)
    parent = parent[safe]
    branch_level = (level + 1)[safe // num_replicas]
    branch_row = _first_record(
        state.record_segment, parent, jobs.segment[parent], branch_level, num_levels, valid
    )
    branch_age = state.record_age[parent, branch_row]
    branch_y = state.record_y[parent, branch_row]
    run_iteration = state.iteration[safe // num_replicas].astype(jnp.uint32)
    segment = (run_iteration + 1) * jnp.uint32(num_replicas) + (safe % num_replicas).astype(
        jnp.uint32
    )
    target = jnp.where(valid, index, total)
    status = jnp.where(branch_row == num_levels, ESCAPED, RUNNING).astype(jnp.int32)
    jobs = jobs._replace(
        y=jobs.y.at[target].set(branch_y, mode="drop"),
        age=jobs.age.at[target].set(branch_age, mode="drop"),
        segment=jobs.segment.at[target].set(segment, mode="drop"),
        score=jobs.score.at[target].set(branch_row, mode="drop"),
        status=jobs.status.at[target].set(status, mode="drop"),
    )
    histogram = state.histogram.at[jnp.arange(num_runs), jnp.where(cloning, below_count, 0)].add(
        cloning.astype(jnp.int32)
    )
    return state._replace(
        jobs=jobs,
        record_y=state.record_y.at[target, branch_row].set(branch_y, mode="drop"),
        record_age=state.record_age.at[target, branch_row].set(branch_age, mode="drop"),
        record_segment=state.record_segment.at[target, branch_row].set(segment, mode="drop"),
        done=state.done | success | extinct | capped, extinct=state.extinct | extinct,
        capped=state.capped | capped, iteration=state.iteration + cloning.astype(jnp.int32),
        histogram=histogram,
    )


@eqx.filter_jit(donate="all-except-first")
def advance_runs(config, state, num_rounds, num_runs, num_replicas, num_kill, num_levels,
             num_loops, max_steps, max_iterations, check_every, crossing_correction):
    """Up to `num_rounds` rounds of: harvest, kill/clone ready runs, refill, `check_every` steps.

    Returns (state, particle-steps taken, still busy).
    """
    select_keys = config[9]
    step_one, keys = _step_function(config, num_levels, num_loops, max_steps,
                                    crossing_correction)
    total = num_runs * num_replicas
    num_slots = state.slot_job.shape[0]

    def running_per_run(jobs):
        return jnp.any((jobs.status == RUNNING).reshape(num_runs, num_replicas), axis=1)

    def busy(state):
        return jnp.any(state.jobs.status == RUNNING) | jnp.any(~state.done)

    def harvest(state):
        occupied = state.slot_job < total
        finished = occupied & (state.slots.status != RUNNING)
        target = jnp.where(finished, state.slot_job, total)
        jobs = jax.tree.map(
            lambda j, s: j.at[target].set(s, mode="drop"), state.jobs, state.slots
        )
        in_slot = state.in_slot.at[target].set(False, mode="drop")
        slot_job = jnp.where(finished, total, state.slot_job)
        return state._replace(jobs=jobs, in_slot=in_slot, slot_job=slot_job)

    def refill(state):
        free = state.slot_job >= total
        pending = (state.jobs.status == RUNNING) & ~state.in_slot
        queue = _compact(pending, num_slots, total)
        position = jnp.cumsum(free, dtype=jnp.int32) - 1
        new_job = jnp.where(free, queue[jnp.clip(position, 0, num_slots - 1)], total)
        assign = new_job < total
        fetched = jax.tree.map(lambda j: j[jnp.minimum(new_job, total - 1)], state.jobs)
        slots = jax.tree.map(lambda f, s: _select(assign, f, s), fetched, state.slots)
        return state._replace(
            slots=slots,
            slot_job=jnp.where(assign, new_job, state.slot_job),
            in_slot=state.in_slot.at[jnp.where(assign, new_job, total)].set(True, mode="drop"),
        )

    def step_all(inner, _):
        slots, records, slot_job, steps = inner
        record_y, record_age, record_segment = records
        active = (slot_job < total) & (slots.status == RUNNING)
        slot_keys = keys[jnp.minimum(slot_job, total - 1) // num_replicas]
        new, record, level = jax.vmap(step_one)(slots, slot_keys)
        row = jnp.where(active & record, slot_job, total)
        records = (
            record_y.at[row, level].set(new.y, mode="drop"),
            record_age.at[row, level].set(new.age, mode="drop"),
            record_segment.at[row, level].set(new.segment, mode="drop"),
        )
        slots = jax.tree.map(lambda n, o: _select(active, n, o), new, slots)
        return (slots, records, slot_job, steps + jnp.sum(active, dtype=jnp.int32)), None

    def round_body(carry):
        state, round_index, steps = carry
        state = harvest(state)
        # Clone when the pool would run low (or nothing runs): each call serves many runs.
        ready = ~state.done & ~running_per_run(state.jobs)
        running = jnp.sum(state.jobs.status == RUNNING, dtype=jnp.int32)
        state = lax.cond(
            jnp.any(ready) & (running <= num_slots // 2),
            lambda s: _kill_and_clone(s, ready, select_keys, num_runs, num_replicas, num_kill,
                                      num_levels, max_iterations, max(num_replicas, num_slots)),
            lambda s: s,
            state,
        )
        state = refill(state)
        records = (state.record_y, state.record_age, state.record_segment)
        (slots, records, _, steps), _ = lax.scan(
            step_all, (state.slots, records, state.slot_job, steps), None, length=check_every
        )
        record_y, record_age, record_segment = records
        state = state._replace(
            slots=slots, record_y=record_y, record_age=record_age, record_segment=record_segment
        )
        return state, round_index + 1, steps

    def not_finished(carry):
        state, round_index, _ = carry
        return busy(state) & (round_index < num_rounds)

    state, _, steps = lax.while_loop(
        not_finished, round_body, (state, jnp.int32(0), jnp.int32(0))
    )
    return state, steps, busy(state)


def start_loops(start, num_runs, num_replicas, num_levels, num_slots):
    """Loop particles at `start` (armed, age 0), no records, an empty pool of `num_slots`."""
    total = num_runs * num_replicas
    dim, dtype = start.shape[0], start.dtype
    local = jnp.arange(total) % num_replicas
    jobs = _empty_jobs(total, dim, dtype, num_levels)._replace(
        y=jnp.broadcast_to(start, (total, dim)), segment=local.astype(jnp.uint32),
        status=jnp.full(total, RUNNING, jnp.int32), armed=jnp.ones(total, bool),
        entry_y=jnp.broadcast_to(start, (total, dim)),
    )
    return _State(
        jobs, jnp.zeros((total, num_levels + 1, dim), dtype),
        jnp.zeros((total, num_levels + 1), jnp.int32),
        jnp.full((total, num_levels + 1), MAX_SEGMENT_ID, jnp.uint32),
        _empty_jobs(num_slots, dim, dtype, num_levels),
        jnp.full(num_slots, total, jnp.int32), jnp.zeros(total, bool), jnp.ones(num_runs, bool),
        jnp.zeros(num_runs, bool), jnp.zeros(num_runs, bool), jnp.zeros(num_runs, jnp.int32),
        jnp.zeros((num_runs, num_replicas + 1), jnp.int32),
    )


@eqx.filter_jit
def start_replicas(config, state, num_replicas, num_levels):
    """AMS replicas at the loop particles' last entrance states (age 0), first records set."""
    xi, sigma_level, spacing = config
    entrance_states = state.jobs.entry_y
    total, dim = entrance_states.shape
    score = jax.vmap(lambda y: _level(xi(y), sigma_level, spacing, num_levels))(entrance_states)
    jobs = _empty_jobs(total, dim, entrance_states.dtype, num_levels)._replace(
        y=entrance_states,
        segment=(jnp.arange(total) % num_replicas).astype(jnp.uint32),
        score=score,
        status=jnp.full(total, RUNNING, jnp.int32),
    )
    rows = jnp.arange(total)
    num_runs = state.done.shape[0]
    return state._replace(
        jobs=jobs,
        record_y=state.record_y.at[rows, score].set(entrance_states),
        record_age=state.record_age.at[rows, score].set(0),
        record_segment=state.record_segment.at[rows, score].set(jobs.segment),
        done=jnp.zeros(num_runs, bool), extinct=jnp.zeros(num_runs, bool),
        capped=jnp.zeros(num_runs, bool), iteration=jnp.zeros(num_runs, jnp.int32),
        histogram=jnp.zeros_like(state.histogram),
    )
