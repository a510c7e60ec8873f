"""Measurement and output helpers shared by the reproductions (the other modules of this folder).

Every escape time is measured in SDE time t = η·iterations (docs/THEORY.md §1.2) as the mean of
N particles started at the minimum, run at step dt and at 2·dt. The 2·dt run measures the
discretisation bias of the dt run: τ_2dt − τ_dt (the `HalfSpace` and `LossAbove` exits are
Brownian-bridge corrected: weak order 1; a sweep of exits without the correction would pass
order=0.5, (τ_2dt − τ_dt)/(√2 − 1), or a deterministic `predicted_bias` per point, which then
replaces the noisy measured one in the agreement band). A point *agrees* with
the exact 1-D quadrature (§1.4, the model's own D(θ)) when |τ_dt − τ_exact| ≤ 4 SE + |bias|.
Slopes are weighted least-squares fits of log τ (weights 1/SE²(log τ)) with their standard
errors; R² is the unweighted coefficient of determination.
The same fit applied to the exact quadrature gives the slope the simulation should reproduce;
the asymptotic (Laplace) prediction of the paper is reported next to it. docs/THEORIES.md explains
the designs and every gap between a prediction and a measurement.
"""

import io
import json
import math
import time
from typing import NamedTuple

import jax
import jax.random as jr
import numpy as np

from .._criteria import past_saddle
from .._theory.closed_forms import laplace_log_escape_time
from .._theory.reference import numpy_coefficients
from .._engine.driver import simulate
from .._theory.quadrature import log_mfpt_quadrature
from .._particle import next_power_of_two


SIZES = ("smoke", "default", "large")
STEP_LIMIT = 2**31 - 1


# --------------------------------------------------------------------------------------------
# Measurement helpers

def pool_slots(num_particles: int) -> int:
    """About N/8 working slots: keeps the pool busy until the exponential tail (CPU-friendly)."""
    target = max(32, num_particles // 8)
    limit = 4096 if jax.default_backend() == "cpu" else 2**20
    return min(limit, next_power_of_two(target))


def mean_time(result):
    """Sample mean escape time and SE; censored runs fall back on the exponential MLE."""
    times = result.escape_time[~result.diverged]
    censored = result.censored[~result.diverged]
    if not np.any(censored):
        return float(np.mean(times)), float(np.std(times, ddof=1) / math.sqrt(times.size))
    escaped = int(np.count_nonzero(~censored))
    mean = float(np.sum(times)) / max(escaped, 1)
    return mean, mean / math.sqrt(max(escaped, 1))


def run_direct(dynamics, criterion, start, key, dt, num_particles, max_steps, label, progress):
    began = time.perf_counter()
    result = simulate(
        dynamics, criterion, start, key, num_particles=num_particles, dt=dt,
        max_steps=int(min(max_steps, STEP_LIMIT)), num_slots=pool_slots(num_particles),
        progress=label if progress else False,
    )
    wall = time.perf_counter() - began
    return result, wall


def _escape_point(point, key, num_particles, progress, order):
    """Runs one sweep point at dt and 2·dt; returns its row (times in SDE units)."""
    dynamics, criterion = point["dynamics"], point["criterion"]
    start, dt = point["start"], point["dt"]
    exact = math.exp(point["exact_log"])
    rows = {}
    steps = 0
    wall = 0.0
    for name, step, sub in (("dt", dt, 0), ("2dt", 2 * dt, 1)):
        max_steps = 40 * exact / step + 1000
        result, seconds = run_direct(
            dynamics, criterion, start, jr.fold_in(key, sub), step, num_particles, max_steps,
            f"{point['label']} ({name})", progress,
        )
        mean, standard_error = mean_time(result)
        rows[name] = (mean, standard_error, int(np.count_nonzero(result.censored)),
                      int(np.count_nonzero(result.diverged)))
        steps += int(np.sum(result.escape_step))
        wall += seconds
    mean, standard_error, censored, diverged = rows["dt"]
    row = escape_row(
        point["x"], dt, num_particles, (mean, standard_error), rows["2dt"][:2], exact,
        laplace_log=point.get("laplace_log"), learning_rate=point.get("learning_rate"),
        predicted_bias=point.get("predicted_bias"), order=order)
    return {"label": point["label"], **row, "censored": censored, "diverged": diverged,
            "particle_steps": steps, "wall_seconds": wall}


def escape_row(x, dt, num_particles, fine, coarse, exact, *, laplace_log=None,
               learning_rate=None, predicted_bias=None, order: float = 1.0) -> dict:
    """A reproduction's row from τ_dt ± SE (`fine`) and τ_2dt ± SE (`coarse`), in SDE time.

    τ_h = τ_0 + c·h^order ⇒ the dt run's bias c·dt^order = (τ_2dt − τ_dt)/(2^order − 1), and
    τ_0 = (1 + w)·τ_dt − w·τ_2dt with w = 1/(2^order − 1). Where a deterministic model of the
    leading bias exists (`predicted_bias`), it replaces the noisy measured one in the agreement
    band |τ_dt − τ_exact| ≤ 4 SE + |bias|.
    """
    (mean, standard_error), (coarse_mean, coarse_error) = fine, coarse
    weight = 1 / (2**order - 1)
    measured_bias = (coarse_mean - mean) / (2**order - 1)
    bias = measured_bias if predicted_bias is None else predicted_bias
    extrapolated_se = math.hypot((1 + weight) * standard_error, weight * coarse_error)
    return {
        "x": float(x), "dt": dt, "particles": num_particles,
        "tau": mean, "tau_se": standard_error, "tau_2dt": coarse_mean, "tau_2dt_se": coarse_error,
        "bias": bias, "measured_bias": measured_bias, "predicted_bias": predicted_bias,
        "tau_extrapolated": mean - measured_bias, "tau_extrapolated_se": extrapolated_se,
        "extrapolated_deviation_in_se": (mean - measured_bias - exact) / extrapolated_se,
        "tau_exact": exact,
        "tau_laplace": None if laplace_log is None else math.exp(laplace_log),
        "ratio_to_exact": mean / exact,
        "agrees_with_exact": bool(abs(mean - exact) <= 4 * standard_error + abs(bias)),
        "deviation_in_se": (mean - exact) / standard_error,
        "iterations": mean / learning_rate if learning_rate else None,
    }


def fit_line(x, y, standard_error=None):
    """Weighted least squares y = a + b x: slope, its SE, intercept and unweighted R²."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    weights = np.ones_like(x) if standard_error is None else 1 / np.asarray(standard_error) ** 2
    design = np.vstack([np.ones_like(x), x]).T
    normal = design.T @ (weights[:, None] * design)
    coefficients = np.linalg.solve(normal, design.T @ (weights * y))
    residual = y - design @ coefficients
    covariance = np.linalg.inv(normal)
    if standard_error is None:
        covariance = covariance * np.sum(residual**2) / max(x.size - 2, 1)
    r2 = 1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)
    return {
        "slope": float(coefficients[1]), "slope_se": float(math.sqrt(covariance[1, 1])),
        "intercept": float(coefficients[0]), "r2": float(r2),
    }


def fit_sweep(name, description, rows, x_name, transform, predicted_slope, tolerance,
              offset=None, offset_name=None) -> dict:
    """Fits log τ (minus `offset(x)` if given) of the rows against `transform(x)`, and against
    the exact values; the checks of the module docstring."""
    x = np.array([transform(row["x"]) for row in rows])
    shift = np.zeros_like(x) if offset is None else np.array([offset(row["x"]) for row in rows])
    for row, value in zip(rows, shift):
        row["log_offset"] = float(value)
    log_tau = np.log([row["tau"] for row in rows]) - shift
    log_se = np.array([row["tau_se"] / row["tau"] for row in rows])
    fit = fit_line(x, log_tau, log_se)
    exact_fit = fit_line(x, np.log([row["tau_exact"] for row in rows]) - shift)
    raw_fit = fit_line(x, np.log([row["tau"] for row in rows]), log_se)
    checks = {
        "r2_at_least_0.99": raw_fit["r2"] >= 0.99,
        f"slope_within_{round(100 * tolerance)}pct_of_prediction":
            abs(fit["slope"] / predicted_slope - 1) <= tolerance,
        "slope_within_4se_of_exact_slope":
            abs(fit["slope"] - exact_fit["slope"]) <= 4 * fit["slope_se"],
        "all_points_agree_with_exact": all(row["agrees_with_exact"] for row in rows),
    }
    return {
        "name": name, "description": description, "x_name": x_name,
        "fitted_quantity": "log tau" if offset is None else f"log tau - {offset_name}",
        "points": rows, "fit": fit, "raw_fit": raw_fit, "exact_fit": exact_fit,
        "predicted_slope": predicted_slope,
        "slope_ratio": fit["slope"] / predicted_slope, "tolerance": tolerance, "checks": checks,
        "particle_steps": sum(row["particle_steps"] for row in rows),
        "wall_seconds": sum(row["wall_seconds"] for row in rows), "cpu_seconds": None,
    }


def one_d_point(label, x, dynamics, landscape, dt, learning_rate=None, laplace=True):
    """A 1-D escape point: start at the minimum, absorb past the saddle, exact quadrature."""
    criterion = past_saddle(landscape)
    start = landscape.minimum()
    absorbing = float(criterion.offset)
    minimum = float(start[0])
    drift, diffusion = numpy_coefficients(dynamics)
    point = {
        "label": label, "x": float(x), "dynamics": dynamics, "criterion": criterion,
        "start": start, "dt": float(dt), "learning_rate": learning_rate,
        "exact_log": log_mfpt_quadrature(drift, diffusion, minimum,
                                         minimum - 2 * (absorbing - minimum), absorbing),
    }
    if laplace:
        point["laplace_log"] = laplace_log_escape_time(
            lambda u: -drift(u), diffusion, minimum, float(landscape.saddle()[0])
        )
    return point


def measure_escape_time(dynamics, landscape, key, *, num_particles: int, dt: float,
                        learning_rate=None, progress=False) -> dict:
    """One point of a reproduction: the mean escape time of a 1-D dynamics, measured as they do.

    `num_particles` particles start at `landscape.minimum()` and escape past the saddle
    (`past_saddle`); they are run at `dt` and at 2·dt (the difference is the discretisation bias).
    Returns the reproductions' row: `tau` ± `tau_se` (SDE time), `bias`, `tau_exact` (§1.4
    quadrature with the model's own D(θ)), `tau_laplace` (the low-noise law), `ratio_to_exact`,
    `deviation_in_se`, `agrees_with_exact` (|τ − τ_exact| ≤ 4 SE + |bias|), and `iterations`
    (τ/η, when `learning_rate` is given).
    """
    point = one_d_point(type(dynamics).__name__, math.nan, dynamics, landscape, dt, learning_rate)
    return _escape_point(point, key, num_particles, progress, order=1.0)


# --------------------------------------------------------------------------------------------
# Output


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def format_value(value, digits=4):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _sweep_markdown(sweep) -> list[str]:
    fit, exact_fit = sweep["fit"], sweep["exact_fit"]
    lines = [
        f"### {sweep['name']}", "", sweep["description"], "",
        f"Fit of {sweep['fitted_quantity']} against {sweep['x_name']}: slope "
        f"**{fit['slope']:.4g} ± {fit['slope_se']:.2g}** (R² {sweep['raw_fit']['r2']:.5f} for "
        f"log τ itself); exact quadrature slope {exact_fit['slope']:.4g}; predicted "
        f"**{sweep['predicted_slope']:.4g}** (ratio {sweep['slope_ratio']:.4f}, tolerance "
        f"±{100 * sweep['tolerance']:.0f}%). Wall {sweep['wall_seconds']:.1f} s, "
        f"{sweep['particle_steps']:.3g} particle-steps.", "",
        "| x | dt | τ (sim) | SE | τ (2dt) | bias | τ extrap | SE | (extrap − exact)/SE "
        "| τ exact | τ Laplace | sim/exact | agrees |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sweep["points"]:
        lines.append(
            "| " + " | ".join(format_value(row.get(key)) for key in (
                "x", "dt", "tau", "tau_se", "tau_2dt", "bias", "tau_extrapolated",
                "tau_extrapolated_se", "extrapolated_deviation_in_se", "tau_exact",
                "tau_laplace", "ratio_to_exact", "agrees_with_exact",
            )) + " |"
        )
    lines += ["", "Checks: " + ", ".join(
        f"{name} {format_value(bool(value))}" for name, value in sweep["checks"].items()
    ), ""]
    return lines


def output_files(name, summary, markdown_lines, figure) -> dict[str, bytes]:
    """`results.json`, `results.md` and `NAME.png` as bytes (a declared reproduction's files)."""
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110, bbox_inches="tight")
    return {"results.json": json.dumps(summary, indent=2, default=_json_default).encode(),
            "results.md": ("\n".join(markdown_lines) + "\n").encode(),
            f"{name}.png": image.getvalue()}


def new_figure(num_panels):
    """A figure on its own Agg canvas: no pyplot state, so callers' backends are left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(3, num_panels)
    rows = -(-num_panels // columns)
    figure = Figure(figsize=(4.6 * columns, 3.6 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat[num_panels:]:
        axis.set_visible(False)
    return figure, list(axes.flat)


def _plot_sweep(axis, sweep, transform, x_label):
    """The fitted quantity (log τ, minus the prefactor where one is divided out) against x."""
    points = sweep["points"]
    x = np.array([transform(row["x"]) for row in points])
    shift = np.array([row["log_offset"] for row in points])
    tau = np.array([row["tau"] for row in points])
    error = np.array([row["tau_se"] for row in points]) / tau
    axis.errorbar(x, np.log(tau) - shift, yerr=error, fmt="o", ms=4, label="simulation", zorder=3)
    axis.plot(x, np.log([row["tau_exact"] for row in points]) - shift, "-", label="exact (§1.4)")
    exact = np.log([row["tau_exact"] for row in points]) - shift
    if all(row["predicted_bias"] is not None for row in points):
        discrete = [row["tau_exact"] + row["predicted_bias"] for row in points]
        axis.plot(x, np.log(discrete) - shift, ":", label="exact, BGK-shifted threshold")
    laplace = [row["tau_laplace"] for row in points]
    if all(value is not None for value in laplace):
        axis.plot(x, np.log(laplace) - shift, "--", label="Laplace / paper")
    else:  # the paper's asymptotic slope through the exact points' centroid
        line = exact.mean() + sweep["predicted_slope"] * (x - x.mean())
        axis.plot(x, line, "--", label="paper's slope")
    axis.set_xlabel(x_label)
    axis.set_ylabel(sweep["fitted_quantity"].replace("tau", "τ"), fontsize=8)
    axis.set_title(
        f"{sweep['name']}\nslope {sweep['fit']['slope']:.3g}±{sweep['fit']['slope_se']:.1g} "
        f"(pred. {sweep['predicted_slope']:.3g})", fontsize=9,
    )
    axis.legend(fontsize=7)


def report_header(title, size, seed, spent, sweeps_or_checks, device=None,
                  times="Times are SDE times t = η·iterations."):
    """The report's title and run line: `spent` is the `Timing` of the stored points; `times`
    states the time unit (empty where the report has no times)."""
    cpu_text = "" if spent.cpu is None else f" (CPU {spent.cpu:.0f} s)"
    return [
        f"# {title}", "",
        f"size `{size}`, seed {seed}, device `{device or jax.devices()[0].device_kind}`, "
        f"wall {spent.wall:.0f} s{cpu_text}." + (f" {times}" if times else ""), "",
    ] + sweeps_or_checks


class Timing(NamedTuple):
    """Seconds spent on a reproduction's points (`cpu` None where not recorded)."""

    wall: float
    cpu: float | None = None


def check_size(size):
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")


def finish(name, title, size, seed, spent, sweeps, transforms, extra=None,
           extra_markdown=(), extra_panels=(), device=None) -> dict[str, bytes]:
    """A declared reproduction's files (`output_files`) from its fitted sweeps; `spent` is the
    `Timing` of the stored points."""
    figure, axes = new_figure(len(sweeps) + len(extra_panels))
    for axis, sweep, (transform, label) in zip(axes, sweeps, transforms):
        _plot_sweep(axis, sweep, transform, label)
    for axis, panel in zip(axes[len(sweeps):], extra_panels):
        panel(axis)
    figure.tight_layout()
    summary = {
        "reproduction": name, "title": title, "size": size, "seed": seed,
        "device": device or jax.devices()[0].device_kind,
        "sweeps": {sweep["name"]: sweep for sweep in sweeps},
        "particle_steps": sum(sweep["particle_steps"] for sweep in sweeps),
    }
    if extra:
        summary.update(extra)
    checks = {
        f"{sweep['name']}.{check}": bool(value)
        for sweep in sweeps for check, value in sweep["checks"].items()
    }
    for part in (extra or {}).values():
        if isinstance(part, dict) and "checks" in part:
            checks.update({f"{part['name']}.{c}": bool(v) for c, v in part["checks"].items()})
    summary["checks"] = checks
    summary["all_checks_passed"] = all(checks.values())
    summary["wall_seconds"], summary["cpu_seconds"] = spent.wall, spent.cpu
    lines = report_header(title, size, seed, spent, [], device)
    lines += ["## Summary", "", "| sweep | quantity vs x | slope ± SE | exact slope | predicted |"
              " ratio | R² (log τ) |", "|---|---|---|---|---|---|---|"]
    for sweep in sweeps:
        quantity = sweep["fitted_quantity"].replace("|", "\\|")  # a bare | would split the cell
        lines.append(
            f"| {sweep['name']} | {quantity} vs {sweep['x_name']} | "
            f"{sweep['fit']['slope']:.4g} ± {sweep['fit']['slope_se']:.2g} | "
            f"{sweep['exact_fit']['slope']:.4g} | {sweep['predicted_slope']:.4g} | "
            f"{sweep['slope_ratio']:.4f} | {sweep['raw_fit']['r2']:.5f} |"
        )
    lines += [""] + list(extra_markdown) + ["## Sweeps", ""]
    for sweep in sweeps:
        lines += _sweep_markdown(sweep)
    failed = [check for check, value in checks.items() if not value]
    lines += ["## Checks", "", f"{len(checks) - len(failed)} of {len(checks)} passed."]
    lines += [f"- failed: `{check}`" for check in failed] + [""]
    return output_files(name, summary, lines, figure)
