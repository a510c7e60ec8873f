r"""Choosing dt from short pilot runs: the largest step whose estimated bias is below a target.

With the crossing correction the Euler–Maruyama mean first-passage time has a bias linear in dt
(tests/MEASURED_BIAS.md): $\tau(dt) = \tau_0(1 + b\,dt) + O(dt^2)$. A pilot pair at $dt_p$ and
$2dt_p$ estimates the dt_p run's relative bias $\beta = b\,dt_p$ by
$\hat\beta = \tau(2dt_p)/\tau(dt_p) - 1$ (Talay & Tubaro 1990) with standard error
$s = (1+\hat\beta)\sqrt{r_1^2 + r_2^2}$ (relative standard errors $r_i$). The bias at
$dt = dt_p/2^k$ is then $\beta/2^k$; `choose_dt` takes the smallest k with
$(|\hat\beta| + z\,s)/2^k \le$ target, i.e. the largest dt on the grid $dt_p/2^k$ whose bias
is below the target with one-sided confidence Φ(z) under the linear law. Where the bias grows
faster than linearly at dt_p (as on the steep quartic of tests/MEASURED_BIAS.md) this
overestimates the bias at the chosen dt: the choice errs on the small side.
"""

import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _defaults
from .._statistics import exponential_rate_mle, mean_escape_time
from .validation import check_positive_integer, check_positive_number, check_simulation_inputs

AUTO = "auto"
DEFAULT_TARGET = 0.005
DEFAULT_PILOT_PARTICLES = 2**16
MAX_HALVINGS = 12


class DtChoice(NamedTuple):
    """The step `choose_dt` picked and the pilot measurement behind it.

    `dt` = `pilot_dt`/2^k; `pilot_bias` ± `pilot_bias_standard_error` is the relative bias of
    the pilot_dt run, τ(2·pilot_dt)/τ(pilot_dt) − 1; `bias_bound` = (|pilot_bias| + z·SE)/2^k
    is the bound on the relative bias at `dt` that was compared with `target`.
    `pilot_particle_steps` is the pilots' cost (both runs), `pilot_mfpt` their τ(pilot_dt).
    """

    dt: float
    pilot_dt: float
    pilot_bias: float
    pilot_bias_standard_error: float
    bias_bound: float
    target: float
    pilot_mfpt: float
    pilot_particle_steps: int


def _mean_and_relative_error(result) -> tuple[float, float]:
    kept = ~result.diverged
    times, censored = result.escape_time[kept], result.censored[kept]
    if times.size < 2:
        return math.nan, math.nan
    if not np.any(censored):
        mean, error = mean_escape_time(times)
        return float(mean), float(error / mean)
    rate = exponential_rate_mle(times, censored)
    if rate.num_escaped == 0:
        return math.nan, math.nan
    return rate.mean_time, 1 / math.sqrt(rate.num_escaped)


def default_pilot_dt(dynamics, initial_position) -> float:
    """0.1/λ, λ the spectral radius of the drift's Jacobian at the start (the fastest
    relaxation rate of the linearised dynamics: k·dt = 0.1 for a harmonic well of stiffness k);
    `dynamics.default_dt` or 0.01 where λ is 0 or cannot be computed."""
    try:
        position = jnp.asarray(initial_position)
        jacobian = jax.jacfwd(lambda y: dynamics.drift(jnp.zeros((), y.dtype), y))(position)
        rate = float(np.max(np.abs(np.linalg.eigvals(np.asarray(jacobian, np.float64)))))
    except Exception:  # noqa: BLE001 - a process without a differentiable drift: the fallback
        rate = 0.0
    if rate > 0 and math.isfinite(rate):
        return 0.1 / rate
    return getattr(dynamics, "default_dt", None) or 0.01


def choose_dt_with(run, dynamics, criteria, initial_position, key: jax.Array, *,
                   target: float = DEFAULT_TARGET, pilot_dt: float | None = None,
                   pilot_particles: int = DEFAULT_PILOT_PARTICLES, confidence_se: float = 2.0,
                   max_steps: int = _defaults.MAX_STEPS, **options) -> DtChoice:
    r"""The largest dt = pilot_dt/2^k whose estimated relative bias of the MFPT is ≤ `target`.

    Runs `run` (`simulate`, which `choose_dt` passes: this module sits below the driver)
    twice with `pilot_particles` particles, at `pilot_dt` (key
    `fold_in(key, 2)`) and 2·pilot_dt (`fold_in(key, 3)`; `simulate_extrapolated` uses 0
    and 1, so a main run with `key` is independent of the pilots), and applies the rule of the
    module docstring. Cost: the pilots take about 1.5·pilot_particles·τ/pilot_dt
    particle-steps; a main run of N particles at dt = pilot_dt/2^k takes N·τ·2^k/pilot_dt, so
    the pilots add 1.5·pilot_particles/(N·2^k) of it (e.g. 2^16 pilots, N = 10^6, k = 2: 2.5 %).
    The pilots' noise limits the choice: with relative standard error r ≈ 1/√pilot_particles
    per run, the bound is at least z·√2·r (0.011 for 2^16 pilots and z = 2), so dt is at most
    pilot_dt·target/(|β| + 0.011).

    **Arguments:**

    - `dynamics`, `criteria`, `initial_position`, `key`: as for `simulate` (SDEs: SGD has no
      dt to refine).
    - `target`: the largest acceptable relative bias, in (0, 1) (default 0.005).
    - `pilot_dt`: the pilots' step (> 0); default `default_pilot_dt` (0.1/λ). Never exceeded:
      the linear law is not extrapolated upwards.
    - `pilot_particles`: particles per pilot run (>= 2).
    - `confidence_se`: z, the margin in pilot standard errors (>= 0).
    - `max_steps`: the pilot_dt run's cap (the 2·pilot_dt run gets half).
    - `options`: further keywords of `simulate` (`crossing_correction`, `chunk_size`, ...).

    **Returns:** a `DtChoice`. Raises `ValueError` for bad arguments, and when the pilots give
    no finite MFPT (every particle diverged or was censored without escapes).
    """
    target = check_positive_number("target", target)
    if not target < 1:
        raise ValueError(f"target must be a number in (0, 1), got {target}")
    pilot_particles = check_positive_integer("pilot_particles", pilot_particles)
    if pilot_particles < 2:
        raise ValueError(f"pilot_particles must be an integer >= 2, got {pilot_particles}")
    if isinstance(confidence_se, bool) or not (
            isinstance(confidence_se, int | float) and math.isfinite(confidence_se)
            and confidence_se >= 0):
        raise ValueError(f"confidence_se must be a finite number >= 0, got {confidence_se!r}")
    max_steps = check_positive_integer("max_steps", max_steps)
    if pilot_dt is None:
        pilot_dt = default_pilot_dt(dynamics, initial_position)
    pilot_dt = check_positive_number("pilot_dt", pilot_dt)
    options.pop("num_particles", None)
    options.pop("progress", None)
    runs = [run(dynamics, criteria, initial_position, jax.random.fold_in(key, 2 + index),
                     num_particles=pilot_particles, dt=factor * pilot_dt,
                     max_steps=max(1, max_steps // factor), **options)
            for index, factor in enumerate((1, 2))]
    (fine, fine_error), (coarse, coarse_error) = map(_mean_and_relative_error, runs)
    if not (math.isfinite(fine) and math.isfinite(coarse) and fine > 0):
        raise ValueError(
            f"the pilot runs at dt = {pilot_dt:g} and {2 * pilot_dt:g} gave no finite mean escape "
            f"time (MFPTs {fine}, {coarse}): pass a smaller pilot_dt or a larger max_steps")
    bias = coarse / fine - 1
    bias_error = (1 + bias) * math.hypot(fine_error, coarse_error)
    bound = abs(bias) + confidence_se * bias_error
    halvings = max(0, math.ceil(math.log2(bound / target))) if bound > 0 else 0
    if halvings > MAX_HALVINGS:
        halvings = MAX_HALVINGS
        warnings.warn(
            f"choose_dt: the bias bound {bound:.3g} at the pilot dt = {pilot_dt:g} needs more "
            f"than {MAX_HALVINGS} halvings to reach target = {target:g}; dt = pilot_dt/2^"
            f"{MAX_HALVINGS} (its bound is {bound / 2**MAX_HALVINGS:.3g})", UserWarning,
            stacklevel=2)
    return DtChoice(
        dt=pilot_dt / 2**halvings, pilot_dt=pilot_dt, pilot_bias=bias,
        pilot_bias_standard_error=bias_error, bias_bound=bound / 2**halvings, target=target,
        pilot_mfpt=fine,
        pilot_particle_steps=int(sum(np.sum(run.escape_step, dtype=np.int64) for run in runs)),
    )


def resolve_auto_dt(run, dt, dynamics, criteria, initial_position, key, *, num_particles,
                    max_steps, **options) -> float:
    """`simulate`'s dt = "auto": every other input is checked first (no pilot runs for a bad
    call), then `choose_dt_with(run, ...)` with its defaults picks dt."""
    if dt != AUTO:
        raise TypeError(f"dt must be a number > 0 or {AUTO!r}, got {dt!r}")
    if type(dynamics).default_dt is not None:
        raise ValueError(f"dt={AUTO!r} needs a process whose dt is a discretisation step (an "
                         f"SDE), got {type(dynamics).__name__}, whose dt is only a time unit")
    check_simulation_inputs(
        dynamics, criteria, initial_position, num_particles=num_particles, dt=1.0,
        max_steps=max_steps, chunk_size=options["chunk_size"], num_slots=options["num_slots"],
        check_every=options["check_every"], first_particle=options["first_particle"])
    for name in ("num_slots", "check_every", "first_particle"):
        options.pop(name)
    return choose_dt_with(run, dynamics, criteria, initial_position, key, max_steps=max_steps,
                          **options).dt
