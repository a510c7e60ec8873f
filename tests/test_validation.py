"""Bad input to `simulate` raises eagerly, naming the parameter, before anything is compiled.

`advance` (the only compiled kernel of the engine) is replaced by a function that fails the
test if it is ever called, so every case below proves the error comes from the eager checks.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe
import jaxescape._engine.devices  # internal: the compiled kernel, patched to prove no compiled work


@pytest.fixture(autouse=True)
def forbid_compilation(monkeypatch):
    def compiled_kernel_called(*args, **kwargs):
        raise AssertionError("simulate reached the compiled kernel advance before rejecting input")

    monkeypatch.setattr(jaxescape._engine.devices, "advance", compiled_kernel_called)


LANDSCAPE = jxe.TiltedDoubleWell(1.0, 4.0)
DYNAMICS = jxe.OverdampedLangevin(LANDSCAPE, 0.5)
CRITERION = jxe.past_saddle(LANDSCAPE)
GOOD = dict(num_particles=16, dt=0.01, max_steps=100)


def run(dynamics=DYNAMICS, criteria=CRITERION, initial_position=None, **overrides):
    if initial_position is None:
        initial_position = LANDSCAPE.minimum()
    return jxe.simulate(
        dynamics, criteria, initial_position, jax.random.key(0), **{**GOOD, **overrides}
    )


def test_good_input_reaches_the_kernel():
    """Control: the fixture really intercepts the kernel, so the tests below are meaningful."""
    with pytest.raises(AssertionError, match="compiled kernel"):
        run()


@pytest.mark.parametrize("dt", [0.0, -0.01, math.nan, math.inf, -math.inf, np.float32("nan")])
def test_non_positive_or_non_finite_dt(dt):
    with pytest.raises(ValueError, match="dt"):
        run(dt=dt)


@pytest.mark.parametrize("dt", [1e-50, 1e39])
def test_dt_not_representable_in_the_simulation_dtype(dt):
    with pytest.raises(ValueError, match="dt"):
        run(dt=dt)


@pytest.mark.parametrize("dt", ["fast", jnp.ones(2)])
def test_dt_that_is_not_a_number(dt):
    with pytest.raises(TypeError, match="dt"):
        run(dt=dt)


def test_sde_needs_dt():
    with pytest.raises(ValueError, match="dt is required"):
        run(dt=None)


@pytest.mark.parametrize("temperature", [0.0, -0.5, math.nan, math.inf])
def test_non_positive_or_non_finite_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        run(dynamics=jxe.OverdampedLangevin(LANDSCAPE, temperature))


@pytest.mark.parametrize("num_particles", [0, -3])
def test_num_particles_out_of_range(num_particles):
    with pytest.raises(ValueError, match="num_particles"):
        run(num_particles=num_particles)


@pytest.mark.parametrize("num_particles", [16.0, True, "16", None, np.float64(16)])
def test_num_particles_not_an_integer(num_particles):
    with pytest.raises(TypeError, match="num_particles"):
        run(num_particles=num_particles)


def test_numpy_integer_num_particles_is_accepted():
    with pytest.raises(AssertionError, match="compiled kernel"):  # passed validation
        run(num_particles=np.int64(16))


@pytest.mark.parametrize("max_steps", [0, -1, 2**31])
def test_max_steps_out_of_range(max_steps):
    with pytest.raises(ValueError, match="max_steps"):
        run(max_steps=max_steps)


def test_max_steps_not_an_integer():
    with pytest.raises(TypeError, match="max_steps"):
        run(max_steps=100.0)


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("chunk_size", 0, ValueError),
        ("chunk_size", 2.5, TypeError),
        ("num_slots", 0, ValueError),
        ("num_slots", False, TypeError),
        ("check_every", 0, ValueError),
        ("first_particle", -1, ValueError),
        ("first_particle", 2**32, ValueError),
        ("first_particle", 1.0, TypeError),
    ],
)
def test_driver_settings_out_of_range(name, value, error):
    with pytest.raises(error, match=name):
        run(**{name: value})


@pytest.mark.parametrize("initial_position", [jnp.zeros(2), jnp.zeros(0)])
def test_initial_position_shape_does_not_match_the_landscape(initial_position):
    with pytest.raises(ValueError, match=r"initial_position.*landscape has dim 1"):
        run(initial_position=initial_position)


@pytest.mark.parametrize("initial_position", [jnp.zeros((1, 1)), jnp.array(0.0), 0.0])
def test_initial_position_not_one_dimensional(initial_position):
    with pytest.raises(ValueError, match=r"initial_position must have shape \(dim,\)"):
        run(initial_position=initial_position)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_initial_position_not_finite(value):
    with pytest.raises(ValueError, match="initial_position must be finite"):
        run(initial_position=jnp.array([value]))


def test_start_outside_the_basin():
    outside = jnp.array([float(CRITERION.offset) + 0.1])
    with pytest.raises(ValueError, match=r"initial_position .* outside the basin.*criteria\[0\]"):
        run(initial_position=outside)


def test_start_outside_the_second_of_two_criteria():
    left = jxe.HalfSpace(jnp.array([-1.0]), 1.0)  # escaped once y <= -1
    with pytest.raises(ValueError, match=r"criteria\[1\] \(HalfSpace\)"):
        run(criteria=(CRITERION, left), initial_position=jnp.array([-1.5]))


def log_loss(y, parameters):
    return jnp.sum(jnp.log(y))


def test_loss_not_finite_at_the_start():
    landscape = jxe.FunctionLandscape(log_loss, 1)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    with pytest.raises(ValueError, match=r"loss is nan at initial_position"):
        run(dynamics=dynamics, criteria=jxe.NeverEscape(), initial_position=jnp.array([-1.0]))


def wrong_shape_drift(t, y, parameters):
    return jnp.zeros(y.shape[0] + 1)


def linear_drift(t, y, parameters):
    return -y


def unit_diffusion(t, y, parameters):
    return jnp.ones_like(y)


def matrix_diffusion(t, y, parameters):
    return jnp.ones(parameters)  # parameters = the (wrong or right) shape


def nan_drift(t, y, parameters):
    return y * jnp.nan


def test_drift_shape_mismatch():
    dynamics = jxe.GeneralSDE(wrong_shape_drift, unit_diffusion)
    with pytest.raises(ValueError, match=r"drift returns shape \(3,\).*\(2,\)"):
        run(dynamics=dynamics, criteria=jxe.NeverEscape(), initial_position=jnp.zeros(2))


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2,)])
def test_matrix_diffusion_of_the_wrong_shape(shape):
    dynamics = jxe.GeneralSDE(
        linear_drift, matrix_diffusion, shape, noise_type="matrix", noise_dimension=3
    )
    with pytest.raises(ValueError, match=r"diffusion returns shape .* needs shape \(2, 3\)"):
        run(dynamics=dynamics, criteria=jxe.NeverEscape(), initial_position=jnp.zeros(2))


def test_diagonal_diffusion_of_the_wrong_shape():
    dynamics = jxe.GeneralSDE(linear_drift, matrix_diffusion, (2, 2))
    with pytest.raises(ValueError, match=r"diffusion returns shape \(2, 2\).* needs shape \(2,\)"):
        run(dynamics=dynamics, criteria=jxe.NeverEscape(), initial_position=jnp.zeros(2))


def test_drift_not_finite_at_the_start():
    dynamics = jxe.GeneralSDE(nan_drift, unit_diffusion)
    with pytest.raises(ValueError, match="drift is not finite"):
        run(dynamics=dynamics, criteria=jxe.NeverEscape(), initial_position=jnp.ones(1))


def test_bad_noise_type():
    with pytest.raises(ValueError, match="noise_type"):
        jxe.GeneralSDE(linear_drift, unit_diffusion, noise_type="full")


def test_empty_criteria():
    with pytest.raises(ValueError, match="criteria"):
        run(criteria=())



def test_unknown_noise_distribution():
    with pytest.raises(ValueError, match="noise must be one of"):
        run(noise="uniform")
