r"""The Kramers-validation experiment: simulated MFPT against the exact quadrature and Kramers' law.

For each temperature T, `config.particles` overdamped Langevin particles
$dx = -L'(x)\,dt + \sqrt{2T}\,dW$ start at the minimum and run until they cross the hyperplane
`past_saddle(landscape)` (half the minimum–saddle distance beyond the barrier top). The simulated
mean first-passage time is compared with the exact 1-D quadrature for the same dynamics and the
same absorbing point (docs/THEORY.md §1.4; reflecting boundary far on the inner side) and with the
Kramers asymptote for absorption beyond the saddle (§1.5). With `config.extrapolate` (the
default) every level also runs at 2·dt with the key `fold_in(key, 1)` and reports Richardson's
extrapolation 2τ(dt) − τ(2dt) to dt → 0 (`extrapolation_statistics`).

Results go into a run directory: `summary.json`, `escape_times.npz`, `escape_times.png` and the
resolved `config.toml`, each written atomically.
"""

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .config import ConfigError, ExperimentConfig, config_to_toml
from .store import atomic_write
from .._criteria import past_saddle
from .._dynamics.sde import OverdampedLangevin
from .._landscapes import AbstractLandscape, StyblinskiTang, TiltedDoubleWell
from .plots import LevelData, plot_escape_times
from .._theory.reference import exact_mfpt
from .._engine.driver import simulate
from .._engine.extrapolation import simulate_extrapolated
from .._statistics import (
    exponential_rate_mle,
    exponentiality_test,
    mean_escape_time,
    richardson_extrapolation,
)
from .._theory.quadrature import kramers_time


CONFIDENCE = 0.95
SAMPLE_MEAN = "sample mean"
CENSORED_MLE = "censored exponential MLE"


def _devices_in_words() -> str:
    """"cpu", or "2 devices (cpu)": what `simulate` shards the particles over."""
    devices = jax.devices()
    kind = devices[0].device_kind
    return kind if len(devices) == 1 else f"{len(devices)} devices ({kind})"


def build_landscape(config: ExperimentConfig) -> AbstractLandscape:
    """The 1-D landscape the config names (numeric parameters are arrays: one compilation)."""
    if config.landscape == "double-well":
        return TiltedDoubleWell(config.barrier, config.curvature, config.asymmetry)
    return StyblinskiTang(config.sharpness, config.loss_scale, num_dimensions=1)


@eqx.filter_jit
def _geometry_arrays(landscape: AbstractLandscape) -> dict:
    """Coordinates along the escape direction and curvatures, in one compiled call."""
    direction = landscape.escape_direction()
    minimum, saddle = landscape.minimum(), landscape.saddle()

    def along(point):
        return jnp.dot(direction, point)

    def curvature(point):
        return direction @ landscape.hessian(point) @ direction

    return {
        "sign": direction[0],
        "minimum": along(minimum),
        "saddle": along(saddle),
        "absorbing": past_saddle(landscape).offset,
        "barrier": landscape.barrier(),
        "curvature_minimum": curvature(minimum),
        "curvature_saddle": jnp.abs(curvature(saddle)),
    }


def landscape_geometry(landscape: AbstractLandscape) -> dict:
    """Positions (x), barrier, curvatures along the escape direction and quadrature boundaries.

    The absorbing point is the `past_saddle` plane; the reflecting one lies twice the
    saddle–minimum distance behind the minimum (far on the inner side of the well).
    """
    values = {key: float(value) for key, value in _geometry_arrays(landscape).items()}
    sign = values.pop("sign")  # 1-D: the coordinate along the direction is ±x
    minimum, saddle = values["minimum"], values["saddle"]
    return {
        "escape_direction": sign,
        "minimum": sign * minimum,
        "saddle": sign * saddle,
        "absorbing": sign * values["absorbing"],
        "reflecting": sign * (minimum - 2.0 * (saddle - minimum)),
        "barrier": values["barrier"],
        "curvature_minimum": values["curvature_minimum"],
        "curvature_saddle": values["curvature_saddle"],
    }


def plan_levels(config: ExperimentConfig, landscape, geometry) -> list[dict]:
    """The references of every level, computed before anything is simulated."""
    if landscape.dim != 1:
        raise ConfigError(f"the experiment needs a 1-D landscape, got dim {landscape.dim}")
    plans = []
    for index, temperature in enumerate(config.temperatures):
        dynamics = OverdampedLangevin(landscape, jnp.asarray(temperature))
        try:
            exact = exact_mfpt(dynamics, geometry["minimum"], geometry["reflecting"],
                               geometry["absorbing"])
        except ValueError as error:
            raise ConfigError(f"temperatures[{index}] = {temperature}: {error}") from None
        if not math.isfinite(exact):
            raise ConfigError(
                f"temperatures[{index}] = {temperature} is too low: the exact mean escape time "
                f"exceeds the float range (ΔL/T = {geometry['barrier'] / temperature:.3g})"
            )
        kramers = kramers_time(geometry["barrier"], geometry["curvature_minimum"],
                               geometry["curvature_saddle"], temperature, "beyond_saddle")
        plans.append({"index": index, "temperature": temperature, "dynamics": dynamics,
                      "exact_mfpt": exact, "kramers_time": kramers})
    return plans


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def escape_statistics(result) -> tuple[dict, list[str], object]:
    """Counts, MFPT ± SE and the exponential fit of a run's escape times (diverged particles left
    out); with censoring the MFPT is the censored exponential MLE and there is no
    exponentiality test. Returns the statistics (mfpt None if every particle diverged), notes,
    and the `RateEstimate` (None then)."""
    kept = ~result.diverged
    times, censored = result.escape_time[kept], result.censored[kept]
    num_censored, num_diverged = int(np.sum(censored)), int(np.sum(result.diverged))
    statistics = {
        "num_particles": int(result.escape_step.size),
        "num_escaped": int(np.sum(result.escaped)),
        "num_censored": num_censored,
        "num_diverged": num_diverged,
    }
    notes = []
    if num_diverged:
        notes.append(f"{num_diverged} diverged particles are left out of every statistic")
    if times.size == 0:
        notes.append("every particle diverged: no statistics")
        statistics.update(mfpt=None, mfpt_standard_error=None, mfpt_estimator=None)
        return statistics, notes, None
    rate = exponential_rate_mle(times, censored, CONFIDENCE)
    statistics["exponential_fit"] = {
        "rate": rate.rate, "rate_lower": rate.lower, "rate_upper": rate.upper,
        "mean_time": rate.mean_time, "mean_time_lower": rate.mean_time_lower,
        "mean_time_upper": rate.mean_time_upper, "confidence": CONFIDENCE,
    }
    if num_censored == 0:
        mfpt, standard_error = mean_escape_time(times)
        estimator = SAMPLE_MEAN
        test = None
        if times.size >= 4:
            test = exponentiality_test(times, discretisation_step=result.dt)
    else:
        # 1/κ̂ with κ̂ = k/S; delta method: SE(1/κ̂) ≈ (1/κ̂)/√k.
        mfpt = rate.mean_time
        standard_error = mfpt / math.sqrt(rate.num_escaped) if rate.num_escaped else math.inf
        estimator = CENSORED_MLE
        test = None
        notes.append(
            f"{num_censored} particles censored at max_steps: the MFPT is the censored "
            "exponential MLE (assumes exponential escape); no exponentiality test"
        )
    statistics.update(
        mfpt=mfpt, mfpt_standard_error=standard_error, mfpt_estimator=estimator,
        exponentiality_p_value=None if test is None else test.p_value,
        exponentiality_statistic=None if test is None else test.statistic,
    )
    return statistics, notes, rate


def analyse_level(
    result, plan: dict, config: ExperimentConfig, barrier: float
) -> tuple[dict, LevelData | None]:
    """The level's entry of the summary and its figure data (None if every particle diverged)."""
    statistics, notes, rate = escape_statistics(result)
    level = {
        "index": plan["index"],
        "temperature": plan["temperature"],
        "barrier_over_temperature": barrier / plan["temperature"],
        **{key: statistics[key] for key in ("num_particles", "num_escaped", "num_censored",
                                            "num_diverged")},
        "exact_mfpt": plan["exact_mfpt"],
        "kramers_time": plan["kramers_time"],
        "ratio_exact_to_kramers": plan["exact_mfpt"] / plan["kramers_time"],
    }
    if rate is None:
        level.update(mfpt=None, mfpt_standard_error=None, mfpt_estimator=None, notes=notes)
        return level, None
    level["exponential_fit"] = statistics["exponential_fit"]
    mfpt, standard_error = statistics["mfpt"], statistics["mfpt_standard_error"]
    level.update(
        mfpt=mfpt,
        mfpt_standard_error=standard_error,
        mfpt_estimator=statistics["mfpt_estimator"],
        ratio_simulated_to_exact=mfpt / plan["exact_mfpt"],
        deviation_in_standard_errors=(mfpt - plan["exact_mfpt"]) / standard_error,
        exponentiality_p_value=statistics["exponentiality_p_value"],
        exponentiality_statistic=statistics["exponentiality_statistic"],
        notes=notes,
    )
    kept = ~result.diverged
    panel = LevelData(plan["temperature"], result.escape_time[kept], result.censored[kept],
                      config.max_steps * result.dt, rate.rate, plan["exact_mfpt"])
    return level, panel


def extrapolation_statistics(statistics: dict, coarse_statistics: dict, exact=None) -> dict:
    r"""Richardson's extrapolation to dt → 0 of the MFPTs of a dt run and a 2dt run.

    $\hat\tau_0 = 2\tau(dt) - \tau(2dt)$ with standard error $\sqrt{4SE_1^2 + SE_2^2}$ (Talay &
    Tubaro 1990; the bias is linear in dt with the crossing correction, tests/MEASURED_BIAS.md),
    and the dt run's estimated bias $\tau(dt) - \hat\tau_0 = \tau(2dt) - \tau(dt)$ with
    standard error $\sqrt{SE_1^2 + SE_2^2}$. Each τ is that run's MFPT as `escape_statistics`
    gives it (the sample mean, or the censored exponential MLE when particles are censored).
    All four values are None when either run has no MFPT; with `exact`, the deviation of the
    extrapolated value from it in its standard errors.
    """
    fine, fine_error = statistics.get("mfpt"), statistics.get("mfpt_standard_error")
    coarse, coarse_error = coarse_statistics.get("mfpt"), coarse_statistics.get(
        "mfpt_standard_error")
    columns = dict.fromkeys(("mfpt_extrapolated", "mfpt_extrapolated_standard_error",
                             "discretisation_bias", "discretisation_bias_standard_error"))
    if fine is None or coarse is None:
        return columns
    estimate = richardson_extrapolation(fine, fine_error, coarse, coarse_error)
    columns.update(mfpt_extrapolated=estimate.value,
                   mfpt_extrapolated_standard_error=estimate.standard_error,
                   discretisation_bias=estimate.bias,
                   discretisation_bias_standard_error=estimate.bias_standard_error)
    if exact is not None:
        error = estimate.standard_error
        columns["extrapolated_deviation_in_standard_errors"] = (
            (estimate.value - exact) / error if error > 0 else math.nan)
    return columns


def simulate_level(dynamics, criterion, start, key, *, num_particles: int, dt: float,
                   max_steps: int, crossing_correction: bool, extrapolate: bool, progress):
    """The dt run of a level (`simulate` with `key`) and, with `extrapolate`, the 2dt run of
    `simulate_extrapolated` (key `fold_in(key, 1)`, max_steps // 2) or None. Its warning about
    the dt run's bias is not repeated: the columns show the bias."""
    options = dict(num_particles=num_particles, dt=dt, max_steps=max_steps,
                   crossing_correction=crossing_correction, progress=progress)
    if not extrapolate:
        return simulate(dynamics, criterion, start, key, **options), None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the dt = .* estimated discretisation bias",
                                UserWarning)
        extrapolated = simulate_extrapolated(dynamics, criterion, start, key, **options)
    return extrapolated.result, extrapolated.coarse_result


def format_number(value, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _format_p_value(p_value) -> str:
    if p_value is None:
        return "n/a"
    if p_value == 0.0:
        return "<1e-300"  # underflow: scipy returns exactly 0
    return format(p_value, ".3f" if p_value >= 1e-3 else ".1e")


def format_table(levels: list[dict]) -> str:
    """The plain-text results table, columns right-aligned."""
    extrapolated = any(level.get("mfpt_extrapolated") is not None for level in levels)
    header = ("T", "ΔL/T", "MFPT sim ± SE", "exact", "Kramers", "sim/exact", "(sim−exact)/SE",
              "exp. p-value") + (("MFPT extrap ± SE", "(extrap−exact)/SE") if extrapolated
                                 else ())
    rows = []
    for level in levels:
        mark = "*" if level["mfpt_estimator"] == CENSORED_MLE else ""
        error = level["mfpt_standard_error"]
        # Times get the decimals of the standard error at two significant figures.
        if error is not None and math.isfinite(error) and error > 0:
            time_spec = error_spec = f".{max(0, 1 - math.floor(math.log10(error)))}f"
        else:
            time_spec, error_spec = ".5g", ".2g"
        rows.append((
            format_number(level["temperature"], ".4g"),
            format_number(level["barrier_over_temperature"], ".4g"),
            f"{format_number(level['mfpt'], time_spec)} ± {format_number(error, error_spec)}{mark}",
            format_number(level["exact_mfpt"], time_spec),
            format_number(level["kramers_time"], time_spec),
            format_number(level.get("ratio_simulated_to_exact"), ".4f"),
            format_number(level.get("deviation_in_standard_errors"), "+.2f"),
            _format_p_value(level.get("exponentiality_p_value")),
        ) + ((f"{format_number(level.get('mfpt_extrapolated'), time_spec)} ± "
              f"{format_number(level.get('mfpt_extrapolated_standard_error'), error_spec)}",
              format_number(level.get("extrapolated_deviation_in_standard_errors"), "+.2f"))
             if extrapolated else ()))
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths))
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if any(level["mfpt_estimator"] == CENSORED_MLE for level in levels):
        lines.append("* censored particles: MFPT from the censored exponential MLE")
    if extrapolated:
        lines.append("extrap = 2·MFPT(dt) − MFPT(2·dt), Richardson's extrapolation to dt → 0")
    return "\n".join(lines)


def _write_json(path: str, data: dict) -> None:
    def sanitise(value):
        if isinstance(value, dict):
            return {key: sanitise(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [sanitise(item) for item in value]
        return _finite_or_none(value)

    text = json.dumps(sanitise(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write(path, lambda file: file.write(text.encode()))


def make_run_directory(output: str | None, prefix: str = "kramers") -> str:
    """Creates `output` (may exist) or, if None, a fresh runs/PREFIX-YYYYmmdd-HHMMSS[-n]."""
    if output is not None:
        os.makedirs(output, exist_ok=True)
        return output
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join("runs", f"{prefix}-{stamp}")
    for attempt in range(1000):
        candidate = base if attempt == 0 else f"{base}-{attempt}"
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a fresh run directory next to {base}")


def package_versions() -> dict:
    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {"jaxescape": version("jaxescape"), "jax": jax.__version__, "jaxlib": version("jaxlib"),
            "equinox": version("equinox"), "numpy": np.__version__,
            "python": platform.python_version()}


def run_kramers_experiment(config: ExperimentConfig, *, stream=None) -> dict:
    """Runs every temperature level, writes the run directory and returns the summary.

    The references (exact quadrature and Kramers) are computed first, so a hopeless
    configuration fails with `ConfigError` before any particle is simulated. `stream` (default:
    sys.stdout at call time) receives the header, a line per finished level and the results
    table; pass `io.StringIO()` to keep them.
    """

    def say(text=""):
        print(text, file=sys.stdout if stream is None else stream, flush=True)

    started = time.perf_counter()
    landscape = build_landscape(config)
    geometry = landscape_geometry(landscape)
    plans = plan_levels(config, landscape, geometry)
    criterion = past_saddle(landscape)
    start = landscape.minimum()
    expected_steps = [plan["exact_mfpt"] / config.dt for plan in plans]
    # Mean steps per particle if escape is exponential and capped at max_steps.
    expected_work = config.particles * sum(
        steps * -math.expm1(-config.max_steps / steps) for steps in expected_steps
    )
    versions = package_versions()
    run_directory = make_run_directory(config.output)
    config = dataclasses.replace(config, output=run_directory)
    atomic_write(os.path.join(run_directory, "config.toml"),
                  lambda file: file.write(config_to_toml(config).encode()))

    say(f"jaxescape {versions['jaxescape']} Kramers validation: {config.landscape}, "
        f"ΔL = {geometry['barrier']:.4g}, L''(min) = {geometry['curvature_minimum']:.4g}, "
        f"|L''(saddle)| = {geometry['curvature_saddle']:.4g}, absorbing at "
        f"x = {geometry['absorbing']:.4g}, reflecting at x = {geometry['reflecting']:.4g}")
    say(f"{config.particles} particles per level, dt = {config.dt:g}; expected work "
        f"{expected_work:.3g} particle-steps on "
        f"{_devices_in_words()}; run directory {run_directory}")
    for plan, steps in zip(plans, expected_steps):
        expected_censored = config.particles * math.exp(-config.max_steps / steps)
        if expected_censored >= 1:
            say(f"warning: T = {plan['temperature']:.4g}: mean escape ≈ {steps:.3g} steps, "
                f"about {expected_censored:.3g} particles will be censored at max_steps = "
                f"{config.max_steps}")

    summary = {
        "experiment": "kramers-validation",
        "complete": False,
        "started_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": dataclasses.asdict(config),
        "run_directory": os.path.abspath(run_directory),
        "versions": versions,
        "device": {"platform": jax.default_backend(),
                   "device_kind": jax.devices()[0].device_kind,
                   "num_devices": jax.device_count(),
                   "dtype": str(jnp.result_type(float))},
        "landscape": geometry,
        "levels": [],
    }
    arrays = {"temperatures": np.asarray(config.temperatures)}
    panels = []
    for plan in plans:
        index, temperature = plan["index"], plan["temperature"]
        level_start = time.perf_counter()
        key = jax.random.fold_in(jax.random.key(config.seed), index)
        result, coarse = simulate_level(
            plan["dynamics"], criterion, start, key,
            num_particles=config.particles, dt=config.dt, max_steps=config.max_steps,
            crossing_correction=config.crossing_correction, extrapolate=config.extrapolate,
            progress=f"T={temperature:.3g}" if config.progress else False,
        )
        simulated = time.perf_counter()
        level, panel = analyse_level(result, plan, config, geometry["barrier"])
        if coarse is not None:
            coarse_statistics, _, _ = escape_statistics(coarse)
            level.update(extrapolation_statistics(level, coarse_statistics, plan["exact_mfpt"]))
            level["coarse_mfpt"] = coarse_statistics["mfpt"]
            level["coarse_mfpt_standard_error"] = coarse_statistics["mfpt_standard_error"]
            arrays[f"level{index}_coarse_escape_step"] = coarse.escape_step
            arrays[f"level{index}_coarse_censored"] = coarse.censored
            arrays[f"level{index}_coarse_diverged"] = coarse.diverged
            arrays[f"level{index}_coarse_dt"] = np.float64(coarse.dt)
        level["wall_time_s"] = simulated - level_start
        level["analysis_time_s"] = time.perf_counter() - simulated
        summary["levels"].append(level)
        if panel is not None:
            panels.append(panel)
        arrays[f"level{index}_escape_step"] = result.escape_step
        arrays[f"level{index}_censored"] = result.censored
        arrays[f"level{index}_diverged"] = result.diverged
        arrays[f"level{index}_dt"] = np.float64(result.dt)  # dt as simulated (its dtype)
        summary["total_wall_time_s"] = time.perf_counter() - started
        # Written after every level, so an interrupted run keeps what it finished.
        _write_json(os.path.join(run_directory, "summary.json"), summary)
        atomic_write(os.path.join(run_directory, "escape_times.npz"),
                      lambda file: np.savez_compressed(file, **arrays))
        say(f"T = {temperature:.4g} done in {level['wall_time_s']:.1f} s"
            + "".join(f"; {note}" for note in level["notes"]))

    if panels:
        title = (f"{config.landscape}, ΔL = {geometry['barrier']:.4g}, "
                 f"{config.particles} particles per level, dt = {config.dt:g}")
        atomic_write(os.path.join(run_directory, "escape_times.png"),
                      lambda file: plot_escape_times(panels, file, title))
    summary["complete"] = True
    summary["total_wall_time_s"] = time.perf_counter() - started
    _write_json(os.path.join(run_directory, "summary.json"), summary)
    say()
    say(format_table(summary["levels"]))
    say()
    say(f"total wall time {summary['total_wall_time_s']:.1f} s; results in {run_directory}")
    return summary
