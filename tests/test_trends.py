"""Interval coverage of the escape-rate and trend statistics, on samples with known truth.

Each coverage is measured over 2000 independent samples (NumPy, fixed seeds); the binomial
standard error of a 95% coverage is 0.5%, so the accepted band 93–97% is ±4 standard errors.
"""

import math

import numpy as np
import pytest

from jaxescape import exponential_rate_mle, mean_escape_time, ratio_to_theory, weighted_linear_fit


REPETITIONS = 2000
BAND = (0.93, 0.97)


@pytest.mark.parametrize("size, censoring_time", [(10, None), (40, 0.6)])
def test_rate_likelihood_interval_covers_the_true_rate(size, censoring_time):
    rate = 2.0
    generator = np.random.default_rng(5)
    covered = 0
    for _ in range(REPETITIONS):
        times = generator.exponential(1 / rate, size)
        censored = None
        if censoring_time is not None:  # type-I censoring: about 30% still inside
            censored = times > censoring_time
            times = np.minimum(times, censoring_time)
        estimate = exponential_rate_mle(times, censored)
        covered += estimate.lower <= rate <= estimate.upper
    assert BAND[0] <= covered / REPETITIONS <= BAND[1], covered / REPETITIONS


def test_ratio_to_theory_interval_covers_one():
    mean_time = 3.0
    generator = np.random.default_rng(6)
    covered = 0
    for _ in range(REPETITIONS):
        mean, error = mean_escape_time(generator.exponential(mean_time, 400))
        ratio = ratio_to_theory(mean, error, mean_time)
        assert ratio.ratio == pytest.approx(mean / mean_time, rel=1e-15)
        covered += ratio.lower <= 1.0 <= ratio.upper
    assert BAND[0] <= covered / REPETITIONS <= BAND[1], covered / REPETITIONS


@pytest.mark.parametrize("absolute_sigma", [True, False])
def test_slope_interval_covers_the_true_slope(absolute_sigma):
    x = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    sigma = np.array([0.1, 0.3, 0.05, 0.2, 0.15])
    generator = np.random.default_rng(7)
    covered = 0
    for _ in range(REPETITIONS):
        y = 1.0 + 2.5 * x + sigma * generator.standard_normal(x.size)
        fit = weighted_linear_fit(x, y, sigma, absolute_sigma=absolute_sigma)
        covered += fit.slope_lower <= 2.5 <= fit.slope_upper
    assert BAND[0] <= covered / REPETITIONS <= BAND[1], covered / REPETITIONS


def test_log_tau_slope_from_simulated_escape_times_covers_the_truth():
    """The report's fit: log of sample means, errors SE/mean, against the barrier; the true
    slope of log τ = log c + ΔL/T is 1/T."""
    barrier = np.array([0.8, 1.0, 1.2, 1.4])
    temperature = 0.4
    mean_times = 0.7 * np.exp(barrier / temperature)
    generator = np.random.default_rng(8)
    covered = 0
    for _ in range(REPETITIONS):
        samples = generator.exponential(mean_times[:, None], (barrier.size, 400))
        mean = samples.mean(axis=1)
        error = samples.std(axis=1, ddof=1) / math.sqrt(400)
        fit = weighted_linear_fit(barrier, np.log(mean), error / mean)
        covered += fit.slope_lower <= 1 / temperature <= fit.slope_upper
    assert BAND[0] <= covered / REPETITIONS <= BAND[1], covered / REPETITIONS


def test_exact_line_is_recovered_with_its_chi_square():
    x = np.array([1.0, 2.0, 4.0])
    fit = weighted_linear_fit(x, 3.0 - 0.5 * x, [0.1, 0.2, 0.1])
    assert fit.slope == pytest.approx(-0.5, abs=1e-12)
    assert fit.intercept == pytest.approx(3.0, abs=1e-12)
    assert fit.chi_square == pytest.approx(0.0, abs=1e-20) and fit.degrees_of_freedom == 1
    # Known σ: slope error sqrt(1 / Σ w (x − x̄_w)²).
    weights = 1 / np.array([0.1, 0.2, 0.1]) ** 2
    mean_x = np.sum(weights * x) / np.sum(weights)
    expected = 1 / math.sqrt(np.sum(weights * (x - mean_x) ** 2))
    assert fit.slope_standard_error == pytest.approx(expected, rel=1e-12)
    assert fit.slope_upper - fit.slope == pytest.approx(1.959964 * expected, rel=1e-6)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (([1.0, 1.0], [1.0, 2.0], [0.1, 0.1]), "two distinct values"),
        (([1.0, 2.0], [1.0, 2.0], [0.1, 0.0]), "standard_error must be finite and > 0"),
        (([1.0, 2.0], [1.0, np.nan], [0.1, 0.1]), "x and y must be finite"),
        (([1.0, 2.0, 3.0], [1.0, 2.0], [0.1, 0.1]), "one size"),
    ],
)
def test_bad_fit_inputs(arguments, message):
    with pytest.raises(ValueError, match=message):
        weighted_linear_fit(*arguments)


def test_bad_theory_and_confidence():
    with pytest.raises(ValueError, match="theory must be finite and > 0"):
        ratio_to_theory(1.0, 0.1, math.inf)
    with pytest.raises(ValueError, match="confidence must lie in"):
        ratio_to_theory(1.0, 0.1, 1.0, confidence=1.5)
