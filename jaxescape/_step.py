r"""The pure single-particle Euler–Maruyama step (no batch axis; the driver vmaps it).

$y_{n+1} = y_n + f(t_n, y_n)\,\Delta t + g(t_n, y_n)\,\sqrt{\Delta t}\,\xi_n$, $\xi_n \sim N(0, I)$
(Itô; Kloeden & Platen 1992, §9.1). Strong order 1/2, weak order 1.
"""

import jax
import jax.numpy as jnp

from ._dynamics import AbstractDynamics
from ._fused import coordinate_sum


def euler_maruyama_step(
    dynamics: AbstractDynamics, t: jax.Array, y: jax.Array, dt: jax.Array, normals: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One step from y at time t with standard normals `normals` of shape (noise_dim,).

    Returns the new position and the diffusion g(t, y) used (for crossing corrections).
    """
    drift = dynamics.drift(t, y)
    diffusion = dynamics.diffusion(t, y)
    sqrt_dt = jnp.sqrt(dt)
    if dynamics.noise_kind() == "diagonal":
        increment = diffusion * normals
    else:
        increment = diffusion @ normals
    return y + drift * dt + increment * sqrt_dt, diffusion


def normal_variance(dynamics: AbstractDynamics, diffusion: jax.Array, normal: jax.Array):
    """Variance per unit time of the noise projected on `normal`: |g^T n|²."""
    if dynamics.noise_kind() == "diagonal":
        return coordinate_sum((diffusion * normal) ** 2)
    return coordinate_sum((normal @ diffusion) ** 2)
