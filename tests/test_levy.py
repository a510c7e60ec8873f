"""Heavy-tailed (α-stable) noise: the variates, the exact discretised-chain references, and the
α-stable particle process against them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import interpolate, stats

from jaxescape import _noise


def _stable_variates(alpha, num, dtype=jnp.float32, key=(5, 4)):
    words = _noise.threefry_2x32(
        jnp.uint32(key[0]), jnp.uint32(key[1]), jnp.zeros(num, jnp.uint32),
        jnp.arange(num, dtype=jnp.uint32),
    )
    uniforms = [_noise.uniform_from_words(word, jnp.float32) for word in words]
    return np.asarray(_noise.stable_from_uniforms(*uniforms, alpha), np.float64)


def _standard_cdf(alpha, extent=1e6):
    """scipy's S1 CDF (β = 0, scale 1) on 800 arcsinh-spaced nodes in [−extent, extent] and
    F(0) = 1/2, interpolated (PCHIP; error below 2e-5, far under the KS statistic's
    resolution): scipy's own CDF costs about 0.3 ms a point, and it returns 1/2 for
    |x| up to about 0.006 (its `x_tol_near_zeta`), so no node lies there."""
    if alpha == 2:
        return stats.norm(scale=np.sqrt(2)).cdf  # S1 with α = 2: N(0, 2)
    nodes = np.sinh(np.linspace(-np.arcsinh(extent), np.arcsinh(extent), 800))
    values = stats.levy_stable.cdf(nodes, alpha, 0.0)
    nodes, values = np.insert(nodes, 400, 0.0), np.insert(values, 400, 0.5)
    return interpolate.PchipInterpolator(nodes, values, extrapolate=True)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8, 2.0])
def test_stable_variates_follow_scipy_levy_stable(alpha):
    """KS test of 2·10^5 float32 variates against scipy's S1 law (β = 0, scale 1): p > 0.01;
    and F(q̂_p) for p = 0.001 ... 0.999 within 4 standard errors
    sqrt(p(1 − p)/n) of p (the tails included)."""
    variates = _stable_variates(alpha, 200_000)
    assert np.all(np.isfinite(variates))
    cdf = _standard_cdf(alpha, np.max(np.abs(variates)))
    assert stats.kstest(variates, cdf).pvalue > 0.01
    probabilities = np.array([0.001, 0.01, 0.1, 0.25, 0.75, 0.9, 0.99, 0.999])
    quantiles = np.quantile(variates, probabilities)
    standard_errors = np.sqrt(probabilities * (1 - probabilities) / variates.size)
    deviations = (cdf(quantiles) - probabilities) / standard_errors
    assert np.max(np.abs(deviations)) < 4, deviations


def test_stable_variates_cauchy_case_and_extreme_uniforms():
    """α = 1 is the standard Cauchy law (KS on 2·10^5, p > 0.01); the extreme uniforms 0 and
    the largest below 1 give finite variates for α in [0.5, 2] in float32 and float64, and the
    map is odd about u = 1/2."""
    assert stats.kstest(_stable_variates(1.0, 200_000), stats.cauchy.cdf).pvalue > 0.01
    for dtype, bits in ((jnp.float32, 23), (jnp.float64, 52)):
        with jax.enable_x64(dtype == jnp.float64):
            uniforms = jnp.asarray([0.0, 1 - 2.0**-bits, 0.25, 0.75], dtype)
            for alpha in (0.5, 1.0, 1.5, 2.0):
                variates = np.asarray(_noise.stable_from_uniforms(
                    uniforms, jnp.full_like(uniforms, 0.3), alpha))
                assert variates.dtype == dtype and np.all(np.isfinite(variates))
                np.testing.assert_allclose(variates[:2], -variates[1::-1], rtol=1e-5)
                np.testing.assert_allclose(variates[2], -variates[3], rtol=1e-5)
