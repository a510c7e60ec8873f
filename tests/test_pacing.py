"""The host loop's calls are paced by the clock (`_engine/pacing.py`); pacing never changes a
number, and a heavy particle's straggler is left to step alone (`sizing.minimum_slots`)."""

import functools

import jax
import numpy as np

import jaxescape as jxe
from jaxescape._engine import devices, sizing
from jaxescape._engine.pacing import MAXIMUM_FACTOR, CallPacer
from jaxescape._particle import MINIMUM_BATCH


def test_pacer_skips_compiling_calls_and_scales_by_at_most_the_factor():
    pacer = CallPacer(seconds=1.0)
    pacer.record(30.0)  # the first call compiles: not a measurement
    assert pacer.rounds == 1
    pacer.record(0.001)  # a fast call: at most MAXIMUM_FACTOR times more rounds
    assert pacer.rounds == MAXIMUM_FACTOR
    pacer.record(0.5)
    assert pacer.rounds == 2 * MAXIMUM_FACTOR
    pacer.recompiled()
    pacer.record(100.0)  # compiled (a new pool size): skipped
    assert pacer.rounds == 2 * MAXIMUM_FACTOR
    pacer.record(100.0)  # a slow call: at most MAXIMUM_FACTOR times fewer
    assert pacer.rounds == 2
    pacer.record(100.0)
    assert pacer.rounds == 1  # never below one round


def test_minimum_tail_pool_holds_256_coordinates():
    assert sizing.minimum_slots(1) == sizing.MINIMUM_SLOTS == 256
    assert [sizing.minimum_slots(dim) for dim in (2, 10, 200, 5000)] == [128, 16, 1, 1]


def _run(monkeypatch, seconds, dim=1, num_slots=64, num_particles=None):
    """A run whose pacer has target `seconds`; returns the result, the rounds of each call and
    the pool size of each call."""
    rounds, pools = [], []

    class RecordingPacer(CallPacer):
        def record(self, elapsed):
            rounds.append(self.rounds)
            super().record(elapsed)

    def recording_advance(config, slots, *rest, **options):
        pools.append(slots.status.shape[0])
        return advance(config, slots, *rest, **options)

    advance = devices.advance
    monkeypatch.setattr(devices, "CallPacer", functools.partial(RecordingPacer, seconds=seconds))
    monkeypatch.setattr(devices, "advance", recording_advance)
    landscape = jxe.AnisotropicWell(1.0, 4.0, [2.0] * (dim - 1)) if dim > 1 else (
        jxe.TiltedDoubleWell(1.0, 4.0))
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    result = jxe.simulate(
        dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(3),
        num_particles=num_particles or 600, dt=0.02, num_slots=num_slots, check_every=8,
        max_steps=20_000,
    )
    return result, rounds, pools


def test_pacing_never_changes_a_number(monkeypatch):
    one_round, rounds_short, _ = _run(monkeypatch, 1e-9)  # every call one round
    many_rounds, rounds_long, _ = _run(monkeypatch, 1e3)  # rounds grow 8-fold a call
    assert set(rounds_short) == {1} and max(rounds_long) >= MAXIMUM_FACTOR**2
    for field in ("escape_step", "boundary", "censored", "diverged", "position"):
        np.testing.assert_array_equal(getattr(one_round, field), getattr(many_rounds, field))


def test_a_heavy_particles_tail_pool_shrinks_below_the_one_dimensional_minimum(monkeypatch):
    """A 300-coordinate particle's tail pool goes 512 -> 32 slots (a 1-D pool stops at 256;
    none goes below `MINIMUM_BATCH`, 8), and its numbers are those of a run that never shrinks
    (a pool of 2 slots is raised to 8)."""
    result, _, pools = _run(monkeypatch, 1e-9, dim=300, num_slots=512, num_particles=300)
    assert pools[0] == 512 and min(pools) == 32
    unshrunk, _, pools = _run(monkeypatch, 1e-9, dim=300, num_slots=2, num_particles=300)
    assert set(pools) == {MINIMUM_BATCH}
    for field in ("escape_step", "boundary", "position"):
        np.testing.assert_array_equal(getattr(result, field), getattr(unshrunk, field))
