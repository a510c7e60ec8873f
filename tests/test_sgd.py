"""Real SGD particles: minibatch noise covariance, optax coupling, Wu's toy example, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxescape as jxe
from helpers import OPTAX_ADAM_NOT_STRICT
from jaxescape import _noise  # internal: the counter-based variates the steps must reproduce


DATA = jxe.gaussian_regression_data(jax.random.key(0), 20, 2)
MODEL = jxe.LinearRegression(2)
START = jnp.array([0.7, -0.4])


def one_step(batch_size, replacement, num_particles=200_000):
    """Positions after one SGD step from START, for many particles."""
    sgd = jxe.MinibatchSGD(
        MODEL, DATA, batch_size=batch_size, learning_rate=1.0, replacement=replacement
    )
    result = jxe.simulate(sgd, jxe.NeverEscape(), START, jax.random.key(1),
                          num_particles=num_particles, max_steps=1)
    assert np.all(result.censored)
    return np.asarray(result.position, np.float64)


def exact_noise_trace(batch_size, replacement):
    """tr Σ for the minibatch gradient noise (docs/THEORY.md §1.1)."""
    inputs, targets = np.asarray(DATA.inputs, np.float64), np.asarray(DATA.targets, np.float64)
    gradients = inputs * (inputs @ np.asarray(START, np.float64) - targets)[:, None]
    n = len(targets)
    spread = np.mean(np.sum(gradients**2, 1)) - np.sum(np.mean(gradients, 0) ** 2)
    factor = 1 / batch_size if replacement else (n - batch_size) / (batch_size * (n - 1))
    return factor * spread, -np.mean(gradients, 0)


@pytest.mark.parametrize("replacement", [True, False])
def test_minibatch_noise_covariance_is_exact(replacement):
    batch_size = 4
    positions = one_step(batch_size, replacement)
    trace, mean_step = exact_noise_trace(batch_size, replacement)
    other_trace, _ = exact_noise_trace(batch_size, not replacement)
    noise = positions - np.asarray(START, np.float64) - mean_step  # = -(g_B - g), learning rate 1
    squared = np.sum(noise**2, 1)
    standard_error = squared.std() / np.sqrt(len(squared))
    assert abs(squared.mean() - trace) < 4 * standard_error
    assert abs(other_trace - trace) > 10 * standard_error  # the test tells the two schemes apart
    # The mean step is the full gradient step (the minibatch gradient is unbiased).
    for component in range(2):
        column = noise[:, component]
        assert abs(column.mean()) < 4 * column.std() / np.sqrt(len(column))


def test_each_epoch_visits_every_sample_once():
    sgd = jxe.MinibatchSGD(MODEL, DATA, batch_size=4, learning_rate=0.1)
    keys = _noise.stream_keys(jax.random.key(3), sgd.num_streams(1, jnp.float32))
    for particle in range(3):
        epochs = []
        for epoch in range(2):
            steps = epoch * sgd.steps_per_epoch + jnp.arange(sgd.steps_per_epoch)
            indices = jax.vmap(lambda s: sgd.batch_indices(keys, jnp.uint32(particle), s))(steps)
            np.testing.assert_array_equal(np.sort(np.ravel(indices)), np.arange(20))
            epochs.append(np.ravel(indices))
        assert not np.array_equal(epochs[0], epochs[1])  # a fresh order every epoch


@pytest.mark.parametrize("optimizer, options", [
    (optax.sgd, {}), (optax.sgd, {"momentum": 0.9}),
    pytest.param(optax.adam, {}, marks=OPTAX_ADAM_NOT_STRICT),
])
def test_steps_match_the_optax_update_applied_by_hand(optimizer, options):
    sgd = jxe.MinibatchSGD(MODEL, DATA, batch_size=3, learning_rate=0.05, optimizer=optimizer,
                           optimizer_options=options)
    key = jax.random.key(5)
    result = jxe.simulate(sgd, jxe.NeverEscape(), START, key, num_particles=4, max_steps=9)
    keys = _noise.stream_keys(key, sgd.num_streams(1, jnp.float32))
    transformation = optimizer(learning_rate=0.05, **options)
    for particle in range(4):
        position, state = START, transformation.init(START)
        for step in range(9):
            indices = np.asarray(sgd.batch_indices(keys, jnp.uint32(particle), jnp.int32(step)))
            inputs, targets = DATA.inputs[indices], DATA.targets[indices]
            gradient = jax.grad(lambda t: jnp.mean(0.5 * (inputs @ t - targets) ** 2))(position)
            updates, state = transformation.update(gradient, state, position)
            position = optax.apply_updates(position, updates)
        np.testing.assert_allclose(result.position[particle], position, rtol=1e-5, atol=1e-6)


def wu_toy(batch_size):
    data = jxe.Dataset(jnp.array([0.1, 1.9]), jnp.zeros(2))
    return jxe.MinibatchSGD(jxe.MinimumOfQuadratics(), data, batch_size=batch_size,
                            learning_rate=0.7, replacement=True)


def test_wu_toy_example_sgd_leaves_the_sharp_minimum_and_gd_stays():
    """docs/THEORY.md §5.4: at x = 1, a = 2 < 2/η but (1 − ηa)² + η²s² = 1.75 > 1."""
    start = jnp.array([1 + 1e-5])
    criterion = jxe.OutsideBall(jnp.array([1.0]), 0.5)
    sgd = jxe.simulate(wu_toy(1), criterion, start, jax.random.key(0), num_particles=1000,
                       max_steps=500)
    gd = jxe.simulate(wu_toy(2), criterion, start, jax.random.key(0), num_particles=10,
                      max_steps=500)
    assert np.all(gd.censored)
    np.testing.assert_allclose(gd.position, 1.0, atol=1e-5)  # GD converges to x = 1
    assert np.mean(sgd.escaped) > 0.99
    # After leaving, SGD settles at the flat minimum x = 0.
    settled = jxe.simulate(wu_toy(1), jxe.NeverEscape(), start, jax.random.key(0),
                           num_particles=1000, max_steps=500)
    assert np.mean(np.abs(settled.position[:, 0]) < 1e-3) > 0.99


@OPTAX_ADAM_NOT_STRICT
@pytest.mark.parametrize("replacement", [True, False])
def test_same_key_same_numbers_for_any_chunking(replacement):
    sgd = jxe.MinibatchSGD(MODEL, DATA, batch_size=5, learning_rate=0.3, replacement=replacement,
                           optimizer=optax.adam)
    criterion = jxe.OutsideBall(jnp.zeros(2), 1.2)
    runs = [
        jxe.simulate(sgd, criterion, START, jax.random.key(2), num_particles=500,
                     max_steps=400, chunk_size=chunk, num_slots=slots, check_every=every)
        for chunk, slots, every in [(500, 512, 32), (128, 64, 7)]
    ]
    for field in ("escape_step", "boundary", "censored", "diverged", "position"):
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[1], field))


def test_divergent_particles_are_flagged():
    sgd = jxe.MinibatchSGD(MODEL, DATA, batch_size=2, learning_rate=50.0)
    result = jxe.simulate(sgd, jxe.NeverEscape(), START, jax.random.key(0), num_particles=50,
                          max_steps=2000)
    assert np.all(result.diverged) and not np.any(result.censored)


@pytest.mark.parametrize("build, match", [
    (lambda: jxe.MinibatchSGD(MODEL, DATA, batch_size=21, learning_rate=0.1), "batch_size"),
    (lambda: jxe.MinibatchSGD(MODEL, DATA, batch_size=0, learning_rate=0.1), "batch_size"),
    (lambda: jxe.MinibatchSGD(MODEL, DATA, batch_size=2, learning_rate=0.0), "learning_rate"),
    (lambda: jxe.MinibatchSGD(MODEL, DATA, batch_size=2, learning_rate=-1), "learning_rate"),
    (lambda: jxe.MinibatchSGD(MODEL, DATA, batch_size=2), "learning_rate"),
    (lambda: jxe.MinibatchSGD(MODEL, DATA, batch_size=2, learning_rate=0.1,
                              optimizer=optax.sgd(0.1)), "learning_rate"),
])
def test_bad_sgd_hyperparameters(build, match):
    with pytest.raises(ValueError, match=match):
        jxe.simulate(build(), jxe.NeverEscape(), START, jax.random.key(0), num_particles=1,
                     max_steps=1)


def test_bad_data_sets():
    with pytest.raises(ValueError, match="empty"):
        jxe.Dataset(jnp.zeros((0, 2)), jnp.zeros(0))
    with pytest.raises(ValueError, match="same number of samples"):
        jxe.Dataset(jnp.zeros((3, 2)), jnp.zeros(4))
    with pytest.raises(TypeError, match="dtype"):
        jxe.Dataset(jnp.zeros((3, 2)), jnp.zeros(3, jnp.int32))
    with pytest.raises(TypeError, match="share a dtype"):
        jxe.Dataset(jnp.zeros((3, 2), jnp.float32), jnp.zeros(3, jnp.float16))


def test_start_that_does_not_match_the_model():
    sgd = jxe.MinibatchSGD(MODEL, DATA, batch_size=2, learning_rate=0.1)
    with pytest.raises(ValueError, match="2 parameters"):
        jxe.simulate(sgd, jxe.NeverEscape(), jnp.zeros(3), jax.random.key(0), num_particles=1,
                     max_steps=1)
    wrong_inputs = jxe.MinibatchSGD(MODEL, jxe.Dataset(jnp.zeros((4, 3)), jnp.zeros(4)),
                                    batch_size=2, learning_rate=0.1)
    with pytest.raises(ValueError, match="cannot evaluate"):
        jxe.simulate(wrong_inputs, jxe.NeverEscape(), START, jax.random.key(0), num_particles=1,
                     max_steps=1)


def test_mlp_model_trains_through_its_flat_parameters():
    """`MLPRegression` unravels θ into an `eqx.nn.MLP`; one SGD step equals the hand-made one."""
    data = jxe.Dataset(jax.random.normal(jax.random.key(1), (16, 3)),
                       jax.random.normal(jax.random.key(2), (16,)))
    model = jxe.MLPRegression(jax.random.key(0), in_size=3, out_size=1, width=8, depth=1)
    assert model.num_parameters == 3 * 8 + 8 + 8 * 1 + 1
    start = model.initial_parameters
    sgd = jxe.MinibatchSGD(model, data, batch_size=16, learning_rate=0.1)  # full batch: GD
    result = jxe.simulate(sgd, jxe.NeverEscape(), start, jax.random.key(3), num_particles=2,
                          max_steps=1)

    def loss(parameters):
        network = model.network(parameters)
        predictions = jax.vmap(network)(data.inputs)[:, 0]
        return jnp.mean(0.5 * (predictions - data.targets) ** 2)

    expected = start - 0.1 * jax.grad(loss)(start)
    np.testing.assert_allclose(result.position, np.stack([expected, expected]), rtol=1e-5,
                               atol=1e-6)
