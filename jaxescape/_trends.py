"""Trends across sweep points: weighted fit of log τ against a parameter, ratios to a theory."""

import math
from typing import NamedTuple

import numpy as np
from scipy import stats


class LinearFit(NamedTuple):
    """y = intercept + slope · x by weighted least squares, with the slope's interval."""

    intercept: float
    slope: float
    intercept_standard_error: float
    slope_standard_error: float
    slope_lower: float
    slope_upper: float
    chi_square: float
    degrees_of_freedom: int
    p_value: float  # of χ² for the straight-line model (NaN without degrees of freedom)
    confidence: float


class TheoryRatio(NamedTuple):
    """estimate / theory with the interval of the estimate divided by the theory."""

    ratio: float
    lower: float
    upper: float
    deviation: float  # (estimate − theory) / standard error
    confidence: float


def _two_sided(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return 0.5 + 0.5 * confidence


def weighted_linear_fit(
    x, y, standard_error, confidence: float = 0.95, *, absolute_sigma: bool = True
) -> LinearFit:
    """Fits y = a + b x with weights 1/σ² (`np.polyfit(..., cov="unscaled")`).

    With `absolute_sigma` (default; Monte Carlo standard errors are known) the covariance is
    (XᵀWX)⁻¹ and the interval uses the normal quantile; χ² and its p-value tell whether a
    straight line describes the points. Otherwise the covariance is scaled by χ²/ν and the
    interval uses Student's t with ν = n − 2 degrees of freedom (errors known up to a factor).
    """
    x, y, sigma = (np.asarray(value, dtype=np.float64).ravel() for value in (x, y, standard_error))
    if not x.size == y.size == sigma.size:
        raise ValueError(f"x, y and standard_error must have one size, got {x.size}, {y.size}, "
                         f"{sigma.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError("standard_error must be finite and > 0")
    if np.unique(x).size < 2:
        raise ValueError(f"x needs at least two distinct values, got {np.unique(x)}")
    quantile = _two_sided(confidence)
    (slope, intercept), covariance = np.polyfit(x, y, 1, w=1.0 / sigma, cov="unscaled")
    residuals = (y - intercept - slope * x) / sigma
    chi_square = float(np.sum(residuals**2))
    degrees_of_freedom = x.size - 2
    p_value = (float(stats.chi2.sf(chi_square, degrees_of_freedom)) if degrees_of_freedom
               else math.nan)
    if absolute_sigma:
        factor = float(stats.norm.ppf(quantile))
    else:
        if degrees_of_freedom < 1:
            raise ValueError("absolute_sigma=False needs at least three points")
        covariance = covariance * chi_square / degrees_of_freedom
        factor = float(stats.t.ppf(quantile, degrees_of_freedom))
    slope_error = math.sqrt(covariance[0, 0])
    return LinearFit(
        float(intercept), float(slope), math.sqrt(covariance[1, 1]), slope_error,
        float(slope) - factor * slope_error, float(slope) + factor * slope_error,
        chi_square, degrees_of_freedom, p_value, confidence,
    )


def ratio_to_theory(
    estimate: float, standard_error: float, theory: float, confidence: float = 0.95, *,
    lower: float | None = None, upper: float | None = None,
) -> TheoryRatio:
    """estimate / theory with its interval.

    The interval is [lower, upper] / theory when the estimate's own interval is given (e.g. the
    likelihood-ratio interval of a censored fit), else estimate ± z·SE divided by theory. The
    theory value is taken as exact.
    """
    if not (math.isfinite(theory) and theory > 0):
        raise ValueError(f"theory must be finite and > 0, got {theory}")
    if lower is None or upper is None:
        z = float(stats.norm.ppf(_two_sided(confidence)))
        lower, upper = estimate - z * standard_error, estimate + z * standard_error
    deviation = (estimate - theory) / standard_error if standard_error > 0 else math.nan
    return TheoryRatio(estimate / theory, lower / theory, upper / theory, deviation, confidence)
