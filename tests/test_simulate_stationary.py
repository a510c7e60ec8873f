"""Ornstein–Uhlenbeck particles against the exact covariance of the discretised (EM) chain.

With `NeverEscape` every particle runs exactly `max_steps` Euler–Maruyama steps and is censored;
`result.position` holds y_n. For dy = −A y dt + G dW the chain is y_{k+1} = M y_k + G √dt ξ_k,
M = I − A dt, so from y_0 = 0 its covariance obeys Σ_{k+1} = M Σ_k Mᵀ + G Gᵀ dt exactly. In 1-D
(and per eigen-direction of a symmetric A with isotropic noise) this sums to
V_n = V_∞ (1 − (1 − k dt)^{2n}),  V_∞ = T / (k (1 − k dt / 2)),
which differs from the continuum T/k by O(dt) — the tests resolve that difference, so they target
the chain, not the SDE. Standard errors for N i.i.d. Gaussian samples: sample variance V√(2/(N−1)),
sample covariance √((Σ_ii Σ_jj + Σ_ij²)/(N−1)), mean √(V/N). Tolerance: 4 SE, fixed keys.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe


NUM_PARTICLES = 100_000
TEMPERATURE = 0.5
DT = 0.05
NUM_STEPS = 100


def quadratic_form(y, matrix):
    """L(y) = ½ yᵀ A y (module level: one compilation for every A of a given shape)."""
    return 0.5 * y @ matrix @ y


def linear_drift(t, y, parameters):
    matrix, _ = parameters
    return -matrix @ y


def constant_matrix_diffusion(t, y, parameters):
    _, diffusion = parameters
    return diffusion


def run_to_max_steps(dynamics, dim, key):
    result = jxe.simulate(
        dynamics, jxe.NeverEscape(), jnp.zeros(dim), jax.random.key(key),
        num_particles=NUM_PARTICLES, dt=DT, max_steps=NUM_STEPS, num_slots=2048,
    )
    assert result.censored.all() and not result.diverged.any()
    assert np.all(result.escape_step == NUM_STEPS) and np.all(result.boundary == -1)
    assert np.all(np.isfinite(result.position))
    return np.asarray(result.position, np.float64)


def chain_covariance(drift_matrix, noise_covariance, dt, num_steps):
    """Exact covariance of y_n for the EM chain from y_0 = 0 (float64 recursion)."""
    transition = np.eye(len(drift_matrix)) - drift_matrix * dt
    covariance = np.zeros_like(noise_covariance)
    for _ in range(num_steps):
        covariance = transition @ covariance @ transition.T + noise_covariance * dt
    return covariance


def chain_variance(curvature, temperature, dt, num_steps):
    stationary = temperature / (curvature * (1 - curvature * dt / 2))
    return stationary * (1 - (1 - curvature * dt) ** (2 * num_steps))


def assert_covariance_matches(samples, expected, sigmas=4.0):
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    mean_error = np.sqrt(np.diag(expected) / n)
    assert np.all(np.abs(mean) < sigmas * mean_error), (mean, mean_error)
    covariance = np.cov(samples, rowvar=False, ddof=1).reshape(expected.shape)
    variances = np.diag(expected)
    standard_error = np.sqrt((np.outer(variances, variances) + expected**2) / (n - 1))
    deviation = np.abs(covariance - expected) / standard_error
    assert np.all(deviation < sigmas), (covariance, expected, deviation)


def test_one_dimensional_ou_variance_is_that_of_the_discretised_chain():
    curvature = 1.0
    landscape = jxe.FunctionLandscape(quadratic_form, 1, jnp.array([[curvature]]))
    dynamics = jxe.OverdampedLangevin(landscape, TEMPERATURE)
    positions = run_to_max_steps(dynamics, 1, key=0)[:, 0]

    expected = chain_variance(curvature, TEMPERATURE, DT, NUM_STEPS)
    # Closed form equals the recursion (a check on the formula itself).
    recursion = chain_covariance(np.array([[curvature]]), np.array([[2 * TEMPERATURE]]), DT,
                                 NUM_STEPS)
    assert expected == pytest.approx(recursion[0, 0], rel=1e-12)
    variance = np.var(positions, ddof=1)
    standard_error = expected * np.sqrt(2 / (NUM_PARTICLES - 1))
    assert abs(variance - expected) < 4 * standard_error
    assert abs(np.mean(positions)) < 4 * np.sqrt(expected / NUM_PARTICLES)
    # Power: the continuum variance T/k is 2.6% (≈ 5.7 SE) away, and is rejected.
    continuum = TEMPERATURE / curvature * (1 - np.exp(-2 * curvature * DT * NUM_STEPS))
    assert abs(variance - continuum) > 4 * standard_error


def _random_rotation(dim, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def test_anisotropic_ou_variance_per_eigen_direction_and_full_covariance():
    curvatures = np.array([0.5, 1.0, 4.0])  # k·dt = 0.025, 0.05, 0.2
    rotation = _random_rotation(3, seed=1)
    matrix = rotation @ np.diag(curvatures) @ rotation.T
    landscape = jxe.FunctionLandscape(quadratic_form, 3, jnp.asarray(matrix, jnp.float32))
    dynamics = jxe.OverdampedLangevin(landscape, TEMPERATURE)
    positions = run_to_max_steps(dynamics, 3, key=1)

    # Per eigen-direction z = Rᵀ y: independent 1-D chains with the closed-form variance.
    local = positions @ rotation
    expected_local = np.diag([chain_variance(k, TEMPERATURE, DT, NUM_STEPS) for k in curvatures])
    assert_covariance_matches(local, expected_local)
    # Full covariance in the original coordinates against the recursion. The float32 matrix
    # (what the simulation uses) is fed to the recursion, so the target is exact for it.
    matrix32 = np.asarray(jnp.asarray(matrix, jnp.float32), np.float64)
    expected = chain_covariance(matrix32, 2 * TEMPERATURE * np.eye(3), DT, NUM_STEPS)
    assert_covariance_matches(positions, expected)
    np.testing.assert_allclose(rotation.T @ expected @ rotation, expected_local, atol=2e-6)


def test_matrix_noise_ou_covariance_is_that_of_the_discretised_chain():
    """dy = −A y dt + G dW with G of shape (2, 3) and a non-symmetric A: Σ → MΣMᵀ + GGᵀdt."""
    drift_matrix = np.array([[1.0, 0.5], [-0.3, 2.0]])
    diffusion = np.array([[0.6, -0.4, 0.2], [0.1, 0.8, -0.5]])
    dynamics = jxe.GeneralSDE(
        linear_drift, constant_matrix_diffusion,
        (jnp.asarray(drift_matrix, jnp.float32), jnp.asarray(diffusion, jnp.float32)),
        noise_type="matrix", noise_dimension=3,
    )
    positions = run_to_max_steps(dynamics, 2, key=2)
    f32 = [np.asarray(jnp.asarray(a, jnp.float32), np.float64) for a in (drift_matrix, diffusion)]
    expected = chain_covariance(f32[0], f32[1] @ f32[1].T, DT, NUM_STEPS)
    assert expected[0, 1] != pytest.approx(0.0, abs=0.05)  # correlated: a real test of G Gᵀ
    assert_covariance_matches(positions, expected)
