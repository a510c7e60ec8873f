"""The SGD noise models: exact couplings (same position, same normals), limits, validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape.theories import (
    LossOffset,
    MengPowerLawNoise,
    MoriLossNoise,
    PiecewiseQuadraticValley,
    QuadraticLandscape,
    XieSGDNoise,
    matched_white_noise,
)


DT = jnp.asarray(0.01)
T0 = jnp.asarray(0.0)


@eqx.filter_jit
def step(dynamics, y, normals):
    """One Euler–Maruyama step (jitted: one compilation per dynamics type, not per value)."""
    return jxe.euler_maruyama_step(dynamics, T0, y, DT, normals)[0]


@eqx.filter_jit
def noise_part(dynamics, y, normals):
    """y₁ − y₀ − f(y₀)·dt for one Euler–Maruyama step with the given normals."""
    new, _ = jxe.euler_maruyama_step(dynamics, T0, y, DT, normals)
    return new - y - dynamics.drift(T0, y) * DT


@eqx.filter_jit
def diffusion_matrix(dynamics, y):
    return dynamics.diffusion_matrix(y)


@eqx.filter_jit
def diffusion(dynamics, y):
    return dynamics.diffusion(T0, y)


def double_well():
    return jxe.TiltedDoubleWell(1.0, 2.0, 2.0)


def quadratic_2d(minimum_loss=0.5):
    hessian = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    return QuadraticLandscape(hessian, jnp.array([0.3, -0.2]), minimum_loss)


POINTS_1D = [jnp.array([0.0]), jnp.array([0.3]), jnp.array([-0.4])]
NORMALS_1D = jnp.array([0.7])
NORMALS_2D = jnp.array([0.7, -1.3])


@pytest.mark.parametrize("y", POINTS_1D)
@pytest.mark.parametrize("hessian", [None, "local"])
def test_xie_noise_scales_as_sqrt_learning_rate_over_batch(y, hessian):
    landscape = double_well()
    base = noise_part(XieSGDNoise(landscape, 0.1, 4.0, hessian=hessian), y, NORMALS_1D)
    faster = noise_part(XieSGDNoise(landscape, 0.4, 4.0, hessian=hessian), y, NORMALS_1D)
    larger = noise_part(XieSGDNoise(landscape, 0.1, 16.0, hessian=hessian), y, NORMALS_1D)
    np.testing.assert_allclose(faster, 2 * base, rtol=1e-5)
    np.testing.assert_allclose(larger, base / 2, rtol=1e-5)
    # Drift is −∇L whatever the noise.
    np.testing.assert_allclose(
        XieSGDNoise(landscape, 0.4, 4.0, hessian=hessian).drift(T0, y), -landscape.gradient(y)
    )


def test_xie_constant_noise_is_eta_hessian_over_batch_in_2d():
    landscape = quadratic_2d()
    dynamics = XieSGDNoise(landscape, 0.2, 8.0)
    y = jnp.array([1.0, 0.5])
    g = diffusion(dynamics, y)
    np.testing.assert_allclose(g @ g.T, 0.2 / 8.0 * landscape.hessian_matrix, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(diffusion_matrix(dynamics, y), 0.2 / 16.0 * landscape.hessian_matrix,
                               rtol=1e-6)
    expected = jnp.sqrt(DT) * g @ NORMALS_2D
    np.testing.assert_allclose(noise_part(dynamics, y, NORMALS_2D), expected, rtol=1e-4, atol=1e-7)


def test_xie_local_noise_follows_absolute_hessian_with_floor():
    landscape = double_well()  # H_a = 2, |H_b| = 1, inflection in between
    learning_rate, batch, floor = 0.1, 2.0, 0.3
    dynamics = XieSGDNoise(landscape, learning_rate, batch, hessian="local", floor=floor)
    scale = learning_rate / (2 * batch)
    minimum, saddle = landscape.minimum(), landscape.saddle()
    np.testing.assert_allclose(diffusion_matrix(dynamics, minimum)[0, 0], scale * 2.0, rtol=1e-5)
    np.testing.assert_allclose(diffusion_matrix(dynamics, saddle)[0, 0], scale * 1.0, rtol=1e-4)
    # Inflection point between minimum and saddle: |L''| = 0 is floored at floor·H_a.
    grid = jnp.linspace(minimum[0], saddle[0], 2001)[:, None]
    on_grid = eqx.filter_jit(jax.vmap(diffusion_matrix, in_axes=(None, 0)))
    diffusions = on_grid(dynamics, grid)[:, 0, 0]
    assert float(jnp.min(diffusions)) == pytest.approx(scale * floor * 2.0, rel=1e-5)
    # Near the minimum the local model equals the constant one.
    constant = XieSGDNoise(landscape, learning_rate, batch)
    np.testing.assert_allclose(diffusion(dynamics, minimum), diffusion(constant, minimum),
                               rtol=1e-5)


def test_xie_local_noise_in_2d_uses_eigenvalue_floor():
    landscape = jxe.AnisotropicWell(1.0, 2.0, jnp.array([3.0]))
    dynamics = XieSGDNoise(landscape, 0.1, 1.0, hessian="local", floor=0.25)
    saddle = landscape.saddle()
    eigenvalues = np.linalg.eigvalsh(np.asarray(diffusion_matrix(dynamics, saddle)))
    # Saddle Hessian diag(−1, 3): |·| gives (1, 3); the floor 0.25·2 = 0.5 is inactive.
    np.testing.assert_allclose(eigenvalues, 0.05 * np.array([1.0, 3.0]), rtol=1e-4)
    g = diffusion(dynamics, saddle)
    np.testing.assert_allclose(g @ g.T, 2 * diffusion_matrix(dynamics, saddle), rtol=1e-4,
                               atol=1e-8)


@pytest.mark.parametrize("y", [jnp.array([0.0, 0.0]), jnp.array([1.0, 0.5])])
def test_mori_noise_scales_with_learning_rate_batch_and_loss(y):
    landscape = quadratic_2d(minimum_loss=0.4)
    base = MoriLossNoise(landscape, 0.1, 2.0)
    part = noise_part(base, y, NORMALS_2D)
    np.testing.assert_allclose(noise_part(MoriLossNoise(landscape, 0.4, 2.0), y, NORMALS_2D),
                               2 * part, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(noise_part(MoriLossNoise(landscape, 0.1, 8.0), y, NORMALS_2D),
                               part / 2, rtol=1e-5, atol=1e-8)
    expected = 0.1 * float(landscape.loss(y)) / 2.0 * landscape.hessian_matrix
    np.testing.assert_allclose(diffusion_matrix(base, y), expected, rtol=1e-5)


def test_mori_noise_is_proportional_to_sqrt_loss_along_a_ray():
    landscape = quadratic_2d(minimum_loss=0.4)
    dynamics = MoriLossNoise(landscape, 0.1, 2.0)
    near, far = landscape.minimum(), landscape.minimum() + jnp.array([2.0, 1.0])
    ratio = float(jnp.sqrt(landscape.loss(far) / landscape.loss(near)))
    np.testing.assert_allclose(diffusion(dynamics, far), ratio * diffusion(dynamics, near),
                               rtol=1e-5)


def test_mori_is_meng_with_sigma_2hL_over_B_and_kappa_h_over_B():
    """docs/THEORY.md §4.4: D = ηh*L/B is Meng's D with σ = 2h*L*/B, κ = h*/B (same steps)."""
    minimum_loss, batch, learning_rate = 0.3, 2.0, 0.1
    landscape = LossOffset(double_well(), minimum_loss)
    curvature = 2.0
    mori = MoriLossNoise(landscape, learning_rate, batch)
    meng = MengPowerLawNoise(landscape, learning_rate, 2 * curvature * minimum_loss / batch,
                             curvature / batch)
    for y in POINTS_1D:
        np.testing.assert_allclose(step(mori, y, NORMALS_1D),
                                   step(meng, y, NORMALS_1D),
                                   rtol=1e-5)


@pytest.mark.parametrize("y", POINTS_1D)
def test_meng_noise_formula_and_scaling(y):
    landscape = double_well()
    sigma, kappa = 0.5, 1.5
    dynamics = MengPowerLawNoise(landscape, 0.1, sigma, kappa)
    excess = float(landscape.loss(y))  # L* = 0 for the double well
    np.testing.assert_allclose(diffusion_matrix(dynamics, y)[0, 0],
                               0.05 * (sigma + 2 * kappa * excess), rtol=1e-5)
    faster = MengPowerLawNoise(landscape, 0.4, sigma, kappa)
    np.testing.assert_allclose(noise_part(faster, y, NORMALS_1D),
                               2 * noise_part(dynamics, y, NORMALS_1D), rtol=1e-5, atol=1e-8)
    aligned = MengPowerLawNoise(landscape, 0.1, sigma, kappa, hessian_aligned=True)
    np.testing.assert_allclose(diffusion_matrix(aligned, y), 2.0 * diffusion_matrix(dynamics, y),
                               rtol=1e-5)


def test_meng_kappa_zero_is_langevin_with_temperature_eta_sigma_over_2():
    landscape = double_well()
    meng = MengPowerLawNoise(landscape, 0.1, 0.6, 0.0)
    langevin = jxe.OverdampedLangevin(landscape, 0.1 * 0.6 / 2)
    for y in POINTS_1D:
        np.testing.assert_allclose(step(meng, y, NORMALS_1D),
                                   step(langevin, y, NORMALS_1D),
                                   rtol=1e-6)


def test_matched_white_noise_has_the_models_diffusion_at_the_minimum():
    landscape = double_well()
    xie = XieSGDNoise(landscape, 0.1, 2.0)
    control = matched_white_noise(xie)
    assert float(control.temperature) == pytest.approx(0.1 * 2.0 / 4.0, rel=1e-6)
    # In 1-D the constant-Hessian Xie model *is* its white-noise control (same steps).
    for y in POINTS_1D:
        np.testing.assert_allclose(step(xie, y, NORMALS_1D),
                                   step(control, y, NORMALS_1D),
                                   rtol=1e-6)
    mori = MoriLossNoise(LossOffset(landscape, 0.25), 0.1, 2.0)
    assert float(matched_white_noise(mori).temperature) == pytest.approx(0.1 * 0.25 * 2 / 2.0)
    anisotropic = XieSGDNoise(jxe.AnisotropicWell(1.0, 2.0, jnp.array([4.0])), 0.1, 1.0)
    assert float(matched_white_noise(anisotropic).temperature) == pytest.approx(0.1, rel=1e-5)
    assert float(matched_white_noise(anisotropic, "mean").temperature) == pytest.approx(
        0.05 * 3.0, rel=1e-5)


def test_sweeping_hyperparameters_does_not_retrace():
    landscape = double_well()

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def step(dynamics):
        return jxe.euler_maruyama_step(dynamics, T0, jnp.array([0.1]), DT, NORMALS_1D)[0]

    for learning_rate, batch in ((0.1, 1.0), (0.2, 4.0), (0.05, 32.0)):
        step(XieSGDNoise(landscape, learning_rate, batch, hessian="local"))

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def step_meng(dynamics):
        return jxe.euler_maruyama_step(dynamics, T0, jnp.array([0.1]), DT, NORMALS_1D)[0]

    for sigma, kappa in ((0.1, 1.0), (0.3, 0.0), (1.0, 5.0)):
        step_meng(MengPowerLawNoise(landscape, 0.1, sigma, kappa))


def test_parameter_validation():
    landscape = double_well()
    with pytest.raises(ValueError, match="learning_rate"):
        XieSGDNoise(landscape, -0.1, 1.0).check_parameters()
    with pytest.raises(ValueError, match="batch_size"):
        XieSGDNoise(landscape, 0.1, 0.0).check_parameters()
    with pytest.raises(ValueError, match="floor"):
        XieSGDNoise(landscape, 0.1, 1.0, hessian="local", floor=1.5).check_parameters()
    with pytest.raises(ValueError, match="hessian"):
        XieSGDNoise(landscape, 0.1, 1.0, hessian="global")
    with pytest.raises(ValueError, match="kappa"):
        MengPowerLawNoise(landscape, 0.1, 1.0, -1.0).check_parameters()
    with pytest.raises(ValueError, match="sigma"):
        MengPowerLawNoise(landscape, 0.1, 0.0, 1.0).check_parameters()
    with pytest.raises(ValueError, match="L\\* > 0"):
        MoriLossNoise(landscape, 0.1, 1.0).check_parameters()  # L* = 0
    # simulate validates before compiling.
    with pytest.raises(ValueError, match="L\\* > 0"):
        jxe.simulate(MoriLossNoise(landscape, 0.1, 1.0), jxe.past_saddle(landscape),
                     landscape.minimum(), jr.key(0), num_particles=4, dt=0.01, max_steps=10)
    with pytest.raises(ValueError, match="direction"):
        matched_white_noise(XieSGDNoise(landscape, 0.1, 1.0), "trace")


@eqx.filter_jit
def profile(landscape, grid):
    """Loss and gradient on a grid of shape (n, 1)."""
    return jax.vmap(landscape.loss)(grid), jax.vmap(lambda y: landscape.gradient(y)[0])(grid)


def test_piecewise_quadratic_valley_geometry():
    for args in ((0.25, 1.0, 0.5), (0.25, 8.0, 0.5, 0.3, 0.5), (1.0, 2.0, 3.0, 0.5, 0.3)):
        valley = PiecewiseQuadraticValley(*args)
        barrier, curvature, saddle_curvature = args[:3]
        saddle = valley.saddle()
        assert float(valley.loss(valley.minimum())) == 0.0
        assert float(valley.loss(saddle)) == pytest.approx(barrier, rel=1e-5)
        assert float(valley.gradient(saddle)[0]) == pytest.approx(0.0, abs=1e-5)
        assert float(valley.hessian(valley.minimum())[0, 0]) == pytest.approx(curvature)
        assert float(valley.hessian(saddle)[0, 0]) == pytest.approx(-saddle_curvature, rel=1e-5)
        grid = jnp.linspace(-0.2, 1.5 * float(saddle[0]), 4001)[:, None]
        losses, gradients = profile(valley, grid)
        assert float(jnp.max(jnp.abs(jnp.diff(gradients)))) < 0.05  # C¹: no jump in L'
        assert float(jnp.max(losses)) == pytest.approx(barrier, rel=1e-4)
    two_piece = PiecewiseQuadraticValley(0.25, 1.0, 0.5)
    assert float(two_piece.path_fraction()) == pytest.approx(1 / 3, rel=1e-6)
    assert float(two_piece.middle_curvature()) == 0.0
    with pytest.raises(ValueError, match="minimum_fraction"):
        PiecewiseQuadraticValley(0.25, 1.0, 0.5, 0.7, 0.5)


def test_quadratic_landscape_and_loss_offset():
    landscape = quadratic_2d(minimum_loss=0.4)
    y = jnp.array([1.0, 0.5])
    np.testing.assert_allclose(landscape.gradient(y), jax.grad(landscape.loss)(y), rtol=1e-6)
    np.testing.assert_allclose(landscape.hessian(y), jax.hessian(landscape.loss)(y), rtol=1e-6)
    assert float(landscape.loss(landscape.minimum())) == pytest.approx(0.4)
    shifted = LossOffset(double_well(), 0.3)
    np.testing.assert_allclose(shifted.loss(y[:1]), double_well().loss(y[:1]) + 0.3, rtol=1e-6)
    np.testing.assert_allclose(shifted.saddle(), double_well().saddle())
    assert float(shifted.barrier()) == pytest.approx(1.0)
