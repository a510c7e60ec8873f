"""Exact and fixed-seed statistical checks of the escape-time estimators."""

import math

import numpy as np
import pytest
from scipy import stats

from helpers import assert_within_se
from jaxescape import (
    escape_time_histogram,
    exponential_rate_mle,
    exponentiality_test,
    kaplan_meier,
    mean_escape_time,
)


# Hand example: events at 1, 2, 3, 5, 5; censored at 2, 4, 6.
HAND_TIMES = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0])
HAND_CENSORED = np.array([False, False, True, False, True, False, False, True])


def test_mean_and_standard_error_on_known_sample():
    mean, standard_error = mean_escape_time(np.array([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5
    assert standard_error == pytest.approx(math.sqrt(5.0 / 3.0) / 2.0, rel=1e-15)
    assert math.isnan(mean_escape_time(np.array([2.0]))[1])


def test_mean_refuses_censored_samples():
    with pytest.raises(ValueError, match="exponential_rate_mle"):
        mean_escape_time(HAND_TIMES, HAND_CENSORED)


def test_rate_mle_with_censoring_matches_closed_form_and_likelihood_ratio():
    estimate = exponential_rate_mle(HAND_TIMES, HAND_CENSORED)
    assert estimate.num_escaped == 5 and estimate.total_time == 28.0
    assert estimate.rate == pytest.approx(5.0 / 28.0, rel=1e-15)
    assert estimate.mean_time == pytest.approx(28.0 / 5.0, rel=1e-15)
    assert estimate.mean_time_lower == pytest.approx(1.0 / estimate.upper, rel=1e-15)
    assert estimate.mean_time_upper == pytest.approx(1.0 / estimate.lower, rel=1e-15)

    def log_likelihood(rate):
        return 5 * math.log(rate) - rate * 28.0

    quantile = stats.chi2.ppf(0.95, df=1)
    assert estimate.lower < estimate.rate < estimate.upper
    for bound in (estimate.lower, estimate.upper):
        deviance = 2.0 * (log_likelihood(estimate.rate) - log_likelihood(bound))
        assert deviance == pytest.approx(quantile, rel=1e-10)


def test_rate_mle_without_escapes():
    estimate = exponential_rate_mle(np.array([2.0, 3.0]), np.array([True, True]), confidence=0.9)
    assert (estimate.rate, estimate.lower, estimate.num_escaped) == (0.0, 0.0, 0)
    assert estimate.upper == pytest.approx(stats.chi2.ppf(0.9, df=1) / 10.0, rel=1e-14)
    assert estimate.mean_time == math.inf and estimate.mean_time_upper == math.inf


def test_likelihood_ratio_interval_coverage():
    # Binomial SE of a 95% coverage over 2000 trials: sqrt(.95 * .05 / 2000) = 0.49%,
    # so the 93-97% window is about ±4 SE. Measured coverage with this seed: 94.85%.
    rng = np.random.default_rng(20240601)
    true_rate, size, trials = 2.0, 50, 2000
    escape = rng.exponential(1.0 / true_rate, (trials, size))
    censoring = rng.exponential(1.0 / true_rate, (trials, size))  # about half censored
    covered = 0
    for row in range(trials):
        estimate = exponential_rate_mle(np.minimum(escape[row], censoring[row]),
                                        censoring[row] < escape[row])
        covered += estimate.lower <= true_rate <= estimate.upper
    assert_within_se(covered / trials, math.sqrt(0.95 * 0.05 / trials), 0.95, num_se=4)


@pytest.mark.parametrize(
    ("times", "censored", "pattern"),
    [
        (np.array([]), None, "times"),
        (np.array([1.0, -0.5]), None, "times"),
        (np.array([1.0, np.nan]), None, "times"),
        (np.array([1.0, 2.0]), np.array([True]), "censored"),
        (np.array([0.0, 0.0]), None, "positive sum"),
    ],
)
def test_rate_mle_rejects_bad_input(times, censored, pattern):
    with pytest.raises(ValueError, match=pattern):
        exponential_rate_mle(times, censored)
    with pytest.raises(ValueError, match="confidence"):
        exponential_rate_mle(np.array([1.0]), confidence=1.0)


def test_kaplan_meier_without_censoring_is_empirical_survival():
    rng = np.random.default_rng(11)
    times = np.round(rng.exponential(1.0, 5000), 2)  # many ties
    curve = kaplan_meier(times)
    np.testing.assert_array_equal(curve.times, np.unique(times))
    empirical = (times[None, :] > curve.times[:, None]).mean(axis=1)
    np.testing.assert_allclose(curve.survival, empirical, rtol=1e-12, atol=1e-15)
    assert curve.survival[-1] == 0.0 and math.isnan(curve.standard_error[-1])


def test_kaplan_meier_hand_example_with_greenwood():
    curve = kaplan_meier(HAND_TIMES, HAND_CENSORED)
    np.testing.assert_array_equal(curve.times, [1.0, 2.0, 3.0, 5.0])
    # At risk 8, 7, 5, 3 with 1, 1, 1, 2 escapes.
    survival = np.array([7 / 8, 7 / 8 * 6 / 7, 7 / 8 * 6 / 7 * 4 / 5, 7 / 8 * 6 / 7 * 4 / 5 / 3])
    np.testing.assert_allclose(curve.survival, [0.875, 0.75, 0.6, 0.2], rtol=1e-15)
    np.testing.assert_allclose(curve.survival, survival, rtol=1e-15)
    greenwood = np.cumsum([1 / (8 * 7), 1 / (7 * 6), 1 / (5 * 4), 2 / (3 * 1)])
    np.testing.assert_allclose(curve.standard_error, survival * np.sqrt(greenwood), rtol=1e-14)
    sigma = np.sqrt(greenwood) / -np.log(survival)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(curve.lower, survival ** np.exp(z * sigma), rtol=1e-14)
    np.testing.assert_allclose(curve.upper, survival ** np.exp(-z * sigma), rtol=1e-14)
    assert np.all((curve.lower < curve.survival) & (curve.survival < curve.upper))


def test_histogram_uses_escaped_particles_only():
    density, edges = escape_time_histogram(HAND_TIMES, bins=5, censored=HAND_CENSORED)
    expected, expected_edges = np.histogram([1.0, 2.0, 3.0, 5.0, 5.0], bins=5, density=True)
    np.testing.assert_array_equal(edges, expected_edges)
    np.testing.assert_allclose(density, expected, rtol=1e-15)
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="escaped"):
        escape_time_histogram(HAND_TIMES, censored=np.ones(8, dtype=bool))


def test_exponentiality_test_accepts_exponential_and_rejects_gamma():
    rng = np.random.default_rng(5)
    exponential = exponentiality_test(rng.exponential(3.0, 20_000))
    assert exponential.p_value > 0.01 and exponential.num_used == 10_000
    # The rate MLE on m times has relative SE 1/√m (1 %).
    assert_within_se(exponential.rate, exponential.rate / math.sqrt(exponential.num_used),
                     1.0 / 3.0, num_se=4)
    gamma = exponentiality_test(rng.gamma(2.0, 1.0, 20_000))
    assert gamma.p_value < 1e-6


def test_exponentiality_test_is_deterministic_in_seed():
    times = np.random.default_rng(8).exponential(1.0, 1000)
    assert exponentiality_test(times, seed=4) == exponentiality_test(times, seed=4)
    assert exponentiality_test(times, seed=4) != exponentiality_test(times, seed=5)


def test_exponentiality_test_discretisation_correction():
    step = 0.05  # 0.05 x the mean escape time 1
    rounded_up = np.ceil(np.random.default_rng(7).exponential(1.0, 20_000) / step) * step
    assert exponentiality_test(rounded_up).p_value < 1e-6  # measured 6e-20: ties fail KS
    corrected = exponentiality_test(rounded_up, discretisation_step=step)
    assert corrected.p_value > 0.01  # measured 0.73
    assert_within_se(corrected.rate, corrected.rate / math.sqrt(corrected.num_used), 1.0,
                     num_se=4)


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ({"censored": np.array([False, True, False, False])}, "censored"),
        ({"discretisation_step": 0.0}, "discretisation_step"),
        ({"times": np.array([1.0, 2.0, 3.0])}, "at least 4"),
    ],
)
def test_exponentiality_test_rejects_bad_input(arguments, pattern):
    keywords = {"times": np.array([1.0, 2.0, 3.0, 4.0])}
    keywords.update(arguments)
    with pytest.raises(ValueError, match=pattern):
        exponentiality_test(**keywords)
