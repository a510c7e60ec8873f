"""Shared fixtures. The engine's default dtype is float32, so x64 is NOT enabled globally."""

import jax
import pytest


@pytest.fixture
def x64():
    """Run one test in float64 (for tolerances tighter than float32 rounding allows).

    Objects whose fields are converted to arrays (landscapes, dynamics) must be built inside the
    test, i.e. while the flag is on.
    """
    with jax.enable_x64(True):
        yield
