"""Splitting's default levels from direct runs, for processes without a linearisation.

An SGD particle (or an SDE with jumps) has no drift and diffusion to linearise, so the law of
the reaction coordinate in the well (which places the levels) is measured by direct runs. The
packed SGD particle that splitting steps is `PackedSGD` (`_sgd/minibatch_sgd.py`).
"""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._criteria import AbstractEscapeCriterion
from .._engine import simulate


class OnPosition(eqx.Module):
    """ξ of the flat state: the user's ξ(θ) applied to its first `dim` entries."""

    coordinate: object
    dim: int = eqx.field(static=True)

    def __call__(self, flat):
        return self.coordinate(flat[: self.dim])


def empirical_levels(process, criteria: tuple[AbstractEscapeCriterion, ...], coordinate, start,
                     key, evaluate, *, dt, num_particles=512, max_steps=2**16):
    """Median, 90 % quantile and standard deviation of ξ in the well, from direct runs of a
    process with no drift and diffusion to linearise (SGD, or an SDE with jumps), at `dt`.

    `num_particles` runs from `start` for K = 32, 64, … steps (each run extends the last: the
    noise is a pure function of (key, particle, step)) until the median and the 90 % quantile
    of ξ at K and 2K agree within a quarter of its standard deviation.
    """
    previous = None
    steps = 32
    while steps <= max_steps:
        result = simulate(process, criteria, start, key, num_particles=num_particles, dt=dt,
                          max_steps=steps, num_slots=num_particles)
        kept = result.position[result.censored]
        if kept.shape[0] < num_particles // 2:
            raise ValueError(
                f"{num_particles - kept.shape[0]} of {num_particles} runs escaped or diverged "
                f"within {steps} steps while the default levels were chosen: the well is not "
                "metastable at this scale (use simulate), or pass a_level, sigma_level and "
                "num_levels"
            )
        values = np.asarray(evaluate(coordinate, jnp.asarray(kept)), np.float64)
        current = np.array([np.quantile(values, 0.5), np.quantile(values, 0.9)])
        spread = float(np.std(values))
        if previous is not None and np.all(np.abs(current - previous) <= 0.25 * spread):
            start_value = float(np.asarray(evaluate(coordinate, start[None]))[0])
            return max(float(current[0]), start_value), float(current[1]), spread
        previous = current
        steps *= 2
    raise ValueError(
        f"the law of the reaction coordinate in the well did not settle within {max_steps} "
        "steps: pass a_level, sigma_level and num_levels"
    )


def levels_key(key):
    """The key of the level-choosing runs (independent of the loop and AMS streams)."""
    return jr.fold_in(key, 2**31 - 1)
