"""The components of a restart experiment (Wu, Ma & E): the start "gd-minimum" (full-batch GD
from a network's initialisation), the criterion "accuracy-below" (alone or with the loss at
c·L*), and `dynamics.stability_fraction` (η = f·2/a at the start). Checked against a
hand-written GD loop, the dense Hessian and the criteria's own predicates; bad input names the
field before anything runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe

# Internal machinery under test (not exported): the sweep schema and the point builder.
from jaxescape._experiments.components import build_point
from jaxescape._experiments.config import ConfigError
from jaxescape._experiments.sweep import make_sweep


GD_RATE, GD_STEPS = 0.05, 400
POINT = {"model": {"name": "mlp", "width": 4, "depth": 1, "loss": "mse", "seed": 1},
         "data": {"name": "sklearn", "dataset": "digits", "num_train": 40, "seed": 0},
         "dynamics": {"name": "sgd", "batch_size": 40, "stability_fraction": 0.5},
         "start": {"name": "gd-minimum", "learning_rate": GD_RATE, "steps": GD_STEPS},
         "criterion": {"name": "accuracy-below", "threshold": 0.5, "loss_factor": 3.0},
         "reference": False, "particles": 8, "max_steps": 20}


def built(**changes):
    point = {**POINT, **changes}
    return build_point(make_sweep({"name": "restart", "points": [point]}, "test").expand()[0])


def test_gd_minimum_is_full_batch_gradient_descent_from_the_initialisation():
    objects = built()
    model, data = objects["dynamics"].model, objects["dynamics"].data
    theta = model.initial_parameters
    step = jax.jit(lambda theta: theta - GD_RATE * jax.grad(model.loss)(theta, data))
    for _ in range(GD_STEPS):
        theta = step(theta)
    np.testing.assert_allclose(objects["start"], theta, rtol=1e-4, atol=1e-6)
    # ... and it descended: the loss at the start is below the initialisation's.
    assert model.loss(objects["start"], data) < 0.5 * model.loss(model.initial_parameters, data)


def test_stability_fraction_sets_the_rate_from_the_dense_sharpness():
    objects = built()
    loss = objects["landscape"].loss
    sharpness = float(jnp.linalg.eigvalsh(jax.hessian(loss)(objects["start"]))[-1])
    assert float(objects["dynamics"].learning_rate) == pytest.approx(0.5 * 2 / sharpness,
                                                                     rel=1e-3)
    rate = built(dynamics={"name": "sgd", "batch_size": 40, "learning_rate": 0.02})["dynamics"]
    assert float(rate.learning_rate) == pytest.approx(0.02)


def test_accuracy_below_with_and_without_the_loss_criterion():
    objects = built()
    accuracy, loss_above = objects["criterion"]
    model, data, start = objects["dynamics"].model, objects["dynamics"].data, objects["start"]
    assert float(loss_above.threshold) == pytest.approx(3.0 * float(model.loss(start, data)))
    assert not accuracy.is_outside(start) and not loss_above.is_outside(start)
    assert accuracy.is_outside(jnp.zeros_like(start))  # a zero network predicts one class
    alone = built(criterion={"name": "accuracy-below", "threshold": 0.5})["criterion"]
    assert isinstance(alone, jxe.Predicate)
    # GD at 1.5·2/a leaves the minimum; the stored boundary names the criterion crossed.
    unstable = built(dynamics={"name": "sgd", "batch_size": 40, "stability_fraction": 1.5})
    result = jxe.simulate(unstable["dynamics"], unstable["criterion"], unstable["start"],
                          jax.random.key(0), num_particles=2, max_steps=200)
    assert result.escaped.all() and set(np.unique(result.boundary)) <= {0, 1}


@pytest.mark.parametrize("changes, message", [
    ({"start": {"name": "gd-minimum", "steps": 10}}, "needs start.learning_rate"),
    ({"start": {"name": "gd-minimum", "learning_rate": 0.05, "steps": 0}}, "start.steps"),
    ({"start": {"name": "gd-minimum", "learning_rate": 0.05, "steps": 10, "guess": 1.0}},
     "unknown key start.guess; start 'gd-minimum' takes start.learning_rate, start.steps"),
    ({"dynamics": {"name": "sgd", "batch_size": 40, "learning_rate": 0.1,
                   "stability_fraction": 0.5}}, "not both"),
    ({"criterion": {"name": "accuracy-below", "threshold": 1.5}}, "threshold must be"),
])
def test_bad_restart_options_name_the_field(changes, message):
    with pytest.raises(ConfigError) as error:
        built(**changes)
    assert message in str(error.value)


def test_gd_minimum_needs_a_network():
    landscape = {"landscape": {"name": "double-well", "barrier_height": 1.0, "curvature": 4.0},
                 "dynamics": {"name": "langevin", "temperature": 0.5},
                 "start": {"name": "gd-minimum", "learning_rate": 0.1, "steps": 10},
                 "particles": 10}
    sweep = make_sweep({"name": "restart", "points": [landscape]}, "test")
    with pytest.raises(ConfigError, match="start 'gd-minimum' needs a model with initial"):
        build_point(sweep.expand()[0])


def test_stability_fraction_is_an_option_of_training_dynamics_only():
    langevin = {"landscape": {"name": "double-well", "barrier_height": 1.0, "curvature": 4.0},
                "dynamics": {"name": "langevin", "temperature": 0.5,
                             "stability_fraction": 0.5}, "particles": 10}
    with pytest.raises(ConfigError, match="unknown option dynamics.stability_fraction"):
        make_sweep({"parameters": langevin})
