"""Rare events: adaptive multilevel splitting for escapes that direct simulation cannot reach.

`estimator` (the public `estimate_escape_time`: the decomposition of the mean escape time into
the loop phase and the AMS probability, with its confidence interval), `kernel` (the compiled
state machine that steps loop particles and AMS replicas in one pool), `levels` (the default
level grid), `extrapolation` (estimates at dt and 2dt extrapolated to dt → 0),
`reaction_coordinates` (the default reaction coordinate of a criterion) and `sgd`
(the SGD particle's step as splitting needs it).

May import: the core modules and `_engine` (pool sizes, input checks). It reaches SDE and SGD
particles only through the particle protocol of `_particle.py`.
"""

from .estimator import (
    Cost as Cost,
    CrossingProbability as CrossingProbability,
    Levels as Levels,
    LoopPhase as LoopPhase,
    SplittingResult as SplittingResult,
    estimate_escape_time as estimate_escape_time,
    mean_escape_time_by_splitting as mean_escape_time_by_splitting,
)
from .extrapolation import (
    ExtrapolatedSplitting as ExtrapolatedSplitting,
    mean_escape_time_by_splitting_extrapolated as mean_escape_time_by_splitting_extrapolated,
)
