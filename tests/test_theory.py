"""Exact checks of the first-passage quadrature and the Kramers / Eyring–Kramers formulas."""

import math

import numpy as np
import pytest
from scipy import integrate

from jaxescape import (
    eyring_kramers_time,
    kramers_rate,
    kramers_time,
    log_mfpt_quadrature,
    mfpt_quadrature,
)


def double_well_drift(x: np.ndarray) -> np.ndarray:
    """A = -U' for U = x^4/4 - x^2/2: minima at ±1, saddle at 0, ΔU = 1/4, U'' = 2 and -1."""
    return x - x**3


def constant(value: float):
    return lambda x: np.full_like(x, value)


@pytest.mark.parametrize("start", [0.0, 0.7, 1.9])
def test_pure_diffusion_closed_form(start):
    diffusion, length = 0.3, 2.0
    expected = (length**2 - start**2) / (2.0 * diffusion)
    result = mfpt_quadrature(constant(0.0), constant(diffusion), start, 0.0, length, 20_001)
    assert result == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("velocity", [1.0, -1.0, 3.0])
@pytest.mark.parametrize("start", [0.0, 0.6])
def test_constant_drift_closed_form(velocity, start):
    # v T' + D T'' = -1, T'(0) = 0, T(L) = 0  =>  T = (L - x)/v + D/v^2 (e^{-vL/D} - e^{-vx/D}).
    diffusion, length = 0.2, 1.5
    expected = (length - start) / velocity + diffusion / velocity**2 * (
        math.exp(-velocity * length / diffusion) - math.exp(-velocity * start / diffusion)
    )
    result = mfpt_quadrature(lambda x: velocity + 0.0 * x, constant(diffusion), start, 0.0, length)
    assert result == pytest.approx(expected, rel=1e-9)
    # Mirrored orientation (x -> -x): drift -v, reflecting at 0, absorbing at -L.
    mirrored = mfpt_quadrature(lambda x: -velocity + 0.0 * x, constant(diffusion), -start, 0.0,
                               -length)
    assert mirrored == pytest.approx(expected, rel=1e-9)


def test_ornstein_uhlenbeck_against_scipy_double_integral():
    stiffness, diffusion, reflecting, absorbing, start = 1.5, 0.3, -2.0, 1.0, 0.2

    def inner(y):
        return integrate.quad(lambda z: math.exp(-stiffness * z * z / (2 * diffusion)) / diffusion,
                              reflecting, y, epsabs=0, epsrel=1e-13, limit=200)[0]

    reference = integrate.quad(lambda y: math.exp(stiffness * y * y / (2 * diffusion)) * inner(y),
                               start, absorbing, epsabs=0, epsrel=1e-12, limit=200)[0]
    result = mfpt_quadrature(lambda x: -stiffness * x, constant(diffusion), start, reflecting,
                             absorbing)
    assert result == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize(
    ("diffusion", "beyond", "at_saddle"),
    [(0.05, 1.107, 0.549), (0.03, 1.054, 0.527), (0.02, 1.034, 0.517)],
)
def test_kramers_ratios_of_theory_section_1_5(diffusion, beyond, at_saddle):
    kramers = kramers_time(0.25, 2.0, 1.0, diffusion)
    # docs/THEORY.md §1.5 numbers: absorbing at the next minimum x = 1, reflecting far left.
    to_next_minimum = mfpt_quadrature(double_well_drift, constant(diffusion), -1.0, -3.0, 1.0)
    assert round(to_next_minimum / kramers, 3) == beyond
    to_barrier_top = mfpt_quadrature(double_well_drift, constant(diffusion), -1.0, -3.0, 0.0)
    assert round(to_barrier_top / kramers, 3) == at_saddle
    half = kramers_time(0.25, 2.0, 1.0, diffusion, absorption="at_saddle")
    assert half == pytest.approx(kramers / 2.0, rel=1e-15)
    assert to_barrier_top / half == pytest.approx(2.0 * at_saddle, abs=2e-3)


def test_mirrored_orientation_with_state_dependent_noise():
    def drift(x):
        return 0.3 - x - 0.5 * x**3

    def diffusion(x):
        return 0.1 * (1.0 + 0.5 * x**2) + 0.02 * x

    original = log_mfpt_quadrature(drift, diffusion, 0.1, -2.0, 1.2)
    mirrored = log_mfpt_quadrature(lambda x: -drift(-x), lambda x: diffusion(-x), -0.1, 2.0, -1.2)
    assert mirrored == pytest.approx(original, rel=1e-13)


def test_log_space_beyond_float_range_matches_kramers():
    diffusion = 0.25 / 720.0
    log_time = log_mfpt_quadrature(double_well_drift, constant(diffusion), -1.0, -3.0, 1.0)
    assert math.isfinite(log_time) and log_time > 700.0
    assert mfpt_quadrature(double_well_drift, constant(diffusion), -1.0, -3.0, 1.0) == math.inf
    log_kramers = math.log(2.0 * math.pi / math.sqrt(2.0)) + 0.25 / diffusion
    # Measured ratios - 1 are 1.7 D at D = 0.02 and 1.5 D here: O(D) corrections, positive.
    assert 0.0 < log_time - log_kramers < 5.0 * diffusion


@pytest.mark.parametrize("diffusion", [0.02, 0.25 / 720.0])
def test_convergence_in_num_points(diffusion):
    values = [log_mfpt_quadrature(double_well_drift, constant(diffusion), -1.0, -3.0, 1.0, n)
              for n in (200_001, 400_001)]
    assert abs(math.expm1(values[1] - values[0])) < 1e-8


def test_start_at_absorbing_boundary_gives_zero():
    assert log_mfpt_quadrature(constant(0.0), constant(1.0), 1.0, 0.0, 1.0) == -math.inf
    assert mfpt_quadrature(constant(0.0), constant(1.0), 1.0, 0.0, 1.0) == 0.0


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ({"num_points": 100}, "num_points"),
        ({"num_points": 1000.5}, "num_points"),
        ({"reflecting": 1.0}, "reflecting"),
        ({"start": 1.5}, "start"),
        ({"start": math.nan}, "start"),
        ({"absorbing": math.inf}, "absorbing"),
        ({"diffusion_coefficient": lambda x: 0.5 - x}, "diffusion_coefficient"),
        ({"diffusion_coefficient": lambda x: np.full_like(x, np.nan)}, "diffusion_coefficient"),
        ({"drift": lambda x: 1.0 / x}, "drift"),
    ],
)
def test_quadrature_rejects_bad_input(arguments, pattern):
    keywords = {"drift": constant(0.0), "diffusion_coefficient": constant(1.0), "start": 0.5,
                "reflecting": 0.0, "absorbing": 1.0, "num_points": 1001}
    keywords.update(arguments)
    with pytest.raises(ValueError, match=pattern), np.errstate(divide="ignore"):
        log_mfpt_quadrature(**keywords)


def test_kramers_broadcasts_and_rate_is_reciprocal():
    temperatures = np.array([0.05, 0.1])
    times = kramers_time(0.25, 2.0, np.array([[1.0], [4.0]]), temperatures)
    assert times.shape == (2, 2)
    expected = 2.0 * math.pi / math.sqrt(2.0 * 4.0) * math.exp(0.25 / 0.1)
    assert times[1, 1] == pytest.approx(expected, rel=1e-14)
    assert kramers_time(0.25, 2.0, -1.0, 0.05) == kramers_time(0.25, 2.0, 1.0, 0.05)
    np.testing.assert_allclose(kramers_rate(0.25, 2.0, 1.0, temperatures),
                               1.0 / kramers_time(0.25, 2.0, 1.0, temperatures), rtol=1e-15)


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ((0.25, 2.0, 1.0, 0.0), "temperature"),
        ((0.25, 2.0, 1.0, np.array([0.1, -0.1])), "temperature"),
        ((0.25, 0.0, 1.0, 0.1), "curvature_minimum"),
        ((0.25, 2.0, 0.0, 0.1), "curvature_saddle"),
        ((math.nan, 2.0, 1.0, 0.1), "barrier"),
    ],
)
def test_kramers_rejects_bad_input(arguments, pattern):
    with pytest.raises(ValueError, match=pattern):
        kramers_time(*arguments)
    with pytest.raises(ValueError, match="absorption"):
        kramers_time(0.25, 2.0, 1.0, 0.1, absorption="somewhere")


def test_eyring_kramers_reduces_to_kramers_and_is_rotation_invariant():
    one_dimensional = eyring_kramers_time([[2.0]], [[-1.0]], 0.25, 0.05)
    assert one_dimensional == pytest.approx(kramers_time(0.25, 2.0, 1.0, 0.05), rel=1e-14)
    # Separable U = u(x) + 3 y^2 / 2: the transverse factor cancels.
    separable = eyring_kramers_time(np.diag([2.0, 3.0]), np.diag([-1.0, 3.0]), 0.25, 0.05)
    assert separable == pytest.approx(one_dimensional, rel=1e-14)
    minimum, saddle = np.diag([2.0, 5.0, 1.0]), np.diag([-0.5, 4.0, 1.5])
    expected = 2 * math.pi / 0.5 * math.sqrt(0.5 * 4.0 * 1.5 / (2.0 * 5.0)) * math.exp(0.3 / 0.07)
    rotation, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))
    rotated = eyring_kramers_time(rotation @ minimum @ rotation.T, rotation @ saddle @ rotation.T,
                                  0.3, 0.07)
    assert rotated == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("minimum", "saddle", "temperature", "pattern"),
    [
        (np.diag([2.0, -1.0]), np.diag([-1.0, 1.0]), 0.1, "hessian_minimum"),
        (np.diag([2.0, 1.0]), np.diag([1.0, 1.0]), 0.1, "hessian_saddle"),
        (np.diag([2.0, 1.0]), np.diag([-1.0, -1.0]), 0.1, "hessian_saddle"),
        (np.ones((2, 3)), np.diag([-1.0, 1.0]), 0.1, "hessian_minimum"),
        (np.eye(2), np.diag([-1.0, 1.0]), 0.0, "temperature"),
    ],
)
def test_eyring_kramers_rejects_bad_input(minimum, saddle, temperature, pattern):
    with pytest.raises(ValueError, match=pattern):
        eyring_kramers_time(minimum, saddle, 0.25, temperature)
