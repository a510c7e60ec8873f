"""Curvature of networks (Lanczos, Hutchinson, non-uniformity, gradient noise) against dense
Hessians and per-sample gradients of a tiny MLP (3-5-2, tanh: P = 32 parameters, n = 12)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxescape as jxe


def problem():
    """A tiny network's arrays, its per-sample loss and the data (built under the current x64)."""
    network = eqx.nn.MLP(3, 2, 5, 1, activation=jnp.tanh, key=jax.random.key(0))
    dtype = jnp.result_type(float)
    arrays, structure = eqx.partition(network, eqx.is_array)
    arrays = jax.tree.map(lambda leaf: leaf.astype(dtype), arrays)
    data = jxe.Dataset(jax.random.normal(jax.random.key(1), (12, 3), dtype),
                       jax.random.normal(jax.random.key(2), (12, 2), dtype))

    def per_sample_loss(parameters, x, y):
        return 0.5 * jnp.sum((eqx.combine(parameters, structure)(x) - y) ** 2)

    def loss(parameters):
        return jnp.mean(jax.vmap(per_sample_loss, (None, 0, 0))(parameters, data.inputs,
                                                                 data.targets))

    return arrays, per_sample_loss, loss, data


def dense(arrays, per_sample_loss, data):
    """Dense per-sample Hessians (n, P, P) and gradients (n, P) in float64 numpy."""
    theta, unravel = ravel_pytree(arrays)

    @jax.jit
    def both(theta, inputs, targets):
        def flat(p, x, y):
            return per_sample_loss(unravel(p), x, y)

        return (jax.vmap(jax.hessian(flat), (None, 0, 0))(theta, inputs, targets),
                jax.vmap(jax.grad(flat), (None, 0, 0))(theta, inputs, targets))

    hessians, gradients = both(theta, data.inputs, data.targets)
    return np.asarray(hessians, np.float64), np.asarray(gradients, np.float64)


def test_lanczos_equals_the_dense_spectrum(x64):
    """m = P iterations give the top eigenvalues to 1e-9 relative; eigenvectors satisfy Hv = λv."""
    arrays, per_sample_loss, loss, data = problem()
    hessian = dense(arrays, per_sample_loss, data)[0].mean(0)
    exact = np.linalg.eigvalsh(hessian)[::-1]
    values, vectors = jxe.hessian_top_eigenpairs(loss, arrays, 5, jax.random.key(3),
                                                 num_iterations=32)
    np.testing.assert_allclose(values, exact[:5], rtol=1e-9, atol=1e-12 * exact[0])
    flat_vectors = jax.vmap(lambda v: ravel_pytree(v)[0])(vectors)
    np.testing.assert_allclose(np.linalg.norm(flat_vectors, axis=1), 1, rtol=1e-9)
    np.testing.assert_allclose(flat_vectors @ hessian, values[:, None] * flat_vectors,
                               atol=1e-7 * exact[0])


def test_lanczos_with_fewer_iterations_and_in_float32():
    """Float32, m = 20 < P = 32: the top 3 eigenvalues within 1e-3 of the dense float64 ones
    (relative to the largest; float32 Hessian-vector products carry ~1e-6)."""
    arrays, per_sample_loss, loss, data = problem()
    exact = np.linalg.eigvalsh(dense(arrays, per_sample_loss, data)[0].mean(0))[::-1]
    values = jxe.hessian_top_eigenvalues(loss, arrays, 3, jax.random.key(4), num_iterations=20)
    assert values.dtype == jnp.float32
    np.testing.assert_allclose(values, exact[:3], atol=1e-3 * exact[0])


def test_curvature_vmaps_over_particles():
    """Three particles' top eigenvalue, trace, non-uniformity and noise trace under one vmap
    equal the same computed one particle at a time."""
    arrays, per_sample_loss, _, data = problem()
    batch = jax.tree.map(lambda leaf: leaf + 0.1 * jnp.arange(3.0).reshape(-1, *[1] * leaf.ndim),
                         arrays)
    key = jax.random.key(5)

    def measures(parameters):
        def loss(p):
            return jnp.mean(jax.vmap(per_sample_loss, (None, 0, 0))(p, data.inputs,
                                                                     data.targets))

        return (jxe.hessian_top_eigenvalues(loss, parameters, 1, key, num_iterations=12),
                jxe.hessian_trace(loss, parameters, key, num_probes=8).value,
                jxe.network_non_uniformity(per_sample_loss, parameters, data, key,
                                           num_iterations=12),
                jxe.gradient_noise_trace(per_sample_loss, parameters, data, chunk_size=5))

    together = jax.jit(jax.vmap(measures))(batch)
    one_at_a_time = jax.jit(measures)
    for particle in range(3):
        alone = one_at_a_time(jax.tree.map(lambda leaf: leaf[particle], batch))
        for joint, single in zip(together, alone):
            np.testing.assert_allclose(joint[particle], single, rtol=2e-4)


def test_hutchinson_trace_within_its_standard_error(x64):
    """2000 Rademacher probes: within 4 exact standard errors of tr H, whose per-probe variance
    is 2(|H|_F² − Σ H_ii²); the reported standard error within 10% of the exact one (the sample
    sd of 2000 has a relative error of a few %)."""
    arrays, per_sample_loss, loss, data = problem()
    hessian = dense(arrays, per_sample_loss, data)[0].mean(0)
    exact_se = np.sqrt(2 * (np.sum(hessian**2) - np.sum(np.diag(hessian) ** 2)) / 2000)
    estimate = jxe.hessian_trace(loss, arrays, jax.random.key(6), num_probes=2000)
    assert abs(float(estimate.value) - np.trace(hessian)) < 4 * exact_se
    assert abs(float(estimate.standard_error) / exact_se - 1) < 0.1
    assert exact_se < 0.05 * abs(np.trace(hessian))  # the test can tell a wrong trace
    with pytest.raises(ValueError, match="num_probes must be at least 2"):
        jxe.hessian_trace(loss, arrays, jax.random.key(6), num_probes=1)


def test_non_uniformity_equals_the_dense_per_sample_spread(x64):
    """s² = λ_max(mean H_μ² − H²) to 1e-8 relative with m = P; along a direction v,
    vᵀΣv/vᵀv; the flat-model `non_uniformity` agrees on the same network."""
    arrays, per_sample_loss, _, data = problem()
    hessians = dense(arrays, per_sample_loss, data)[0]
    mean = hessians.mean(0)
    spread = np.mean(hessians @ hessians, 0) - mean @ mean
    exact = np.sqrt(np.linalg.eigvalsh(spread)[-1])
    key = jax.random.key(7)
    s = jxe.network_non_uniformity(per_sample_loss, arrays, data, key, num_iterations=32)
    np.testing.assert_allclose(s, exact, rtol=1e-8)
    top = np.linalg.eigh(mean)[1][:, -1]
    theta, unravel = ravel_pytree(arrays)
    along = jxe.network_non_uniformity(per_sample_loss, arrays, data, key,
                                       direction=unravel(jnp.asarray(top)))
    np.testing.assert_allclose(along, np.sqrt(top @ spread @ top), rtol=1e-8)
    assert along < exact


def test_gradient_noise_trace_equals_the_per_sample_gradients(x64):
    """𝒩 = mean |∇ℓ_μ − ∇L|² from dense per-sample gradients, to 1e-10; Tr Σ for B = 4 without
    replacement is (n − B)/(B(n − 1)) 𝒩 (Mori et al. eq. 24), with replacement 𝒩/B."""
    arrays, per_sample_loss, _, data = problem()
    gradients = dense(arrays, per_sample_loss, data)[1]
    exact = np.mean(np.sum((gradients - gradients.mean(0)) ** 2, 1))
    noise = jxe.gradient_noise_trace(per_sample_loss, arrays, data, chunk_size=5)  # 5+5+2
    np.testing.assert_allclose(noise, exact, rtol=1e-10)
    np.testing.assert_allclose(
        jxe.gradient_noise_trace(per_sample_loss, arrays, data, batch_size=4), exact * 8 / 44,
        rtol=1e-10)
    np.testing.assert_allclose(
        jxe.gradient_noise_trace(per_sample_loss, arrays, data, batch_size=4, replacement=True),
        exact / 4, rtol=1e-10)


def test_bad_iteration_counts_name_the_parameter():
    arrays, _, loss, _ = problem()
    with pytest.raises(ValueError, match="k must be between 1 and the number of parameters 32"):
        jxe.hessian_top_eigenvalues(loss, arrays, 33, jax.random.key(0))
    with pytest.raises(ValueError, match="num_iterations must be between k = 4"):
        jxe.hessian_top_eigenvalues(loss, arrays, 4, jax.random.key(0), num_iterations=3)


@pytest.mark.slow
def test_digits_network_agrees_with_power_iteration():
    """MLP 64-32-10 (2410 parameters) at its initialisation on 1000 digits, MSE on one-hot
    targets: Lanczos (36 iterations) and the flat-vector power iteration (300) give the same
    sharpness, and the two non-uniformities agree, to 1e-4 (measured: 7 digits)."""
    data = jxe.load_sklearn_dataset("digits", jax.random.key(0), num_train=1000).train
    model = jxe.NetworkModel(eqx.nn.MLP(64, 10, 32, 1, key=jax.random.key(1)))
    theta = model.initial_parameters

    def per_sample_loss(parameters, x, y):
        return model.per_sample_loss(ravel_pytree(parameters)[0], x, y)

    def loss(parameters):
        return model.loss(ravel_pytree(parameters)[0], data)

    arrays = model.unravel(theta)
    top = jxe.hessian_top_eigenvalues(loss, arrays, 3, jax.random.key(2))
    np.testing.assert_allclose(top[0], jxe.sharpness(model, data, theta, num_iterations=300),
                               rtol=1e-4)
    assert top[0] > top[1] > top[2] > 0
    np.testing.assert_allclose(
        jxe.network_non_uniformity(per_sample_loss, arrays, data, jax.random.key(5)),
        jxe.non_uniformity(model, data, theta, num_iterations=200), rtol=1e-4)
