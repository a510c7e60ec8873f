"""Closed-form escape predictions against the exact 1-D quadrature and their known limits."""

import math

import numpy as np
import pytest
from scipy import stats

from jaxescape import eyring_kramers_time, kramers_time, log_mfpt_quadrature
from jaxescape.theories import (
    fit_stationary_exponent,
    laplace_escape_time,
    laplace_exponent,
    laplace_log_escape_time,
    meng_escape_time,
    meng_log_escape_time,
    meng_power_law_slope,
    meng_stationary_exponent,
    mori_escape_rate,
    mori_escape_rate_multidim,
    mori_loss_threshold_time,
    mori_passage_exponent,
    mori_stationary_exponent,
    piecewise_quadratic_path_fraction,
    xie_sgd_escape_time,
    xie_sgd_exponent,
    xie_white_noise_escape_time,
)


def quartic_gradient(x):
    """L = x⁴/4 − x²/2 around the minimum at −1: L'' = 2 there, −1 at the saddle 0, ΔL = 1/4."""
    return x**3 - x


def constant(value):
    return lambda x: np.full_like(np.asarray(x, np.float64), value)


def exact_log_time(gradient, diffusion, minimum=-1.0, absorbing=1.0, reflecting=-3.0):
    """log of the exact MFPT (§1.4) from the minimum, absorbing beyond the saddle."""
    return log_mfpt_quadrature(lambda x: -gradient(x), diffusion, minimum, reflecting, absorbing)


# Tilted piecewise-quadratic valley used for Xie's local model: H_a = 2, |H_b| = 1, ΔL = 0.5.
H_A, H_B, BARRIER = 2.0, 1.0, 0.5
SADDLE = math.sqrt(2 * BARRIER * (H_A + H_B) / (H_A * H_B))
KINK = H_B / (H_A + H_B) * SADDLE


def valley_gradient(x):
    return np.where(x <= KINK, H_A * x, -H_B * (x - SADDLE))


def valley_curvature(x):
    return np.where(x <= KINK, H_A, H_B)


@pytest.mark.parametrize("temperature", [0.05, 0.03, 0.02])
def test_laplace_with_constant_diffusion_is_kramers(temperature):
    laplace = laplace_escape_time(quartic_gradient, constant(temperature), -1.0, 0.0)
    assert laplace == pytest.approx(kramers_time(0.25, 2.0, 1.0, temperature), rel=1e-6)
    assert laplace_exponent(quartic_gradient, constant(temperature), -1.0, 0.0) == pytest.approx(
        0.25 / temperature, rel=1e-9)
    # docs/THEORY.md §1.5 [V-num]: exact / Kramers = 1.107, 1.054, 1.034 for T = 0.05, 0.03, 0.02.
    ratio = math.exp(exact_log_time(quartic_gradient, constant(temperature)) - math.log(laplace))
    expected = {0.05: 1.107, 0.03: 1.054, 0.02: 1.034}[temperature]
    assert ratio == pytest.approx(expected, abs=0.01)


def test_xie_constant_hessian_exponent_and_time_against_quadrature():
    learning_rate, batch = 0.05, 1.0
    diffusion = learning_rate * H_A / (2 * batch)
    exponent = xie_sgd_exponent(0.25, H_A, 1.0, learning_rate, batch)  # s = 1
    assert exponent == pytest.approx(2 * batch * 0.25 / (learning_rate * H_A))
    assert exponent == pytest.approx(laplace_exponent(quartic_gradient, constant(diffusion), -1.0,
                                                      0.0), rel=1e-9)
    predicted = xie_sgd_escape_time(0.25, H_A, 1.0, learning_rate, batch)
    assert predicted == pytest.approx(kramers_time(0.25, H_A, 1.0, diffusion), rel=1e-9)
    ratio = math.exp(exact_log_time(quartic_gradient, constant(diffusion)) - math.log(predicted))
    assert ratio == pytest.approx(1.107, abs=0.01)  # D = 0.05: docs/THEORY.md §1.5's Kramers ratio


@pytest.mark.parametrize("learning_rate", [0.1, 0.05, 0.025])
def test_xie_local_hessian_exponent_is_exact_with_path_fraction(learning_rate):
    """§2.5 [D, V-num]: piecewise D = η|H|/(2B) gives Xie's exponent with s = |H_b|/(H_a+|H_b|)."""
    batch = 1.0
    fraction = piecewise_quadratic_path_fraction(H_A, H_B)
    assert fraction == pytest.approx(1 / 3)

    def diffusion(x):
        return learning_rate * valley_curvature(x) / (2 * batch)

    exponent = xie_sgd_exponent(BARRIER, H_A, H_B, learning_rate, batch, fraction)
    assert exponent == pytest.approx(
        laplace_exponent(valley_gradient, diffusion, 0.0, SADDLE, num_points=400_001), rel=1e-5)
    # The Itô prefactor is 2π/H_a (exact/prediction 1.01–1.15, docs/THEORY.md §2.5); Xie's recalled
    # 2π/|H_b| differs from it by the factor H_a/|H_b| = 2.
    exact = exact_log_time(valley_gradient, diffusion, 0.0, 1.5 * SADDLE, -3.0)
    ito = xie_sgd_escape_time(BARRIER, H_A, H_B, learning_rate, batch, fraction, prefactor="ito")
    xie = xie_sgd_escape_time(BARRIER, H_A, H_B, learning_rate, batch, fraction, prefactor="xie")
    assert ito == pytest.approx(2 * math.pi / H_A * math.exp(exponent), rel=1e-9)
    assert xie / ito == pytest.approx(H_A / H_B)
    assert 0.99 < math.exp(exact) / ito < 1.15  # → 1 as the exponent grows


def test_xie_exponent_is_linear_in_batch_inverse_rate_and_inverse_sharpness():
    batches = np.array([1.0, 2.0, 4.0])
    values = xie_sgd_exponent(BARRIER, H_A, H_B, 0.1, batches, 0.4)
    np.testing.assert_allclose(values / batches, values[0])
    np.testing.assert_allclose(xie_sgd_exponent(BARRIER, [1.0, 2.0], 1.0, 0.1, 1.0),
                               [10.0, 5.0])
    with pytest.raises(ValueError, match="path_fraction"):
        xie_sgd_exponent(BARRIER, H_A, H_B, 0.1, 1.0, 1.5)
    with pytest.raises(ValueError, match="prefactor"):
        xie_sgd_escape_time(BARRIER, H_A, H_B, 0.1, 1.0, prefactor="flux")


def test_xie_white_noise_is_kramers_and_eyring_kramers():
    assert xie_white_noise_escape_time(0.25, 2.0, -1.0, 0.03) == pytest.approx(
        kramers_time(0.25, 2.0, 1.0, 0.03))
    minimum, saddle = np.diag([2.0, 3.0]), np.diag([-1.0, 3.0])
    assert xie_white_noise_escape_time(0.25, minimum, saddle, 0.03) == pytest.approx(
        eyring_kramers_time(minimum, saddle, 0.25, 0.03))
    # Transverse curvature equal at minimum and saddle: the 1-D law.
    assert xie_white_noise_escape_time(0.25, minimum, saddle, 0.03) == pytest.approx(
        kramers_time(0.25, 2.0, 1.0, 0.03))


def tilted_quartic(curvature=2.0, asymmetry=2.0, barrier=1.0):
    """TiltedDoubleWell in NumPy: L' = c u (u − p)(u − r p); returns (L, L', saddle)."""
    p = math.sqrt(12 * asymmetry * barrier / (curvature * (2 * asymmetry - 1)))
    c = curvature / (asymmetry * p**2)
    q = asymmetry * p

    def loss(u):
        return c * (u**4 / 4 - (p + q) * u**3 / 3 + p * q * u**2 / 2)

    def gradient(u):
        return c * u * (u - p) * (u - q)

    return loss, gradient, p


@pytest.mark.parametrize(("minimum_loss", "batch"), [(0.05, 1.0), (0.02, 1.0), (0.05, 2.0)])
def test_mori_eq16_against_quadrature(minimum_loss, batch):
    """docs/THEORY.md §3.4: exact MFPT × κ(eq. 16) = 0.95–0.98 (η = 0.1, h* = 2, |h^s| = 1)."""
    learning_rate, curvature = 0.1, 2.0
    loss, gradient, saddle = tilted_quartic(curvature, 2.0, 1.0)

    def diffusion(u):
        return learning_rate * curvature * (loss(u) + minimum_loss) / batch

    rate = mori_escape_rate(minimum_loss, 1.0 + minimum_loss, curvature, -1.0, learning_rate, batch)
    exact = math.exp(exact_log_time(gradient, diffusion, 0.0, 2 * saddle, -saddle))
    assert 0.93 < exact * rate < 1.0
    # Laplace form with the model's own D(θ) is eq. (16).
    assert 1 / rate == pytest.approx(laplace_escape_time(gradient, diffusion, 0.0, saddle,
                                                         curvature, 1.0), rel=1e-6)


def test_mori_eq17_reduces_to_eq16_and_matches_eyring_kramers_on_log_loss():
    rate_16 = mori_escape_rate(0.1, 0.5, 2.0, -1.0, 0.1, 1.0)
    rate_17 = mori_escape_rate_multidim([[2.0]], [[-1.0]], 0.1, 0.5, 0.1, 1.0)
    assert rate_17 == pytest.approx(rate_16, rel=1e-12)
    # n = 3: eq. (17) is L*·(Eyring–Kramers rate of U = log L at T = ηh*/B) (eqs. 20–23).
    minimum, saddle = np.diag([2.0, 1.5, 3.0]), np.diag([-1.0, 1.0, 2.5])
    loss_minimum, loss_saddle, learning_rate, batch = 0.1, 0.6, 0.1, 1.0
    flatness = 2.0  # the minimum's curvature along the saddle's unstable direction
    temperature = learning_rate * flatness / batch
    time_tau = eyring_kramers_time(minimum / loss_minimum, saddle / loss_saddle,
                                   math.log(loss_saddle / loss_minimum), temperature)
    rate = mori_escape_rate_multidim(minimum, saddle, loss_minimum, loss_saddle, learning_rate,
                                     batch)
    assert rate == pytest.approx(loss_minimum / time_tau, rel=1e-10)
    assert mori_passage_exponent(learning_rate, batch, flatness, 3) == pytest.approx(
        batch / (learning_rate * flatness) + 1 - 1.5)


def test_mori_stationary_density_is_power_of_loss():
    """§1.3 Itô density 1/D·exp(−∫L'/D) with D = ηhL/B equals L^(−φ), φ = 1 + B/(ηh)."""
    learning_rate, batch, curvature, minimum_loss = 0.1, 2.0, 1.5, 0.3
    x = np.linspace(0.0, 2.0, 20_001)
    loss = minimum_loss + 0.5 * curvature * x**2
    diffusion = learning_rate * curvature * loss / batch
    integrand = curvature * x / diffusion
    steps = 0.5 * np.diff(x) * (integrand[1:] + integrand[:-1])
    potential = np.concatenate(([0.0], np.cumsum(steps)))
    log_density = -np.log(diffusion) - potential
    phi = mori_stationary_exponent(learning_rate, batch, curvature)
    assert phi == pytest.approx(1 + batch / (learning_rate * curvature))
    np.testing.assert_allclose(log_density + phi * np.log(loss),
                               log_density[0] + phi * np.log(loss[0]), atol=1e-6)


@pytest.mark.parametrize("dimension", [1, 2, 4])
def test_fit_stationary_exponent_recovers_beta_samples(dimension):
    phi, minimum_loss, count = 6.0, 0.4, 40_000
    generator = np.random.default_rng(dimension)
    w = stats.beta(dimension / 2, phi - dimension / 2).rvs(count, random_state=generator)
    fitted, standard_error = fit_stationary_exponent(minimum_loss / (1 - w), minimum_loss,
                                                     dimension)
    assert abs(fitted - phi) < 4 * standard_error
    # The Fisher standard error matches the spread of the estimator over replicate samples.
    replicates = [
        fit_stationary_exponent(minimum_loss / (1 - sample), minimum_loss, dimension)
        for sample in stats.beta(dimension / 2, phi - dimension / 2).rvs(
            (40, 2000), random_state=generator)
    ]
    spread = np.std([value for value, _ in replicates], ddof=1)
    assert spread == pytest.approx(np.mean([error for _, error in replicates]), rel=0.35)


def test_mori_threshold_time_matches_one_dimensional_quadrature():
    learning_rate, batch, curvature, minimum_loss, ratio = 0.25, 1.0, 1.2, 0.5, 3.0
    radius = math.sqrt(2 * (ratio - 1) * minimum_loss / curvature)

    def diffusion(x):
        return learning_rate * curvature * (minimum_loss + 0.5 * curvature * x**2) / batch

    exact = math.exp(log_mfpt_quadrature(lambda x: -curvature * x, diffusion, 0.0, 0.0, radius))
    radial = mori_loss_threshold_time(ratio, 1, curvature, minimum_loss, learning_rate, batch)
    assert radial == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("dimension", [1, 2, 3, 4])
def test_mori_threshold_time_has_the_power_law_exponent_at_large_thresholds(dimension):
    """T ∝ c^(φ − n/2) as c → ∞ ([D]: T ≈ const·c^φ (c − 1)^(−n/2) at large B/(ηh))."""
    learning_rate, batch = 1 / 3, 1.0
    thresholds = np.array([2e3, 8e3])
    times = [mori_loss_threshold_time(c, dimension, 1.0, 0.5, learning_rate, batch)
             for c in thresholds]
    slope = np.diff(np.log(times))[0] / np.diff(np.log(thresholds))[0]
    predicted = mori_passage_exponent(learning_rate, batch, 1.0, dimension)
    assert slope == pytest.approx(predicted, rel=0.01)
    # At moderate thresholds the local slope is below the asymptote (c/(c−1) correction).
    low = [mori_loss_threshold_time(c, dimension, 1.0, 0.5, learning_rate, batch) for c in (2, 4)]
    assert np.diff(np.log(low))[0] / math.log(2) < predicted


@pytest.mark.parametrize(("learning_rate", "kappa", "sigma"),
                         [(0.1, 1.0, 0.01), (0.1, 2.0, 0.005), (0.05, 1.0, 0.02)])
def test_meng_power_law_against_quadrature(learning_rate, kappa, sigma):
    """docs/THEORY.md §4.4 [V-num]: exact / prediction = 0.94–0.985 for these parameters."""
    loss, gradient, saddle = tilted_quartic(2.0, 2.0, 1.0)

    def diffusion(u):
        return 0.5 * learning_rate * (sigma + 2 * kappa * loss(u))

    predicted = meng_log_escape_time(1.0, 2.0, 1.0, learning_rate, sigma, kappa)
    exact = exact_log_time(gradient, diffusion, 0.0, 2 * saddle, -saddle)
    assert 0.93 < math.exp(exact - predicted) < 0.99
    assert predicted == pytest.approx(laplace_log_escape_time(gradient, diffusion, 0.0, saddle,
                                                              2.0, 1.0), abs=1e-6)


def test_meng_limits_and_relation_to_mori():
    barrier, h_a, h_b, learning_rate, sigma = 0.5, 2.0, 1.0, 0.1, 0.3
    constant_noise = meng_escape_time(barrier, h_a, h_b, learning_rate, sigma, 0.0)
    langevin = kramers_time(barrier, h_a, h_b, learning_rate * sigma / 2)
    assert constant_noise == pytest.approx(langevin)
    assert meng_escape_time(barrier, h_a, h_b, learning_rate, sigma, 1e-9) == pytest.approx(
        constant_noise, rel=1e-6)
    # Mori eq. (16) is Meng with σ = 2h*L*/B, κ = h*/B.
    loss_minimum, batch = 0.1, 2.0
    mori_time = 1 / mori_escape_rate(loss_minimum, loss_minimum + barrier, h_a, h_b, learning_rate,
                                     batch)
    meng_time = meng_escape_time(barrier, h_a, h_b, learning_rate, 2 * h_a * loss_minimum / batch,
                                 h_a / batch)
    assert meng_time == pytest.approx(mori_time, rel=1e-12)
    # Hessian-aligned: σ, κ multiplied by h_a, so log τ ∝ 1/h_a in the exponent.
    assert meng_escape_time(barrier, h_a, h_b, learning_rate, 0.2, 0.5, hessian_aligned=True) == (
        pytest.approx(meng_escape_time(barrier, h_a, h_b, learning_rate, 0.4, 1.0)))
    assert meng_power_law_slope(0.1, 2.5) == pytest.approx(4.5)
    assert meng_power_law_slope(0.1, 1.25, 2.0, hessian_aligned=True) == pytest.approx(4.5)
    assert meng_stationary_exponent(0.1, 2.5) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="kappa"):
        meng_escape_time(barrier, h_a, h_b, learning_rate, sigma, -1.0)


def test_meng_stationary_density_is_student_like():
    """§4.3: 1/D·exp(−∫L'/D) ∝ C^(−(1 + 1/(ηκ))) with C = σ + κ h x²."""
    learning_rate, kappa, sigma, curvature = 0.1, 2.0, 0.5, 1.5
    x = np.linspace(0.0, 3.0, 30_001)
    covariance = sigma + kappa * curvature * x**2
    integrand = curvature * x / (0.5 * learning_rate * covariance)
    steps = 0.5 * np.diff(x) * (integrand[1:] + integrand[:-1])
    potential = np.concatenate(([0.0], np.cumsum(steps)))
    log_density = -np.log(covariance) - potential
    exponent = meng_stationary_exponent(learning_rate, kappa)
    np.testing.assert_allclose(log_density + exponent * np.log(covariance),
                               log_density[0] + exponent * np.log(covariance[0]), atol=1e-6)


def test_input_validation():
    with pytest.raises(ValueError, match="learning_rate"):
        xie_sgd_exponent(1.0, 1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="loss_minimum"):
        mori_escape_rate(0.0, 1.0, 1.0, 1.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="threshold_ratio"):
        mori_loss_threshold_time(0.9, 1, 1.0, 0.5, 0.1, 1.0)
    with pytest.raises(ValueError, match="index 1"):
        mori_escape_rate_multidim(np.eye(2), np.eye(2), 0.1, 0.5, 0.1, 1.0)
    with pytest.raises(ValueError, match="differ"):
        laplace_exponent(quartic_gradient, constant(0.1), 0.0, 0.0)
