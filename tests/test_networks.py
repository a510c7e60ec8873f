"""Any network as SGD particles: eqx Modules and functions of pytrees, MSE and cross-entropy,
per-particle loss and accuracy, Wu's accuracy criterion, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jaxescape as jxe
from jaxescape import _noise


WINE = jxe.load_sklearn_dataset("wine", jax.random.key(0))  # 142 + 36 samples, 13 features
NETWORK = eqx.nn.MLP(13, 3, 8, 1, key=jax.random.key(1))  # 139 parameters


REFERENCES = {
    "mse": lambda prediction, target: 0.5 * jnp.sum((prediction - target) ** 2),
    "cross_entropy": lambda prediction, target: -jnp.sum(target * jax.nn.log_softmax(prediction)),
}


def test_module_particles_take_the_gradient_step_of_the_pytree():
    """Both losses' gradients of θ equal the pytree's, written by hand; with full batches
    (B = n) each particle's step is θ − η ∇L."""
    arrays, structure = eqx.partition(NETWORK, eqx.is_inexact_array)
    data = WINE.train
    for loss, reference in REFERENCES.items():
        model = jxe.NetworkModel(NETWORK, loss=loss)

        def full_loss(parameters):
            predictions = jax.vmap(eqx.combine(parameters, structure))(data.inputs)
            return jnp.mean(jax.vmap(reference)(predictions, data.targets))

        expected = ravel_pytree(jax.grad(full_loss)(arrays))[0]
        gradient = jax.grad(model.loss)(model.initial_parameters, data)
        np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-7)
    sgd = jxe.MinibatchSGD(model, data, batch_size=data.num_samples, learning_rate=0.1)
    result = jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jax.random.key(2),
                          num_particles=2, max_steps=1)
    stepped = optax.apply_updates(arrays, jax.tree.map(lambda g: -0.1 * g,
                                                       jax.grad(full_loss)(arrays)))
    expected = ravel_pytree(stepped)[0]
    np.testing.assert_allclose(result.position, np.stack([expected, expected]), rtol=1e-5,
                               atol=1e-6)
    assert isinstance(model.unflatten(result.position[0]), eqx.nn.MLP)


def test_sgd_state_holds_a_network_as_its_parameter_pytree():
    """`MinibatchSGD` steps a network's pytree (`parameter_tree`), not the flat θ: the state's
    structure is the network's, `position` ravels it back exactly, and one step (plain, with
    momentum, with Meng's optimizer noise) equals the same step of the flat θ."""
    model = jxe.NetworkModel(NETWORK, loss="cross_entropy")
    theta, rate, particle, step = model.initial_parameters, 0.1, jnp.uint32(3), jnp.int32(5)
    noisy = dict(optimizer=jxe.noisy_sgd, optimizer_noise=True,
                 optimizer_options=dict(sigma=0.5, kappa=0.0, minimum_loss=0.0))
    for options in (dict(), dict(optimizer_options=dict(momentum=0.9)), noisy):
        sgd = jxe.MinibatchSGD(model, WINE.train, batch_size=8, learning_rate=rate,
                               replacement=True, **options)
        state = sgd.initial_state(theta)
        assert jax.tree.structure(state[0]) == jax.tree.structure(model.unravel(theta))
        np.testing.assert_array_equal(sgd.position(state), theta)
        keys = _noise.stream_keys(jax.random.key(0), sgd.num_streams(theta.size, theta.dtype))
        stepped = sgd.position(sgd.update(state, keys, particle, step))
        indices = sgd.batch_indices(keys, particle, step)
        expected = theta - rate * jax.grad(sgd.minibatch_loss)(theta, indices)
        if "optimizer_noise" in options:  # + η √σ ζ, ζ the flat normals of (particle, step)
            normals = sgd._normals(keys[1:], particle, step, theta)
            assert np.abs(stepped - expected).max() > 0.05  # the noise moved it
            expected = expected + rate * np.sqrt(0.5) * normals
        np.testing.assert_allclose(stepped, expected, rtol=1e-5, atol=1e-6)


def test_function_of_a_pytree_and_labels_agree_with_the_module_and_one_hot():
    """A function network(params, x), its per-sample loss(params, x, y) (`from_loss`) and the
    module give the same losses; labels and one-hot targets the same cross-entropy."""
    arrays, structure = eqx.partition(NETWORK, eqx.is_inexact_array)
    params = {"layers": arrays}

    def network(parameters, x):
        return eqx.combine(parameters["layers"], structure)(x)

    def loss(parameters, x, y):
        return optax.softmax_cross_entropy(network(parameters, x), y)

    theta = jxe.NetworkModel(NETWORK).initial_parameters + 0.05
    from_module = jxe.NetworkModel(NETWORK, loss="cross_entropy").per_sample_losses(theta,
                                                                                  WINE.test)
    as_function = jxe.NetworkModel(network, params, loss="cross_entropy")
    as_loss = jxe.NetworkModel.from_loss(loss, params)
    np.testing.assert_allclose(as_function.per_sample_losses(theta, WINE.test), from_module,
                               rtol=1e-6)
    np.testing.assert_allclose(as_loss.per_sample_losses(theta, WINE.test), from_module,
                               rtol=1e-6)
    labels = jxe.Dataset(WINE.test.inputs, WINE.labels("test").astype(jnp.float32))
    np.testing.assert_allclose(as_function.per_sample_losses(theta, labels), from_module,
                               rtol=1e-6)
    unflattened = as_function.unflatten(theta)
    assert set(unflattened) == {"layers"}
    np.testing.assert_array_equal(ravel_pytree(unflattened)[0], theta)


def test_trained_particles_metrics_on_train_and_test_sets():
    """32 particles of SGD (B = 16, η = 0.1, 200 steps, cross-entropy) from one start: every
    particle fits the training set (accuracy ≥ 0.95) and generalises (test ≥ 0.85; chance is
    0.40); `evaluate_particles` equals the metrics computed particle by particle."""
    model = jxe.NetworkModel(NETWORK, loss="cross_entropy")
    sgd = jxe.MinibatchSGD(model, WINE.train, batch_size=16, learning_rate=0.1)
    result = jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jax.random.key(3),
                          num_particles=32, max_steps=200)
    train = jxe.evaluate_particles(model, result.position, WINE.train, chunk_size=10)
    test = jxe.evaluate_particles(model, result.position, WINE.test)
    initial = jxe.evaluate_particles(model, model.initial_parameters[None], WINE.train)
    assert train.loss.shape == train.accuracy.shape == (32,)
    assert np.all(train.loss < 0.2 * initial.loss[0])
    assert np.min(train.accuracy) >= 0.95 and np.min(test.accuracy) >= 0.85
    assert len(np.unique(np.asarray(train.loss))) > 16  # the particles took different paths
    for particle in (0, 31):
        theta = result.position[particle]
        predictions = jax.vmap(model.unflatten(theta))(WINE.test.inputs)
        expected = np.mean(np.argmax(predictions, 1) == np.asarray(WINE.labels("test")))
        assert test.accuracy[particle] == pytest.approx(expected)
        assert test.loss[particle] == pytest.approx(float(model.loss(theta, WINE.test)), rel=1e-5)
    other = jxe.evaluate_particles(jxe.LinearRegression(2), jnp.zeros((3, 2)),
                                   jxe.gaussian_regression_data(jax.random.key(0), 10, 2))
    assert np.all(np.isnan(other.accuracy)) and other.loss.shape == (3,)


def test_accuracy_criterion_stops_particles_that_forget():
    """Wu's escape criterion: from a trained network, SGD with a large rate (η = 30) loses the
    training accuracy and every particle leaves within a few steps; at η = 0.01 none does."""
    model = jxe.NetworkModel(NETWORK, loss="cross_entropy")
    trained = jax.jit(lambda theta: jax.lax.fori_loop(  # 100 steps of gradient descent
        0, 100, lambda _, theta: theta - 0.5 * jax.grad(model.loss)(theta, WINE.train), theta))(
        model.initial_parameters)
    assert model.accuracy(trained, WINE.train) > 0.95
    criterion = jxe.accuracy_below(model, WINE.train, 0.8)
    for rate, escaped in ((30.0, True), (0.01, False)):
        sgd = jxe.MinibatchSGD(model, WINE.train, batch_size=4, learning_rate=rate)
        result = jxe.simulate(sgd, criterion, trained, jax.random.key(5), num_particles=8,
                              max_steps=20)
        assert np.all(~result.censored) if escaped else np.all(result.censored)
    # Without positions (no N × 139 parameters stored or copied): the same escape records.
    sgd = jxe.MinibatchSGD(model, WINE.train, batch_size=4, learning_rate=3.0)
    kept, dropped = (jxe.simulate(sgd, criterion, trained, jax.random.key(5), num_particles=64,
                                  max_steps=20, keep_positions=keep) for keep in (True, False))
    assert 0 < kept.censored.sum() < 64 and dropped.position.shape == (64, 0)
    for name in ("escape_step", "boundary", "censored", "diverged"):
        np.testing.assert_array_equal(getattr(dropped, name), getattr(kept, name), err_msg=name)


def test_random_initialisation_of_each_particle():
    """`random_initializer(make)`: particle i starts at the parameters of make(key_i), eqx's
    default initialisation (weights uniform on ±1/√fan_in: variance 1/(3·13) in the first layer),
    one start per particle (that they are `particle_start`'s: tests/test_random_start.py)."""
    model = jxe.NetworkModel(NETWORK, loss="cross_entropy")
    initializer = model.random_initializer(lambda key: eqx.nn.MLP(13, 3, 8, 1, key=key))
    sgd = jxe.MinibatchSGD(model, WINE.train, batch_size=16, learning_rate=1e-30,
                           initializer=initializer)
    result = jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jax.random.key(6),
                          num_particles=200, max_steps=1)
    starts = result.position  # η = 1e-30 moves no float32 parameter: the ends are the starts
    weights = np.asarray(jax.vmap(lambda theta: model.unflatten(theta).layers[0].weight)(starts))
    assert np.abs(weights).max() <= 1 / np.sqrt(13)
    variance, count = weights.var(), weights.size  # uniform on ±a: Var(s²) = (4/45) a⁴ / count
    assert abs(variance - 1 / 39) < 4 * np.sqrt(4 / 45 / count) / 13
    assert len(np.unique(weights[:, 0, 0])) == 200
    with pytest.raises(ValueError, match="parameter shapes"):
        model.random_initializer(lambda key: eqx.nn.MLP(13, 3, 9, 1, key=key))


def test_bad_input_is_named_before_compiling():
    with pytest.raises(ValueError, match="loss must be one of"):
        jxe.NetworkModel(NETWORK, loss="hinge")
    with pytest.raises(TypeError, match="without parameters"):
        jxe.NetworkModel(lambda p, x: x)
    mse = jxe.NetworkModel(NETWORK)  # 3 outputs
    labels = jxe.Dataset(WINE.train.inputs, WINE.labels().astype(jnp.float32))
    with pytest.raises(ValueError, match="output has shape"):
        mse.check_data(labels)
    wrong_width = jxe.Dataset(WINE.train.inputs[:, :5], WINE.train.targets)
    sgd = jxe.MinibatchSGD(mse, wrong_width, batch_size=4, learning_rate=0.1)
    with pytest.raises(ValueError, match="cannot evaluate"):
        jxe.simulate(sgd, jxe.NeverEscape(), mse.initial_parameters, jax.random.key(0),
                     num_particles=1, max_steps=1)
    out_of_range = jxe.Dataset(WINE.train.inputs, labels.targets + 1)  # labels 1..3, 3 outputs
    cross_entropy = jxe.NetworkModel(NETWORK, loss="cross_entropy")
    with pytest.raises(ValueError, match="between 0 and 2"):
        jxe.evaluate_particles(cross_entropy, mse.initial_parameters[None], out_of_range)
    for labels_off in (out_of_range, jxe.Dataset(WINE.train.inputs, labels.targets - 1)):
        sgd = jxe.MinibatchSGD(cross_entropy, labels_off, batch_size=4, learning_rate=0.1)
        with pytest.raises(ValueError, match="between 0 and 2"):
            jxe.simulate(sgd, jxe.NeverEscape(), mse.initial_parameters, jax.random.key(0),
                         num_particles=1, max_steps=1)
    with pytest.raises(ValueError, match=r"shape \(N, 139\)"):
        jxe.evaluate_particles(mse, mse.initial_parameters, WINE.train)


def test_weight_decay_adds_the_l2_penalty_to_every_sample_and_not_to_the_noise():
    data = jxe.load_sklearn_dataset("wine", jax.random.key(0), num_train=40).train
    network = eqx.nn.MLP(13, 3, 4, 1, key=jax.random.key(1))
    plain = jxe.NetworkModel(network, loss="cross_entropy")
    decayed = jxe.NetworkModel(network, loss="cross_entropy", weight_decay=0.5)
    theta = plain.initial_parameters
    penalty = 0.25 * jnp.sum(theta**2)
    np.testing.assert_allclose(decayed.per_sample_losses(theta, data),
                               plain.per_sample_losses(theta, data) + penalty, rtol=1e-6)
    gradients = [jax.vmap(jax.grad(model.per_sample_loss), (None, 0, 0))(
        theta, data.inputs, data.targets) for model in (plain, decayed)]
    np.testing.assert_allclose(gradients[1] - gradients[0], np.broadcast_to(
        0.5 * theta, gradients[0].shape), rtol=1e-5, atol=1e-6)  # the same shift: no noise
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        jxe.NetworkModel(network, weight_decay=-1.0)
