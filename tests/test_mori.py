"""Mori's reproduction as a declared experiment: its sweep's points and its inputs' checks (the
smoke run itself is in test_reproductions.py)."""

import jax.random as jr
import numpy as np
import pytest

from jaxescape._experiments.components import build_point
from jaxescape._reproductions import mori


def test_sweep_lists_the_stationary_measurements_and_the_passage_points():
    sweep = mori.sweep("smoke", seed=3)
    points = sweep.expand()
    labels = [point["label"] for point in points]
    assert labels == ["stationary/0", "stationary/1", "stationary/2"] + [
        f"passage_d{d}/{i}" for d in (1, 3) for i in range(3)]
    assert [point["method"] for point in points[:3]] == ["measure"] * 3
    passage = points[3:]
    assert {point["criterion"] for point in passage} == {"loss-above"}
    assert {point["dynamics"] for point in passage} == {"mori"}
    factors = [point["criterion.factor"] for point in passage]
    assert factors[0] < factors[1] < factors[2] and factors[3] < factors[4] < factors[5]
    # The landscape by import path is the data set of linear_regression_problem at that seed.
    built = build_point(passage[4])
    problem = mori.linear_regression_problem(jr.fold_in(jr.key(3), 103), 100_000, 3)
    np.testing.assert_allclose(np.asarray(built["landscape"].hessian_matrix),
                               problem["hessian"], rtol=1e-6)
    assert float(built["criterion"].threshold) == pytest.approx(
        factors[4] * problem["minimum_loss"], rel=1e-6)


@pytest.mark.parametrize("option, value, message", [
    ("dimension", 0, "dimension must be an integer >= 1"),
    ("dimension", 1.5, "dimension must be an integer >= 1"),
    ("particles", 1, "particles must be an integer >= 2"),
    ("dt", 0.0, "dt must be > 0"),
    ("end_time", -1.0, "end_time must be > 0"),
])
def test_stationary_measurement_names_a_bad_option(option, value, message):
    options = dict(dimension=1, learning_rate=0.1, batch_size=1.0, dt=0.02, end_time=1.0,
                   particles=10)
    options[option] = value
    with pytest.raises(ValueError, match=message):
        mori.measure_stationary_exponent(jr.key(0), **options)
