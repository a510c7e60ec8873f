r"""Extrapolation of escape times to dt → 0 (Talay & Tubaro 1990).

The Euler–Maruyama mean first-passage time with the crossing correction has a bias linear in dt
(tests/MEASURED_BIAS.md): $\tau(dt) = \tau_0 + b\,dt + O(dt^2)$. Two runs at dt and 2dt give
Richardson's combination $2\tau(dt) - \tau(2dt) = \tau_0 + O(dt^2)$. Without the crossing
correction the bias of a boundary check has an O(√dt) part, which this combination does not
remove.
"""

import math
import warnings
from typing import NamedTuple

import jax
import numpy as np

from .. import _defaults
from .._statistics import exponential_rate_mle, mean_escape_time, richardson_extrapolation
from .driver import simulate
from .result import EscapeResult


class ExtrapolatedEscape(NamedTuple):
    """Escape time and rate extrapolated to dt → 0 from runs at dt and 2dt.

    `bias` = τ(2dt) − τ(dt) estimates the dt run's own bias τ(dt) − τ₀ (linear in dt);
    `mean_escape_time` = τ(dt) − bias. The rate fields do the same for the censored exponential
    rate k/S (`exponential_rate_mle`), with standard error κ/√k per run. The mean is NaN when
    some particle is censored (use the rate then). With `check_linearity`, `curvature_error`
    = −(τ(4dt) − 3τ(2dt) + 2τ(dt))/3 estimates the error −2c·dt² that a bias
    b·dt + c·dt² leaves in the extrapolated mean, from a third run at 4dt (`check_result`).
    """

    mean_escape_time: float
    standard_error: float
    bias: float
    bias_standard_error: float
    rate: float
    rate_standard_error: float
    rate_bias: float
    result: EscapeResult
    coarse_result: EscapeResult
    dt: float
    curvature_error: float = math.nan
    curvature_error_standard_error: float = math.nan
    check_result: EscapeResult | None = None


def _mean(result: EscapeResult) -> tuple[float, float]:
    kept = ~result.diverged
    if np.any(result.censored[kept]) or np.count_nonzero(kept) < 2:
        return math.nan, math.nan
    return tuple(mean_escape_time(result.escape_time[kept]))


def _rate(result: EscapeResult) -> tuple[float, float]:
    kept = ~result.diverged
    estimate = exponential_rate_mle(result.escape_time[kept], result.censored[kept])
    if estimate.num_escaped == 0:
        return 0.0, math.nan
    return estimate.rate, estimate.rate / math.sqrt(estimate.num_escaped)


def extrapolation_inputs(dt, warn_above, options: dict) -> tuple[float, int]:
    """Checks dt (> 0) and warn_above (> 0); returns dt and `max_steps` (taken out of
    `options`; default `_defaults.MAX_STEPS`) for the runs at dt and 2dt."""
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0, got {dt}")
    if not (math.isfinite(warn_above) and warn_above > 0):
        raise ValueError(f"warn_above must be a finite number > 0, got {warn_above}")
    return dt, int(options.pop("max_steps", _defaults.MAX_STEPS))


def simulate_extrapolated(dynamics, criteria, initial_position, key: jax.Array, *, dt,
                          warn_above: float = 3.0, check_linearity: bool = False,
                          **options) -> ExtrapolatedEscape:
    r"""Runs `simulate` at dt and 2dt and extrapolates the escape time and rate to dt → 0.

    Richardson's combination (Talay & Tubaro 1990) of the two means:
    $\hat\tau_0 = 2\tau(dt) - \tau(2dt)$ with standard error $\sqrt{4SE_1^2 + SE_2^2}$ (the two
    runs are independent: the dt run uses `key`, so it is the same run as `simulate` with that
    key, and the 2dt run `jax.random.fold_in(key, 1)`). Both runs have the same number of
    particles; the 2dt run takes half the steps, so the cost is about 1.5 times one run. (Giving
    the 2dt run fewer particles would lower the cost, but for a fixed cost the optimum,
    $N_2 = N_1/\sqrt2$, reduces the extrapolated variance by only 2 %.)

    Valid where the bias is linear in dt. With the crossing correction it is O(dt), but the dt²
    term can matter: tests/MEASURED_BIAS.md finds the bias linear up to dt = 0.04 on the tilted
    double well (k·dt ≤ 0.16 at its minimum), but on a steep tilted quartic only below
    dt = 0.01, where the pair (0.01, 0.02) overshoots by +0.60 ± 0.14 %. `check_linearity` adds
    a run at 4dt (cost +0.25) that estimates this error. Warns (UserWarning) when the estimated
    bias of the dt run exceeds `warn_above` times the bias estimate's standard error (the dt run
    alone is then off by several of its standard errors: use the extrapolated value or a
    smaller dt), and when the estimated curvature error exceeds `warn_above` of its SEs.

    **Arguments:**

    - `dynamics`, `criteria`, `initial_position`, `key`: as for `simulate`.
    - `dt`: the smaller time step (> 0); the second run uses 2dt.
    - `warn_above`: threshold of the warnings in units of the estimates' SE (> 0).
    - `check_linearity`: also run at 4dt and estimate the dt² error of the extrapolation.
    - `options`: any further keyword of `simulate` (`num_particles`, `max_steps`, ...), used by
      every run. `max_steps` counts steps of the dt run; the 2dt run gets half as many (the 4dt
      run a quarter), so that all censor at the same time.

    **Returns:** an `ExtrapolatedEscape`.
    """
    dt, max_steps = extrapolation_inputs(dt, warn_above, options)

    def run(factor):
        return simulate(dynamics, criteria, initial_position,
                        key if factor == 1 else jax.random.fold_in(key, factor - 1),
                        dt=factor * dt, max_steps=max_steps if factor == 1 else
                        max(1, max_steps // factor), **options)

    fine, coarse = run(1), run(2)
    (mean, error), (coarse_mean, coarse_error) = _mean(fine), _mean(coarse)
    extrapolated = richardson_extrapolation(mean, error, coarse_mean, coarse_error)
    rate = richardson_extrapolation(*_rate(fine), *_rate(coarse))
    bias, bias_error = extrapolated.bias, extrapolated.bias_standard_error
    if abs(bias) > warn_above * bias_error:
        warnings.warn(
            f"the dt = {dt:g} run's estimated discretisation bias {bias:.4g} ± {bias_error:.2g} "
            f"is {abs(bias) / error:.1f} of its standard errors ({error:.2g}): use the "
            "extrapolated mean escape time, or a smaller dt", UserWarning, stacklevel=2,
        )
    check, curvature, curvature_error = None, math.nan, math.nan
    if check_linearity:
        check = run(4)
        check_mean, check_error = _mean(check)
        curvature = -(check_mean - 3 * coarse_mean + 2 * mean) / 3
        curvature_error = math.sqrt(check_error**2 + 9 * coarse_error**2 + 4 * error**2) / 3
        if abs(curvature) > warn_above * curvature_error:
            warnings.warn(
                f"the bias is not linear in dt between dt = {dt:g} and 4dt: the extrapolated "
                f"mean is off by about {curvature:.3g} ± {curvature_error:.2g}; use a smaller dt",
                UserWarning, stacklevel=2,
            )
    return ExtrapolatedEscape(
        mean_escape_time=extrapolated.value,
        standard_error=extrapolated.standard_error,
        bias=bias,
        bias_standard_error=bias_error,
        rate=rate.value,
        rate_standard_error=rate.standard_error,
        rate_bias=rate.bias,
        result=fine,
        coarse_result=coarse,
        dt=dt,
        curvature_error=curvature,
        curvature_error_standard_error=curvature_error,
        check_result=check,
    )
