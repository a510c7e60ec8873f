r"""Splitting estimates extrapolated to dt → 0 (Talay & Tubaro 1990).

The Euler–Maruyama chain's mean escape time differs from the SDE's by a relative bias linear in
dt (with the crossing correction; tests/MEASURED_BIAS.md), and at high barriers this bias sits
in the exponent: the chain's effective barrier and prefactor differ from the SDE's by O(dt), so
$\log\tau(dt) = \log\tau_0 + \beta\,dt + O(dt^2)$ with β growing with ΔL/T. Richardson's
combination of the logarithms of two estimates at dt and 2dt removes the linear term.
"""

import math
import warnings
from typing import NamedTuple

import jax
from scipy import stats

from .._engine.extrapolation import extrapolation_inputs
from .estimator import SplittingResult, mean_escape_time_by_splitting


class ExtrapolatedSplitting(NamedTuple):
    """A splitting mean escape time extrapolated to dt → 0 from estimates at dt and 2dt.

    `mean_escape_time` = τ(dt)²/τ(2dt) (Richardson on log τ) with `standard_error` (delta
    method) and a `confidence` interval [`lower`, `upper`] (normal on log τ);
    `relative_bias` = τ(2dt)/τ(dt) − 1 estimates the dt run's own relative bias
    τ(dt)/τ₀ − 1 (to first order in dt), with its standard error. `result` (the same as
    `mean_escape_time_by_splitting` with the key) and `coarse_result` are the two runs.
    """

    mean_escape_time: float
    lower: float
    upper: float
    standard_error: float
    relative_bias: float
    relative_bias_standard_error: float
    result: SplittingResult
    coarse_result: SplittingResult
    dt: float
    confidence: float

    @property
    def relative_error(self) -> float:
        """Standard error of the extrapolated mean escape time divided by it."""
        return self.standard_error / self.mean_escape_time


def mean_escape_time_by_splitting_extrapolated(
    dynamics, criteria, initial_position, key: jax.Array, *, dt, warn_above: float = 3.0,
    **options,
) -> ExtrapolatedSplitting:
    r"""`mean_escape_time_by_splitting` at dt and 2dt, extrapolated to dt → 0.

    With relative errors $r_i = SE_i/\tau_i$ of the two independent estimates,
    $\log\hat\tau_0 = 2\log\tau(dt) - \log\tau(2dt)$, i.e. $\hat\tau_0 = \tau(dt)^2/\tau(2dt)$,
    with relative standard error $\sqrt{4r_1^2 + r_2^2}$ (Talay & Tubaro 1990, applied to
    log τ: the dt bias enters the escape-time exponent, see the module docstring). To first
    order this is $2\tau(dt) - \tau(2dt)$. The dt run uses `key` (the same run as
    `mean_escape_time_by_splitting` with it), the 2dt run `jax.random.fold_in(key, 1)` and half
    of `max_steps`; its excursions take half the steps, so the cost is about 1.5 times one run.
    Warns (UserWarning) when the estimated bias of the dt run exceeds `warn_above` of its
    standard errors.

    **Arguments:**

    - `dynamics`, `criteria`, `initial_position`, `key`: as for
      `mean_escape_time_by_splitting` (SDE dynamics: SGD has no dt to refine).
    - `dt`: the smaller Euler–Maruyama step (> 0); the second run uses 2dt.
    - `warn_above`: threshold of the warning, in standard errors (> 0).
    - `options`: any further keyword of `mean_escape_time_by_splitting` (`num_replicas`,
      `num_runs`, `max_steps`, `confidence`, ...), used by both runs. Levels left to their
      defaults are chosen by each run for itself (the same law: the levels come from the
      dynamics, not from dt).

    **Returns:** an `ExtrapolatedSplitting`.
    """
    dt, max_steps = extrapolation_inputs(dt, warn_above, options)
    fine = mean_escape_time_by_splitting(dynamics, criteria, initial_position, key, dt=dt,
                                         max_steps=max_steps, **options)
    coarse = mean_escape_time_by_splitting(dynamics, criteria, initial_position,
                                           jax.random.fold_in(key, 1), dt=2 * dt,
                                           max_steps=max(1, max_steps // 2), **options)
    tau, coarse_tau = fine.mean_escape_time, coarse.mean_escape_time
    nan = math.nan
    if not (tau > 0 and coarse_tau > 0 and math.isfinite(tau) and math.isfinite(coarse_tau)):
        estimate = relative_error = bias = bias_error = nan
    else:
        r1, r2 = fine.relative_error, coarse.relative_error
        estimate = tau**2 / coarse_tau
        relative_error = math.sqrt(4 * r1**2 + r2**2)
        bias = coarse_tau / tau - 1
        bias_error = (1 + bias) * math.hypot(r1, r2)
        if abs(bias) > warn_above * bias_error:
            warnings.warn(
                f"the dt = {dt:g} splitting estimate's relative discretisation bias is about "
                f"{bias:+.3g} ± {bias_error:.2g}: use the extrapolated mean escape time, or a "
                "smaller dt", UserWarning, stacklevel=2,
            )
    z = stats.norm.ppf(0.5 + fine.confidence / 2)
    return ExtrapolatedSplitting(
        mean_escape_time=estimate,
        lower=estimate * math.exp(-z * relative_error),
        upper=estimate * math.exp(z * relative_error),
        standard_error=estimate * relative_error,
        relative_bias=bias,
        relative_bias_standard_error=bias_error,
        result=fine,
        coarse_result=coarse,
        dt=dt,
        confidence=fine.confidence,
    )
