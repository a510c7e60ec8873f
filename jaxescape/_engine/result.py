"""The result of a simulation: per-particle first-passage records on the host."""

from typing import NamedTuple

import numpy as np

from .._particle import CENSORED, DIVERGED, ESCAPED


class EscapeResult(NamedTuple):
    """Per-particle first-passage results (NumPy arrays on the host).

    `escape_step` is the number of steps taken when the particle was first found outside (or at
    censoring / divergence); `escape_time` = escape_step · dt. `boundary` is the index of the
    criterion hit (−1 if none). Censored particles were still inside after `max_steps`; diverged
    particles reached a non-finite state and are neither escapes nor censored.
    """

    escape_step: np.ndarray  # (N,) int32
    boundary: np.ndarray  # (N,) int8
    censored: np.ndarray  # (N,) bool
    diverged: np.ndarray  # (N,) bool
    position: np.ndarray  # (N, dim): where each particle stopped; (N, 0) if not kept
    dt: float

    @property
    def escape_time(self) -> np.ndarray:
        return self.escape_step * self.dt

    @property
    def escaped(self) -> np.ndarray:
        return ~(self.censored | self.diverged)


def wave_result(buffers, count: int, dt: float) -> EscapeResult:
    """The particles in the first `count` rows of the host buffers."""
    step, status, position = (field[:count] for field in buffers)
    return EscapeResult(
        step,
        np.where(status >= ESCAPED, status - ESCAPED, -1).astype(np.int8),
        status == CENSORED,
        status == DIVERGED,
        position,
        dt,
    )


def concatenate_results(results: list[EscapeResult]) -> EscapeResult:
    """Joins per-chunk results (in particle order) into one."""
    fields = [np.concatenate(arrays) for arrays in list(zip(*results))[:-1]]
    return EscapeResult(*fields, results[0].dt)
