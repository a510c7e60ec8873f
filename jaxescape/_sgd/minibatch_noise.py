r"""The SDE of minibatch SGD with the exact gradient-noise covariance of a finite data set.

$d\theta = -\nabla L\,dt + \sqrt{\eta\,\Sigma(\theta)}\,dW$, $t = \eta k$ (docs/THEORY.md §1.2, Mori
eq. 4), with the minibatch covariance computed from all n per-sample gradients
$g_\mu = \nabla\ell_\mu$ (§1.1, Mori eq. 8):

$$\Sigma(\theta) = p\Big(\frac1n\sum_\mu g_\mu g_\mu^{\rm T} - \nabla L\,\nabla L^{\rm T}\Big),
\quad p = \frac1B\ \text{(with replacement)},\quad p = \frac{n-B}{B(n-1)}\ \text{(without)}.$$

Unlike the papers' models (`MoriLossNoise`, `MengPowerLawNoise`) nothing is approximated: this is
the Gaussian diffusion whose drift and per-step covariance are exactly those of the SGD chain
$\theta_{k+1} = \theta_k - \eta\nabla L_{B_k}(\theta_k)$ (Euler–Maruyama at dt = η reproduces
both, §7.1). Each evaluation costs all n per-sample gradients.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .data import Dataset
from .._dynamics.sde import AbstractDynamics
from .models import AbstractModel
from .._arrays import float_array


PER_SAMPLE_STEP_BLOCK_CPU = 64


def minibatch_factor(batch_size, num_samples: int, replacement: bool):
    """p with Σ = p·(per-sample gradient covariance): 1/B, or (n − B)/(B(n − 1)) (§1.1)."""
    if replacement:
        return 1 / batch_size
    return (num_samples - batch_size) / (batch_size * max(num_samples - 1, 1))


class MinibatchNoiseSDE(AbstractDynamics):
    r"""$d\theta = -\nabla L\,dt + \sqrt{\eta\,\Sigma(\theta)}\,dW$ with Σ the exact minibatch
    covariance of `model` on `data` (module docstring; D = ηΣ/2).

    **Arguments:**

    - `model`: the per-sample loss ℓ(θ; x, y).
    - `data`: the training set (n samples).
    - `learning_rate`: η > 0 (an array: sweeping it does not recompile).
    - `batch_size`: B, between 1 and n (an array).
    - `replacement`: minibatches drawn with replacement (p = 1/B) instead of without.
    - `per_sample_noise`: draw the noise as $\sqrt{\eta p/n}\sum_\mu (g_\mu - \nabla L)\xi_\mu$
      with one standard normal ξ_μ per sample (n normals a step, `noise_dim` = n): the same
      Gaussian law without the dim × dim covariance and its eigendecomposition (dim³ a step,
      against n·dim); the numbers differ from the default's. The step applies g as
      `CentredGradientFactor`, one reverse pass over the n samples, without forming the n
      per-sample gradients (measured: benchmarks/README.md §10).
    """

    model: AbstractModel
    data: Dataset
    learning_rate: jax.Array = eqx.field(converter=float_array)
    batch_size: jax.Array = eqx.field(converter=float_array)
    replacement: bool = eqx.field(static=True, default=False)
    per_sample_noise: bool = eqx.field(static=True, default=False)

    def noise_kind(self):
        return "matrix"

    def step_block(self, dim: int) -> int | None:
        """With `per_sample_noise` on a CPU, blocks of 64 slots: as fast as 256 for this heavy
        step (measured: benchmarks/README.md §10, fixed step blocks) with a quarter of the
        smallest pool, which a straggler keeps stepping in the tail."""
        if self.per_sample_noise and jax.default_backend() == "cpu":
            return PER_SAMPLE_STEP_BLOCK_CPU
        return super().step_block(dim)

    def noise_dim(self, dim: int) -> int:
        return self.data.num_samples if self.per_sample_noise else dim

    def per_sample_gradients(self, y: jax.Array) -> jax.Array:
        """(∇ℓ_μ(θ))_μ, shape (n, dim)."""
        gradient = jax.grad(self.model.per_sample_loss)
        return jax.vmap(gradient, (None, 0, 0))(y, self.data.inputs, self.data.targets)

    def _centred_gradients(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(g_μ − ∇L)_μ, shape (n, dim), and the minibatch factor p."""
        gradients = self.per_sample_gradients(y)
        factor = minibatch_factor(self.batch_size, self.data.num_samples, self.replacement)
        return gradients - jnp.mean(gradients, axis=0), factor

    def covariance(self, y: jax.Array) -> jax.Array:
        """Σ(θ), shape (dim, dim)."""
        centred, factor = self._centred_gradients(y)
        return factor * (centred.T @ centred) / self.data.num_samples

    def diffusion_matrix(self, y: jax.Array) -> jax.Array:
        """D(θ) = ηΣ(θ)/2, shape (dim, dim)."""
        return 0.5 * self.learning_rate * self.covariance(y)

    def drift(self, t, y):
        return -jax.grad(self.loss)(y)

    def _per_sample_scale(self, y: jax.Array) -> jax.Array:
        """sqrt(ηp/n): g = sqrt(ηp/n)·(g_μ − ∇L)_μᵀ has g gᵀ = ηΣ."""
        factor = minibatch_factor(self.batch_size, self.data.num_samples, self.replacement)
        return jnp.sqrt(self.learning_rate * factor / self.data.num_samples).astype(y.dtype)

    def diffusion(self, t, y):
        if self.per_sample_noise:  # g of shape (dim, n): g gᵀ = ηΣ
            return (self._per_sample_scale(y) * self._centred_gradients(y)[0].T).astype(y.dtype)
        scaled = self.learning_rate * self.covariance(y)
        if y.shape[0] == 1:
            return jnp.sqrt(jnp.maximum(scaled, 0.0)).astype(y.dtype)
        eigenvalues, vectors = jnp.linalg.eigh(0.5 * (scaled + scaled.T))
        return ((vectors * jnp.sqrt(jnp.maximum(eigenvalues, 0.0))) @ vectors.T).astype(y.dtype)

    def diffusion_operator(self, t, y):
        """With `per_sample_noise`, g as `CentredGradientFactor` (never formed); else g."""
        if self.per_sample_noise:
            return CentredGradientFactor(self.model, self.data, y, self._per_sample_scale(y))
        return self.diffusion(t, y)

    def fused_increment(self, t, y, dt, normals):
        r"""With `per_sample_noise`, $-\nabla L\,\Delta t + g\sqrt{\Delta t}\,\xi =
        \nabla_\theta\sum_\mu w_\mu\ell_\mu(\theta)$ with
        $w_\mu = -\Delta t/n + c\sqrt{\Delta t}\,(\xi_\mu - \bar\xi)$: one reverse pass over
        the n samples instead of two (L is the mean of the ℓ_μ, `AbstractModel.loss`; a model
        that overrides `loss` is stepped apart). Else None."""
        if not self.per_sample_noise or type(self.model).loss is not AbstractModel.loss:
            return None
        factor = self.diffusion_operator(t, y)
        sqrt_dt = jnp.sqrt(dt).astype(y.dtype)
        centred = normals - jnp.mean(normals)
        weights = (-dt / self.data.num_samples + factor.scale * sqrt_dt * centred).astype(y.dtype)
        increment = jax.grad(
            lambda theta: jnp.dot(weights, self.model.per_sample_losses(theta, self.data)))(y)
        return increment.astype(y.dtype), factor

    def loss(self, y):
        return self.model.loss(y, self.data)

    def check_parameters(self):
        rate = np.asarray(self.learning_rate)
        if rate.shape != () or not np.isfinite(rate) or rate <= 0:
            raise ValueError(f"learning_rate must be a positive finite scalar (> 0), got {rate}")
        batch, n = np.asarray(self.batch_size), self.data.num_samples
        if batch.shape != () or not 1 <= batch <= n:
            raise ValueError(
                f"batch_size must be between 1 and the data set size n = {n}, got {batch}"
            )


class CentredGradientFactor(eqx.Module):
    r"""$g = c\,(g_\mu - \nabla L)_\mu^{\rm T}$, shape (dim, n), as a linear operator that is never
    formed (c = sqrt(ηp/n), `MinibatchNoiseSDE(per_sample_noise=True)`):

    - $g\xi = c\sum_\mu(\xi_\mu - \bar\xi)\,g_\mu = c\,\nabla_\theta\sum_\mu(\xi_\mu - \bar\xi)
      \,\ell_\mu(\theta)$: one reverse-mode pass over the n samples (since
      $\sum_\mu \xi_\mu \nabla L = \sum_\mu \bar\xi\, g_\mu$), instead of n per-sample gradients;
    - $v^{\rm T}g = c\,(\partial_v\ell_\mu - \overline{\partial_v\ell})_\mu$: one forward-mode pass
      (the crossing corrections' variance along v is $|v^{\rm T}g|^2$).
    """

    model: AbstractModel
    data: Dataset
    position: jax.Array
    scale: jax.Array

    def _losses(self, theta):
        return self.model.per_sample_losses(theta, self.data)

    def __matmul__(self, normals: jax.Array) -> jax.Array:
        centred = normals - jnp.mean(normals)
        gradient = jax.grad(lambda theta: jnp.dot(centred, self._losses(theta)))(self.position)
        return (self.scale * gradient).astype(self.position.dtype)

    def __rmatmul__(self, vector: jax.Array) -> jax.Array:
        _, directional = jax.jvp(self._losses, (self.position,), (vector.astype(
            self.position.dtype),))
        return (self.scale * (directional - jnp.mean(directional))).astype(self.position.dtype)
