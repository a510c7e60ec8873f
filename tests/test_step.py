"""The single Euler–Maruyama step: exact couplings instead of statistics.

With the same state and the same normals, the noise part y₁ − y₀ − f(y₀)·dt of one step is
g·√dt·ξ, so at temperatures T1 and T2 (g ∝ √T) the two noise parts differ by exactly the factor
√(T1/T2), and at T = 0 the step is gradient descent. Run in float64 so that rtol = 1e-6 measures
the engine and not the cancellation in y₁ − y₀ − f·dt.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe


pytestmark = pytest.mark.usefixtures("x64")

TEMPERATURES = (0.3, 1.7)
DT = 0.01


def noise_part(dynamics, y0, normals, dt=DT):
    y1, diffusion = jxe.euler_maruyama_step(dynamics, jnp.zeros(()), y0, jnp.asarray(dt), normals)
    assert y1.dtype == jnp.float64
    return np.asarray(y1 - y0 - dynamics.drift(0.0, y0) * dt), np.asarray(diffusion)


def test_diagonal_noise_scales_with_the_square_root_of_temperature():
    landscape = jxe.AnisotropicWell(1.0, 4.0, jnp.array([1.0, 9.0]))
    y0 = jnp.array([0.3, -0.2, 0.5])
    normals = jax.random.normal(jax.random.key(0), (3,), jnp.float64)
    first, g1 = noise_part(jxe.OverdampedLangevin(landscape, TEMPERATURES[0]), y0, normals)
    second, g2 = noise_part(jxe.OverdampedLangevin(landscape, TEMPERATURES[1]), y0, normals)
    np.testing.assert_allclose(first, second * np.sqrt(TEMPERATURES[0] / TEMPERATURES[1]),
                               rtol=1e-6)
    # And each equals g·√dt·ξ with g = √(2T) on the diagonal.
    np.testing.assert_allclose(g1, np.full(3, np.sqrt(2 * TEMPERATURES[0])), rtol=1e-15)
    np.testing.assert_allclose(first, g1 * np.sqrt(DT) * np.asarray(normals), rtol=1e-6)
    np.testing.assert_allclose(second, g2 * np.sqrt(DT) * np.asarray(normals), rtol=1e-6)


def linear_drift(t, y, parameters):
    matrix, _, _ = parameters
    return -matrix @ y


def scaled_matrix_diffusion(t, y, parameters):
    """g = √T · G(y): a state-dependent (2, 3) matrix scaled by the temperature."""
    _, base, temperature = parameters
    return jnp.sqrt(temperature) * base * (1.0 + 0.1 * jnp.sum(y**2))


def test_matrix_noise_scales_with_the_square_root_of_temperature():
    matrix = jnp.array([[1.0, 0.5], [-0.3, 2.0]])
    base = jnp.array([[0.6, -0.4, 0.2], [0.1, 0.8, -0.5]])

    def dynamics(temperature):
        return jxe.GeneralSDE(
            linear_drift, scaled_matrix_diffusion, (matrix, base, jnp.asarray(temperature)),
            noise_type="matrix", noise_dimension=3,
        )

    y0 = jnp.array([0.7, -1.1])
    normals = jax.random.normal(jax.random.key(1), (3,), jnp.float64)
    first, g1 = noise_part(dynamics(TEMPERATURES[0]), y0, normals)
    second, g2 = noise_part(dynamics(TEMPERATURES[1]), y0, normals)
    assert g1.shape == (2, 3)
    np.testing.assert_allclose(first, second * np.sqrt(TEMPERATURES[0] / TEMPERATURES[1]),
                               rtol=1e-6)
    np.testing.assert_allclose(first, g1 @ np.asarray(normals) * np.sqrt(DT), rtol=1e-6)


def test_zero_temperature_step_is_gradient_descent():
    """T = 0 is rejected by `simulate` but is a valid single step: y − ∇L(y)·dt exactly."""
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    y0 = jnp.array([0.4])
    normals = jnp.array([1.3])
    y1, _ = jxe.euler_maruyama_step(
        jxe.OverdampedLangevin(landscape, 0.0), jnp.zeros(()), y0, jnp.asarray(DT), normals
    )
    np.testing.assert_array_equal(y1, y0 - landscape.gradient(y0) * DT)


def test_float32_step_stays_float32():
    with jax.enable_x64(False):
        landscape = jxe.TiltedDoubleWell(1.0, 4.0)
        y0 = jnp.array([0.4], jnp.float32)
        y1, _ = jxe.euler_maruyama_step(
            jxe.OverdampedLangevin(landscape, 0.5), jnp.zeros((), jnp.float32), y0,
            jnp.asarray(DT, jnp.float32), jnp.array([0.3], jnp.float32),
        )
        assert y1.dtype == jnp.float32 and y1.shape == (1,)
