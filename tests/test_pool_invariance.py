"""Same key, same numbers at any pool size, for steps that contract (networks, data sets).

XLA picks a batched contraction's algorithm by its shape, so a network's or a data set's step,
vmapped over a pool of S slots, rounds differently for different S: without blocks a particle's
escape step depended on the pool, hence on the chunk size and the tail's shrinks (the first test
shows it still does for a bare vmap). Such processes are stepped in blocks of a fixed size
(`AbstractParticleProcess.step_block`, `pool.blocked_vmap`), and their numbers no longer depend
on the pool; elementwise steps (SDEs on closed-form landscapes) keep the whole pool as one
batch, and no pool is smaller than `MINIMUM_BATCH` slots (a batch of one is scalar code).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape._particle import MINIMUM_BATCH, batch_floor, default_step_block


def _network_problem():
    """Langevin on a small network's full-data loss (30-4-1, 300 samples: a batch of 64 and one
    of 512 such steps rounded differently on a CPU; smaller problems did not show it)."""
    inputs = jax.random.normal(jax.random.key(0), (300, 30))
    targets = jnp.sin(inputs.sum(axis=1, keepdims=True))
    model = jxe.NetworkModel(eqx.nn.MLP(30, 1, 4, 1, key=jax.random.key(1)), loss="mse")
    landscape = jxe.TrainingLoss(model, jxe.Dataset(inputs, targets))
    start = model.initial_parameters
    return jxe.OverdampedLangevin(landscape, 0.002), jxe.OutsideBall(start, 1.0), start


def _run(process, criterion, start, num_slots, num_particles=300):
    return jxe.simulate(process, criterion, start, jax.random.key(7), num_particles=num_particles,
                        num_slots=num_slots, dt=0.01, max_steps=5000, check_every=8)


def _same(first, second):
    return (np.array_equal(first.escape_step, second.escape_step)
            and np.array_equal(first.position, second.position))


def test_a_contracting_step_needs_blocks(monkeypatch):
    """Blocked (the default for this process) a pool of one block (256 slots on a CPU) and of
    two agree bit for bit; as one batch, pools of 64 and 512 slots do not (the test would fail
    without blocks)."""
    process, criterion, start = _network_problem()
    dim = start.shape[0]
    assert process.step_block(dim) == default_step_block(dim)
    pools = (default_step_block(dim), 2 * default_step_block(dim))
    blocked = [_run(process, criterion, start, slots) for slots in pools]
    assert _same(*blocked)
    assert blocked[0].escaped.sum() > 100  # escapes and refills happened
    # The same process as one batch (no blocks, the 8-slot floor): 64 and 512 slots differ.
    monkeypatch.setattr(jxe.OverdampedLangevin, "step_block", lambda self, dim: None)
    jax.clear_caches()  # the pools above compiled with blocks
    whole = [_run(process, criterion, start, slots) for slots in (64, 512)]
    assert not _same(*whole)


def test_blocked_numbers_do_not_depend_on_chunks_or_a_small_pool():
    process, criterion, start = _network_problem()
    reference = _run(process, criterion, start, None)
    chunked = jxe.simulate(process, criterion, start, jax.random.key(7), num_particles=300,
                           chunk_size=100, num_slots=1, dt=0.01, max_steps=5000, check_every=8)
    assert _same(reference, chunked)


def test_elementwise_steps_keep_one_batch_and_a_floor_of_eight_slots():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    process = jxe.OverdampedLangevin(landscape, 0.5)
    assert process.step_block(1) is None and batch_floor(process, 1) == MINIMUM_BATCH
    runs = [jxe.simulate(process, jxe.past_saddle(landscape), landscape.minimum(),
                         jax.random.key(3), num_particles=num_particles, num_slots=slots,
                         dt=0.02, max_steps=400)
            for num_particles, slots in ((1, None), (1000, 64), (1000, 1024))]
    assert all(_same(run, runs[2]) for run in runs[1:])
    assert np.array_equal(runs[0].escape_step, runs[2].escape_step[:1])
    assert np.array_equal(runs[0].position, runs[2].position[:1])


@pytest.mark.parametrize("process_name",
                         ["sgd", "minibatch-noise", "general-sde", "function-landscape"])
def test_every_contracting_family_is_blocked(process_name):
    data = jxe.Dataset(jax.random.normal(jax.random.key(0), (32, 3)), jnp.ones(32))
    model = jxe.LinearRegression(3)
    process = {
        "sgd": jxe.MinibatchSGD(model, data, batch_size=4, learning_rate=0.1),
        "minibatch-noise": jxe.MinibatchNoiseSDE(model, data, 0.1, 4),
        "general-sde": jxe.GeneralSDE(lambda t, y, p: -y, lambda t, y, p: jnp.ones_like(y)),
        "function-landscape": jxe.OverdampedLangevin(
            jxe.FunctionLandscape(lambda y, p: jnp.sum(y**2), 3), 0.5),
    }[process_name]
    assert process.step_block(3) == default_step_block(3)
