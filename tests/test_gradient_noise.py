"""The minibatch gradient noise and its tail index (jaxescape/_sgd/gradient_noise.py)."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from scipy import stats

import jaxescape as jxe
from jaxescape.theories import tail_index


def linear_loss(theta, x, y):
    """ℓ = θ·x: the per-sample gradient is x itself, so the noise's law is known."""
    return jnp.dot(theta, x)


def data_with_gradients(gradients):
    gradients = np.asarray(gradients, np.float32)
    return jxe.Dataset(jnp.asarray(gradients), jnp.zeros(gradients.shape[0], jnp.float32))


@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_tail_index_of_stable_per_sample_gradients(alpha):
    # Minibatch means of B SαS gradients are SαS with the same α: the estimate is α within 4 SE
    # (measured within 2 SE with B = 4, 20000 samples, 4096 batches).
    rng = np.random.default_rng(0)
    gradients = stats.levy_stable.rvs(alpha, 0, size=(20000, 8), random_state=rng)
    estimate = jxe.gradient_noise_tail_index(linear_loss, jnp.zeros(8), data_with_gradients(
        gradients), 4, jr.key(1), num_batches=4096)
    assert estimate.num_coordinates == 8 and estimate.estimate.block_size == 64
    assert abs(estimate.alpha - alpha) < 4 * estimate.alpha_se, estimate
    assert estimate.alpha_se < 0.08  # measured 0.023 (α = 1.5) and 0.065 (α = 2)


def test_noise_second_moment_matches_the_minibatch_covariance():
    # E|∇L_B − ∇L|² = Tr Σ_B = (n − B)/(B(n − 1)) 𝒩 without replacement (Mori et al. eq. 24),
    # 𝒩/B with replacement: the batches are drawn as SGD draws them.
    rng = np.random.default_rng(1)
    data = data_with_gradients(rng.standard_normal((40, 3)) * [1.0, 2.0, 0.5] + 1.0)
    for replacement in (False, True):
        noise = np.asarray(jxe.minibatch_gradient_noise(
            linear_loss, jnp.zeros(3), data, 8, jr.key(2), num_batches=20000,
            replacement=replacement), np.float64)
        squares = np.sum(noise**2, axis=1)
        exact = float(jxe.gradient_noise_trace(linear_loss, jnp.zeros(3), data, batch_size=8,
                                               replacement=replacement))
        assert abs(squares.mean() - exact) < 4 * squares.std() / np.sqrt(squares.size)
        assert np.all(np.abs(noise.mean(0)) < 4 * noise.std(0) / np.sqrt(noise.shape[0]))


def test_columns_option_and_errors():
    rng = np.random.default_rng(3)
    samples = rng.standard_cauchy(4096)
    assert tail_index(samples[:, None], columns=True) == tail_index(samples)
    with pytest.raises(ValueError, match="columns=True"):
        tail_index(samples, columns=True)
    data = data_with_gradients(rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="batch_size"):
        jxe.minibatch_gradient_noise(linear_loss, jnp.zeros(2), data, 10, jr.key(0))
    with pytest.raises(ValueError, match="num_batches"):
        jxe.minibatch_gradient_noise(linear_loss, jnp.zeros(2), data, 2, jr.key(0),
                                     num_batches=0)
