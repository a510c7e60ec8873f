"""Adaptive multilevel splitting against exact 1-D mean first-passage times and direct simulation.

Problem: 1-D `TiltedDoubleWell(1, 4)` (ΔL = 1, L'' = 4 at the minimum, 2 at the barrier top),
overdamped Langevin at temperature D = 1/ratio, absorbing plane `past_saddle` (0.707 beyond the
barrier top), reflecting far inside (−2 × saddle). Euler–Maruyama with dt = 0.01 and the
Brownian-bridge crossing correction: the discrete chain's mean escape time is a few per cent
below the exact continuous-time MFPT (the EM invariant law lowers the barrier exponent by about
dt·(L''(min) + |L''(saddle)|)/2 = 0.03); the intervals here are 10–25 % wide.

All default tests share one compiled kernel (same N, R, levels, dtype and dynamics type).
"""

import math

import jax
import numpy as np
import pytest

import jaxescape as jxe
from helpers import assert_within_se
from jaxescape import estimate_escape_time


DT = 0.01
# One level grid for all default tests (the automatic one depends on the temperature and each
# grid size is a compilation).
NUM_REPLICAS, NUM_RUNS, NUM_LEVELS = 100, 16, 512


def tilted_double_well(ratio):
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 1.0 / ratio)
    criterion = jxe.past_saddle(landscape)
    exact = jxe.exact_mfpt(
        dynamics, 0.0, reflecting=-2 * float(landscape.saddle()[0]),
        absorbing=float(criterion.offset),
    )
    return landscape, dynamics, criterion, exact


def splitting(dynamics, criterion, start, key=0, **options):
    options = {"dt": DT, "num_replicas": NUM_REPLICAS, "num_runs": NUM_RUNS,
               "num_levels": NUM_LEVELS} | options
    return estimate_escape_time(dynamics, criterion, start, jax.random.key(key), **options)


@pytest.mark.parametrize("ratio", [5, 10, 15])
def test_matches_exact_mfpt(ratio):
    landscape, dynamics, criterion, exact = tilted_double_well(ratio)
    result = splitting(dynamics, criterion, landscape.minimum())
    assert result.lower <= exact <= result.upper, (result.mean_escape_time / exact, result)
    assert result.relative_error < 0.2
    assert result.lower < result.mean_escape_time < result.upper
    assert result.probability_lower < result.probability < result.probability_upper
    assert result.num_extinct == 0 and result.num_censored == 0
    # The decomposition τ = T0 + (1/p − 1)·loop + reactive holds for the reported pieces.
    recombined = (result.first_entrance_time + (1 / result.probability - 1) * result.loop_time
                  + result.reactive_time)
    assert recombined == pytest.approx(result.mean_escape_time, rel=1e-9)
    # Splitting is cheap where direct simulation is not: fewer steps than one direct escape.
    if ratio >= 10:
        assert result.cost < exact / DT


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [20, 25, 30, 35, 40])
def test_matches_exact_mfpt_low_noise(ratio):
    # Mean times 1e9 to 1e17. The run estimates are right-skewed when ln(1/p) is not small
    # against N (with N = 100 at ΔL/D = 30 the 95 % interval covered 26 of 30 keys), so these
    # use N = 400.
    landscape, dynamics, criterion, exact = tilted_double_well(ratio)
    result = splitting(dynamics, criterion, landscape.minimum(), num_replicas=400,
                       num_levels=None)
    assert result.num_levels >= 1024
    assert result.lower <= exact <= result.upper, (result.mean_escape_time / exact, result)
    assert result.num_extinct == 0 and result.num_censored == 0


def test_agrees_with_direct_simulation():
    ratio = 4.0
    landscape, dynamics, criterion, exact = tilted_double_well(ratio)
    result = splitting(dynamics, criterion, landscape.minimum(), key=1)
    direct = jxe.simulate(
        dynamics, criterion, landscape.minimum(), jax.random.key(2), num_particles=600, dt=DT,
        max_steps=10**7, num_slots=256,
    )
    mean, standard_error = jxe.mean_escape_time(direct.escape_time)
    # Both estimate the same discrete-time mean: their difference is within 3 combined errors.
    combined = math.hypot(standard_error, result.standard_error)
    assert abs(result.mean_escape_time - mean) < 3 * combined, (result.mean_escape_time, mean)
    assert result.lower <= exact <= result.upper


def test_same_key_same_numbers():
    landscape, dynamics, criterion, _ = tilted_double_well(5)
    first = splitting(dynamics, criterion, landscape.minimum(), key=3)
    second = splitting(dynamics, criterion, landscape.minimum(), key=3)
    other = splitting(dynamics, criterion, landscape.minimum(), key=4)
    for name in ("mean_escape_time", "lower", "upper", "probability", "loop_time", "cost"):
        assert getattr(first, name) == getattr(second, name), name
    np.testing.assert_array_equal(first.run_probabilities, second.run_probabilities)
    np.testing.assert_array_equal(first.num_iterations, second.num_iterations)
    assert other.mean_escape_time != first.mean_escape_time


@pytest.mark.slow
def test_numbers_do_not_depend_on_the_schedule():
    landscape, dynamics, criterion, _ = tilted_double_well(8)
    reference = splitting(dynamics, criterion, landscape.minimum(), key=5)
    for options in ({"num_slots": 37, "check_every": 5}, {"num_slots": 1600, "check_every": 64}):
        result = splitting(dynamics, criterion, landscape.minimum(), key=5, **options)
        assert result.mean_escape_time == reference.mean_escape_time, options
        np.testing.assert_array_equal(result.run_probabilities, reference.run_probabilities)
        assert result.cost == reference.cost


@pytest.mark.slow
def test_float64(x64):
    landscape, dynamics, criterion, exact = tilted_double_well(8)
    result = splitting(dynamics, criterion, landscape.minimum(), num_replicas=50, num_runs=8,
                       num_levels=256)
    assert result.lower <= exact <= result.upper, (result.mean_escape_time / exact, result)


def double_well_drift(t, y, parameters):
    return -parameters["landscape"].gradient(y)


def split_noise(t, y, parameters):
    # Two independent Brownian motions, each with half the variance: D = temperature.
    column = jax.numpy.sqrt(parameters["temperature"]) * jax.numpy.ones((1, 2), y.dtype)
    return column


def test_matrix_noise_general_sde():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.GeneralSDE(
        double_well_drift, split_noise,
        {"landscape": landscape, "temperature": jax.numpy.asarray(1 / 8)},
        noise_type="matrix", noise_dimension=2,
    )
    criterion = jxe.past_saddle(landscape)
    exact = jxe.exact_mfpt(dynamics, 0.0, reflecting=-2 * float(landscape.saddle()[0]),
                           absorbing=float(criterion.offset))
    result = splitting(dynamics, criterion, landscape.minimum(), num_replicas=50, num_runs=8,
                       num_levels=256)
    assert result.lower <= exact <= result.upper, (result.mean_escape_time / exact, result)


@pytest.mark.slow
def test_two_dimensional_eyring_kramers():
    """AnisotropicWell, low noise: the ratio to Eyring–Kramers tends to 1 as ΔL/D grows."""
    landscape = jxe.AnisotropicWell(1.0, 4.0, jax.numpy.asarray([9.0]))
    temperature = 1 / 20
    dynamics = jxe.OverdampedLangevin(landscape, temperature)
    criterion = jxe.past_saddle(landscape)
    theory = jxe.eyring_kramers_time(
        np.asarray(landscape.hessian(landscape.minimum())),
        np.asarray(landscape.hessian(landscape.saddle())), 1.0, temperature,
    )
    result = splitting(dynamics, criterion, landscape.minimum(), num_levels=None)
    # The separable well has the 1-D exact MFPT along the escape direction.
    exact = jxe.exact_mfpt(
        jxe.OverdampedLangevin(jxe.TiltedDoubleWell(1.0, 4.0), temperature), 0.0,
        reflecting=-2 * float(landscape.saddle()[0]), absorbing=float(criterion.offset),
    )
    ratio = result.mean_escape_time / theory
    # Eyring–Kramers is asymptotic: exact / theory = 1.020 at D/ΔL = 0.05 (1 + O(D/ΔL)).
    assert 1 < exact / theory < 1 + temperature
    # The estimate is unbiased for the Euler–Maruyama chain, whose own MFPT (Nyström solution of
    # its bridge-killed kernel on 1500 and 3000 nodes) lies within 0.6 % of the exact one here
    # (−0.49 % at ΔL/D = 5): a stated allowance of 1 %.
    assert_within_se(result.mean_escape_time, result.standard_error, exact, num_se=4,
                     bias=0.01 * exact, message=f"ratio to Eyring–Kramers {ratio:.3f}")
    assert result.lower <= exact <= result.upper, (result.mean_escape_time / exact, ratio)


def bad_call(**changes):
    landscape, dynamics, criterion, _ = tilted_double_well(5)
    arguments = {"dynamics": dynamics, "criterion": criterion,
                 "initial_position": landscape.minimum(), "key": jax.random.key(0), "dt": DT}
    arguments |= changes
    return lambda: estimate_escape_time(
        arguments.pop("dynamics"), arguments.pop("criterion"), arguments.pop("initial_position"),
        arguments.pop("key"), **arguments,
    )


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"dt": 0.0}, ValueError, "dt"),
        ({"dt": float("nan")}, ValueError, "dt"),
        ({"num_replicas": 1}, ValueError, "num_replicas"),
        ({"num_replicas": 10.5}, TypeError, "num_replicas"),
        ({"num_runs": 1}, ValueError, "num_runs"),
        ({"kill_fraction": 0.0}, ValueError, "kill_fraction"),
        ({"kill_fraction": 1.0}, ValueError, "kill_fraction"),
        ({"kill_fraction": "many"}, TypeError, "kill_fraction"),
        ({"num_levels": 0}, ValueError, "num_levels"),
        ({"num_loops": 0}, ValueError, "num_loops"),
        ({"max_iterations": 0}, ValueError, "max_iterations"),
        ({"max_iterations": 2**31, "num_replicas": 256}, ValueError, "max_iterations"),
        ({"confidence": 1.0}, ValueError, "confidence"),
        ({"reaction_coordinate": 3.0}, TypeError, "reaction_coordinate"),
        ({"a_level": 0.5, "sigma_level": 0.3}, ValueError, "a_level < sigma_level"),
        ({"sigma_level": 5.0}, ValueError, "max_level"),
        ({"a_level": -0.5}, ValueError, "initial_position must lie in A"),
        ({"max_level": float("inf")}, ValueError, "max_level"),
        ({"initial_position": np.array([3.0])}, ValueError, "initial_position"),
        ({"initial_position": np.zeros(2)}, ValueError, "initial_position"),
        ({"criterion": "plane"}, TypeError, "criteria"),
        ({"criterion": jxe.Predicate(lambda y, p: y[0] > 2.0),
          "dynamics": jxe.GeneralSDE(double_well_drift, lambda t, y, p: 0.3 + 0 * y,
                                     {"landscape": jxe.TiltedDoubleWell(1.0, 4.0)})},
         ValueError, "reaction_coordinate"),
    ],
)
def test_bad_inputs_raise(changes, error, match):
    with pytest.raises(error, match=match):
        bad_call(**changes)()


def test_custom_reaction_coordinate_needs_max_level():
    with pytest.raises(ValueError, match="max_level"):
        bad_call(reaction_coordinate=lambda y: y[0])()
