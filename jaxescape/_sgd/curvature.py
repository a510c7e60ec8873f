r"""Curvature and gradient noise of networks, from Hessian-vector products of parameter pytrees.

Each function takes the parameters as any pytree (an `eqx.Module`'s arrays, a dict of weights),
flattens them with `jax.flatten_util.ravel_pytree` for its Krylov or probe vectors, and never
forms a Hessian. Each is an `eqx.filter_jit` (functions static, arrays traced) and vmaps over
particles (a leading axis on every parameter leaf). Hessian-vector products are
forward-over-reverse (`jax.jvp` of `jax.grad`).

- `hessian_top_eigenvalues` / `hessian_top_eigenpairs`: Lanczos with full reorthogonalisation.
- `hessian_trace`: Hutchinson's estimator with Rademacher probes, and its standard error.
- `network_non_uniformity`: Wu, Ma & E's $s = \lambda_{\max}(\Sigma)^{1/2}$,
  $\Sigma = \frac1n\sum_\mu H_\mu^2 - H^2$ (docs/THEORY.md §5.2, the definition `non_uniformity`
  uses for flat models), by Lanczos on $\Sigma$.
- `gradient_noise_trace`: Mori et al.'s
  $\mathcal N = \frac1n\sum_\mu|\nabla\ell_\mu|^2 - |\nabla L|^2$ and
  ${\rm Tr}\,\Sigma_B = \frac{n-B}{B(n-1)}\mathcal N$ (their eq. 24; docs/THEORY.md §3.5).
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jax.flatten_util import ravel_pytree

from .data import Dataset
from .minibatch_noise import minibatch_factor


def _flat(function: Callable, parameters):
    """θ flat, the function of flat θ, and the unravelling."""
    flat, unravel = ravel_pytree(parameters)
    return flat, (lambda theta, *args: function(unravel(theta), *args)), unravel


def _hvp(function, theta, vector, *args):
    """∇²f(θ) v (forward-over-reverse)."""
    return jax.jvp(lambda p: jax.grad(function)(p, *args), (theta,), (vector,))[1]


def _orthogonalise(basis, vector):
    """`vector` minus its projection on the rows of `basis` (classical Gram–Schmidt, twice)."""
    for _ in range(2):
        vector = vector - basis.T @ (basis @ vector)
    return vector


def lanczos(operator: Callable, dim: int, num_iterations: int, key: jax.Array, dtype):
    r"""Ritz values and vectors of a symmetric `operator` on $\mathbb R^{\rm dim}$.

    Lanczos with full reorthogonalisation against all earlier vectors (twice), `num_iterations`
    iterations in a `lax.fori_loop`. At a breakdown (the Krylov space is invariant, residual
    below $\sqrt{\epsilon}\,|Av|$) it continues from a fresh random vector orthogonal to the
    basis, so with num_iterations = dim the Ritz values are the exact spectrum.

    **Returns:** `(values, vectors)`: the num_iterations Ritz values in ascending order and the
    Ritz vectors as columns, shape (dim, num_iterations).
    """
    start_key, restart_key = jr.split(key)
    start = jr.normal(start_key, (dim,), dtype)
    basis = jnp.zeros((num_iterations + 1, dim), dtype).at[0].set(start / jnp.linalg.norm(start))
    tolerance = jnp.sqrt(jnp.finfo(dtype).eps)

    def body(i, carry):
        basis, diagonal, off_diagonal = carry
        image = operator(basis[i])
        alpha = jnp.dot(image, basis[i])
        residual = _orthogonalise(basis, image)
        beta = jnp.linalg.norm(residual)
        fresh = _orthogonalise(basis, jr.normal(jr.fold_in(restart_key, i), (dim,), dtype))
        broken = beta <= tolerance * jnp.linalg.norm(image)
        following = jnp.where(broken, fresh / jnp.linalg.norm(fresh), residual / beta)
        return (basis.at[i + 1].set(following), diagonal.at[i].set(alpha),
                off_diagonal.at[i].set(jnp.where(broken, 0.0, beta)))

    zeros = jnp.zeros(num_iterations, dtype)
    basis, diagonal, off_diagonal = jax.lax.fori_loop(
        0, num_iterations, body, (basis, zeros, zeros))
    tridiagonal = (jnp.diag(diagonal) + jnp.diag(off_diagonal[:-1], 1)
                   + jnp.diag(off_diagonal[:-1], -1))
    values, coefficients = jnp.linalg.eigh(tridiagonal)
    return values, basis[:num_iterations].T @ coefficients


def _check_iterations(k, num_iterations, dim):
    num_iterations = min(dim, 2 * k + 30) if num_iterations is None else num_iterations
    if not 1 <= k <= dim:
        raise ValueError(f"k must be between 1 and the number of parameters {dim}, got {k}")
    if not k <= num_iterations <= dim:
        raise ValueError(
            f"num_iterations must be between k = {k} and the number of parameters {dim}, got "
            f"{num_iterations}"
        )
    return num_iterations


@eqx.filter_jit
def hessian_top_eigenpairs(loss: Callable, parameters, k: int, key: jax.Array, *,
                           num_iterations: int | None = None):
    r"""The k largest eigenvalues of $\nabla^2 {\rm loss}$ at `parameters` and their eigenvectors.

    **Arguments:**

    - `loss`: a scalar function of the parameter pytree (close over the data).
    - `parameters`: the pytree θ at which the Hessian is taken.
    - `k`: how many eigenvalues, the largest (algebraic: a saddle's negative ones come last).
    - `key`: the Lanczos start vector.
    - `num_iterations`: Lanczos iterations m, k ≤ m ≤ P (default min(P, 2k + 30)); each costs one
      Hessian-vector product. Extremal eigenvalues converge first; m = P gives them exactly (up
      to rounding). A repeated eigenvalue appears once unless m reaches past the Krylov space.

    **Returns:** `(values, vectors)`: values shape (k,), descending; vectors a pytree like
    `parameters` with a leading axis k, unit norm over all leaves.
    """
    theta, flat_loss, unravel = _flat(loss, parameters)
    num_iterations = _check_iterations(k, num_iterations, theta.shape[0])
    values, vectors = lanczos(lambda v: _hvp(flat_loss, theta, v), theta.shape[0],
                              num_iterations, key, theta.dtype)
    top = values[::-1][:k]
    return top, jax.vmap(unravel)(vectors[:, ::-1][:, :k].T)


def hessian_top_eigenvalues(loss: Callable, parameters, k: int, key: jax.Array, *,
                            num_iterations: int | None = None) -> jax.Array:
    """The k largest Hessian eigenvalues, descending (Lanczos; see `hessian_top_eigenpairs`)."""
    return hessian_top_eigenpairs(loss, parameters, k, key, num_iterations=num_iterations)[0]


class TraceEstimate(NamedTuple):
    """An unbiased estimate and its standard error (the probes' sample sd / √m)."""

    value: jax.Array
    standard_error: jax.Array


@eqx.filter_jit
def hessian_trace(loss: Callable, parameters, key: jax.Array, *,
                  num_probes: int = 64) -> TraceEstimate:
    r"""Hutchinson's estimate of ${\rm tr}\,\nabla^2{\rm loss}$: the mean of $z^{\rm T}Hz$ over
    `num_probes` ≥ 2 Rademacher vectors z (Hutchinson 1989), whose variance per probe is
    $2(\|H\|_F^2 - \sum_i H_{ii}^2)$; one Hessian-vector product per probe (vmapped)."""
    if num_probes < 2:
        raise ValueError(
            f"num_probes must be at least 2 (for the standard error), got {num_probes}")
    theta, flat_loss, _ = _flat(loss, parameters)
    probes = jr.rademacher(key, (num_probes, theta.shape[0]), theta.dtype)
    forms = jax.vmap(lambda z: jnp.dot(z, _hvp(flat_loss, theta, z)))(probes)
    return TraceEstimate(jnp.mean(forms), jnp.std(forms, ddof=1) / jnp.sqrt(num_probes))


@eqx.filter_jit
def network_non_uniformity(per_sample_loss: Callable, parameters, data: Dataset,
                           key: jax.Array, *, num_iterations: int | None = None,
                           direction=None) -> jax.Array:
    r"""Wu, Ma & E's non-uniformity $s = \lambda_{\max}(\Sigma)^{1/2}$ of a network.

    $\Sigma v = \frac1n\sum_\mu H_\mu(H_\mu v) - H(Hv)$ with per-sample Hessians
    $H_\mu = \nabla^2\ell(\theta; x_\mu, y_\mu)$ (docs/THEORY.md §5.2), three sweeps of
    per-sample Hessian-vector products per application (vmapped over the n samples: memory
    n · P).

    **Arguments:**

    - `per_sample_loss`: ℓ(parameters, x, y) for one sample, a scalar.
    - `parameters`: the pytree θ; `data`: the n samples; `key`: the Lanczos start.
    - `num_iterations`: Lanczos iterations on Σ (default min(P, 32)).
    - `direction`: a pytree like `parameters`: instead of the top of Σ, the spread along it,
      $(v^{\rm T}\Sigma v / v^{\rm T}v)^{1/2}$ (Wu's older code, with v the top Hessian
      eigenvector, `hessian_top_eigenpairs`).

    **Returns:** s, a scalar.
    """
    theta, flat_loss, _ = _flat(per_sample_loss, parameters)
    dim = theta.shape[0]

    def covariance_times(vector):
        images = jax.vmap(lambda x, y: _hvp(flat_loss, theta, vector, x, y))(
            data.inputs, data.targets)
        second = jax.vmap(lambda v, x, y: _hvp(flat_loss, theta, v, x, y))(
            images, data.inputs, data.targets)
        full_loss = lambda p: jnp.mean(jax.vmap(flat_loss, (None, 0, 0))(  # noqa: E731
            p, data.inputs, data.targets))
        return jnp.mean(second, 0) - _hvp(full_loss, theta, jnp.mean(images, 0))

    if direction is not None:
        vector = ravel_pytree(direction)[0]
        top = jnp.dot(vector, covariance_times(vector)) / jnp.dot(vector, vector)
    else:
        num_iterations = _check_iterations(1, min(dim, 32) if num_iterations is None
                                           else num_iterations, dim)
        top = lanczos(covariance_times, dim, num_iterations, key, theta.dtype)[0][-1]
    return jnp.sqrt(jnp.maximum(top, 0.0))


@eqx.filter_jit
def gradient_noise_trace(per_sample_loss: Callable, parameters, data: Dataset, *,
                         batch_size: int | None = None, replacement: bool = False,
                         chunk_size: int = 256) -> jax.Array:
    r"""The trace of SGD's gradient-noise covariance at θ (Mori et al. eq. 24).

    $\mathcal N = \frac1n\sum_\mu|\nabla\ell_\mu - \nabla L|^2$
    $(= \frac1n\sum_\mu|\nabla\ell_\mu|^2 - |\nabla L|^2)$, the trace of the per-sample
    gradient covariance; with `batch_size` B, ${\rm Tr}\,\Sigma = p\,\mathcal N$ with
    $p = \frac{n-B}{B(n-1)}$ (without replacement, their eq. 24) or $1/B$ (with). Mori et al.
    find $\mathcal N \propto L$ late in training (docs/THEORY.md §3.5). Per-sample gradients
    are taken `chunk_size` samples at a time (`lax.map`), so memory is chunk_size · P.

    **Returns:** 𝒩 (no `batch_size`) or Tr Σ, a scalar.
    """
    theta, flat_loss, _ = _flat(per_sample_loss, parameters)
    gradient = jax.grad(flat_loss)

    def full_loss(p):
        return jnp.mean(jax.vmap(flat_loss, (None, 0, 0))(p, data.inputs, data.targets))

    mean_gradient = jax.grad(full_loss)(theta)
    squares = jax.lax.map(
        lambda sample: jnp.sum((gradient(theta, *sample) - mean_gradient) ** 2),
        (data.inputs, data.targets), batch_size=min(chunk_size, data.num_samples))
    spread = jnp.mean(squares)
    if batch_size is None:
        return spread
    return minibatch_factor(batch_size, data.num_samples, replacement) * spread
