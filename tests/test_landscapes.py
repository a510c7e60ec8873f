"""Closed-form properties of the landscapes: barriers, curvatures, critical points (float64)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe


pytestmark = pytest.mark.usefixtures("x64")

# (barrier ΔL, curvature k, asymmetry r, minimum position x_a)
TILTED_CASES = [
    (1.0, 4.0, 2.0, 0.0),
    (0.3, 1.0, 3.0, 0.0),
    (2.5, 10.0, 1.5, -0.7),
    (1.0, 0.5, 5.0, 2.0),
]


def _np(value):
    return np.asarray(value, np.float64)


@eqx.filter_jit
def _derivatives(landscape, y):
    return landscape.loss(y), landscape.gradient(y), landscape.hessian(y)


@eqx.filter_jit
def _gradients(landscape, points):
    return jax.vmap(landscape.gradient)(points)


def loss(landscape, y):
    """Jitted (one compilation per landscape type, instead of slow op-by-op dispatch)."""
    return _np(_derivatives(landscape, jnp.asarray(y))[0])


def gradient(landscape, y):
    return _np(_derivatives(landscape, jnp.asarray(y))[1])


def hessian(landscape, y):
    return _np(_derivatives(landscape, jnp.asarray(y))[2])


def close(actual, expected, rel=0.0, abs=0.0):
    np.testing.assert_allclose(_np(actual), np.asarray(expected, np.float64), rtol=rel, atol=abs)


@pytest.mark.parametrize("barrier, curvature, asymmetry, x_a", TILTED_CASES)
def test_tilted_double_well_barrier_curvatures_and_critical_points(
    barrier, curvature, asymmetry, x_a
):
    landscape = jxe.TiltedDoubleWell(barrier, curvature, asymmetry, x_a)
    minimum, saddle, other = landscape.minimum(), landscape.saddle(), landscape.other_minimum()
    assert landscape.dim == 1 and minimum.shape == saddle.shape == other.shape == (1,)
    assert float(minimum[0]) == x_a
    assert x_a < float(saddle[0]) < float(other[0])
    # ΔL = L(saddle) − L(minimum), from the loss itself, not from the stored parameter.
    assert float(loss(landscape, minimum)) == pytest.approx(0.0, abs=1e-14)
    assert float(loss(landscape, saddle) - loss(landscape, minimum)) == pytest.approx(
        barrier, rel=1e-12
    )
    assert float(landscape.barrier()) == barrier
    # L'' = k at the minimum, −k(r − 1)/r at the barrier top; derived: k(r − 1) at the other
    # minimum (L'(u) = c·u(u − p)(u − rp) gives L''(rp) = c·r·p²(r − 1) = k(r − 1)).
    close(hessian(landscape, minimum), [[curvature]], rel=1e-12)
    saddle_curvature = curvature * (asymmetry - 1) / asymmetry
    close(hessian(landscape, saddle), [[-saddle_curvature]], rel=1e-12)
    assert float(landscape.saddle_curvature()) == pytest.approx(saddle_curvature, rel=1e-14)
    close(hessian(landscape, other), [[curvature * (asymmetry - 1)]], rel=1e-12)
    # Critical points: the gradient vanishes (relative to the gradient scale k·p).
    scale = curvature * float(saddle[0] - minimum[0])
    for point in (minimum, saddle, other):
        assert np.max(np.abs(_np(gradient(landscape, point)))) < 1e-12 * scale
    # The gradient points uphill towards the saddle in between: no other critical point.
    between = jnp.linspace(minimum[0], saddle[0], 101)[1:-1, None]
    assert np.all(_gradients(landscape, between) > 0)
    close(landscape.escape_direction(), [1.0])
    # r = 2 is symmetric (both minima at L = 0); r > 2 makes the other minimum deeper.
    other_loss = float(loss(landscape, other))
    if asymmetry == 2.0:
        assert other_loss == pytest.approx(0.0, abs=1e-12 * barrier)
    else:
        assert np.sign(other_loss) == -np.sign(asymmetry - 2)


def test_past_saddle_places_the_plane_half_the_minimum_saddle_distance_beyond_the_saddle():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0, 3.0, 0.5)
    saddle = float(landscape.saddle()[0])
    default = jxe.past_saddle(landscape)
    close(default.normal, [1.0], rel=1e-15)
    assert float(default.offset) == pytest.approx(saddle + 0.5 * (saddle - 0.5), rel=1e-14)
    explicit = jxe.past_saddle(landscape, 0.1)
    assert float(explicit.offset) == pytest.approx(saddle + 0.1, rel=1e-14)
    assert bool(explicit.is_outside(jnp.array([saddle + 0.1])))
    assert not bool(explicit.is_outside(jnp.array([saddle + 0.099])))


def test_double_well_product_is_separable_with_the_documented_saddle():
    barriers, curvatures, asymmetries = [0.5, 1.0, 2.0], [1.0, 3.0, 0.5], [2.0, 3.0, 1.5]
    landscape = jxe.DoubleWellProduct(
        jnp.array(barriers), jnp.array(curvatures), jnp.array(asymmetries), escape_coordinate=1
    )
    wells = [jxe.TiltedDoubleWell(*args) for args in zip(barriers, curvatures, asymmetries)]
    assert landscape.dim == 3
    point = jnp.array([0.3, -0.8, 1.7])
    expected = sum(float(loss(w, point[i : i + 1])) for i, w in enumerate(wells))
    assert float(loss(landscape, point)) == pytest.approx(expected, rel=1e-13)

    minimum, saddle = landscape.minimum(), landscape.saddle()
    close(minimum, [0.0, 0.0, 0.0])
    close(saddle, [0.0, float(wells[1].saddle()[0]), 0.0], rel=1e-14)
    assert float(landscape.barrier()) == 1.0
    barrier = loss(landscape, saddle) - loss(landscape, minimum)
    assert float(barrier) == pytest.approx(1.0, rel=1e-12)
    close(hessian(landscape, minimum), np.diag(curvatures), abs=1e-12)
    saddle_hessian = np.diag([1.0, -3.0 * (3.0 - 1.0) / 3.0, 0.5])
    close(hessian(landscape, saddle), saddle_hessian, abs=1e-12)
    for point in (minimum, saddle):
        assert np.max(np.abs(_np(gradient(landscape, point)))) < 1e-12
    close(landscape.escape_direction(), [0.0, 1.0, 0.0])


def test_double_well_product_rejects_bad_shapes():
    with pytest.raises(ValueError, match="barrier_height, curvature and asymmetry"):
        jxe.DoubleWellProduct(jnp.ones(3), jnp.ones(2), jnp.full(3, 2.0))
    with pytest.raises(ValueError, match="escape_coordinate"):
        jxe.DoubleWellProduct(jnp.ones(2), jnp.ones(2), jnp.full(2, 2.0), escape_coordinate=2)


def _random_rotation(dim, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix


def test_anisotropic_well_hessians_with_a_random_rotation():
    barrier, curvature, asymmetry = 0.8, 3.0, 2.5
    transverse = [0.5, 2.0, 7.0]
    rotation = _random_rotation(4, seed=0)
    landscape = jxe.AnisotropicWell(
        barrier, curvature, jnp.array(transverse), asymmetry, jnp.array(rotation)
    )
    assert landscape.dim == 4
    minimum, saddle = landscape.minimum(), landscape.saddle()
    saddle_curvature = curvature * (asymmetry - 1) / asymmetry
    # Documented Hessians: R diag(k, k_i) Rᵀ at the minimum, R diag(−k(r−1)/r, k_i) Rᵀ at the
    # saddle.
    at_minimum = rotation @ np.diag([curvature, *transverse]) @ rotation.T
    at_saddle = rotation @ np.diag([-saddle_curvature, *transverse]) @ rotation.T
    close(hessian(landscape, minimum), at_minimum, abs=1e-12)
    close(hessian(landscape, saddle), at_saddle, abs=1e-12)
    eigenvalues = np.linalg.eigvalsh(_np(hessian(landscape, saddle)))
    assert eigenvalues == pytest.approx(sorted([-saddle_curvature, *transverse]), rel=1e-12)
    assert np.sum(eigenvalues < 0) == 1  # index-1 saddle
    for point in (minimum, saddle):
        assert np.max(np.abs(_np(gradient(landscape, point)))) < 1e-12
    close(landscape.escape_direction(), rotation[:, 0], abs=1e-14)
    assert float(loss(landscape, saddle) - loss(landscape, minimum)) == pytest.approx(
        barrier, rel=1e-12
    )
    # In local coordinates z = Rᵀy: the 1-D double well along z₀ plus ½ Σ kᵢ zᵢ².
    z = jnp.array([0.4, -0.3, 0.2, 1.1])
    well = jxe.TiltedDoubleWell(barrier, curvature, asymmetry)
    expected = float(loss(well, z[:1])) + 0.5 * float(np.sum(transverse * _np(z[1:]) ** 2))
    assert float(loss(landscape, jnp.array(rotation) @ z)) == pytest.approx(expected, rel=1e-13)


def test_anisotropic_well_without_rotation_is_the_identity_rotation():
    plain = jxe.AnisotropicWell(1.0, 2.0, jnp.array([1.0, 5.0]))
    rotated = jxe.AnisotropicWell(1.0, 2.0, jnp.array([1.0, 5.0]), rotation=jnp.eye(3))
    point = jnp.array([0.2, -0.5, 0.9])
    assert float(loss(plain, point)) == pytest.approx(float(loss(rotated, point)), rel=1e-15)
    close(plain.saddle(), _np(rotated.saddle()))
    with pytest.raises(ValueError, match="rotation"):
        jxe.AnisotropicWell(1.0, 2.0, jnp.array([1.0, 5.0]), rotation=jnp.eye(2))
    with pytest.raises(ValueError, match="transverse_curvatures"):
        jxe.AnisotropicWell(1.0, 2.0, jnp.ones((2, 2)))


# Independent numpy reference for f(x) = (x⁴ − 16x² + 5x)/2: critical points and f''.
_ROOTS = np.sort(np.roots([4.0, 0.0, -32.0, 5.0]).real)  # f'(x) = (4x³ − 32x + 5)/2
_GLOBAL, _SADDLE, _LOCAL = _ROOTS


def _f(x):
    return (x**4 - 16 * x**2 + 5 * x) / 2


def _f_second(x):
    return 6 * x**2 - 16


@pytest.mark.parametrize("num_dimensions", [1, 3])
@pytest.mark.parametrize("sharpness", [0.25, 1.0, 4.0])
def test_styblinski_tang_barrier_is_independent_of_sharpness(sharpness, num_dimensions):
    landscape = jxe.StyblinskiTang(sharpness, num_dimensions=num_dimensions)
    minimum, saddle = landscape.minimum(), landscape.saddle()
    global_minimum = landscape.global_minimum()
    root_k = np.sqrt(sharpness)
    close(minimum, np.full(num_dimensions, _LOCAL / root_k), rel=1e-12)
    # The barrier from the local minimum, 25.22506 per coordinate, for every sharpness.
    assert float(landscape.barrier()) == pytest.approx(25.22506, abs=1e-5)
    assert float(landscape.barrier()) == pytest.approx(_f(_SADDLE) - _f(_LOCAL), rel=1e-12)
    # 39.362 from the global minimum along the escape coordinate.
    along = saddle.at[0].set(global_minimum[0])
    assert float(loss(landscape, saddle) - loss(landscape, along)) == pytest.approx(
        39.3618, abs=1e-4
    )
    for point in (minimum, saddle, global_minimum):
        scale = sharpness**0.5 * 30.0  # gradient scale √k·|f'|
        assert np.max(np.abs(_np(gradient(landscape, point)))) < 1e-12 * scale
    # Hessian = k·f''(√k·y): proportional to k at the minimum and at the saddle.
    expected = sharpness * _f_second(_LOCAL) * np.eye(num_dimensions)
    close(hessian(landscape, minimum), expected, abs=1e-10)
    saddle_diagonal = np.full(num_dimensions, _f_second(_LOCAL))
    saddle_diagonal[0] = _f_second(_SADDLE)
    close(hessian(landscape, saddle), sharpness * np.diag(saddle_diagonal), abs=1e-10)


def test_styblinski_tang_loss_scale_and_escape_coordinate():
    landscape = jxe.StyblinskiTang(2.0, loss_scale=3.0, num_dimensions=2, escape_coordinate=1)
    assert float(landscape.barrier()) == pytest.approx(3.0 * 25.225059, rel=1e-6)
    close(landscape.escape_direction(), [0.0, -1.0])  # towards x < 0
    with pytest.raises(ValueError, match="escape_coordinate"):
        jxe.StyblinskiTang(1.0, num_dimensions=2, escape_coordinate=2)
    with pytest.raises(ValueError, match="num_dimensions"):
        jxe.StyblinskiTang(1.0, num_dimensions=0)


def shifted_quadratic(y, parameters):
    """½ Σ aᵢ (yᵢ − cᵢ)²: module-level so that repeated landscapes share one compilation."""
    curvatures, center = parameters
    return 0.5 * jnp.sum(curvatures * (y - center) ** 2)


def test_function_landscape_passes_parameters_and_known_points():
    curvatures, center = jnp.array([1.0, 4.0]), jnp.array([0.5, -1.0])
    landscape = jxe.FunctionLandscape(
        shifted_quadratic, 2, (curvatures, center), known_minimum=center,
        known_saddle=[[1.5, -1.0]],
    )
    assert landscape.dim == 2
    y = jnp.array([2.0, 3.0])
    assert float(loss(landscape, y)) == pytest.approx(0.5 * (1.5**2 + 4.0 * 16.0), rel=1e-15)
    close(gradient(landscape, y), [1.5, 16.0], rel=1e-15)
    close(hessian(landscape, y), np.diag([1.0, 4.0]), rel=1e-15)
    close(landscape.minimum(), [0.5, -1.0])
    assert landscape.saddle().shape == (2,)  # reshaped from (1, 2)
    close(landscape.escape_direction(), [1.0, 0.0])
    assert float(landscape.barrier()) == pytest.approx(0.5, rel=1e-15)


def test_function_landscape_without_known_points_says_so():
    landscape = jxe.FunctionLandscape(shifted_quadratic, 1, (jnp.ones(1), jnp.zeros(1)))
    with pytest.raises(NotImplementedError, match="minimum"):
        landscape.minimum()
    with pytest.raises(NotImplementedError, match="saddle"):
        landscape.saddle()
