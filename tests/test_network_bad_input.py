"""Network particles on bad input (issue 19, item 6): data that does not fit, labels out of
range, a batch larger than the data and NaN data are named before anything compiles; a network
that diverges is flagged as diverged."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxescape as jxe


WINE = jxe.load_sklearn_dataset("wine", jax.random.key(0)).train  # 142 samples, 13 features
NETWORK = eqx.nn.MLP(13, 3, 8, 1, key=jax.random.key(1))  # 139 parameters


def run(model, data, **options):
    sgd = jxe.MinibatchSGD(model, data, **{"batch_size": 4, "learning_rate": 0.1, **options})
    return jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jax.random.key(0),
                        num_particles=4, max_steps=4)


@pytest.fixture
def no_compiling(monkeypatch):
    """Fails the test if the engine reaches its compiled chunk runner."""
    from jaxescape._engine import driver

    def refuse(*args, **kwargs):
        raise AssertionError("compiled work started before the error")

    monkeypatch.setattr(driver, "run_wave", refuse)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_bad_data_is_named_before_compiling(no_compiling, loss):
    model = jxe.NetworkModel(NETWORK, loss=loss)
    cases = [
        # (data, message)
        (jxe.Dataset(WINE.inputs[:, :5], WINE.targets), r"cannot evaluate.*\(5,\)"),
        (jxe.Dataset(WINE.inputs.at[7, 2].set(jnp.nan), WINE.targets),
         r"data.inputs must be finite: sample 7"),
        (jxe.Dataset(WINE.inputs, WINE.targets.at[3, 0].set(jnp.inf)),
         r"data.targets must be finite: sample 3"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError, match=message):
            run(model, data)
    with pytest.raises(ValueError, match=r"batch_size must be between 1 and .* n = 142, got 143"):
        run(model, WINE, batch_size=143)


def test_labels_out_of_range_are_named_before_compiling(no_compiling):
    model = jxe.NetworkModel(NETWORK, loss="cross_entropy")  # 3 outputs: labels 0, 1, 2
    labels = jnp.argmax(WINE.targets, axis=1).astype(jnp.float32)
    for bad in (labels.at[0].set(3.0), labels.at[0].set(-1.0), labels.at[0].set(0.5)):
        with pytest.raises(ValueError, match="class labels must be integers between 0 and 2"):
            run(model, jxe.Dataset(WINE.inputs, bad))
    with pytest.raises(ValueError, match="output has shape"):  # labels with the squared error
        run(jxe.NetworkModel(NETWORK, loss="mse"), jxe.Dataset(WINE.inputs, labels))


def test_a_diverging_network_is_flagged():
    """At η = 10^4 the squared-error network's iterates overflow float32 within a few steps:
    every particle is flagged diverged (not censored, not escaped); at η = 0.01 none is."""
    model = jxe.NetworkModel(NETWORK, loss="mse")
    for rate, diverged in ((1e4, True), (0.01, False)):
        sgd = jxe.MinibatchSGD(model, WINE, batch_size=4, learning_rate=rate)
        result = jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters,
                              jax.random.key(3), num_particles=8, max_steps=64)
        assert np.all(result.diverged == diverged)
        assert np.all(result.censored != diverged)


def test_the_shape_check_traces_a_network_once_and_still_names_bad_data():
    """`check_data` (before every `simulate` call) traces the network once per model structure
    and sample shapes, not at every call; data of other shapes is traced and named as before."""
    traces = []

    def network(parameters, x):
        traces.append(x.shape)
        return x @ parameters["weights"]

    model = jxe.NetworkModel(network, {"weights": jnp.zeros((13, 3))}, loss="cross_entropy")
    for _ in range(3):
        model.check_data(WINE)
    assert traces == [(13,), (13,)]  # the prediction's and the loss's shapes, once each
    with pytest.raises(ValueError, match=r"cannot evaluate.*\(5,\)"):
        model.check_data(jxe.Dataset(WINE.inputs[:, :5], WINE.targets))
    labels = jnp.argmax(WINE.targets, axis=1).astype(jnp.float32)
    with pytest.raises(ValueError, match="class labels must be integers between 0 and 2"):
        model.check_data(jxe.Dataset(WINE.inputs, labels.at[0].set(3.0)))
    assert len(traces) == 3  # the narrow inputs' prediction; the labels' reuses the first
    model.check_data(jxe.Dataset(WINE.inputs, labels))  # the loss of a new target shape
    assert len(traces) == 4
    model.check_data(WINE)
    assert len(traces) == 4
