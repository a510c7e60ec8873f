r"""The pure single-particle Euler–Maruyama step (no batch axis; the driver vmaps it).

$y_{n+1} = y_n + f(t_n, y_n)\,\Delta t + g(t_n, y_n)\,\sqrt{\Delta t}\,\xi_n$, $\xi_n \sim N(0, I)$
(Itô; Kloeden & Platen 1992, §9.1). Strong order 1/2, weak order 1. `escape_step` adds the
particle's counter-based noise and its escape tests, with the Brownian-bridge crossing
probabilities of the criteria between the two positions: the part of a step that `simulate`
and splitting share.
"""

import jax
import jax.numpy as jnp

from .. import _noise
from .._fused import coordinate_sum


def euler_maruyama_step(
    dynamics, t: jax.Array, y: jax.Array, dt: jax.Array, normals: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One step from y at time t with standard normals `normals` of shape (noise_dim,).

    Returns the new position and the diffusion g(t, y) used (for crossing corrections), as
    `dynamics.diffusion_operator` gives it. A dynamics whose `fused_increment` computes
    f Δt + g √Δt ξ in one pass is stepped by it.
    """
    fused = dynamics.fused_increment(t, y, dt, normals)
    if fused is not None:
        increment, diffusion = fused
        return y + increment, diffusion
    drift = dynamics.drift(t, y)
    diffusion = dynamics.diffusion_operator(t, y)
    sqrt_dt = jnp.sqrt(dt)
    if dynamics.noise_kind() == "diagonal":
        increment = diffusion * normals
    else:
        increment = diffusion @ normals
    return y + drift * dt + increment * sqrt_dt, diffusion


def normal_variance(dynamics, diffusion: jax.Array, normal: jax.Array):
    """Variance per unit time of the noise projected on `normal`: |g^T n|²."""
    if dynamics.noise_kind() == "diagonal":
        return coordinate_sum((diffusion * normal) ** 2)
    return coordinate_sum((normal @ diffusion) ** 2)


def escape_step(dynamics, criteria, keys, identity, step, t, y, dt,
                crossing_correction: bool, noise: str = "gaussian", running=None):
    """One step of one particle from y at time t, with the escape tests of `criteria`.

    The increments and the bridge uniform are the particle's variates at (`identity`, `step`)
    (`_noise.particle_variates`). Returns (new position, each criterion's `is_outside` at it,
    each criterion's crossing probability between y and the new position or None without
    `crossing_correction`, the uniform that samples the crossing); how the crossings combine is
    the caller's.

    With `running` (boolean scalar), a particle that is not running stays at y and the tests
    read that kept position. For a running particle nothing changes; but when the caller writes
    out exactly this position, XLA's CPU backend reads it back for the tests instead of
    recomputing the step (measured: benchmarks/README.md §1).
    """
    normals, uniform = _noise.particle_variates(
        keys, identity, step, dynamics.noise_dim(y.shape[0]), y.dtype, noise
    )
    y_new, diffusion = euler_maruyama_step(dynamics, t, y, dt, normals)
    if running is not None:
        y_new = jnp.where(running, y_new, y)
    outside = [criterion.is_outside(y_new) for criterion in criteria]
    if not crossing_correction:
        return y_new, outside, None, uniform

    def variance(normal):
        return normal_variance(dynamics, diffusion, normal)

    probabilities = [c.crossing_probability(y, y_new, variance, dt) for c in criteria]
    return y_new, outside, probabilities, uniform
