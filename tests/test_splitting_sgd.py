"""Adaptive multilevel splitting with real SGD particles (`MinibatchSGD`) against direct runs.

Problem: Meng's 1-D landscape (`MengDoubleWell` on `meng_data`, n = 500) with barrier ΔL, plain
SGD with i.i.d. minibatches (η = 0.1, B = 10), escape past the plane half the minimum–top
distance beyond the barrier top. Times in iterations. At ΔL = 0.1 the mean is ~2.5·10³
iterations: 400 direct runs (10⁶ particle-steps) give it to 5 %, splitting to ~12 % with
3·10⁵ particle-steps. All default tests share one compiled kernel per pool size.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxescape as jxe
from jaxescape import estimate_escape_time


LEARNING_RATE, BATCH_SIZE = 0.1, 10
NUM_REPLICAS, NUM_RUNS = 100, 16


def meng_problem(barrier, **options):
    data = jxe.meng_data(jax.random.key(0))
    inputs, targets = np.asarray(data.inputs, np.float64), np.asarray(data.targets, np.float64)
    optimum = float(np.mean(inputs * targets) / np.mean(inputs**2))
    shift = float(jxe.meng_shift_for_barrier(data, barrier))
    minimum, top = -shift - optimum, shift + optimum
    options = {"batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
               "replacement": True} | options
    sgd = jxe.MinibatchSGD(jxe.MengDoubleWell(shift), data, **options)
    criterion = jxe.HalfSpace(jnp.array([1.0]), top + 0.5 * (top - minimum))
    return sgd, criterion, jnp.array([minimum], data.inputs.dtype)


def splitting(sgd, criterion, start, key, **options):
    options = {"num_replicas": NUM_REPLICAS, "num_runs": NUM_RUNS} | options
    return estimate_escape_time(sgd, criterion, start, jax.random.key(key), **options)


def assert_agrees_with_direct(result, sgd, criterion, start, num_particles, key):
    direct = jxe.simulate(sgd, criterion, start, jax.random.key(key),
                          num_particles=num_particles, max_steps=10**7)
    assert not direct.censored.any()
    mean, standard_error = jxe.mean_escape_time(direct.escape_time)
    # Both estimate the same mean (in iterations): within their combined 95 % intervals.
    half_width = math.hypot((result.upper - result.lower) / 2, 1.96 * standard_error)
    assert abs(result.mean_escape_time - mean) < half_width, (result, mean, standard_error)
    assert result.num_extinct == 0 and result.num_censored == 0
    return mean, standard_error, int(direct.escape_step.sum())


@pytest.fixture(scope="module")
def problem():
    return meng_problem(0.1)


@pytest.fixture(scope="module")
def reference(problem):
    return splitting(*problem, key=1)


def test_agrees_with_direct_simulation(problem, reference):
    assert reference.dt == 1.0  # default for SGD: times in iterations
    assert reference.lower < reference.mean_escape_time < reference.upper
    assert reference.relative_error < 0.2
    _, _, direct_cost = assert_agrees_with_direct(reference, *problem, num_particles=400, key=2)
    assert reference.cost < direct_cost


def test_same_key_same_numbers_for_any_pool(problem, reference):
    other_pool = splitting(*problem, key=1, num_slots=37, check_every=5)
    for name in ("mean_escape_time", "lower", "upper", "probability", "loop_time", "cost",
                 "a_level", "sigma_level", "num_levels"):
        assert getattr(other_pool, name) == getattr(reference, name), name
    np.testing.assert_array_equal(other_pool.run_probabilities, reference.run_probabilities)
    np.testing.assert_array_equal(other_pool.num_iterations, reference.num_iterations)
    # dt only sets the unit (dt = η: SDE time t = ηk); another key gives other numbers.
    in_time = splitting(*problem, key=1, dt=LEARNING_RATE, num_slots=37, check_every=5)
    assert in_time.mean_escape_time == pytest.approx(LEARNING_RATE * reference.mean_escape_time)
    assert in_time.probability == reference.probability
    other_key = splitting(*problem, key=3, num_slots=37, check_every=5)
    assert other_key.mean_escape_time != reference.mean_escape_time


def test_refuses_what_it_cannot_do(problem):
    sgd, criterion, start = problem
    shuffled = meng_problem(0.1, replacement=False)[0]
    with pytest.raises(ValueError, match="replacement=True"):
        splitting(shuffled, criterion, start, key=0)
    adam = meng_problem(0.1, optimizer=optax.adam)[0]
    with pytest.raises(ValueError, match="optimizer"):
        splitting(adam, criterion, start, key=0)
    never = jxe.Predicate(lambda y, _: y[0] > 10.0)
    with pytest.raises(ValueError, match="reaction_coordinate"):
        splitting(sgd, never, start, key=0)


@pytest.mark.slow
@pytest.mark.parametrize("barrier, options, num_particles", [
    (0.15, {}, 1000),                                   # mean ~2.4·10⁴ iterations
    (0.2, {"optimizer_options": {"momentum": 0.5}}, 1000),  # optimizer state in replicas
])
def test_agrees_with_direct_simulation_slow(barrier, options, num_particles):
    sgd, criterion, start = meng_problem(barrier, **options)
    result = splitting(sgd, criterion, start, key=4)
    mean, standard_error, direct_cost = assert_agrees_with_direct(
        result, sgd, criterion, start, num_particles, key=5
    )
    print(f"ΔL={barrier} {options}: AMS {result.mean_escape_time:.4g} "
          f"[{result.lower:.4g}, {result.upper:.4g}] cost {result.cost}; direct {mean:.4g} ± "
          f"{standard_error:.3g} cost {direct_cost}")
