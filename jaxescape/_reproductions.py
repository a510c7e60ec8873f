r"""Reproductions of the source papers' escape experiments, each checked against exact quadrature.

`REPRODUCTIONS[name](output_dir, size, seed, progress)` runs one experiment and writes
`results.json`, `results.md` and `NAME.png` into `output_dir`; it returns the summary dict.
Sizes: "smoke" (seconds; lower barriers, for tests), "default" (a few minutes on a 2-core CPU),
"large" (10-50x the particles of "default" and higher barriers: meant for a GPU).

Every escape time is measured in SDE time t = η·iterations (THEORY.md §1.2) as the sample mean of
N particles started at the minimum, run at step dt and at 2·dt. The 2·dt run measures the
discretisation bias of the dt run: τ_2dt − τ_dt for `HalfSpace` exits (Brownian-bridge corrected,
weak order 1), (τ_2dt − τ_dt)/(√2 − 1) for `LossAbove` exits (no bridge correction: O(√dt)); for
the latter the deterministic Broadie–Glasserman–Kou estimate (`discrete_monitoring_threshold`)
is used as the bias instead, the noisy measured one being kept in the JSON. A point *agrees* with
the exact 1-D quadrature (§1.4, the model's own D(θ)) when |τ_dt − τ_exact| ≤ 4 SE + |bias|.
Slopes are weighted least-squares fits of log τ (weights 1/SE²(log τ)) with their standard
errors; R² is the unweighted coefficient of determination.
The same fit applied to the exact quadrature gives the slope the simulation should reproduce;
the asymptotic (Laplace) prediction of the paper is reported next to it. docs/THEORIES.md explains
the designs and every gap between a prediction and a measurement.
"""

import json
import math
import os
import time

import jax
import jax.random as jr
import numpy as np
from scipy import optimize, special

from ._criteria import LossAbove, NeverEscape, past_saddle
from ._dynamics import OverdampedLangevin
from ._escape_theory import (
    laplace_exponent,
    laplace_log_escape_time,
    meng_log_escape_time,
    mori_loss_threshold_time,
    mori_passage_exponent,
    mori_stationary_exponent,
)
from ._landscapes import TiltedDoubleWell
from ._noise_models import (
    MengPowerLawNoise,
    MoriLossNoise,
    PiecewiseQuadraticValley,
    QuadraticLandscape,
    XieSGDNoise,
)
from ._reference import numpy_coefficients
from ._simulate import simulate
from ._theory import log_mfpt_quadrature


SIZES = ("smoke", "default", "large")
_STEP_LIMIT = 2**31 - 1


# --------------------------------------------------------------------------------------------
# Measurement helpers

def _num_slots(num_particles: int) -> int:
    """About N/8 working slots: keeps the pool busy until the exponential tail (CPU-friendly)."""
    target = max(32, num_particles // 8)
    limit = 4096 if jax.default_backend() == "cpu" else 2**20
    return min(limit, 1 << (target - 1).bit_length())


def _mean_time(result):
    """Sample mean escape time and SE; censored runs fall back on the exponential MLE."""
    times = result.escape_time[~result.diverged]
    censored = result.censored[~result.diverged]
    if not np.any(censored):
        return float(np.mean(times)), float(np.std(times, ddof=1) / math.sqrt(times.size))
    escaped = int(np.count_nonzero(~censored))
    mean = float(np.sum(times)) / max(escaped, 1)
    return mean, mean / math.sqrt(max(escaped, 1))


def _run(dynamics, criterion, start, key, dt, num_particles, max_steps, label, progress):
    began = time.perf_counter()
    result = simulate(
        dynamics, criterion, start, key, num_particles=num_particles, dt=dt,
        max_steps=int(min(max_steps, _STEP_LIMIT)), num_slots=_num_slots(num_particles),
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
        result, seconds = _run(
            dynamics, criterion, start, jr.fold_in(key, sub), step, num_particles, max_steps,
            f"{point['label']} ({name})", progress,
        )
        mean, standard_error = _mean_time(result)
        rows[name] = (mean, standard_error, int(np.count_nonzero(result.censored)),
                      int(np.count_nonzero(result.diverged)))
        steps += int(np.sum(result.escape_step))
        wall += seconds
    mean, standard_error, censored, diverged = rows["dt"]
    coarse = rows["2dt"][0]
    # τ_h = τ_0 + c·h^order  ⇒  bias(dt) = c·dt^order = (τ_2dt − τ_dt)/(2^order − 1).
    measured_bias = (coarse - mean) / (2**order - 1)
    # Where a deterministic model of the leading bias exists (discrete monitoring of a boundary
    # without bridge correction), it replaces the noisy measured one in the agreement band.
    predicted_bias = point.get("predicted_bias")
    bias = measured_bias if predicted_bias is None else predicted_bias
    return {
        "label": point["label"], "x": point["x"], "dt": dt, "particles": num_particles,
        "tau": mean, "tau_se": standard_error, "tau_2dt": coarse, "tau_2dt_se": rows["2dt"][1],
        "bias": bias, "measured_bias": measured_bias, "predicted_bias": predicted_bias,
        "tau_extrapolated": mean - measured_bias, "tau_exact": exact,
        "tau_laplace": math.exp(point["laplace_log"]) if "laplace_log" in point else None,
        "ratio_to_exact": mean / exact,
        "agrees_with_exact": bool(abs(mean - exact) <= 4 * standard_error + abs(bias)),
        "deviation_in_se": (mean - exact) / standard_error,
        "censored": censored, "diverged": diverged, "particle_steps": steps, "wall_seconds": wall,
        "iterations": mean / point["learning_rate"] if point.get("learning_rate") else None,
    }


def _fit_line(x, y, standard_error=None):
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


def _escape_sweep(name, description, points, x_name, transform, predicted_slope, tolerance,
                  num_particles, key, progress, order=1.0, offset=None, offset_name=None):
    """Runs the points; fits log τ (minus `offset(x)` if given) against `transform(x)`."""
    began, cpu_began = time.perf_counter(), time.process_time()
    rows = [
        _escape_point(point, jr.fold_in(key, index), num_particles, progress, order)
        for index, point in enumerate(points)
    ]
    x = np.array([transform(row["x"]) for row in rows])
    shift = np.zeros_like(x) if offset is None else np.array([offset(row["x"]) for row in rows])
    for row, value in zip(rows, shift):
        row["log_offset"] = float(value)
    log_tau = np.log([row["tau"] for row in rows]) - shift
    log_se = np.array([row["tau_se"] / row["tau"] for row in rows])
    fit = _fit_line(x, log_tau, log_se)
    exact_fit = _fit_line(x, np.log([row["tau_exact"] for row in rows]) - shift)
    raw_fit = _fit_line(x, np.log([row["tau"] for row in rows]), log_se)
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
        "wall_seconds": time.perf_counter() - began,
        "cpu_seconds": time.process_time() - cpu_began,
    }


def _one_d_point(label, x, dynamics, landscape, dt, learning_rate=None, laplace=True):
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
    point = _one_d_point(type(dynamics).__name__, math.nan, dynamics, landscape, dt, learning_rate)
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


def _format(value, digits=4):
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
        "| x | dt | τ (sim) | SE | τ (2dt) | bias | τ exact | τ Laplace | sim/exact | agrees |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sweep["points"]:
        lines.append(
            "| " + " | ".join(_format(row[key]) for key in (
                "x", "dt", "tau", "tau_se", "tau_2dt", "bias", "tau_exact", "tau_laplace",
                "ratio_to_exact", "agrees_with_exact",
            )) + " |"
        )
    lines += ["", "Checks: " + ", ".join(
        f"{name} {_format(bool(value))}" for name, value in sweep["checks"].items()
    ), ""]
    return lines


def _write_outputs(output_dir, name, summary, markdown_lines, figure):
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "results.json"), "w") as file:
        json.dump(summary, file, indent=2, default=_json_default)
    with open(os.path.join(output_dir, "results.md"), "w") as file:
        file.write("\n".join(markdown_lines) + "\n")
    figure.savefig(os.path.join(output_dir, f"{name}.png"), dpi=110, bbox_inches="tight")


def _figure(num_panels):
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


def _header(title, size, seed, began, sweeps_or_checks):
    return [
        f"# {title}", "",
        f"size `{size}`, seed {seed}, device `{jax.devices()[0].device_kind}`, "
        f"wall {time.perf_counter() - began[0]:.0f} s (CPU {time.process_time() - began[1]:.0f} s)."
        " Times are SDE times t = η·iterations.", "",
    ] + sweeps_or_checks


def _check_size(size):
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")


# --------------------------------------------------------------------------------------------
# Xie et al.: SGD escapes sharp minima exponentially fast, white noise only polynomially


_XIE = {  # particles, points per sweep, exponent range of the SGD sweeps, white-noise exponent
    "smoke": dict(particles=96, points=3, exponents=(2.0, 3.0), white_exponent=3.0),
    "default": dict(particles=600, points=5, exponents=(3.5, 7.0), white_exponent=5.0),
    "large": dict(particles=20_000, points=7, exponents=(5.0, 10.0), white_exponent=8.0),
}


def reproduce_xie(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Xie, Sato, Sugiyama (ICLR 2021): −log Γ linear in 1/k under SGD noise, power law under GLD.

    Six sweeps of 1-D escapes (THEORY.md §2), escape = crossing `past_saddle`:

    1. `sharpness_sgd`: `TiltedDoubleWell(ΔL, k, r=2)` with `XieSGDNoise` (D = ηH*/(2B)),
       k ∈ [1, 2]. Exponent exactly $2B\Delta L/(\eta k)$; the Itô prefactor $2\pi/\sqrt{k|H_b|}
       \propto 1/k$ is divided out before fitting against 1/k (it alone adds ≈ 1/⟨1/k⟩ ≈ 1.3 to
       the raw slope of −log Γ; raw fit and R² are reported too).
    2. `sharpness_sgd_local`: the same wells with the local-Hessian model
       D = η·max(|L''|, H_a/2)/(2B) (floor at the saddle's curvature, so D stays between its
       saddle and minimum values, as in Xie's two-regime picture): exponent from the §1.4
       integral, ∝ 1/k, equal to Xie's boxed form with an effective s ≈ 0.05; prefactor 2π/k
       divided out. (`PiecewiseQuadraticValley` gives Xie's form with s = 1/3 exactly, but its
       jump in D(θ) lowers Euler–Maruyama's weak order to 1/2: −16% at k·dt = 0.05. See
       docs/THEORIES.md.)
    3. `sharpness_white_scaled`: white noise of fixed T on `TiltedDoubleWell(ΔL, k, 2)`, k ∈ [1, 8]:
       every curvature ∝ k, so τ ∝ 1/k exactly (time rescaling): slope of log τ vs log k = −1.
    4. `sharpness_white_fixed_saddle`: white noise on a three-piece valley with |H_b| fixed and
       30%/50% of the barrier in the quadratic pieces: Xie's polynomial law τ ∝ H_a^{−1/2}.
    5. `batch_size`: log τ linear in B (η, k fixed), slope 2ΔL/(ηk).
    6. `learning_rate`: log τ linear in 1/η (B, k fixed), slope 2BΔL/k, simulated with dt = η
       (Euler–Maruyama at dt = η is SGD with Gaussian noise, §7.1).
    """
    _check_size(size)
    began = (time.perf_counter(), time.process_time())
    config = _XIE[size]
    particles, count = config["particles"], config["points"]
    low, high = config["exponents"]
    key = jr.key(seed)
    barrier = 0.25
    sweeps = []

    # 1. Constant-Hessian SGD noise, sharpness sweep at fixed barrier.
    learning_rate, batch = 2 * barrier / high, 1.0  # exponent `high` at k = 1
    sharpness = np.geomspace(1.0, high / low, count)
    points = []
    for k in sharpness:
        landscape = TiltedDoubleWell(barrier, k, 2.0)
        points.append(_one_d_point(f"xie/sgd k={k:.3g}", k, XieSGDNoise(landscape, learning_rate,
                                   batch), landscape, 0.1 / k, learning_rate))
    sweeps.append(_escape_sweep(
        "sharpness_sgd",
        f"TiltedDoubleWell(ΔL={barrier}, k, r=2), XieSGDNoise(η={learning_rate:.4g}, B={batch}), "
        "D = ηH*/(2B). −log Γ = log τ against 1/k, Itô prefactor 2π/sqrt(k·k/2) divided out.",
        points, "1/k", lambda k: 1 / k, 2 * batch * barrier / learning_rate, 0.10,
        particles, jr.fold_in(key, 1), progress,
        offset=lambda k: math.log(2 * math.pi / math.sqrt(k * k / 2)),
        offset_name="log(2π/√(k|H_b|))",
    ))

    # 2. Local-Hessian SGD noise D = η·max(|L''|, f·H_a)/(2B), f = |H_b|/H_a = 1/2 (smooth D).
    floor = 0.5
    reference = XieSGDNoise(TiltedDoubleWell(barrier, 1.0, 2.0), 1.0, 1.0, hessian="local",
                            floor=floor)
    drift, diffusion = numpy_coefficients(reference)
    # Exponent of the k = 1 well at η/B = 1; the family is self-similar, so exponent ∝ 1/k.
    factor = laplace_exponent(lambda u: -drift(u), diffusion, 0.0,
                              float(reference.landscape.saddle()[0])) / (2 * barrier)
    path_fraction = (factor - 2.0) / (1.0 - 2.0)  # factor = s/H_a + (1 − s)/|H_b|, H_a = 1
    learning_rate_local = 2 * barrier * factor / high
    points = []
    for k in sharpness:
        landscape = TiltedDoubleWell(barrier, k, 2.0)
        dynamics = XieSGDNoise(landscape, learning_rate_local, batch, hessian="local", floor=floor)
        points.append(_one_d_point(f"xie/sgd-local k={k:.3g}", k, dynamics, landscape, 0.05 / k,
                                   learning_rate_local))
    sweeps.append(_escape_sweep(
        "sharpness_sgd_local",
        f"TiltedDoubleWell(ΔL={barrier}, k, r=2), XieSGDNoise(η={learning_rate_local:.4g}, "
        f"B={batch}, hessian='local', floor={floor}): D = η·max(|L''|, {floor}k)/(2B). Exponent "
        f"(2BΔL/η)·{factor:.4f}/k from the §1.4 integral, i.e. Xie's (s/H_a + (1−s)/|H_b|) with "
        f"effective s = {path_fraction:.3f}; Itô prefactor 2π/k divided out.",
        points, "1/k", lambda k: 1 / k, 2 * batch * barrier * factor / learning_rate_local, 0.10,
        particles, jr.fold_in(key, 2), progress,
        offset=lambda k: math.log(2 * math.pi / k), offset_name="log(2π/H_a)",
    ))

    # 3. White noise, all curvatures ∝ k.
    temperature = barrier / config["white_exponent"]
    wide = np.geomspace(1.0, 8.0, count)
    points = []
    for k in wide:
        landscape = TiltedDoubleWell(barrier, k, 2.0)
        points.append(_one_d_point(f"xie/white k={k:.3g}", k,
                                   OverdampedLangevin(landscape, temperature), landscape, 0.1 / k))
    sweeps.append(_escape_sweep(
        "sharpness_white_scaled",
        f"TiltedDoubleWell(ΔL={barrier}, k, r=2), white noise T={temperature:.4g} (ΔL/T="
        f"{config['white_exponent']}): H_a and |H_b| both ∝ k, Kramers τ ∝ 1/k.",
        points, "log k", math.log, -1.0, 0.05 if size != "smoke" else 0.15,
        particles, jr.fold_in(key, 3), progress,
    ))

    # 4. White noise, saddle curvature fixed.
    points = []
    for k in wide:
        landscape = PiecewiseQuadraticValley(barrier, k, 0.5, 0.3, 0.5)
        largest = max(k, float(landscape.middle_curvature()))
        points.append(_one_d_point(f"xie/white-fixed-saddle k={k:.3g}", k,
                                   OverdampedLangevin(landscape, temperature), landscape,
                                   0.1 / largest))
    sweeps.append(_escape_sweep(
        "sharpness_white_fixed_saddle",
        f"PiecewiseQuadraticValley(ΔL={barrier}, k, |H_b|=0.5, 30%/50% of ΔL in the quadratic "
        f"pieces), white noise T={temperature:.4g}: Kramers τ ∝ H_a^(−1/2) (Xie's 'polynomial').",
        points, "log k", math.log, -0.5, 0.10 if size != "smoke" else 0.3,
        particles, jr.fold_in(key, 4), progress,
    ))

    # 5. Batch size.
    learning_rate_batch = 0.5
    batches = np.linspace(low, high, count) * learning_rate_batch / (2 * barrier)
    landscape = TiltedDoubleWell(barrier, 1.0, 2.0)
    points = [
        _one_d_point(f"xie/batch B={b:.3g}", b, XieSGDNoise(landscape, learning_rate_batch, b),
                     landscape, 0.1, learning_rate_batch)
        for b in batches
    ]
    sweeps.append(_escape_sweep(
        "batch_size",
        f"TiltedDoubleWell(ΔL={barrier}, k=1, r=2), XieSGDNoise(η={learning_rate_batch}, B): "
        "log τ against B.",
        points, "B", lambda b: b, 2 * barrier / learning_rate_batch, 0.10,
        particles, jr.fold_in(key, 5), progress,
    ))

    # 6. Learning rate, dt = η.
    barrier_eta = 0.2
    inverse_rates = np.linspace(low, high, count) / (2 * barrier_eta)
    landscape = TiltedDoubleWell(barrier_eta, 1.0, 2.0)
    points = [
        _one_d_point(f"xie/lr η={1 / v:.3g}", 1 / v, XieSGDNoise(landscape, 1 / v, 1.0), landscape,
                     1 / v, 1 / v)
        for v in inverse_rates
    ]
    sweeps.append(_escape_sweep(
        "learning_rate",
        f"TiltedDoubleWell(ΔL={barrier_eta}, k=1, r=2), XieSGDNoise(η, B=1) simulated with dt = η "
        "(one Euler–Maruyama step per SGD iteration): log τ against 1/η.",
        points, "1/η", lambda eta: 1 / eta, 2 * barrier_eta, 0.10,
        particles, jr.fold_in(key, 6), progress,
    ))

    transforms = [
        (lambda k: 1 / k, "1/k"), (lambda k: 1 / k, "1/k"), (math.log, "log k"),
        (math.log, "log k"), (lambda b: b, "B"), (lambda eta: 1 / eta, "1/η"),
    ]
    return _finish("xie", "Xie et al. (ICLR 2021): escape time against sharpness, B and η",
                   output_dir, size, seed, began, sweeps, transforms)


def _finish(name, title, output_dir, size, seed, began, sweeps, transforms, extra=None,
            extra_markdown=(), extra_panels=()):
    figure, axes = _figure(len(sweeps) + len(extra_panels))
    for axis, sweep, (transform, label) in zip(axes, sweeps, transforms):
        _plot_sweep(axis, sweep, transform, label)
    for axis, panel in zip(axes[len(sweeps):], extra_panels):
        panel(axis)
    figure.tight_layout()
    summary = {
        "reproduction": name, "title": title, "size": size, "seed": seed,
        "device": jax.devices()[0].device_kind,
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
    summary["wall_seconds"] = time.perf_counter() - began[0]
    summary["cpu_seconds"] = time.process_time() - began[1]
    lines = _header(title, size, seed, began, [])
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
    _write_outputs(output_dir, name, summary, lines, figure)
    return summary


# --------------------------------------------------------------------------------------------
# Mori et al.: power-law stationary law and power-law escape, linear regression (Fig. 3)


_MORI = {
    # stationary: particles, time; passage: particles, points, target largest mean time, dt
    "smoke": dict(stationary_particles=2000, stationary_time=8.0, stationary_settings=2,
                  passage_particles=64, points=3, passage_time=30.0, dt=0.02, dimensions=(1, 3)),
    "default": dict(stationary_particles=10_000, stationary_time=20.0, stationary_settings=6,
                    passage_particles=400, points=5, passage_time=1000.0, dt=0.02,
                    dimensions=(1, 2, 3, 4)),
    "large": dict(stationary_particles=200_000, stationary_time=30.0, stationary_settings=6,
                  passage_particles=10_000, points=6, passage_time=30_000.0, dt=0.01,
                  dimensions=(1, 2, 3, 4)),
}
_MORI_SETTINGS = ((0.1, 1.0), (0.1, 2.0), (0.25, 1.0), (0.25, 2.0), (0.5, 1.0), (0.5, 4.0))
_MORI_PASSAGE = (1 / 3, 1.0)  # η, B: B/(ηh*) ≈ 3, so c^(4 − n/2)


def linear_regression_problem(key, num_samples: int, dimension: int) -> dict:
    r"""Mori's Fig. 3 data: $x \in \mathbb R^d$ and y with i.i.d. N(0, 1) entries, $f = \theta^Tx$.

    The loss $\frac1{2N}\sum(\theta^{\rm T}x - y)^2$ is exactly $\frac12(\theta-\theta^*)^{\rm T}
    H(\theta-\theta^*) + L^*$ with $H = X^{\rm T}X/N$, θ* the least-squares solution and $L^*$ half
    the mean squared residual (≈ 1/2). Computed in float64 from `jax.random` normals.
    """
    normals = np.asarray(jr.normal(key, (num_samples, dimension + 1)), np.float64)
    inputs, targets = normals[:, :dimension], normals[:, dimension]
    optimum, *_ = np.linalg.lstsq(inputs, targets, rcond=None)
    hessian = inputs.T @ inputs / num_samples
    residual = inputs @ optimum - targets
    minimum_loss = 0.5 * float(np.mean(residual**2))
    return {"hessian": hessian, "optimum": optimum, "minimum_loss": minimum_loss,
            "eigenvalues": np.linalg.eigvalsh(hessian)}


def fit_stationary_exponent(losses, minimum_loss, dimension):
    r"""MLE of φ from stationary losses, assuming $P(\theta) \propto L^{-\phi}$ (isotropic minimum).

    Then $w = 1 - L^*/L \sim \mathrm{Beta}(n/2, \phi - n/2)$ ([D], change of variables), so φ solves
    $\psi(\phi - n/2) - \psi(\phi) = \overline{\log(1 - w)}$; SE from the Fisher information
    $N[\psi'(\phi - n/2) - \psi'(\phi)]$. Returns (φ, SE).
    """
    losses = np.asarray(losses, np.float64)
    log_ratio = float(np.mean(np.log(minimum_loss / losses)))  # mean log(1 − w) < 0
    half = dimension / 2

    def score(phi):
        return special.digamma(phi - half) - special.digamma(phi) - log_ratio

    upper = half + 1.0
    while score(upper) < 0:
        upper *= 2
    phi = optimize.brentq(score, half + 1e-9, upper, xtol=1e-12)
    information = losses.size * (special.polygamma(1, phi - half) - special.polygamma(1, phi))
    return float(phi), float(1 / math.sqrt(information))


def _mori_stationary(config, problems, key, progress, size):
    began = time.perf_counter()
    settings = [(1, eta, b) for eta, b in _MORI_SETTINGS[: config["stationary_settings"]]]
    settings += [(d, *_MORI_PASSAGE) for d in config["dimensions"] if d > 1]
    dt = config["dt"]
    tolerance = 0.05 if size != "smoke" else 0.15
    rows = []
    for index, (dimension, learning_rate, batch) in enumerate(settings):
        problem = problems[dimension]
        landscape = QuadraticLandscape(problem["hessian"], problem["optimum"],
                                       problem["minimum_loss"])
        dynamics = MoriLossNoise(landscape, learning_rate, batch)
        flatness = float(np.mean(problem["eigenvalues"]))
        predicted = float(mori_stationary_exponent(learning_rate, batch, flatness))
        fits = {}
        particle_steps = 0
        for name, step in (("dt", dt), ("2dt", 2 * dt)):
            steps = int(round(config["stationary_time"] / step))
            result, _ = _run(dynamics, NeverEscape(), landscape.minimum(),
                             jr.fold_in(jr.fold_in(key, index), int(name == "2dt")), step,
                             config["stationary_particles"], steps,
                             f"mori/stationary d={dimension} η={learning_rate} B={batch} ({name})",
                             progress)
            positions = result.position[~result.diverged].astype(np.float64)
            offsets = positions - problem["optimum"]
            losses = 0.5 * np.einsum("ni,ij,nj->n", offsets, problem["hessian"], offsets)
            fits[name] = fit_stationary_exponent(losses + problem["minimum_loss"],
                                                 problem["minimum_loss"], dimension)
            particle_steps += steps * config["stationary_particles"]
        phi, standard_error = fits["dt"]
        bias = phi - fits["2dt"][0]
        rows.append({
            "dimension": dimension, "learning_rate": learning_rate, "batch_size": batch,
            "flatness": flatness, "phi": phi, "phi_se": standard_error, "phi_2dt": fits["2dt"][0],
            "bias": bias, "phi_extrapolated": phi - bias, "phi_predicted": predicted,
            "ratio": phi / predicted, "within_tolerance": abs(phi / predicted - 1) <= tolerance,
            "particle_steps": particle_steps,
        })
    checks = {
        f"phi_within_{round(100 * tolerance)}pct_d{row['dimension']}_eta{row['learning_rate']:.3g}"
        f"_B{row['batch_size']:g}": row["within_tolerance"] for row in rows
    }
    return {"name": "stationary_exponent", "rows": rows, "checks": checks, "dt": dt,
            "time": config["stationary_time"], "particles": config["stationary_particles"],
            "wall_seconds": time.perf_counter() - began,
            "particle_steps": sum(row["particle_steps"] for row in rows)}


def _threshold_grid(dimension, flatness, minimum_loss, learning_rate, batch, largest_time, count):
    """Thresholds c spanning a factor 4 whose largest has exact mean passage time `largest_time`."""
    def excess(log_ratio):
        time_ = mori_loss_threshold_time(math.exp(log_ratio), dimension, flatness, minimum_loss,
                                         learning_rate, batch, num_points=20_001)
        return math.log(time_) - math.log(largest_time)

    largest = math.exp(optimize.brentq(excess, math.log(1.05), math.log(1e6)))
    return np.geomspace(max(largest / 4, 1.25), largest, count)


# −ζ(1/2)/√(2π) (Siegmund 1979; Broadie, Glasserman, Kou 1997).
_BRIDGE_SHIFT = 0.5825971579390106


def discrete_monitoring_threshold(threshold_ratio, flatness, loss_minimum, learning_rate, batch,
                                  dt):
    r"""The threshold c' whose continuous passage time equals the discretely monitored one at c.

    A boundary checked only every dt (no Brownian-bridge correction: `LossAbove`) is crossed
    later, as if it sat $eta\sigma_n\sqrt{dt}$ further out, β = −ζ(1/2)/√(2π) ≈ 0.5826
    (Broadie, Glasserman, Kou 1997): an O(√dt) bias. For Mori's noise on $L = L^* + rac h2r^2$
    the normal noise at the sphere is $\sigma_n^2 = 2\eta h\,cL^*/B$, so
    $R' = R + eta\sigma_n\sqrt{dt}$ and $c' = 1 + hR'^2/(2L^*)$ ([D], leading order).
    """
    radius = math.sqrt(2 * (threshold_ratio - 1) * loss_minimum / flatness)
    sigma = math.sqrt(2 * learning_rate * flatness * threshold_ratio * loss_minimum / batch)
    shifted = radius + _BRIDGE_SHIFT * sigma * math.sqrt(dt)
    return 1 + flatness * shifted**2 / (2 * loss_minimum)


def _mori_passage_sweep(dimension, problem, config, key, progress, size):
    learning_rate, batch = _MORI_PASSAGE
    landscape = QuadraticLandscape(problem["hessian"], problem["optimum"], problem["minimum_loss"])
    dynamics = MoriLossNoise(landscape, learning_rate, batch)
    flatness = float(np.mean(problem["eigenvalues"]))
    loss_minimum = problem["minimum_loss"]
    thresholds = _threshold_grid(dimension, flatness, loss_minimum, learning_rate, batch,
                                 config["passage_time"], config["points"])
    points = []
    for c in thresholds:
        exact = mori_loss_threshold_time(c, dimension, flatness, loss_minimum, learning_rate, batch)
        shifted = discrete_monitoring_threshold(c, flatness, loss_minimum, learning_rate, batch,
                                                config["dt"])
        discrete = mori_loss_threshold_time(shifted, dimension, flatness, loss_minimum,
                                            learning_rate, batch)
        points.append({
            "label": f"mori/passage d={dimension} c={c:.3g}", "x": float(c), "dynamics": dynamics,
            "criterion": LossAbove(landscape, c * loss_minimum), "start": landscape.minimum(),
            "dt": config["dt"], "exact_log": math.log(exact), "learning_rate": learning_rate,
            "predicted_bias": discrete - exact,
        })
    predicted = float(mori_passage_exponent(learning_rate, batch, flatness, dimension))
    sweep = _escape_sweep(
        f"passage_d{dimension}",
        f"Linear regression d={dimension} (h* = {flatness:.4f}, L* = {loss_minimum:.4f}), "
        f"MoriLossNoise(η={learning_rate:.4g}, B={batch}); exit when L ≥ cL* (LossAbove). Mean "
        "time against c on log-log axes; exact = radial quadrature with isotropic H = h*I.",
        points, "log c", math.log, predicted, 0.10 if size != "smoke" else 0.35,
        config["passage_particles"], key, progress, order=0.5,
    )
    return sweep


def reproduce_mori(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Mori, Ziyin, Liu, Ueda (ICML 2022) Fig. 3: linear regression with Gaussian data, SDE (13).

    Data from `linear_regression_problem` (N = 10^5 samples per dimension d); the quadratic loss is
    simulated with `MoriLossNoise`, $D = \eta L(\theta)H^*/B$.

    - Stationary exponent (Fig. 3a): long `NeverEscape` runs from θ* (t = 20/h*), the final
      positions' losses fitted by `fit_stationary_exponent`; φ against $1 + B/(\eta h^*)$ (eq. 18)
      for d = 1 at six (η, B) and for d = 2–4 at η = 1/3, B = 1. Tolerance 5%.
    - Passage time (Fig. 3b): mean time until L ≥ cL* against c for d = 1–4 at B/(ηh*) ≈ 3;
      log-log slope against $B/(\eta h^*) + 1 - n/2$ (eqs. 17, 19), tolerance 10%. Each d gets a
      factor-4 range of c ending where the exact mean time is `passage_time` (the finite-c slope
      approaches the asymptote from below, as $c^{\phi}(c-1)^{-n/2}$: see docs/THEORIES.md).
    """
    _check_size(size)
    began = (time.perf_counter(), time.process_time())
    config = _MORI[size]
    key = jr.key(seed)
    dimensions = sorted(set(config["dimensions"]) | {1})
    problems = {d: linear_regression_problem(jr.fold_in(key, 100 + d), 100_000, d)
                for d in dimensions}
    stationary = _mori_stationary(config, problems, jr.fold_in(key, 1), progress, size)
    sweeps = [
        _mori_passage_sweep(d, problems[d], config, jr.fold_in(key, 10 + d), progress, size)
        for d in config["dimensions"]
    ]
    lines = ["## Stationary exponent φ (Mori eq. 18, Fig. 3a)", "",
             f"{stationary['particles']} particles per setting run to t = {stationary['time']} "
             f"(dt = {stationary['dt']}, and 2dt for the bias); φ from the Beta MLE of "
             "w = 1 − L*/L.", "",
             "| d | η | B | h* | φ (sim) | SE | φ (2dt) | bias | 1 + B/(ηh*) | ratio | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in stationary["rows"]:
        lines.append("| " + " | ".join(_format(row[key]) for key in (
            "dimension", "learning_rate", "batch_size", "flatness", "phi", "phi_se", "phi_2dt",
            "bias", "phi_predicted", "ratio", "within_tolerance")) + " |")
    lines.append("")

    def stationary_panel(axis):
        for dimension in sorted({row["dimension"] for row in stationary["rows"]}):
            rows = [row for row in stationary["rows"] if row["dimension"] == dimension]
            axis.errorbar([row["phi_predicted"] for row in rows], [row["phi"] for row in rows],
                          yerr=[row["phi_se"] for row in rows], fmt="o", ms=4,
                          label=f"d={dimension}")
        top = max(row["phi_predicted"] for row in stationary["rows"]) * 1.05
        axis.plot([1, top], [1, top], "k--", lw=1, label="φ = 1 + B/(ηh*)")
        axis.set_xlabel("predicted φ")
        axis.set_ylabel("fitted φ")
        axis.set_title("stationary P ∝ L^(−φ)", fontsize=9)
        axis.legend(fontsize=7)

    transforms = [(math.log, "log c")] * len(sweeps)
    return _finish(
        "mori", "Mori et al. (ICML 2022) Fig. 3: power-law stationary law and passage times",
        output_dir, size, seed, began, sweeps, transforms,
        extra={"stationary_exponent": stationary,
               "problems": {str(d): {k: v for k, v in p.items()} for d, p in problems.items()}},
        extra_markdown=lines, extra_panels=[stationary_panel],
    )


# --------------------------------------------------------------------------------------------
# Meng et al.: power-law dynamic, polynomial in the barrier


_MENG = {
    "smoke": dict(particles=96, points=3, barriers=(0.26, 0.56), sharpness=(1.0, 1.5)),
    "default": dict(particles=800, points=5, barriers=(0.6, 1.6), sharpness=(1.0, 2.0)),
    "large": dict(particles=20_000, points=7, barriers=(1.0, 3.0), sharpness=(1.0, 3.0)),
}


def reproduce_meng(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Meng et al. (arXiv 2006.13719): power-law escape, polynomial in the barrier height.

    `TiltedDoubleWell(ΔL, k, r=2)`, exit past the saddle (THEORY.md §4.4):

    1. `power_law`: `MengPowerLawNoise(η=0.1, σ=2, κ=2.5)`, ΔL swept: log τ against
       log(1 + 2κΔL/σ), predicted slope 1/(ηκ) + 1/2 = 4.5 (tolerance 5%).
    2. `constant_noise`: κ = 0 (Langevin, D = ησ₀/2), same ΔL: log τ against ΔL, slope 2/(ησ₀)
       (tolerance 5%) — exponential, against the power law of 1.
    3. `aligned_sharpness`: the Hessian-aligned form (κ ∝ h) at fixed ΔL, sharpness k swept:
       log τ − log(prefactor) against 1/k, slope log(1 + 2κΔL/σ)/(ηκ) (tolerance 10%): Meng's v3
       claim that sharp minima are escaped exponentially faster needs κ ∝ h.
    """
    _check_size(size)
    began = (time.perf_counter(), time.process_time())
    config = _MENG[size]
    particles, count = config["particles"], config["points"]
    key = jr.key(seed)
    learning_rate, sigma, kappa = 0.1, 2.0, 2.5
    low, high = config["barriers"]
    barriers = np.geomspace(low, high, count)
    sweeps = []
    points = []
    for barrier in barriers:
        landscape = TiltedDoubleWell(barrier, 1.0, 2.0)
        dynamics = MengPowerLawNoise(landscape, learning_rate, sigma, kappa)
        point = _one_d_point(f"meng/power ΔL={barrier:.3g}", barrier, dynamics, landscape, 0.1,
                             learning_rate, laplace=False)
        point["laplace_log"] = float(meng_log_escape_time(barrier, 1.0, 0.5, learning_rate, sigma,
                                                          kappa))
        points.append(point)
    sweeps.append(_escape_sweep(
        "power_law",
        f"TiltedDoubleWell(ΔL, k=1, r=2), MengPowerLawNoise(η={learning_rate}, σ={sigma}, "
        f"κ={kappa}): log τ against log(1 + 2κΔL/σ).",
        points, "log(1+2κΔL/σ)", lambda b: math.log1p(2 * kappa * b / sigma),
        1 / (learning_rate * kappa) + 0.5, 0.05 if size != "smoke" else 0.2,
        particles, jr.fold_in(key, 1), progress,
    ))

    # Constant noise with the same barrier range and exponents from 2.5 to 7 (smoke: 1 to 3).
    top_exponent = 7.0 if size != "smoke" else 3.0
    sigma_constant = 2 * high / (learning_rate * top_exponent)
    points = []
    for barrier in barriers:
        landscape = TiltedDoubleWell(barrier, 1.0, 2.0)
        dynamics = MengPowerLawNoise(landscape, learning_rate, sigma_constant, 0.0)
        point = _one_d_point(f"meng/constant ΔL={barrier:.3g}", barrier, dynamics, landscape, 0.1,
                             learning_rate, laplace=False)
        point["laplace_log"] = float(meng_log_escape_time(barrier, 1.0, 0.5, learning_rate,
                                                          sigma_constant, 0.0))
        points.append(point)
    sweeps.append(_escape_sweep(
        "constant_noise",
        f"TiltedDoubleWell(ΔL, k=1, r=2), constant noise D = ησ₀/2 (σ₀={sigma_constant:.4g}, "
        "κ=0): log τ against ΔL.",
        points, "ΔL", lambda b: b, 2 / (learning_rate * sigma_constant),
        0.05 if size != "smoke" else 0.25, particles, jr.fold_in(key, 2), progress,
    ))

    # Hessian-aligned power law: sharpness sweep at fixed barrier.
    barrier = float(np.sqrt(low * high))
    k_low, k_high = config["sharpness"]
    growth = math.log1p(2 * kappa * barrier / sigma)
    # κ̄ (and σ̄ = σκ̄/κ, same growth factor) chosen so that the exponent at k_low is `top_exponent`.
    kappa_aligned = growth / (learning_rate * top_exponent * k_low)
    sigma_aligned = sigma * kappa_aligned / kappa
    sharpness = np.geomspace(k_low, k_high, count)
    points = []
    for k in sharpness:
        landscape = TiltedDoubleWell(barrier, k, 2.0)
        dynamics = MengPowerLawNoise(landscape, learning_rate, sigma_aligned, kappa_aligned,
                                     hessian_aligned=True)
        point = _one_d_point(f"meng/aligned k={k:.3g}", k, dynamics, landscape, 0.1 / k,
                             learning_rate, laplace=False)
        point["laplace_log"] = float(meng_log_escape_time(
            barrier, k, k / 2, learning_rate, sigma_aligned, kappa_aligned, hessian_aligned=True))
        points.append(point)
    sweeps.append(_escape_sweep(
        "aligned_sharpness",
        f"TiltedDoubleWell(ΔL={barrier:.3g}, k, r=2), MengPowerLawNoise(η={learning_rate}, "
        f"σ̄={sigma_aligned:.3g}, κ̄={kappa_aligned:.3g}, hessian_aligned=True): log τ minus the "
        "Laplace prefactor log(2π√(1+2κ̄ΔL/σ̄)/√(k·k/2)) against 1/k.",
        points, "1/k", lambda k: 1 / k, growth / (learning_rate * kappa_aligned), 0.10,
        particles, jr.fold_in(key, 3), progress,
        offset=lambda k: math.log(2 * math.pi / math.sqrt(k * k / 2)) + 0.5 * growth,
        offset_name="log prefactor",
    ))
    transforms = [
        (lambda b: math.log1p(2 * kappa * b / sigma), "log(1+2κΔL/σ)"), (lambda b: b, "ΔL"),
        (lambda k: 1 / k, "1/k"),
    ]
    return _finish("meng", "Meng et al. (arXiv 2006.13719): power-law dynamic vs constant noise",
                   output_dir, size, seed, began, sweeps, transforms)


def reproduce_wu(output_dir, size="default", seed=0, progress=True) -> dict:
    """Wu, Ma & E's stability with real SGD particles (in `_reproduce_wu.py`, which imports the
    helpers above)."""
    from ._reproduce_wu import reproduce_wu as run

    return run(output_dir, size, seed, progress)


def reproduce_sgd_vs_sde(output_dir, size="default", seed=0, progress=True) -> dict:
    """Real SGD against its exact-covariance SDE and the papers' models, and Meng's added noise
    (in `_sgd_vs_sde.py`, which imports the helpers above)."""
    from ._sgd_vs_sde import reproduce_sgd_vs_sde as run

    return run(output_dir, size, seed, progress)


REPRODUCTIONS = {
    "xie": reproduce_xie, "mori": reproduce_mori, "meng": reproduce_meng, "wu": reproduce_wu,
    "sgd-vs-sde": reproduce_sgd_vs_sde,
}
