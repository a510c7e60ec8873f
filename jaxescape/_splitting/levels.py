"""Default levels of adaptive multilevel splitting (`estimator.py`) from the dynamics linearised
at the start, an Ornstein–Uhlenbeck process: A = {ξ <= a_level} at the median and Σ at the 90 %
quantile of ξ under its Gaussian stationary law, and G = 2·(span/s)² levels rounded up to a power
of two in [128, 4096] (and within 512 MiB), with s the standard deviation of ξ under that law.
For SGD the same three numbers come from direct runs (`_splitting_sgd.empirical_levels`).
"""

import math

import jax.numpy as jnp
import numpy as np

from .reaction_coordinates import evaluate_coordinate
from .._particle import next_power_of_two


def linearised_law(covariance, xi, x0, num_samples=4096):
    """Median, 90 % quantile and standard deviation of ξ under the Gaussian law of covariance
    `covariance` around x0 (the stationary law of the dynamics linearised at x0)."""
    dtype = x0.dtype
    values, vectors = np.linalg.eigh(covariance)
    if not np.all(np.isfinite(values)) or values.max() <= 0:
        raise ValueError(
            "cannot choose default levels: the noise vanishes at initial_position; pass "
            "a_level, sigma_level and num_levels"
        )
    factor = vectors * np.sqrt(np.clip(values, 0, None))
    rng = np.random.default_rng(0)
    samples = x0[None, :] + jnp.asarray(
        rng.standard_normal((num_samples, x0.shape[0])) @ factor.T, dtype
    )
    values = np.asarray(evaluate_coordinate(xi, samples), np.float64)
    start = float(evaluate_coordinate(xi, x0[None])[0])
    median = max(float(np.quantile(values, 0.5)), start)
    return median, float(np.quantile(values, 0.9)), float(np.std(values))


MIN_AUTO_LEVELS, MAX_AUTO_LEVELS, RECORD_BYTES = 128, 4096, 2**29


def automatic_num_levels(span, spread, total, dim):
    """G = 2·(span/spread)², as a power of two in [128, 4096] and within 512 MiB of records.

    Near the minimum −log P(ξ) grows like ξ²/(2·spread²); at the far end of the span its slope
    is span/spread², so a level spacing spread²/(2·span) keeps the fraction of replicas that pass
    one level above ~e^{-1/2} even in this (pessimistic, harmonic) approximation. Coarser grids
    make many ties (large kills) and inflate the variance.
    """
    wanted = 2 * (span / spread) ** 2 if spread > 0 else MAX_AUTO_LEVELS
    levels = min(next_power_of_two(math.ceil(wanted)), MAX_AUTO_LEVELS)
    memory_cap = RECORD_BYTES // (total * (dim + 2) * 4) - 1
    return max(MIN_AUTO_LEVELS, min(levels, next_power_of_two(memory_cap + 1) // 2))
