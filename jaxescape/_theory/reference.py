"""Exact references for a simulated 1-D dynamics: its own drift and diffusion, by quadrature."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._dynamics.sde import AbstractDynamics
from .quadrature import log_mfpt_quadrature


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

    # The float64 grid meets the parameters as stored (often float32): a deliberate mix, so it
    # keeps standard promotion when the caller asks for strict.
    @jax.numpy_dtype_promotion("standard")
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
    """log of the exact mean first-passage time of a 1-D autonomous dynamics (docs/THEORY.md §1.4).

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


def _interval_mfpt_trapezoid(grid, drift, diffusion, start_index):
    """T(x0) on an interval with both ends absorbing, by nested trapezoid sums (float64)."""
    steps = np.diff(grid)

    def cumulative(values):
        return np.concatenate(([0.0], np.cumsum(0.5 * steps * (values[:-1] + values[1:]))))

    log_psi = cumulative(drift / diffusion)
    log_psi -= log_psi.max()  # T is unchanged by a constant factor in ψ
    inverse_psi = np.exp(-log_psi)
    inner = cumulative(np.exp(log_psi) / diffusion)
    constant = cumulative(inner * inverse_psi)[-1] / cumulative(inverse_psi)[-1]
    return cumulative((constant - inner) * inverse_psi)[start_index]


def interval_mfpt_quadrature(drift, diffusion_coefficient, start, lower, upper,
                             num_points: int = 200_001) -> float:
    r"""Exact 1-D mean exit time from (lower, upper), both ends absorbing (Gardiner §5.2.7).

    For $dx = A\,dt + \sqrt{2D}\,dW$, $(\psi T')' = -\psi/D$ with $T(a) = T(b) = 0$ gives
    $T(x_0) = \int_a^{x_0}\frac{C - u(y)}{\psi(y)}dy$, $u(y) = \int_a^y\frac{\psi}{D}$,
    $C = \int_a^b\frac{u}{\psi}\Big/\int_a^b\frac1\psi$, $\psi = e^{\int_a^x A/D}$ ([D]). Nested
    trapezoid rule on a grid through x0, Richardson-combined with every second point (O(h⁴)).
    Plain float64: for exponents $\int A/D$ up to a few hundred.
    """
    start, lower, upper = float(start), float(lower), float(upper)
    if not lower < start < upper:
        raise ValueError(f"start must lie strictly between lower={lower} and upper={upper}, "
                         f"got {start}")
    count = max(int(num_points) // 2, 51)
    below = np.linspace(lower, start, 2 * round(count * (start - lower) / (upper - lower)) + 3)
    above = np.linspace(start, upper, 2 * round(count * (upper - start) / (upper - lower)) + 3)
    grid = np.concatenate([below[:-1], above])
    start_index = below.size - 1
    drift_values = np.asarray(drift(grid), np.float64)
    diffusion_values = np.asarray(diffusion_coefficient(grid), np.float64)
    if not np.all(np.isfinite(drift_values)) or not np.all(diffusion_values > 0):
        raise ValueError("drift must be finite and diffusion_coefficient positive on the interval")
    fine = _interval_mfpt_trapezoid(grid, drift_values, diffusion_values, start_index)
    coarse = _interval_mfpt_trapezoid(grid[::2], drift_values[::2], diffusion_values[::2],
                                      start_index // 2)
    return float((4 * fine - coarse) / 3)


def exact_mfpt_interval(dynamics: AbstractDynamics, start, lower, upper,
                        num_points: int = 200_001) -> float:
    """Exact mean exit time of a 1-D dynamics from (lower, upper), both ends absorbing.

    E.g. a `LossAbove` exit from a 1-D quadratic loss. D = g²/2 as in `exact_log_mfpt`.
    """
    drift, diffusion_coefficient = numpy_coefficients(dynamics)
    return interval_mfpt_quadrature(drift, diffusion_coefficient, float(np.squeeze(start)),
                                    lower, upper, num_points)
