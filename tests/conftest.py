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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "standard_promotion(reason): run under JAX's standard dtype promotion, not "
                   "strict (for a library path or third-party code that is not strict-clean)")


@pytest.fixture(autouse=True)
def strict_dtype_promotion(request):
    """Every test runs under `jax.numpy_dtype_promotion("strict")`: the library's jnp code may not
    mix int and float or float32 and float64 implicitly, so a dtype slip fails here instead of
    silently widening the compiled program. Same numbers as standard promotion where it runs.
    Tests marked `standard_promotion(reason)` keep standard promotion (tests/helpers.py names the
    paths). Subprocesses (CLI runs, notebooks, distributed runs) are not affected.
    """
    marker = request.node.get_closest_marker("standard_promotion")
    with jax.numpy_dtype_promotion("standard" if marker else "strict"):
        yield
