"""Per-particle random starts of SGD particles (`MinibatchSGD(initializer=...)`): each particle's
start is a pure function of (key, particle), so it does not depend on chunking; the driver starts
particle i at `particle_start(...)[i]`; bad initializers are refused before anything compiles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe
from helpers import assert_within_se


DIM, SPREAD = 4, 0.5


def spread_start(key, position):
    return position + SPREAD * jax.random.normal(key, position.shape, position.dtype)


def problem(learning_rate=0.05, initializer=spread_start):
    data = jxe.gaussian_regression_data(jax.random.key(0), num_samples=64, dim=DIM)
    sgd = jxe.MinibatchSGD(jxe.LinearRegression(DIM), data, batch_size=8,
                           learning_rate=learning_rate, initializer=initializer)
    return sgd, jnp.linalg.lstsq(data.inputs, data.targets)[0]


def test_each_particle_starts_where_particle_start_says():
    # A learning rate of 1e-30 moves no float32 parameter: the end of one step is the start.
    sgd, minimum = problem(learning_rate=1e-30)
    result = jxe.simulate(sgd, jxe.NeverEscape(), minimum, jax.random.key(3),
                          num_particles=2000, max_steps=1)
    starts = np.asarray(jxe.particle_start(sgd, minimum, jax.random.key(3), np.arange(2000)))
    # Equal up to float32 rounding: inside the kernel XLA may fuse θ + s·z into one FMA.
    np.testing.assert_allclose(result.position, starts, rtol=0, atol=2.5e-7)
    # The starts are the initializer's law: mean θ*, standard deviation SPREAD per coordinate.
    deviations = starts - np.asarray(minimum)
    assert_within_se(deviations.mean(), SPREAD / np.sqrt(deviations.size), 0.0, num_se=4)
    variance_se = SPREAD**2 * np.sqrt(2 / deviations.size)
    assert_within_se(deviations.var(), variance_se, SPREAD**2, num_se=4)
    assert len(np.unique(starts[:, 0])) == 2000


def test_random_starts_do_not_depend_on_chunking():
    sgd, minimum = problem()
    loss = jxe.TrainingLoss(sgd.model, sgd.data)
    criterion = jxe.LossAbove(loss, float(loss.loss(minimum)) + 0.6)
    results = [
        jxe.simulate(sgd, criterion, minimum, jax.random.key(5), num_particles=1500,
                     max_steps=300, **options)
        for options in ({}, {"chunk_size": 400, "num_slots": 256, "check_every": 7})
    ]
    assert results[0].escaped.any() and results[0].censored.any()
    for name in ("escape_step", "boundary", "censored", "diverged", "position"):
        np.testing.assert_array_equal(getattr(results[0], name), getattr(results[1], name))


@pytest.mark.parametrize(
    "initializer, match",
    [
        (lambda key, position: position[:2], "shape and dtype"),
        (lambda key, position: position * jnp.nan, "not all finite"),
        (lambda key, position: 1 / 0, "initializer"),
    ],
    ids=["wrong-shape", "not-finite", "raises"],
)
def test_bad_initializers_are_refused_before_compiling(initializer, match):
    sgd, minimum = problem(initializer=initializer)
    with pytest.raises(ValueError, match=match):
        jxe.simulate(sgd, jxe.NeverEscape(), minimum, jax.random.key(0), num_particles=10,
                     max_steps=1)


def test_splitting_refuses_random_starts():
    sgd, minimum = problem()
    sgd = jxe.MinibatchSGD(sgd.model, sgd.data, batch_size=8, learning_rate=0.05,
                           replacement=True, initializer=spread_start)
    with pytest.raises(ValueError, match="initializer"):
        jxe.mean_escape_time_by_splitting(sgd, jxe.HalfSpace(jnp.ones(DIM), 10.0), minimum,
                                          jax.random.key(0), num_replicas=10, num_runs=2)
