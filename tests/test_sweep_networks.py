"""Network particles declared by name in a sweep: an MLP (`model = "mlp"`) on a scikit-learn
bundled data set (`data = "sklearn"`) trained by real SGD from the network's initialisation: the
sweep's point gives the numbers of the same run written in Python, and a model and data set that
do not fit are named before anything compiles."""

import io

import equinox as eqx
import jax
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape._experiments.config import ConfigError

pytest.importorskip("sklearn")


def _sweep(**changes):
    point = {"model": {"name": "mlp", "width": 8, "depth": 1, "seed": 4},
             "dynamics": {"name": "sgd", "batch_size": 8, "learning_rate": 0.05},
             "start": "initial", "criterion": {"name": "outside-ball", "radius": 0.3},
             "particles": 16, "max_steps": 400}
    point.update(changes)
    return jxe.Sweep(parameters={**point, "data": {"name": "sklearn", "dataset": "wine",
                                                   "num_train": 64, "seed": 2}},
                     points=[{"seed": 0}], name="network")


def test_mlp_on_wine_in_a_sweep_matches_python(tmp_path):
    directory = jxe.run_sweep(_sweep(), str(tmp_path / "run"), progress=False,
                              stream=io.StringIO())
    frame = jxe.load_results(directory)
    data = jxe.load_sklearn_dataset("wine", jax.random.key(2), num_train=64).train
    network = eqx.nn.MLP(13, 3, 8, 1, activation=jax.nn.relu, key=jax.random.key(4),
                         dtype=data.inputs.dtype)
    model = jxe.NetworkModel(network, loss="mse")
    sgd = jxe.MinibatchSGD(model, data, batch_size=8, learning_rate=0.05)
    start = model.initial_parameters
    result = jxe.simulate(sgd, jxe.OutsideBall(start, 0.3), start,
                          jax.random.fold_in(jax.random.key(0), 0), num_particles=16,
                          max_steps=400)
    stored = jxe.load_escape_times(directory, 0)
    np.testing.assert_array_equal(stored["escape_step"], np.asarray(result.escape_step))
    assert frame["num_particles"][0] == 16
    assert frame["num_escaped"][0] + frame["num_censored"][0] == 16


@pytest.mark.parametrize("changes, message", [
    ({"model": {"name": "mlp", "width": 8, "activation": "sigmoidd"}},
     "activation must be one of relu, tanh, gelu"),
    ({"model": {"name": "mlp", "widht": 8}}, "did you mean model.width"),
])
def test_bad_networks_are_named_before_compiling(changes, message):
    with pytest.raises(ConfigError, match=message):
        jxe.run_sweep(_sweep(**changes), "unused", progress=False, stream=io.StringIO())
