"""The shared statistical assertion fails when it should, and says by how many SE."""

import pytest

from helpers import assert_within_se


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
