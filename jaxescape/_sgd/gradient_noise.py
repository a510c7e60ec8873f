r"""The minibatch gradient noise of a model and its tail index (Şimşekli, Sagun & Gürbüzbalaban
2019).

At parameters θ the noise of a minibatch $\mathcal B$ of size B is
$U_B = \nabla L_{\mathcal B}(\theta) - \nabla L(\theta)$, with
$\nabla L_{\mathcal B} = \frac1B\sum_{\mu\in\mathcal B}\nabla\ell_\mu$. Şimşekli et al. estimate
its tail index α with the block-sum estimator of Mohammadi, Mohammadpour & Ogata (2015)
(`tail_index`) and find α < 2 in networks; by the central limit theorem the noise of a
finite-variance per-sample gradient tends to a Gaussian (α = 2) as B grows.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax.flatten_util import ravel_pytree

from .._tail_index import TailIndexEstimate, tail_index
from .data import Dataset


def _check_batches(batch_size, num_batches, num_samples, replacement):
    if not isinstance(batch_size, int | np.integer) or not (
        1 <= batch_size <= (num_samples - (not replacement))
    ):
        limit = "n" if replacement else "n − 1 (without replacement B = n has no noise)"
        raise ValueError(f"batch_size must be an integer between 1 and {limit} = "
                         f"{num_samples - (not replacement)}, got {batch_size!r}")
    if not isinstance(num_batches, int | np.integer) or num_batches < 1:
        raise ValueError(f"num_batches must be a positive integer, got {num_batches!r}")


def _without_replacement(key, num_samples, batch_size):
    """B distinct indices of n, uniformly (Floyd's algorithm: O(B²) work, not O(n log n) as a
    permutation): for j = n − B, …, n − 1 draw t uniform in 0..j and keep t unless already
    kept, else j."""
    draws = jr.randint(key, (batch_size,), 0, jnp.arange(num_samples - batch_size + 1,
                                                         num_samples + 1))

    def body(k, kept):
        j = num_samples - batch_size + k
        taken = jnp.any((kept == draws[k]) & (jnp.arange(batch_size) < k))
        return kept.at[k].set(jnp.where(taken, j, draws[k]))

    return jax.lax.fori_loop(0, batch_size, body, jnp.zeros(batch_size, draws.dtype))


@eqx.filter_jit
def _noise(per_sample_loss, parameters, data, key, batch_size, num_batches, replacement,
           chunk_size):
    theta, unravel = ravel_pytree(parameters)
    gradient = jax.grad(lambda p, x, y: per_sample_loss(unravel(p), x, y))
    num_samples = data.num_samples
    per_sample = jax.lax.map(lambda sample: gradient(theta, *sample),
                             (data.inputs, data.targets),
                             batch_size=min(chunk_size, num_samples))
    mean = jnp.mean(per_sample, axis=0)

    def one(batch_key):
        indices = (jr.randint(batch_key, (batch_size,), 0, num_samples) if replacement
                   else _without_replacement(batch_key, num_samples, batch_size))
        return jnp.mean(per_sample[indices], axis=0) - mean

    return jax.lax.map(one, jr.split(key, num_batches),
                       batch_size=max(1, min(num_batches, chunk_size * 64 // batch_size)))


def minibatch_gradient_noise(per_sample_loss: Callable, parameters, data: Dataset,
                             batch_size: int, key: jax.Array, *, num_batches: int = 4096,
                             replacement: bool = False, chunk_size: int = 256) -> jax.Array:
    r"""Independent draws of the minibatch gradient noise $\nabla L_{\mathcal B} - \nabla L$
    at θ.

    The n per-sample gradients are taken once (`chunk_size` at a time, memory n · P); each
    minibatch is B sample indices drawn from its own key (`jax.random.split(key,
    num_batches)`), without replacement by default (as `MinibatchSGD`'s i.i.d. batches).

    **Arguments:**

    - `per_sample_loss`: ℓ(parameters, x, y) for one sample, a scalar (e.g.
      `NetworkModel.per_sample_loss` with the flat θ as `parameters`).
    - `parameters`: the pytree θ; `data`: the n samples; `key`: a JAX key.
    - `batch_size`: B, between 1 and n − 1 (n with `replacement`).
    - `num_batches`: the number of independent minibatches drawn.

    **Returns:** the noise vectors, shape (num_batches, P), P the number of parameters.
    """
    _check_batches(batch_size, num_batches, data.num_samples, replacement)
    return _noise(per_sample_loss, parameters, data, key, int(batch_size), int(num_batches),
                  bool(replacement), int(chunk_size))


class GradientNoiseTailIndex(NamedTuple):
    """The tail index of the gradient noise: `estimate` (a `TailIndexEstimate`: α, 1/α, their
    SEs, the block size K₁ and number of blocks K₂, in minibatches) and the number of parameter
    coordinates used (those whose noise is never exactly zero); `alpha` and `alpha_se` are the
    estimate's."""

    estimate: TailIndexEstimate
    num_coordinates: int

    @property
    def alpha(self) -> float:
        return self.estimate.alpha

    @property
    def alpha_se(self) -> float:
        return self.estimate.alpha_se


def gradient_noise_tail_index(per_sample_loss: Callable, parameters, data: Dataset,
                              batch_size: int, key: jax.Array, *, num_batches: int = 4096,
                              block_size: int | None = None, replacement: bool = False,
                              chunk_size: int = 256) -> GradientNoiseTailIndex:
    r"""The tail index α of the minibatch gradient noise at θ by the block-sum estimator.

    Şimşekli et al. (2019) pool the coordinates of the noise vectors as samples of one SαS law.
    Coordinates differ in scale, and a block that sums coordinates of different scales biases
    the estimator, so here each coordinate's K = `num_batches` independent draws form its own
    blocks of K₁ minibatches: the estimate of 1/α is the mean over coordinates and blocks,
    and its standard error comes from the K₂ independent block averages (`tail_index` with
    `columns=True`), valid however the coordinates depend on one another. Coordinates whose
    noise is exactly zero in some draw (e.g. weights of a constant input) are left out.

    The block-sum estimator assumes an α-stable law: for noise of finite variance that is not
    Gaussian it reads below 2 (docs/THEORIES.md §8), so an estimate near 2 does not show a
    heavy tail.

    **Arguments:** as `minibatch_gradient_noise`, and `block_size`: K₁ (default ⌊√K⌋).

    **Returns:** a `GradientNoiseTailIndex`.
    """
    noise = np.asarray(minibatch_gradient_noise(
        per_sample_loss, parameters, data, batch_size, key, num_batches=num_batches,
        replacement=replacement, chunk_size=chunk_size), np.float64)
    used = np.all(noise != 0, axis=0) & np.all(np.isfinite(noise), axis=0)
    if not used.any():
        raise ValueError("the gradient noise is zero or not finite in every coordinate at these "
                         "parameters (no coordinate to estimate the tail index from)")
    estimate = tail_index(noise[:, used], block_size, columns=True)
    return GradientNoiseTailIndex(estimate, int(used.sum()))
