"""Heavy-tailed (α-stable) noise: the variates, the exact discretised-chain references, and the
α-stable particle process against them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import interpolate, stats

import jaxescape as jxe
import jaxescape.theories
from jaxescape import _noise
from jaxescape.theories import (
    hill_tail_index,
    kesten_tail_index,
    tail_index,
    levy_chain_mean_exit_time,
    levy_escape_time,
    stable_levy_constant,
)


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


def test_chain_reference_grid_convergence():
    """The Nyström solution with 4 grid points per noise scale agrees with 8 to 1e-5 (relative),
    at the start and off-centre, on an asymmetric interval."""
    arguments = (lambda x: x, 1.5, 0.5, 0.01, -0.8, 1.2, [0.0, 0.5])
    coarse = levy_chain_mean_exit_time(*arguments, points_per_scale=4)
    fine = levy_chain_mean_exit_time(*arguments, points_per_scale=8)
    np.testing.assert_allclose(coarse, fine, rtol=1e-5)


def test_chain_reference_approaches_the_small_noise_law():
    """The exact discretised chain (L = x²/2, Δt = 0.1, interval (−1, 1)) against the small-noise
    law E τ = α/(c_α ε^α (a^−α + b^−α)) as ε → 0 for α = 1.5: the ratio moves towards 1
    monotonically and is within 1.5% at ε = 0.04; the local log-log slope tends to −α (within
    0.035 between ε = 0.08 and 0.04). Measured down to ε = 0.01 (docs/THEORIES.md): ratio
    0.913, 0.970, 0.989, 0.996, 0.999 and slopes −1.586, −1.529, −1.510, −1.504."""
    alpha, epsilons = 1.5, np.array([0.16, 0.08, 0.04])
    exact = np.array([levy_chain_mean_exit_time(lambda x: x, alpha, epsilon, 0.1, -1.0, 1.0, 0.0)
                      for epsilon in epsilons])
    ratio = exact / levy_escape_time(alpha, epsilons, 1.0, 1.0)
    assert np.all(np.diff(np.abs(1 - ratio)) < 0) and abs(1 - ratio[-1]) < 0.015, ratio
    slopes = np.diff(np.log(exact)) / np.diff(np.log(epsilons))
    assert np.all(np.diff(np.abs(slopes + alpha)) < 0) and abs(slopes[-1] + alpha) < 0.035, slopes


def test_levy_constant_matches_the_tail_of_scipy_law():
    """The density's tail f(z) ≈ c_α z^(−1−α) at z = 10^4 (scipy's S1 pdf; its far-tail CDF
    rounds to 0 there), and c_1 = 1/π."""
    for alpha in (1.2, 1.5, 1.8):
        np.testing.assert_allclose(stats.levy_stable.pdf(1e4, alpha, 0.0),
                                   stable_levy_constant(alpha) * 1e4 ** (-1 - alpha), rtol=1e-3)
    np.testing.assert_allclose(stable_levy_constant(1.0), 1 / np.pi)


def _well_run(alpha, lower=-1.0, upper=1.0, num_particles=10_000, **options):
    landscape = jxe.theories.QuadraticLandscape(jnp.eye(1), jnp.zeros(1), 0.0)
    process = jxe.theories.LevyLangevin(landscape, alpha, 0.5)
    criteria = [jxe.HalfSpace(jnp.array([-1.0]), -lower), jxe.HalfSpace(jnp.array([1.0]), upper)]
    return jxe.simulate(process, criteria, jnp.zeros(1), jax.random.key(3),
                        num_particles=num_particles, dt=0.01, max_steps=10**6, **options)


@pytest.mark.parametrize("alpha, lower, upper", [(1.2, -1.0, 1.0), (1.5, -0.8, 1.2),
                                                  (1.8, -1.0, 1.0), (2.0, -1.0, 1.0)])
def test_simulated_mean_exit_time_matches_the_exact_chain(alpha, lower, upper):
    """10^4 particles (ε = 0.5, Δt = 0.01, L = x²/2, fixed key): the mean exit time within 4
    standard errors of the exact discretised chain's (I − P)T = 1."""
    result = _well_run(alpha, lower, upper)
    assert result.escaped.all()
    times = result.escape_time
    exact = levy_chain_mean_exit_time(lambda x: x, alpha, 0.5, 0.01, lower, upper, 0.0)
    standard_error = times.std(ddof=1) / np.sqrt(times.size)
    assert abs(times.mean() - exact) < 4 * standard_error, (times.mean(), exact, standard_error)


def test_levy_runs_are_the_same_for_any_chunking_and_check_bad_input():
    """Same key, same numbers: chunk_size 300 / 4096 and num_slots 64 / default give identical
    steps, boundaries and positions; bad α and ε are refused before compiling."""
    first = _well_run(1.5, num_particles=1000, chunk_size=300, num_slots=64)
    second = _well_run(1.5, num_particles=1000, chunk_size=4096)
    for a, b in zip(first[:5], second[:5]):
        np.testing.assert_array_equal(a, b)
    landscape = jxe.theories.QuadraticLandscape(jnp.eye(1), jnp.zeros(1), 0.0)
    for alpha, epsilon, name in ((2.5, 0.5, "alpha"), (0.0, 0.5, "alpha"), (1.5, -1.0, "epsilon")):
        with pytest.raises(ValueError, match=name):
            jxe.simulate(jxe.theories.LevyLangevin(landscape, alpha, epsilon),
                         jxe.OutsideBall(jnp.zeros(1), 1.0), jnp.zeros(1), jax.random.key(0),
                         num_particles=10, dt=0.01)


def test_gaussian_part_adds_its_variance():
    """With α = 2 the jump part is Gaussian (variance 2ε²Δt), so ε = 0.3 with temperature
    T = 0.16 is the α = 2 chain with ε² = 0.09 + 0.16 = 0.25: 10^4 particles within 4 standard
    errors of its exact mean exit time; and splitting refuses α < 2 (jumps skip levels)."""
    landscape = jxe.theories.QuadraticLandscape(jnp.eye(1), jnp.zeros(1), 0.0)
    process = jxe.theories.LevyLangevin(landscape, 2.0, 0.3, temperature=0.16)
    result = jxe.simulate(process, jxe.OutsideBall(jnp.zeros(1), 1.0), jnp.zeros(1),
                          jax.random.key(4), num_particles=10_000, dt=0.01, max_steps=10**6)
    exact = levy_chain_mean_exit_time(lambda x: x, 2.0, 0.5, 0.01, -1.0, 1.0, 0.0)
    times = result.escape_time
    assert abs(times.mean() - exact) < 4 * times.std(ddof=1) / np.sqrt(times.size)
    with pytest.raises(ValueError, match="alpha"):
        jxe.estimate_escape_time(jxe.theories.LevyLangevin(landscape, 1.5, 0.5),
                                 jxe.OutsideBall(jnp.zeros(1), 1.0), jnp.zeros(1),
                                 jax.random.key(0), dt=0.01)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8, 2.0])
def test_tail_index_estimator_on_stable_samples(alpha):
    """Mohammadi et al.'s estimator on 200 sets of 4096 SαS samples (fixed key): the mean of
    1/α̂ within 4 of its standard errors of 1/α; the per-set standard error within 15% of the
    spread over sets; the bias of α̂ itself below 0.2 of a per-set standard error (measured:
    0.03, 0.06, 0.004, −0.01 for α = 1.2, 1.5, 1.8, 2; per-set SE 0.059, 0.084, 0.112, 0.134)."""
    sets = _stable_variates(alpha, 200 * 4096, key=(9, 1)).reshape(200, 4096)
    estimates = [tail_index(samples) for samples in sets]
    inverse = np.array([estimate.inverse_alpha for estimate in estimates])
    spread = inverse.std(ddof=1)
    assert abs(inverse.mean() - 1 / alpha) < 4 * spread / np.sqrt(inverse.size)
    per_set = np.mean([estimate.inverse_alpha_se for estimate in estimates])
    assert abs(per_set / spread - 1) < 0.15, (per_set, spread)
    alphas = np.array([estimate.alpha for estimate in estimates])
    alpha_se = np.mean([estimate.alpha_se for estimate in estimates])
    assert abs(alphas.mean() - alpha) < 0.2 * alpha_se, (alphas.mean(), alpha_se)
    assert estimates[0].block_size == 64 and estimates[0].num_blocks == 64
    with pytest.raises(ValueError, match="block_size"):
        tail_index(sets[0], block_size=1)


def test_levy_reproduction_smoke(tmp_path):
    """`reproduce levy` at smoke size writes its files; every point agrees with the exact chain
    within 4 SE and every slope with the exact chain's within 4 of its SE; the α-stable slopes
    in h are far below the Gaussian's (insensitive to the barrier height)."""
    summary = jxe.theories.REPRODUCTIONS["levy"](tmp_path, size="smoke", seed=0, progress=False)
    for filename in ("results.json", "results.md", "levy.png"):
        assert (tmp_path / filename).stat().st_size > 0
    assert summary["all_checks_passed"], [k for k, v in summary["checks"].items() if not v]
    sweeps = summary["sweeps"]
    gaussian = sweeps["alpha2_height"]["exact_slope"]
    for alpha in ("1.2", "1.5"):
        assert sweeps[f"alpha{alpha}_height"]["exact_slope"] < 0.2 * gaussian


@pytest.mark.parametrize("alpha", [0.6, 0.75])
def test_positive_stable_variates(alpha):
    """A with E exp(−λA) = exp(−λ^α): the empirical Laplace transform at λ = 0.5, 1, 2 within 4
    standard errors (2·10^5 variates), and KS against scipy's levy_stable(α, β = 1, scale
    cos(πα/2)^{1/α}) on 4000 of them (p > 0.01); α = 1 gives exactly 1."""
    words = _noise.threefry_2x32(jnp.uint32(11), jnp.uint32(4), jnp.zeros(200_000, jnp.uint32),
                                 jnp.arange(200_000, dtype=jnp.uint32))
    uniforms = [_noise.uniform_from_words(word, jnp.float32) for word in words]
    variates = np.asarray(_noise.positive_stable_from_uniforms(*uniforms, alpha), np.float64)
    for lam in (0.5, 1.0, 2.0):
        values = np.exp(-lam * variates)
        assert abs(values.mean() - np.exp(-lam**alpha)) < 4 * values.std() / np.sqrt(values.size)
    scale = np.cos(np.pi * alpha / 2) ** (1 / alpha)
    law = stats.levy_stable(alpha, 1.0, scale=scale)
    assert stats.kstest(variates[:4000], law.cdf).pvalue > 0.01
    np.testing.assert_array_equal(
        np.asarray(_noise.positive_stable_from_uniforms(*uniforms, 1.0))[:1000], 1.0)


def test_isotropic_and_per_coordinate_noise_projections():
    """2-D increments (ε = Δt = 1, α = 1.5, 10^5 variates): isotropic noise projected on e₁
    and on (1, 1)/√2 is standard SαS (KS p > 0.01 each); per-coordinate noise is standard on
    e₁ and 2^{1/α − 1/2} times standard on the diagonal (KS p > 0.01), and its diagonal
    projection is not standard (p < 10^-6)."""
    alpha, num = 1.5, 100_000
    landscape = jxe.theories.QuadraticLandscape(jnp.eye(2), jnp.zeros(2), 0.0)
    words = [_noise.threefry_2x32(jnp.uint32(13), jnp.uint32(k), jnp.zeros(num, jnp.uint32),
                                  jnp.arange(num, dtype=jnp.uint32)) for k in range(2)]
    uniforms = [_noise.uniform_from_words(word, jnp.float32) for pair in words for word in pair]
    cdf = _standard_cdf(alpha, 1e6)
    diagonal = np.array([1.0, 1.0]) / np.sqrt(2)
    for isotropic in (True, False):
        process = jxe.theories.LevyLangevin(landscape, alpha, 1.0, isotropic=isotropic)
        increments = np.asarray(process.increment(uniforms, jnp.float32(1.0), 2), np.float64)
        assert stats.kstest(increments[0], cdf).pvalue > 0.01
        projection = diagonal @ increments
        if isotropic:
            assert stats.kstest(projection, cdf).pvalue > 0.01
        else:
            assert stats.kstest(projection / 2 ** (1 / alpha - 0.5), cdf).pvalue > 0.01
            assert stats.kstest(projection, cdf).pvalue < 1e-6


def test_kesten_tail_index_and_hill_estimator():
    """Kesten's index is exactly 2 where E(1 − ηh)² = 1: (η, B) = (2/3, 1) and (1, 2); it falls
    with η at fixed B; unstable SGD is refused. Hill's estimator on 2·10^5 Pareto(α) samples
    (fixed seed, k = 2000) is within 4 of its SEs α/√k for α = 0.8, 1.5, 3."""
    np.testing.assert_allclose([kesten_tail_index(2 / 3, 1), kesten_tail_index(1.0, 2)], 2.0,
                               rtol=1e-8)
    indices = [kesten_tail_index(eta, 1) for eta in (0.3, 0.5, 0.8, 1.2)]
    assert np.all(np.diff(indices) < 0), indices
    with pytest.raises(ValueError, match="learning_rate"):
        kesten_tail_index(3.0, 1)
    rng = np.random.default_rng(0)
    for alpha in (0.8, 1.5, 3.0):
        samples = rng.pareto(alpha, 200_000) + 1
        estimate = hill_tail_index(samples * rng.choice([-1, 1], samples.size), 2000)
        assert abs(estimate.alpha - alpha) < 4 * estimate.alpha_se, (alpha, estimate)


@pytest.mark.slow
@pytest.mark.parametrize("learning_rate", [0.8, 1.2])
def test_sgd_stationary_iterates_have_kestens_tail_index(learning_rate):
    """Real SGD particles (1-D linear regression on 10^5 Gaussian samples, B = 1 with
    replacement, 10^6 particles, 1000 steps from θ*): Hill's estimate (k = 10^4) of the tail
    index of θ − θ* within 4 SE of Kesten's exact index (1.546 and 0.785; measured 1.539 and
    0.777). Gürbüzbalaban, Şimşekli & Zhu (2021): SGD makes heavy tails itself."""
    data = jxe.gaussian_regression_data(jax.random.key(0), 100_000, 1)
    inputs, targets = np.asarray(data.inputs[:, 0], np.float64), np.asarray(data.targets)
    optimum = float(inputs @ targets / (inputs @ inputs))
    sgd = jxe.MinibatchSGD(jxe.LinearRegression(1), data, 1, learning_rate, replacement=True)
    result = jxe.simulate(sgd, jxe.NeverEscape(), jnp.array([optimum], jnp.float32),
                          jax.random.key(1), num_particles=10**6, max_steps=1000)
    assert not result.diverged.any()
    estimate = hill_tail_index(result.position[:, 0].astype(np.float64) - optimum, 10_000)
    exact = kesten_tail_index(learning_rate, 1)
    assert abs(estimate.alpha - exact) < 4 * estimate.alpha_se, (estimate.alpha, exact)


@pytest.mark.slow
@pytest.mark.standard_promotion(reason="jaxescape/_splitting/kernel.py multiplies a float32 "
                                "uniform by an int32 survivor count")
def test_splitting_runs_the_gaussian_case_against_the_exact_chain():
    """α = 2 (no jumps) is valid for splitting: default levels from the linearised covariance,
    L = x²/2, ε = 0.35, Δt = 0.01, exit at x >= 1: within 4 SE of the exact chain on (−3, 1)
    (the far side is never reached; measured 72.44 ± 1.96 against 72.79, 11 s)."""
    landscape = jxe.theories.QuadraticLandscape(jnp.eye(1), jnp.zeros(1), 0.0)
    result = jxe.estimate_escape_time(
        jxe.theories.LevyLangevin(landscape, 2.0, 0.35), jxe.HalfSpace(jnp.array([1.0]), 1.0),
        jnp.zeros(1), jax.random.key(1), dt=0.01, num_replicas=200, num_runs=20)
    exact = levy_chain_mean_exit_time(lambda x: x, 2.0, 0.35, 0.01, -3.0, 1.0, 0.0)
    assert abs(result.mean_escape_time - exact) < 4 * result.standard_error
