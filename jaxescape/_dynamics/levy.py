r"""Gradient descent driven by symmetric α-stable Lévy noise, stepped as its Euler chain.

$dX = -\nabla L(X)\,dt + \varepsilon\,dL^\alpha_t\ (+ \sqrt{2T}\,dW_t)$, where $L^\alpha$ has
independent coordinates (or is isotropic, below), each a standard SαS Lévy process
($E\,e^{iuL_t} = e^{-t|u|^\alpha}$, `scipy.stats.levy_stable`'s S1 with β = 0, scale 1; α = 2
is Brownian motion with variance 2t).
The step is

$$X_{n+1} = X_n - \nabla L(X_n)\,\Delta t + \varepsilon\,\Delta t^{1/\alpha} Z_n
            + \sqrt{2T\Delta t}\,\xi_n,$$

ξ_n standard normal: the Euler scheme for Lévy-driven SDEs (Protter & Talay 1997), whose
increments are exact in law. Z_n has independent SαS coordinates (`_noise.stable_from_uniforms`;
the Lévy measure lives on the axes, so in d > 1 the big jumps go along the coordinate axes, the
model of Şimşekli et al. 2019), or with `isotropic=True` it is the rotation-invariant α-stable
vector $Z = \sqrt{A}\,G$, $E\,e^{iu\cdot Z} = e^{-|u|^\alpha}$, with A positive (α/2)-stable
(`_noise.positive_stable_from_uniforms`) and G ~ N(0, 2I) (Samorodnitsky & Taqqu 1994,
Prop. 2.5.2): jumps in every direction. In 1-D both are the same law.

Escape is tested on the iterates only. A jump can cross a boundary and land outside within one
step, so there is no continuous path between the iterates to bridge, and the Brownian-bridge
correction of the SDEs does not apply (`StepOptions.crossing_correction` is ignored): the process
is the chain itself, and `levy_chain_mean_exit_time` (the exact mean exit time of this chain) is
its reference. Its bias against the continuous process is measured in docs/THEORIES.md.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .. import _noise
from .._arrays import float_array
from .._landscapes import AbstractLandscape
from .._particle import AbstractParticleProcess, StepOptions, all_finite, default_step_block


def _concrete(value):
    """The value as a NumPy array, or None when it is traced (it cannot be checked eagerly)."""
    try:
        return np.asarray(value)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


class LevyLangevin(AbstractParticleProcess):
    r"""$dX = -\nabla L(X)\,dt + \varepsilon\,dL^\alpha_t + \sqrt{2T}\,dW_t$, with SαS noise of
    independent coordinates (or isotropic), stepped as its Euler chain (module docstring).

    **Arguments:**

    - `landscape`: the loss L.
    - `alpha`: the stability index in (0, 2] (2: Gaussian, variance 2ε²Δt per step).
    - `epsilon`: the noise scale ε > 0.
    - `temperature`: the optional Gaussian part's T >= 0; None (default) draws no normals.
    - `isotropic`: rotation-invariant noise instead of independent coordinates (static).

    Hyperparameters are arrays: sweeping them does not recompile.
    """

    landscape: AbstractLandscape
    alpha: jax.Array = eqx.field(converter=float_array)
    epsilon: jax.Array = eqx.field(converter=float_array)
    temperature: jax.Array | None = eqx.field(default=None, converter=lambda t: t if t is None
                                              else float_array(t))
    isotropic: bool = eqx.field(static=True, default=False)

    def step_block(self, dim: int) -> int | None:
        """None on a batch-invariant landscape (elementwise steps); else blocks."""
        return None if self.landscape.batch_invariant else default_step_block(dim)

    def check_parameters(self) -> None:
        """α in (0, 2], ε > 0 and T >= 0, all finite (skipped for traced values)."""
        checks = (("alpha", self.alpha, lambda a: (a > 0) & (a <= 2), "in (0, 2]"),
                  ("epsilon", self.epsilon, lambda e: e > 0, "> 0"),
                  ("temperature", self.temperature, lambda t: t >= 0, ">= 0"))
        for name, value, allowed, text in checks:
            concrete = None if value is None else _concrete(value)
            if concrete is not None and not np.all(np.isfinite(concrete) & allowed(concrete)):
                raise ValueError(f"{name} must be finite and {text}, got {concrete}")

    def check_start(self, position: jax.Array) -> None:
        """The landscape's dimension matches and its loss and gradient are finite there."""
        if self.landscape.dim != position.shape[0]:
            raise ValueError(
                f"initial_position has shape {position.shape} but the landscape has dim "
                f"{self.landscape.dim}: expected shape ({self.landscape.dim},)"
            )
        for name, value in (("loss", self.landscape.loss(position)),
                            ("gradient", self.landscape.gradient(position))):
            if not bool(jnp.all(jnp.isfinite(value))):
                raise ValueError(f"the landscape's {name} is not finite at initial_position: "
                                 f"{np.asarray(value)}")

    def _num_uniforms(self, dim: int) -> int:
        jumps = 2 + dim if self.isotropic else 2 * dim
        return jumps + (0 if self.temperature is None else dim)

    def num_streams(self, dim: int, dtype) -> int:
        """Two uniforms per coordinate for the stable variates (isotropic: two for A and one
        per coordinate for G), one more per coordinate for the Gaussian part."""
        return _noise.num_streams(self._num_uniforms(dim), dtype)

    def loss(self, y: jax.Array) -> jax.Array:
        return self.landscape.loss(y)

    def splitting_process(self, position: jax.Array) -> "LevyLangevin":
        """Splitting's estimator τ = T₀ + (1/p − 1)L + R assumes that a path from A reaches Σ
        before B; a jump can leave from A in one step, so it is refused for α < 2 (measured:
        182 of 2000 loop particles from A escaped without reaching Σ)."""
        alpha = _concrete(self.alpha)
        if alpha is None or np.any(alpha < 2):
            raise ValueError(
                f"splitting needs continuous paths (levels crossed in order), but alpha = "
                f"{alpha} < 2 makes jumps that skip levels: use simulate"
            )
        return self

    def linearised_covariance(self, position: jax.Array):
        """For α = 2 (splitting's only case) the process is the SDE with D = ε² + T: the
        covariance of its Ornstein–Uhlenbeck linearisation at `position`
        (J C + C Jᵀ + 2D·I = 0, J = −∇²L), from which splitting places its default levels."""
        hessian = np.asarray(jax.hessian(self.landscape.loss)(position), np.float64)
        temperature = 0.0 if self.temperature is None else float(self.temperature)
        diffusion = float(self.epsilon) ** 2 + temperature
        covariance = scipy.linalg.solve_continuous_lyapunov(
            -hessian, -2 * diffusion * np.eye(position.shape[0]))
        return 0.5 * (covariance + covariance.T)

    def increment(self, uniforms: list, dt: jax.Array, dim: int, noise: str = "gaussian"):
        """The noise of one step from the particle's uniforms (shape (dim,))."""
        dtype = uniforms[0].dtype
        alpha = self.alpha.astype(dtype)
        if self.isotropic:
            mixing = _noise.positive_stable_from_uniforms(uniforms[0], uniforms[1], alpha / 2)
            gaussian = jnp.stack([_noise.normal_from_uniform(u) for u in uniforms[2:2 + dim]])
            stable, used = jnp.sqrt(2 * mixing) * gaussian, 2 + dim
        else:
            stable = jnp.stack([_noise.stable_from_uniforms(uniforms[2 * i], uniforms[2 * i + 1],
                                                            alpha) for i in range(dim)])
            used = 2 * dim
        jump = self.epsilon.astype(dtype) * jnp.power(dt, 1 / alpha) * stable
        if self.temperature is None:
            return jump
        transform = (_noise.rademacher_from_uniform if noise == "rademacher"
                     else _noise.normal_from_uniform)
        normals = jnp.stack([transform(u) for u in uniforms[used:used + dim]])
        return jump + jnp.sqrt(2 * self.temperature.astype(dtype) * dt) * normals

    def step(self, state, keys, identity, step, dt, criteria, options=StepOptions(),
             running=None):
        """One Euler step of the chain with the escape tests on the new iterate (no crossing
        correction: `options.crossing_correction` is ignored; `options.noise` only sets the
        Gaussian part's increments)."""
        dim = state.shape[0]
        uniforms = _noise.particle_uniforms(keys, identity, step, state.dtype)
        new_state = (state - self.landscape.gradient(state) * dt
                     + self.increment(uniforms, dt, dim, options.noise))
        if running is not None:
            new_state = jnp.where(running, new_state, state)
        outside = [criterion.is_outside(new_state) for criterion in criteria]
        return new_state, outside, all_finite(new_state)
