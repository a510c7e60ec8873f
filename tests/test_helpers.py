"""The shared statistical assertion fails when it should (saying by how many SE), and tests run
under strict dtype promotion unless marked."""

import jax
import jax.numpy as jnp
import pytest

from helpers import OPTAX_ADAM_NOT_STRICT, assert_within_se


def test_assert_within_se_passes_inside_and_fails_outside_the_band():
    assert_within_se(10.3, 0.1, 10.0, num_se=4)
    assert_within_se([10.3, 9.7], [0.1, 0.1], 10.0, num_se=4)
    assert_within_se(10.6, 0.1, 10.0, num_se=4, bias=-0.2)  # 4 SE + |bias|
    with pytest.raises(AssertionError, match=r"mean: estimate 10.5 ± 0.1 vs target 10: \+5.00 SE"):
        assert_within_se(10.5, 0.1, 10.0, num_se=4, message="mean")
    with pytest.raises(AssertionError, match=r"1 of 2 off: .*-5.00 SE"):
        assert_within_se([10.0, 9.5], 0.1, 10.0, num_se=4)
    for bad_error in (0.0, float("inf"), float("nan")):
        with pytest.raises(AssertionError, match="standard_error"):
            assert_within_se(10.0, bad_error, 10.0, num_se=4)
    with pytest.raises(AssertionError):
        assert_within_se(float("nan"), 0.1, 10.0, num_se=4)
    with pytest.raises(ValueError, match="num_se"):
        assert_within_se(10.0, 0.1, 10.0, num_se=0)


def test_tests_run_under_strict_dtype_promotion():
    assert jax.config.jax_numpy_dtype_promotion == "strict"
    with pytest.raises(jax.dtypes.TypePromotionError):
        jnp.ones(2, jnp.float32) * jnp.ones(2, jnp.int32)


@OPTAX_ADAM_NOT_STRICT
def test_a_marked_test_keeps_standard_promotion():
    assert jax.config.jax_numpy_dtype_promotion == "standard"
