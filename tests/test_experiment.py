"""The Kramers-validation experiment's pieces: geometry, references, estimators, table, files.

The end-to-end run (simulation included) is tested once, at smoke size, in test_cli.py.
"""

import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe
from helpers import assert_within_se
# Internal machinery under test (not exported): the Kramers experiment's config and analysis.
from jaxescape._experiments.config import ConfigError, ExperimentConfig
from jaxescape._experiments.kramers import (
    CENSORED_MLE,
    SAMPLE_MEAN,
    analyse_level,
    atomic_write,
    escape_statistics,
    extrapolation_statistics,
    plan_levels,
    build_landscape,
    format_table,
    landscape_geometry,
)


def test_double_well_geometry_closed_form():
    barrier, curvature, asymmetry = 0.7, 2.5, 3.0
    config = ExperimentConfig(barrier=barrier, curvature=curvature, asymmetry=asymmetry)
    geometry = landscape_geometry(build_landscape(config))
    saddle = math.sqrt(12 * asymmetry * barrier / (curvature * (2 * asymmetry - 1)))
    assert geometry["escape_direction"] == 1.0
    assert geometry["minimum"] == 0.0
    assert geometry["saddle"] == pytest.approx(saddle, rel=1e-6)
    assert geometry["absorbing"] == pytest.approx(1.5 * saddle, rel=1e-6)  # past_saddle default
    assert geometry["reflecting"] == pytest.approx(-2 * saddle, rel=1e-6)
    assert geometry["barrier"] == pytest.approx(barrier, rel=1e-6)
    assert geometry["curvature_minimum"] == pytest.approx(curvature, rel=1e-5)
    assert geometry["curvature_saddle"] == pytest.approx(
        curvature * (asymmetry - 1) / asymmetry, rel=1e-5
    )


def test_styblinski_tang_escapes_towards_negative_x():
    sharpness = 4.0
    landscape = build_landscape(ExperimentConfig(landscape="styblinski-tang", sharpness=sharpness))
    geometry = landscape_geometry(landscape)
    assert geometry["escape_direction"] == -1.0
    assert geometry["minimum"] == pytest.approx(2.746803 / 2, rel=1e-5)
    assert geometry["saddle"] == pytest.approx(0.156731 / 2, rel=1e-5)
    assert geometry["reflecting"] > geometry["minimum"] > geometry["saddle"] > geometry["absorbing"]
    criterion = jxe.past_saddle(landscape)
    assert bool(criterion.is_outside(jnp.array([geometry["absorbing"] - 1e-4])))
    assert not bool(criterion.is_outside(jnp.array([geometry["absorbing"] + 1e-4])))
    # Sharpness rescales curvatures, not the barrier (25.225 from the local minimum).
    assert geometry["barrier"] == pytest.approx(25.22506, rel=1e-5)
    def second_derivative(x):  # of f(x) = (x⁴ − 16x² + 5x)/2
        return 6 * x**2 - 16

    assert geometry["curvature_minimum"] == pytest.approx(
        sharpness * second_derivative(2.746803), rel=1e-5
    )
    assert geometry["curvature_saddle"] == pytest.approx(
        -sharpness * second_derivative(0.156731), rel=1e-5
    )


def test_plan_levels_uses_the_quadrature_and_kramers():
    config = ExperimentConfig(temperatures=(0.5, 0.02))
    landscape = build_landscape(config)
    geometry = landscape_geometry(landscape)
    plans = plan_levels(config, landscape, geometry)
    saddle = math.sqrt(2.0)  # default well: L' = x (x − √2)(x − 2√2), ΔL = 1, L'' = 4, −2

    def drift(x):
        return -x * (x - saddle) * (x - 2 * saddle)

    for plan, temperature in zip(plans, config.temperatures):
        exact = jxe.mfpt_quadrature(
            drift, lambda x: np.full_like(x, temperature), 0.0, -2 * saddle, 1.5 * saddle
        )
        assert plan["exact_mfpt"] == pytest.approx(exact, rel=1e-4)  # float32 landscape
        assert plan["kramers_time"] == pytest.approx(
            2 * math.pi / math.sqrt(4.0 * 2.0) * math.exp(1.0 / temperature), rel=1e-5
        )
    # ΔL/T = 50: the exact time approaches Kramers' (docs/THEORY.md §1.5).
    assert plans[1]["exact_mfpt"] / plans[1]["kramers_time"] == pytest.approx(1.0077, abs=1e-3)


def test_hopeless_temperature_is_a_config_error_before_simulating():
    config = ExperimentConfig(landscape="styblinski-tang", temperatures=(10.0, 0.01))
    landscape = build_landscape(config)
    with pytest.raises(ConfigError, match=r"temperatures\[1\]"):
        plan_levels(config, landscape, landscape_geometry(landscape))


def _synthetic_result(mean_time, dt, num_particles, max_steps, seed=0):
    """An EscapeResult with exponential escape steps, censored at max_steps."""
    generator = np.random.default_rng(seed)
    steps = np.ceil(generator.exponential(mean_time / dt, num_particles)).astype(np.int64)
    censored = steps >= max_steps
    steps = np.minimum(steps, max_steps)
    zeros = np.zeros(num_particles, bool)
    boundary = np.where(censored, -1, 0).astype(np.int8)
    return jxe.EscapeResult(steps, boundary, censored, zeros, np.zeros((num_particles, 1)), dt)


PLAN = {"index": 0, "temperature": 0.5, "exact_mfpt": 10.0, "kramers_time": 9.0}


def test_analyse_uncensored_uses_the_sample_mean():
    config = ExperimentConfig(dt=0.01, max_steps=10**7)
    result = _synthetic_result(10.0, config.dt, 4000, config.max_steps)
    level, panel = analyse_level(result, PLAN, config, barrier=1.0)
    times = result.escape_time
    assert level["mfpt_estimator"] == SAMPLE_MEAN
    assert level["mfpt"] == pytest.approx(times.mean(), rel=1e-12)
    assert level["mfpt_standard_error"] == pytest.approx(times.std(ddof=1) / math.sqrt(4000))
    assert level["deviation_in_standard_errors"] == pytest.approx(
        (level["mfpt"] - 10.0) / level["mfpt_standard_error"]
    )
    assert level["barrier_over_temperature"] == 2.0
    assert level["ratio_exact_to_kramers"] == pytest.approx(10.0 / 9.0)
    # The reported p-value is the split-sample KS test's on these times (with the dt rounding
    # undone), and exponential times are not rejected (a fixed seed: deterministic).
    test = jxe.exponentiality_test(times, discretisation_step=config.dt)
    assert level["exponentiality_p_value"] == test.p_value > 0.01
    assert level["notes"] == []
    assert panel.times.size == 4000


def test_analyse_censored_uses_the_exponential_mle():
    config = ExperimentConfig(dt=0.01, max_steps=1000)  # t_max = 10 = the mean: ~37% censored
    result = _synthetic_result(10.0, config.dt, 4000, config.max_steps)
    level, _ = analyse_level(result, PLAN, config, barrier=1.0)
    rate = jxe.exponential_rate_mle(result.escape_time, result.censored)
    assert level["num_censored"] == int(result.censored.sum()) > 1000
    assert level["mfpt_estimator"] == CENSORED_MLE
    assert level["mfpt"] == pytest.approx(rate.mean_time, rel=1e-12)
    assert level["mfpt_standard_error"] == pytest.approx(
        rate.mean_time / math.sqrt(rate.num_escaped)
    )
    assert_within_se(level["mfpt"], level["mfpt_standard_error"], 10.0, num_se=4)
    assert level["exponentiality_p_value"] is None
    assert "censored" in level["notes"][0]
    assert "*" in format_table([level])


@pytest.mark.parametrize("max_steps", [10**7, 1000])  # uncensored; ~15% censored
def test_extrapolation_removes_a_linear_bias(max_steps):
    # Exponential times whose means carry a bias linear in dt, 10(1 + 2 dt) at dt and 2dt: the
    # extrapolated MFPT agrees with the unbiased 10 and the estimated bias with 10·2·dt.
    dt, exact = 0.02, 10.0
    fine = _synthetic_result(exact * (1 + 2 * dt), dt, 40_000, max_steps, seed=1)
    coarse = _synthetic_result(exact * (1 + 4 * dt), 2 * dt, 40_000, max_steps // 2, seed=2)
    statistics, coarse_statistics = escape_statistics(fine)[0], escape_statistics(coarse)[0]
    columns = extrapolation_statistics(statistics, coarse_statistics, exact)
    assert columns["mfpt_extrapolated"] == pytest.approx(
        2 * statistics["mfpt"] - coarse_statistics["mfpt"], rel=1e-12)
    assert columns["mfpt_extrapolated_standard_error"] == pytest.approx(math.sqrt(
        4 * statistics["mfpt_standard_error"]**2 + coarse_statistics["mfpt_standard_error"]**2))
    assert_within_se(columns["mfpt_extrapolated"], columns["mfpt_extrapolated_standard_error"],
                     exact, num_se=4)
    assert_within_se(columns["discretisation_bias"],
                     columns["discretisation_bias_standard_error"], exact * 2 * dt, num_se=4)
    # The dt run alone is off by 0.4 (~7 SE uncensored); the extrapolation is not.
    assert abs(statistics["mfpt"] - exact) > 4 * statistics["mfpt_standard_error"]
    level = {"temperature": 0.5, "barrier_over_temperature": 2.0, "exact_mfpt": exact,
             "kramers_time": 9.0, **statistics, **columns}
    header = format_table([level]).splitlines()[0]
    assert "MFPT extrap ± SE" in header and "(extrap−exact)/SE" in header
    assert extrapolation_statistics(statistics, {"mfpt": None})["mfpt_extrapolated"] is None


def test_format_table_is_aligned():
    levels = [
        {"temperature": 0.5, "barrier_over_temperature": 2.0, "mfpt": 17.1, "exact_mfpt": 17.5,
         "mfpt_standard_error": 0.02, "mfpt_estimator": SAMPLE_MEAN, "kramers_time": 16.4,
         "ratio_simulated_to_exact": 0.977, "deviation_in_standard_errors": -20.0,
         "exponentiality_p_value": 6.1e-208},
        {"temperature": 1 / 3, "barrier_over_temperature": 3.0, "mfpt": None, "exact_mfpt": 1e5,
         "mfpt_standard_error": None, "mfpt_estimator": None, "kramers_time": 9e4},
    ]
    lines = format_table(levels).splitlines()
    assert len(lines) == 4
    assert "MFPT sim ± SE" in lines[0] and set(lines[1]) == {"-", " "}
    assert len({len(line) for line in lines}) == 1
    assert "17.100 ± 0.020" in lines[2] and "-20.00" in lines[2] and "6.1e-208" in lines[2]
    assert "n/a" in lines[3]


def test_atomic_write_replaces_or_keeps_the_file(tmp_path):
    path = str(tmp_path / "data.txt")
    atomic_write(path, lambda file: file.write(b"first"))
    with pytest.raises(RuntimeError):
        atomic_write(path, lambda file: (file.write(b"partial"), _raise()))
    with open(path, "rb") as file:
        assert file.read() == b"first"
    assert os.listdir(tmp_path) == ["data.txt"]


def _raise():
    raise RuntimeError("interrupted")
