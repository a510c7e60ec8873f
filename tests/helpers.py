"""Assertions shared by the statistical tests (imported as `from helpers import ...`).

Statistical tests compare an estimate with an exact target (quadrature, the exact discretised
chain, a closed form in its regime) in units of the estimator's standard error (SE), with fixed
keys, so each check is deterministic and can fail.
"""

import math

import numpy as np
import pytest


def assert_within_se(estimate, standard_error, target, *, num_se: float, bias: float = 0.0,
                     message: str = "") -> None:
    r"""Asserts $|\hat\theta - \theta| \le k\,\mathrm{SE} + |b|$, elementwise.

    **Arguments:**

    - `estimate`: the estimate $\hat\theta$ (scalar or array).
    - `standard_error`: its standard error (positive and finite, same shape or scalar).
    - `target`: the exact value $\theta$.
    - `num_se`: $k$, the allowed deviation in SE units (e.g. 4 or 5 with a fixed key).
    - `bias`: a stated allowance $b$ for a known bias of the estimator (e.g. the measured
      discretisation bias, with a comment saying where it was measured); 0 by default.
    - `message`: prepended to the failure message.

    The failure message gives the deviation $(\hat\theta - \theta)/\mathrm{SE}$ in SE units.
    """
    estimate, standard_error, target = np.broadcast_arrays(
        *(np.asarray(value, np.float64) for value in (estimate, standard_error, target)))
    if num_se <= 0 or not math.isfinite(num_se):
        raise ValueError(f"num_se must be positive and finite, got {num_se}")
    if not math.isfinite(bias):
        raise ValueError(f"bias must be finite, got {bias}")
    if not np.all(np.isfinite(standard_error) & (standard_error > 0)):
        raise AssertionError(f"{message}: standard_error must be positive and finite, got "
                             f"{standard_error}")
    deviation = (estimate - target) / standard_error
    allowed = num_se + abs(bias) / standard_error
    bad = ~(np.abs(deviation) <= allowed)  # NaN estimates fail
    if np.any(bad):
        where = np.flatnonzero(bad)[:5]
        details = "; ".join(
            f"estimate {estimate.flat[i]:.6g} ± {standard_error.flat[i]:.3g} vs target "
            f"{target.flat[i]:.6g}: {deviation.flat[i]:+.2f} SE (allowed ±{allowed.flat[i]:.2f} "
            f"= {num_se} SE + bias {abs(bias):.3g})"
            for i in where
        )
        count = f"{bad.sum()} of {bad.size} off: " if bad.size > 1 else ""
        raise AssertionError(f"{message + ': ' if message else ''}{count}{details}")


# Library paths that are not clean under `jax.numpy_dtype_promotion("strict")` (tests/conftest.py
# runs every test under it): their tests keep standard promotion, each with the reason. Remove a
# marker once its path is fixed.
SPLITTING_KERNEL_NOT_STRICT = pytest.mark.standard_promotion(
    reason="jaxescape/_splitting/kernel.py multiplies a float32 uniform by an int32 survivor count "
           "(in _kill_and_clone)")
OPTAX_ADAM_NOT_STRICT = pytest.mark.standard_promotion(
    reason="optax's adam bias correction raises a Python float to its int32 step count")


def assert_declared_at_every_size(name: str, measurement: str) -> None:
    """Reproduction `name` is registered, and at sizes smoke and default its declared sweep's
    points all run `measurement`, carry the seed and pass the size to the analysis."""
    from jaxescape.theories import REPRODUCTIONS, declared_sweep

    assert name in REPRODUCTIONS
    for size in ("smoke", "default"):
        sweep = declared_sweep(name, size, 3)
        points = sweep.expand()
        assert {point["measurement"] for point in points} == {measurement}
        assert {point["seed"] for point in points} == {3}
        assert sweep.analysis["size"] == size
