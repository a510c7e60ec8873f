r"""Adaptive multilevel splitting (AMS): mean escape times far beyond direct simulation.

The mean escape time is split at the entrances into a surface Σ just outside the start's set A:
$E\tau = E T_0 + (1/p - 1)\,E[L \mid \text{fail}] + E[R \mid \text{success}]$ (Cérou, Guyader,
Lelièvre & Pommier 2011). A direct phase measures the first-entrance time $T_0$, the loop time
$L$ and the entrance law; `num_runs` independent AMS runs of `num_replicas` replicas (Cérou &
Guyader 2007, with the tie rule of Bréhier et al. 2016 that keeps them unbiased) estimate the
crossing probability p and the reactive time R. This module checks the inputs, runs the two
phases (the compiled kernel is `kernel.py`) and combines the estimators. Derivation, estimators,
branching, scheduling and noise: docs/SPLITTING.md; formulas: docs/THEORY.md §11.
"""

import math
import time as _time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from scipy import stats

from .. import _defaults, _noise
from .._criteria import AbstractEscapeCriterion
from .reaction_coordinates import (
    DistanceFrom as DistanceFrom,
    LossIncrease as LossIncrease,
    Projection as Projection,
    evaluate_coordinate,
    default_reaction_coordinate as default_reaction_coordinate,
)
from .._particle import CENSORED, DIVERGED, ESCAPED, next_power_of_two
from .kernel import (
    MAX_SEGMENT_ID,
    advance_runs,
    start_loops,
    start_replicas,
)
from .levels import automatic_num_levels, linearised_law
from .sgd import OnPosition, empirical_levels, levels_key
from .._engine.pacing import CallPacer
from .._engine.validation import check_positive_integer, check_positive_number, check_simulation_inputs


class CrossingProbability(NamedTuple):
    """p: the probability that an excursion from the entrance surface Σ reaches the escape set
    before returning to A, with its `confidence` interval; `run_values` are the independent AMS
    runs' estimates, `num_iterations` their kill/clone iterations."""

    value: float
    lower: float
    upper: float
    standard_error: float
    run_values: np.ndarray
    num_iterations: np.ndarray
    num_extinct: int


class LoopPhase(NamedTuple):
    """The direct phase: the first entrance time T0 into Σ, the mean time of a failed loop
    (Σ → A → Σ) and of the reactive path (Σ → escape), and its particle counts."""

    first_entrance_time: float
    loop_time: float
    loop_time_standard_error: float
    reactive_time: float
    num_loops: int
    num_loop_escapes: int
    num_censored: int


class Levels(NamedTuple):
    """The level grid: A = {ξ <= a_level}, Σ = {ξ = sigma_level}, `num_levels` levels up to
    `max_level`, where the escape set is entered."""

    num_levels: int
    a_level: float
    sigma_level: float
    max_level: float


class Cost(NamedTuple):
    """Particle-steps (`loops` of the direct phase, `splitting` of the AMS runs) and wall-clock
    seconds including compilation."""

    total: int
    loops: int
    splitting: int
    seconds: float


class SplittingResult(NamedTuple):
    """Mean escape time by adaptive multilevel splitting (times in units of dt).

    `mean_escape_time` = T0 + (1/p − 1)·loop_time + reactive_time, with a `confidence` interval
    [`lower`, `upper`]; its parts are in `crossing` (p), `loops` and `levels`, and what it
    cost in `work`. The flat names of earlier versions (`probability`, `loop_time`, `cost`, …)
    remain readable as properties; `flat()` gives them all as a dict.
    """

    mean_escape_time: float
    lower: float
    upper: float
    standard_error: float
    crossing: CrossingProbability
    loops: LoopPhase
    levels: Levels
    work: Cost
    dt: float
    confidence: float

    @property
    def relative_error(self) -> float:
        """Standard error of the mean escape time divided by it."""
        return self.standard_error / self.mean_escape_time

    def flat(self) -> dict:
        """Every number under its flat name (as stored in a sweep's result files)."""
        return {name: getattr(self, name) for name in FLAT_NAMES}


# The flat names of earlier versions and where each now lives.
_FLAT = {
    "probability": ("crossing", "value"),
    "probability_lower": ("crossing", "lower"),
    "probability_upper": ("crossing", "upper"),
    "probability_standard_error": ("crossing", "standard_error"),
    "loop_time": ("loops", "loop_time"),
    "loop_time_standard_error": ("loops", "loop_time_standard_error"),
    "first_entrance_time": ("loops", "first_entrance_time"),
    "reactive_time": ("loops", "reactive_time"),
    "run_probabilities": ("crossing", "run_values"),
    "num_iterations": ("crossing", "num_iterations"),
    "num_extinct": ("crossing", "num_extinct"),
    "num_censored": ("loops", "num_censored"),
    "num_loop_escapes": ("loops", "num_loop_escapes"),
    "num_loops": ("loops", "num_loops"),
    "cost": ("work", "total"),
    "cost_loops": ("work", "loops"),
    "cost_splitting": ("work", "splitting"),
    "num_levels": ("levels", "num_levels"),
    "a_level": ("levels", "a_level"),
    "sigma_level": ("levels", "sigma_level"),
    "max_level": ("levels", "max_level"),
    "seconds": ("work", "seconds"),
}
FLAT_NAMES = ("mean_escape_time", "lower", "upper", "standard_error", *_FLAT, "dt", "confidence")


def _flat_property(group, field):
    return property(lambda self: getattr(getattr(self, group), field),
                    doc=f"`{group}.{field}` (the flat name of earlier versions)")


for _name, (_group, _field) in _FLAT.items():
    setattr(SplittingResult, _name, _flat_property(_group, _field))


def splitting_result_from_flat(values: dict) -> SplittingResult:
    """A `SplittingResult` from its flat names (the inverse of `SplittingResult.flat`)."""
    groups = {"crossing": CrossingProbability, "loops": LoopPhase, "levels": Levels,
              "work": Cost}
    nested = {
        group: kind(**{field: values[name] for name, (owner, field) in _FLAT.items()
                       if owner == group})
        for group, kind in groups.items()
    }
    top = {name: values[name] for name in FLAT_NAMES if name not in _FLAT}
    return SplittingResult(**top, **nested)


# ----------------------------------------------------------------------------------------------
# Input checks and the public function.


def _check_level(name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value}")
    return number


def _check_inputs(num_replicas, num_runs, kill_fraction, num_levels, num_loops, max_iterations,
                  max_steps, confidence, check_every, num_slots, reaction_coordinate):
    num_replicas = check_positive_integer("num_replicas", num_replicas, 2**20)
    if num_replicas < 2:
        raise ValueError(f"num_replicas must be between 2 and {2**20}, got {num_replicas}")
    num_runs = check_positive_integer("num_runs", num_runs, 2**16)
    if num_runs < 2:
        raise ValueError(
            f"num_runs must be between 2 and {2**16} (the interval needs independent runs), "
            f"got {num_runs}"
        )
    try:
        kill_fraction = float(kill_fraction)
    except (TypeError, ValueError):
        raise TypeError(
            f"kill_fraction must be a number in (0, 1), got {kill_fraction!r}"
        ) from None
    if not 0 < kill_fraction < 1:
        raise ValueError(f"kill_fraction must lie in (0, 1), got {kill_fraction}")
    num_kill = max(1, int(kill_fraction * num_replicas))  # < num_replicas: one survives
    if num_levels is not None:
        num_levels = check_positive_integer("num_levels", num_levels, 2**16)
    num_loops = check_positive_integer("num_loops", num_loops, 2**20)
    max_iterations = check_positive_integer("max_iterations", max_iterations)
    if (max_iterations + 1) * num_replicas > MAX_SEGMENT_ID:  # ids stay below the sentinel
        raise ValueError(
            f"max_iterations must be at most {MAX_SEGMENT_ID // num_replicas - 1} for "
            f"num_replicas {num_replicas} (noise segment ids are 32-bit), got {max_iterations}"
        )
    max_steps = check_positive_integer("max_steps", max_steps, 2**31 - 1)
    try:
        confidence = float(confidence)
    except (TypeError, ValueError):
        raise TypeError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    check_every = check_positive_integer("check_every", check_every)
    if num_slots is not None:
        num_slots = check_positive_integer("num_slots", num_slots)
    if reaction_coordinate is not None and not callable(reaction_coordinate):
        raise TypeError(
            "reaction_coordinate must be None or a function of one position y of shape (dim,) "
            f"returning a scalar, got {reaction_coordinate!r}"
        )
    return (num_replicas, num_runs, kill_fraction, num_kill, num_levels, num_loops,
            max_iterations, max_steps, confidence, check_every, num_slots)


def _default_pool(total: int, killed_per_iteration: int) -> int:
    """Working slots: half an iteration's worth of clones of all runs (the runs are not all
    ready at once, and idle slots cost as much as busy ones), at least 64, at most T."""
    return max(1, min(total, max(64, next_power_of_two(-(-killed_per_iteration // 2)))))


def mean_escape_time_by_splitting(
    dynamics,
    criteria,
    initial_position,
    key: jax.Array,
    *,
    dt=None,
    num_replicas: int = _defaults.NUM_REPLICAS,
    num_runs: int = _defaults.NUM_RUNS,
    reaction_coordinate: Callable | None = None,
    kill_fraction: float = 0.1,
    num_levels: int | None = None,
    a_level: float | None = None,
    sigma_level: float | None = None,
    max_level: float | None = None,
    num_loops: int = 2,
    max_iterations: int = 100_000,
    max_steps: int = _defaults.MAX_STEPS,
    confidence: float = 0.95,
    crossing_correction: bool = True,
    check_every: int = 16,
    num_slots: int | None = None,
) -> SplittingResult:
    r"""Mean escape time from `initial_position` by adaptive multilevel splitting.

    $E\tau = E T_0 + (1/p - 1)\,E[L\mid{\rm fail}] + E[R\mid{\rm success}]$ (module docstring):
    p from `num_runs` independent AMS runs of `num_replicas` replicas (all in one array), the
    loop times from a direct simulation of `num_replicas · num_runs` particles making
    `num_loops` loops each.

    **Arguments:**

    - `dynamics`: any autonomous `AbstractDynamics` (diagonal or matrix noise), or
      `MinibatchSGD` with `replacement=True` and an optimizer without integer state
      (plain SGD, momentum; adam is refused): see the module docstring.
    - `criteria`: the escape criterion, or a sequence of them (escape when any holds): the
      set B.
    - `initial_position`: start (the minimum), shape (dim,); must lie in A.
    - `key`: a `jax.random.key`; the same key gives the same numbers.
    - `dt`: Euler–Maruyama time step > 0. For SGD only the time unit (default 1: times in
      iterations; dt = η gives the SDE time t = ηk).
    - `num_replicas`: N >= 2 replicas per AMS run.
    - `num_runs`: R >= 2 independent AMS runs (the confidence interval uses their spread).
    - `reaction_coordinate`: ξ(y) -> scalar growing towards B (a module-level function or an
      `eqx.Module`; a fresh lambda per call recompiles). Default: see
      `default_reaction_coordinate` (distance along a HalfSpace normal, loss increase for
      LossAbove, distance from the center for OutsideBall).
    - `kill_fraction`: in (0, 1): k = max(1, ⌊kill_fraction·N⌋) replicas (and all ties with
      the k-th) are killed per iteration.
    - `num_levels`: G levels of the quantized coordinate between sigma_level and max_level
      (memory: N·R·(G + 1)·(dim + 2) numbers). Default: 2·(span/s)² rounded up to a power
      of two in [128, 4096] (and within 512 MiB), with s the standard deviation of ξ under
      the linearised stationary law (see `automatic_num_levels`).
    - `a_level`: A = {ξ <= a_level}; default: the median of ξ under the Gaussian stationary law
      of the dynamics linearised at initial_position (an Ornstein–Uhlenbeck process).
    - `sigma_level`: Σ = {ξ = sigma_level}, a_level < sigma_level < max_level; default: the
      90 % quantile of ξ under that law. For SGD both defaults (and the spread behind
      num_levels) are taken from direct SGD runs in the well instead.
    - `max_level`: the value of ξ at which B is entered (sets the level grid); known for the
      default coordinates, required otherwise.
    - `num_loops`: loops per particle of the direct loop phase (>= 1).
    - `max_iterations`: cap on AMS iterations (a run not finished by then is reported with a
      warning).
    - `max_steps`: cap on the steps of one excursion or loop particle (censored beyond).
    - `confidence`: level of the intervals, in (0, 1).
    - `crossing_correction`: Brownian-bridge crossings of HalfSpace criteria between steps
      (SDEs only).
    - `check_every`: steps between write-backs and refills of the working pool.
    - `num_slots`: working-pool size (default: the power of two >= num_runs · k / 2, at least
      64, at most N·R); the numbers do not depend on it, nor on check_every.

    **Returns:** A `SplittingResult`.
    """
    start_time = _time.perf_counter()
    (num_replicas, num_runs, kill_fraction, num_kill, num_levels, num_loops, max_iterations,
     max_steps, confidence, check_every, num_slots) = _check_inputs(
        num_replicas, num_runs, kill_fraction, num_levels, num_loops, max_iterations, max_steps,
        confidence, check_every, num_slots, reaction_coordinate,
    )
    criteria = tuple(criteria) if isinstance(criteria, list | tuple) else (criteria,)
    if not all(isinstance(c, AbstractEscapeCriterion) for c in criteria):
        raise TypeError(
            f"criteria must be an AbstractEscapeCriterion or a sequence of them, got {criteria!r}"
        )
    total = num_replicas * num_runs
    x0, dt_array = check_simulation_inputs(
        dynamics, criteria, initial_position, num_particles=total, dt=dt, max_steps=max_steps,
        chunk_size=1, num_slots=None, check_every=check_every, first_particle=0,
    )
    dt_value = check_positive_number("dt", 1.0 if dt is None else dt)  # SGD: iterations
    # Replicas hold one flat state vector each (SGD: [θ, optimizer state], `PackedSGD`).
    particle = dynamics.splitting_process(x0)
    start = particle.initial_state(x0)
    num_streams = particle.num_streams(x0.shape[0], x0.dtype)

    if reaction_coordinate is None:
        xi, known_max = default_reaction_coordinate(dynamics, criteria, x0)
    else:
        xi, known_max = reaction_coordinate, None
        try:
            value = np.asarray(evaluate_coordinate(xi, x0[None]))[0]
        except Exception as error:  # noqa: BLE001 - report any failure of the user function
            raise ValueError(f"reaction_coordinate cannot be evaluated at initial_position: "
                             f"{error}") from error
        if value.shape != () or not np.isfinite(value):
            raise ValueError(
                "reaction_coordinate must return a finite scalar at initial_position, got "
                f"{value!r}"
            )
    if max_level is None:
        if known_max is None:
            raise ValueError(
                "max_level is required with this reaction_coordinate / criterion: the value of "
                "the reaction coordinate at which the escape set is entered"
            )
        max_level = known_max
    max_level = _check_level("max_level", max_level)
    start_level = float(np.asarray(evaluate_coordinate(xi, x0[None]))[0])
    try:
        covariance = dynamics.linearised_covariance(x0)
        if covariance is not None:
            default_a, default_sigma, spread = linearised_law(covariance, xi, x0)
        elif a_level is None or sigma_level is None or num_levels is None:
            default_a, default_sigma, spread = empirical_levels(
                dynamics, criteria, xi, x0, levels_key(key), evaluate_coordinate, dt=dt_value
            )
        else:
            default_a = default_sigma = spread = None
    except ValueError:
        if a_level is None or sigma_level is None or num_levels is None:
            raise
        default_a = default_sigma = spread = None
    a_level = default_a if a_level is None else a_level
    sigma_level = default_sigma if sigma_level is None else sigma_level
    a_level = _check_level("a_level", a_level)
    sigma_level = _check_level("sigma_level", sigma_level)
    if start_level > a_level:
        raise ValueError(
            f"initial_position must lie in A = {{ξ <= a_level}}: ξ(initial_position) = "
            f"{start_level} > a_level = {a_level}"
        )
    if not a_level < sigma_level < max_level:
        raise ValueError(
            f"levels must satisfy a_level < sigma_level < max_level, got a_level = {a_level}, "
            f"sigma_level = {sigma_level}, max_level = {max_level} (at high noise the default "
            "sigma_level may reach the escape set: pass smaller levels or use direct simulation)"
        )

    dtype, dim = start.dtype, start.shape[0]
    if num_levels is None:
        num_levels = automatic_num_levels(max_level - sigma_level, spread, total, dim)
    if particle is not dynamics:
        xi = OnPosition(xi, x0.shape[0])
    loop_key, ams_key, select_key = jr.split(key, 3)

    def keys_per_run(stream_key):
        return jnp.stack([
            _noise.stream_keys(jr.fold_in(stream_key, run), num_streams)
            for run in range(num_runs)
        ])

    loop_keys, run_keys = keys_per_run(loop_key), keys_per_run(ams_key)
    select_keys = jr.split(select_key, num_runs)
    a_array, sigma_array = jnp.asarray(a_level, dtype), jnp.asarray(sigma_level, dtype)
    spacing = jnp.asarray((max_level - sigma_level) / num_levels, dtype)
    pool = num_slots or _default_pool(total, num_runs * num_kill)
    statics = (num_runs, num_replicas, num_kill, num_levels, num_loops, max_steps,
               max_iterations, check_every, crossing_correction)

    def run_to_completion(config, state):
        cost = 0
        busy = True
        pacer = CallPacer()  # calls of about a quarter of a second (the rounds are traced)
        while busy:
            started_at = _time.perf_counter()
            state, steps, busy = advance_runs(
                config, state, jnp.int32(pacer.rounds), *statics
            )
            cost += int(steps)
            busy = bool(busy)
            pacer.record(_time.perf_counter() - started_at)
        return state, cost

    # Phase 1: direct loop particles from x0 (each until its (num_loops + 1)-th entrance).
    state = start_loops(start, num_runs, num_replicas, num_levels, pool)
    common = (particle, criteria, xi, dt_array, a_array, sigma_array, spacing)
    state, cost_loops = run_to_completion(
        common + (loop_keys, jnp.asarray(True), select_keys), state
    )
    loops = jax.device_get(state.jobs)
    if np.any(loops.entrances == 0):
        bad = loops.entrances == 0
        raise RuntimeError(
            f"{int(bad.sum())} of {total} loop particles did not reach Σ = {{ξ = {sigma_level}}}"
            f" from initial_position within max_steps = {max_steps} (statuses "
            f"{np.unique(loops.status[bad])}): lower sigma_level or raise max_steps"
        )
    loop_escapes = int(np.sum(loops.status == ESCAPED))
    loop_censored = int(np.sum((loops.status == CENSORED) | (loops.status == DIVERGED)))

    # Phase 2: AMS runs from the loop particles' last entrance states.
    state = start_replicas((xi, sigma_array, spacing), state, num_replicas, num_levels)
    state, cost_splitting = run_to_completion(
        common + (run_keys, jnp.asarray(False), select_keys), state
    )
    state = jax.device_get(state)
    jobs, record_age = state.jobs, state.record_age
    histogram, extinct = state.histogram.astype(np.int64), state.extinct
    num_iterations = state.iteration
    if state.capped.any():
        warnings.warn(
            f"{int(state.capped.sum())} of {num_runs} AMS runs did not finish within "
            f"max_iterations = {max_iterations}; their estimates are biased: raise "
            "max_iterations",
            RuntimeWarning, stacklevel=2,
        )
    status = np.asarray(jobs.status).reshape(num_runs, num_replicas)
    escape_age = np.asarray(record_age[:, num_levels]).reshape(num_runs, num_replicas)
    num_censored = loop_censored + int(np.sum((status == CENSORED) | (status == DIVERGED)))
    if num_censored:
        warnings.warn(
            f"{num_censored} loop legs or AMS excursions were censored at max_steps = "
            f"{max_steps} or diverged; they count as failures (biased low): raise max_steps or "
            "check the dynamics",
            RuntimeWarning, stacklevel=2,
        )

    # Per-run estimates (float64 on the host).
    kills = np.arange(num_replicas + 1)
    log_factors = np.log1p(-np.minimum(kills, num_replicas - 1) / num_replicas)
    log_weight = np.sum(histogram * log_factors, axis=1)  # K = N never enters the histogram
    in_b = status == ESCAPED
    run_p = np.exp(log_weight) * in_b.sum(axis=1) / num_replicas
    run_p[extinct] = 0.0
    run_reactive = np.exp(log_weight) * np.sum(np.where(in_b, escape_age, 0), axis=1) / (
        num_replicas
    )
    run_reactive[extinct] = 0.0

    return _combine(
        run_p, run_reactive, loops.first_entrance.astype(np.float64),
        loops.loop_sum.astype(np.float64), loops.loop_count.astype(np.float64), dt_value,
        confidence,
        num_iterations=num_iterations, num_extinct=int(extinct.sum()),
        num_censored=num_censored, num_loop_escapes=loop_escapes,
        cost_loops=cost_loops, cost_splitting=cost_splitting, num_levels=num_levels,
        a_level=a_level,
        sigma_level=sigma_level, max_level=max_level, start_time=start_time,
    )


def estimate_escape_time(dynamics, criterion, initial_position, key, **options) -> SplittingResult:
    """The earlier name of `mean_escape_time_by_splitting` (whose `criteria` is `criterion`
    here); kept so that existing code runs unchanged."""
    return mean_escape_time_by_splitting(dynamics, criterion, initial_position, key, **options)


def _combine(run_p, run_reactive, first, loop_sum, loop_count, dt, confidence, *,
             num_iterations, num_extinct, num_censored, num_loop_escapes, cost_loops,
             cost_splitting, num_levels, a_level, sigma_level, max_level, start_time):
    """Point estimate and delta-method interval of τ = T0 + (1/p − 1)·L + R (all in steps)."""
    num_runs = run_p.size
    p = float(np.mean(run_p))
    p_se = float(np.std(run_p, ddof=1) / math.sqrt(num_runs))
    nan = float("nan")
    total_loops = float(loop_count.sum())
    if total_loops > 0:
        loop = float(loop_sum.sum() / total_loops)
        residual = loop_sum - loop * loop_count
        m = loop_sum.size
        loop_se = float(math.sqrt(np.sum(residual**2) * m / (m - 1)) / total_loops)
    else:
        loop, loop_se = nan, nan
    t0 = float(np.mean(first))
    t0_se = float(np.std(first, ddof=1) / math.sqrt(first.size))
    if p > 0:
        reactive = float(np.mean(run_reactive) / p)
        reactive_se = float(
            np.std(run_reactive - reactive * run_p, ddof=1) / math.sqrt(num_runs) / p
        )
        tau = t0 + (1 / p - 1) * loop + reactive
        variance = (
            t0_se**2 + ((1 / p - 1) * loop_se) ** 2 + (loop / p**2 * p_se) ** 2 + reactive_se**2
        )
        tau_se = math.sqrt(variance)
    else:
        reactive, tau, tau_se = nan, float("inf"), float("inf")
    quantile = float(stats.t.ppf(0.5 + confidence / 2, num_runs - 1))
    if p > 0 and math.isfinite(tau):
        spread = math.exp(quantile * tau_se / tau)
        lower, upper = tau / spread, tau * spread
        p_spread = math.exp(quantile * p_se / p)
        p_lower, p_upper = p / p_spread, p * p_spread
    else:
        lower, upper, p_lower, p_upper = nan, nan, 0.0, nan
    return SplittingResult(
        mean_escape_time=tau * dt,
        lower=lower * dt,
        upper=upper * dt,
        standard_error=tau_se * dt,
        crossing=CrossingProbability(p, p_lower, p_upper, p_se, run_p, num_iterations,
                                     num_extinct),
        loops=LoopPhase(t0 * dt, loop * dt, loop_se * dt, reactive * dt, int(total_loops),
                        num_loop_escapes, num_censored),
        levels=Levels(num_levels, a_level, sigma_level, max_level),
        work=Cost(cost_loops + cost_splitting, cost_loops, cost_splitting,
                  _time.perf_counter() - start_time),
        dt=dt,
        confidence=confidence,
    )
