"""Exact references for a simulated 1-D dynamics: its own drift and diffusion, by quadrature."""

import jax
import jax.numpy as jnp
import numpy as np

from ._dynamics import AbstractDynamics
from ._theory import log_mfpt_quadrature


def _coefficients(dynamics: AbstractDynamics):
    def drift(x):
        points = jnp.asarray(x, jnp.result_type(float))[:, None]
        return np.asarray(jax.vmap(lambda y: dynamics.drift(0.0, y)[0])(points), np.float64)

    def diffusion_coefficient(x):
        points = jnp.asarray(x, jnp.result_type(float))[:, None]
        g = jax.vmap(lambda y: jnp.reshape(dynamics.diffusion(0.0, y), (-1,)))(points)
        return 0.5 * np.sum(np.asarray(g, np.float64) ** 2, axis=1)

    return drift, diffusion_coefficient


def exact_log_mfpt(
    dynamics: AbstractDynamics, start, reflecting, absorbing, num_points: int = 200_001
) -> float:
    """log of the exact mean first-passage time of a 1-D autonomous dynamics (THEORY.md §1.4).

    The SDE dy = f(y) dt + g(y) dW has diffusion coefficient D = g²/2 (summed over noise
    columns for matrix noise); reflecting at `reflecting`, absorbing at `absorbing`.
    """
    drift, diffusion_coefficient = _coefficients(dynamics)
    return log_mfpt_quadrature(
        drift, diffusion_coefficient, float(np.squeeze(start)), float(reflecting),
        float(absorbing), num_points,
    )


def exact_mfpt(dynamics: AbstractDynamics, start, reflecting, absorbing, num_points=200_001):
    """The exact mean first-passage time (see `exact_log_mfpt`); inf beyond float range."""
    with np.errstate(over="ignore"):
        return float(np.exp(exact_log_mfpt(dynamics, start, reflecting, absorbing, num_points)))
