"""Splitting extrapolated to dt → 0: the dt run is `mean_escape_time_by_splitting` with the
same key, the combination is τ(dt)²/τ(2dt), and it agrees with the exact quadrature."""

import math

import jax
import pytest

import jaxescape as jxe
from helpers import assert_within_se


@pytest.mark.slow  # 28 s on 2 shared cores
def test_extrapolated_splitting_against_exact():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 1 / 6)  # ΔL/T = 6
    criterion = jxe.past_saddle(landscape)
    exact = jxe.exact_mfpt(dynamics, 0.0, reflecting=-2 * float(landscape.saddle()[0]),
                           absorbing=float(criterion.offset))
    key = jax.random.key(4)
    options = {"num_replicas": 100, "num_runs": 16}
    extrapolated = jxe.mean_escape_time_by_splitting_extrapolated(
        dynamics, criterion, landscape.minimum(), key, dt=0.02, **options)
    plain = jxe.mean_escape_time_by_splitting(dynamics, criterion, landscape.minimum(), key,
                                              dt=0.02, **options)
    fine, coarse = extrapolated.result, extrapolated.coarse_result
    assert fine.mean_escape_time == plain.mean_escape_time  # the same run
    assert coarse.dt == pytest.approx(0.04)
    assert extrapolated.mean_escape_time == pytest.approx(
        fine.mean_escape_time**2 / coarse.mean_escape_time, rel=1e-12)
    assert extrapolated.relative_error == pytest.approx(
        math.hypot(2 * fine.relative_error, coarse.relative_error), rel=1e-12)
    assert extrapolated.relative_bias == pytest.approx(
        coarse.mean_escape_time / fine.mean_escape_time - 1, rel=1e-12)
    assert extrapolated.lower < extrapolated.mean_escape_time < extrapolated.upper
    assert_within_se(extrapolated.mean_escape_time, extrapolated.standard_error, exact, num_se=4)
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        jxe.mean_escape_time_by_splitting_extrapolated(dynamics, criterion,
                                                       landscape.minimum(), key, dt=-1.0)
