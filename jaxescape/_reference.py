"""Exact references for a simulated 1-D dynamics: its own drift and diffusion, by quadrature."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._dynamics import AbstractDynamics
from ._theory import log_mfpt_quadrature


_CHUNK = 2**14


@eqx.filter_jit
def _drift_and_diffusion(dynamics, points):
    """A(x) and D(x) = |g(x)|²/2 of a 1-D dynamics at `points` (shape (n,))."""
    def one(x):
        y = jnp.reshape(x, (1,))
        return dynamics.drift(0.0, y)[0], 0.5 * jnp.sum(dynamics.diffusion(0.0, y) ** 2)

    return jax.vmap(one)(points)


def numpy_coefficients(dynamics):
    """NumPy drift A(x) and diffusion coefficient D(x) of a 1-D dynamics, for the quadratures.

    Evaluated in float64 (the dynamics' own parameters as stored), in fixed-size chunks by one
    jitted function, so the many grids of a sweep share one compilation per dynamics type (eager
    `vmap` would compile every primitive per grid size).
    """
    dtype = jnp.float64

    @jax.enable_x64(True)
    def evaluate(x):
        x = np.asarray(x, np.float64)
        flat = x.reshape(-1)
        drift, diffusion = np.empty(flat.size), np.empty(flat.size)
        for begin in range(0, flat.size, _CHUNK):
            piece = flat[begin:begin + _CHUNK]
            padded = np.pad(piece, (0, _CHUNK - piece.size), mode="edge")
            a, d = _drift_and_diffusion(dynamics, jnp.asarray(padded, dtype))
            drift[begin:begin + piece.size] = np.asarray(a)[: piece.size]
            diffusion[begin:begin + piece.size] = np.asarray(d)[: piece.size]
        return drift.reshape(x.shape), diffusion.reshape(x.shape)

    return (lambda x: evaluate(x)[0]), (lambda x: evaluate(x)[1])


def exact_log_mfpt(
    dynamics: AbstractDynamics, start, reflecting, absorbing, num_points: int = 200_001
) -> float:
    """log of the exact mean first-passage time of a 1-D autonomous dynamics (THEORY.md §1.4).

    The SDE dy = f(y) dt + g(y) dW has diffusion coefficient D = g²/2 (summed over noise
    columns for matrix noise); reflecting at `reflecting`, absorbing at `absorbing`.
    """
    drift, diffusion_coefficient = numpy_coefficients(dynamics)
    return log_mfpt_quadrature(
        drift, diffusion_coefficient, float(np.squeeze(start)), float(reflecting),
        float(absorbing), num_points,
    )


def exact_mfpt(dynamics: AbstractDynamics, start, reflecting, absorbing, num_points=200_001):
    """The exact mean first-passage time (see `exact_log_mfpt`); inf beyond float range."""
    with np.errstate(over="ignore"):
        return float(np.exp(exact_log_mfpt(dynamics, start, reflecting, absorbing, num_points)))
