r"""Dynamical stability of a minimum under SGD (Wu, Ma & E 2018; docs/THEORY.md §5).

At a global minimum θ* of an interpolating model (every ℓ_μ(θ*) = 0) linearised SGD is
$\theta_{t+1} - \theta^* = (I - \frac\eta B\sum_{\mu\in B_t} H_\mu)(\theta_t - \theta^*)$. Its
mean-square stability depends on the sharpness $a = \lambda_{\max}(H)$ and the non-uniformity
$s = \lambda_{\max}(\Sigma)^{1/2}$, $\Sigma = \frac1n\sum_\mu H_\mu^2 - H^2$, both computed here
with per-sample Hessian-vector products and power iteration, vmapped over samples (the official
code loops over samples). In 1-D the condition is exact:
$(1 - \eta a)^2 + \eta^2 \frac{n - B}{B(n - 1)} s^2 \le 1$; in high dimensions
$a \le 2/\eta$ and $s \le \frac1\eta\sqrt{B(n-1)/(n-B)}$ are necessary.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .data import Dataset
from .models import AbstractModel
from .minibatch_noise import minibatch_factor


def _hvp(model: AbstractModel, parameters, vector, input, target):
    """H_μ v for one sample: forward-over-reverse differentiation."""
    gradient = jax.grad(model.per_sample_loss)
    return jax.jvp(lambda p: gradient(p, input, target), (parameters,), (vector,))[1]


def _per_sample_hvp(model: AbstractModel, data: Dataset, parameters, vectors):
    """(H_μ v_μ)_μ, shape (n, P); `vectors` is one vector (P,) for all or one per sample."""
    vector_axis = 0 if vectors.ndim == 2 else None
    return jax.vmap(_hvp, (None, None, vector_axis, 0, 0))(
        model, parameters, vectors, data.inputs, data.targets
    )


def _power_iteration(operator, dimension, key, num_iterations):
    vector = jax.random.normal(key, (dimension,))
    vector = vector / jnp.linalg.norm(vector)

    def body(vector, _):
        image = operator(vector)
        return image / jnp.maximum(jnp.linalg.norm(image), 1e-30), None  # Σ = 0: s = 0

    vector, _ = jax.lax.scan(body, vector, None, length=num_iterations)
    return jnp.dot(vector, operator(vector))


def sharpness(model, data, parameters, *, key=None, num_iterations: int = 200) -> jax.Array:
    """a = λ_max(H), H = mean_μ ∇²ℓ_μ(θ) (power iteration; assumes λ_max is the top |λ|)."""
    key = jax.random.key(0) if key is None else key

    def hessian_times(vector):
        return jnp.mean(_per_sample_hvp(model, data, parameters, vector), axis=0)

    return _power_iteration(hessian_times, parameters.shape[0], key, num_iterations)


def non_uniformity(model, data, parameters, *, key=None, num_iterations: int = 200) -> jax.Array:
    """s = λ_max(Σ)^{1/2}, Σ v = mean_μ H_μ(H_μ v) − H(H v) (Wu et al.'s `get_nonuniformity`)."""
    key = jax.random.key(0) if key is None else key

    def covariance_times(vector):
        images = _per_sample_hvp(model, data, parameters, vector)
        second = jnp.mean(_per_sample_hvp(model, data, parameters, images), axis=0)
        mean_image = jnp.mean(images, axis=0)
        return second - jnp.mean(_per_sample_hvp(model, data, parameters, mean_image), axis=0)

    top = _power_iteration(covariance_times, parameters.shape[0], key, num_iterations)
    return jnp.sqrt(jnp.maximum(top, 0.0))


def batch_factor(batch_size, num_samples):
    """p = (n − B)/(B(n − 1)): the minibatch variance factor without replacement, i.e.
    `minibatch_factor(batch_size, num_samples, replacement=False)`."""
    return minibatch_factor(batch_size, num_samples, replacement=False)


def mean_square_growth(learning_rate, batch_size, num_samples, sharpness, non_uniformity):
    """ρ = (1 − ηa)² + η² p s²: per-step growth of E(θ − θ*)² in 1-D; stable iff ρ <= 1."""
    p = batch_factor(batch_size, num_samples)
    return (1 - learning_rate * sharpness) ** 2 + learning_rate**2 * p * non_uniformity**2


def stability_bounds(learning_rate, batch_size, num_samples):
    """Wu et al.'s high-dimensional bounds: (a_max, s_max) = (2/η, sqrt(B(n−1)/(n−B))/η)."""
    learning_rate = np.asarray(learning_rate, float)
    with np.errstate(divide="ignore"):
        s_max = np.sqrt(1 / batch_factor(np.asarray(batch_size, float), num_samples))
    return 2 / learning_rate, s_max / learning_rate
