r"""Heavy-tailed against Gaussian noise: how the escape time depends on the noise, the well's width
and the barrier's height (Imkeller & Pavlyukevich 2006; Şimşekli, Sagun & Gürbüzbalaban 2019).

The well $L(x) = h\,(2(x/w)^2 - (x/w)^4)$ has its minimum at 0 and its barrier tops, of height h,
at ±w; a particle escapes when it leaves (−w, w). `LevyLangevin` (dX = −L′ dt + ε dL^α) is run
for α = 1.2, 1.5, 1.8 and for the Gaussian α = 2 (D = ε²). Every point is checked against the
exact mean exit time of the simulated chain itself (`levy_chain_mean_exit_time`), in standard
errors; the slopes are compared with the small-noise laws:

- α < 2: $E\tau \approx \alpha w^\alpha / (2 c_\alpha \varepsilon^\alpha)$ (`levy_escape_time`):
  slope −α in log ε, +α in log w, and no dependence on h.
- α = 2 (Kramers): $E\tau \approx \frac{\pi w^2}{4\sqrt{2}\,h} e^{h/\varepsilon^2}$: slope h in
  1/ε², 2 in log w, and 1/ε² − 1/h in h.

The reproduction is a declared experiment (`declared.py`): `sweep(size, seed)` lists the escapes
and, for each, a measure point that solves the exact chain; `analyse` fits them from the store.
"""

import math

import jax.numpy as jnp
import numpy as np

from .._landscapes import FunctionLandscape
from .._theory.levy import levy_chain_mean_exit_time, levy_escape_time, stable_levy_constant
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import STEP_LIMIT, check_size, format_value, new_figure, output_files, \
    report_header


ALPHAS = (1.2, 1.5, 1.8, 2.0)
_LEVY = {
    # particles per point, points per sweep, dt, the middle escape time of the ε sweep.
    "smoke": dict(particles=200, points=3, dt=0.02, tau=8.0),
    "default": dict(particles=2000, points=4, dt=0.01, tau=20.0),
    "large": dict(particles=50_000, points=6, dt=0.005, tau=40.0),
}


def quartic_well(y, parameters):
    """h·(2(x/w)² − (x/w)⁴): minimum 0 at x = 0, barrier tops h at x = ±w."""
    height, width = parameters
    u = (y[0] / width) ** 2
    return height * (2 * u - u**2)


def _gradient(height, width):
    return lambda x: 4 * height / width**2 * x * (1 - (x / width) ** 2)


def _gaussian_law(epsilon, width, height):
    """Kramers for the well: π/sqrt(L''(0)|L''(±w)|)·exp(h/D), D = ε², L'' = 4h/w², −8h/w²."""
    return math.pi * width**2 / (4 * math.sqrt(2) * height) * math.exp(height / epsilon**2)


def _law(alpha, epsilon, width, height):
    if alpha == 2:
        return _gaussian_law(epsilon, width, height)
    return float(levy_escape_time(alpha, epsilon, width, width))


def _epsilon_for(alpha, tau, width=1.0, height=1.0):
    """The ε at which the small-noise law gives mean escape time `tau`."""
    if alpha == 2:  # solve for h/ε² at the Kramers prefactor
        prefactor = math.pi * width**2 / (4 * math.sqrt(2) * height)
        return math.sqrt(height / math.log(tau / prefactor))
    return (alpha * width**alpha / (2 * stable_levy_constant(alpha) * tau)) ** (1 / alpha)


def quartic_landscape(height, width) -> FunctionLandscape:
    """The well h·(2(x/w)² − (x/w)⁴) as a landscape (a sweep's `landscape` by import path)."""
    return FunctionLandscape(quartic_well, 1, (jnp.asarray(height), jnp.asarray(width)))


def chain_mean_exit_time(alpha, epsilon, width, height, dt) -> dict:
    """The exact mean exit time from (−w, w), start 0, of the chain `LevyLangevin` simulates at
    step dt (`levy_chain_mean_exit_time`, 2 grid points per noise scale, at most 12001): a
    measurement (sweep method "measure") returning `tau_exact`."""
    return {"tau_exact": float(levy_chain_mean_exit_time(
        _gradient(height, width), alpha, epsilon, dt, -width, width, 0.0,
        points_per_scale=2.0, max_points=12_001))}


def _design(size: str) -> list[dict]:
    """The sweeps: per α the ε, width and height series, each point (ε, w, h, x)."""
    config = _LEVY[size]
    count = config["points"]
    sweeps = []
    for alpha in ALPHAS:
        taus = np.geomspace(config["tau"] / 3, config["tau"] * 3, count)
        middle = _epsilon_for(alpha, config["tau"])
        designs = (
            ("epsilon", [(e, 1.0, 1.0, e) for e in (_epsilon_for(alpha, tau) for tau in taus)],
             "log ε" if alpha < 2 else "1/ε²", math.log if alpha < 2 else (lambda e: e**-2)),
            ("width", [(middle, w, 1.0, w) for w in np.geomspace(0.6, 1.6, count)], "log w",
             math.log),
            ("height", [(middle, 1.0, h, h) for h in np.geomspace(0.5, 2.0, count)], "h",
             lambda h: h),
        )
        for name, settings, x_name, transform in designs:
            sweeps.append({"name": f"alpha{alpha:g}_{name}", "alpha": alpha, "x_name": x_name,
                           "transform": transform, "settings": [
                               tuple(float(value) for value in setting) for setting in settings]})
    return sweeps


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: the escapes, labelled `alpha{α}_{series}/i` (direct, no
    extrapolation: the reference is the chain at the run's own dt), then for each escape a
    measure point `exact_chain/alpha{α}_{series}/i` (`chain_mean_exit_time`: the reference at
    every size; the sweep's own `exact_mfpt`, a finer grid of at most 4001 points, is missing
    where the noise scale is small)."""
    check_size(size)
    config = _LEVY[size]
    dt = config["dt"]
    escapes, chains = [], []
    for series in _design(size):
        alpha = series["alpha"]
        for index, (epsilon, width, height, _) in enumerate(series["settings"]):
            label = f"{series['name']}/{index}"
            # 40 small-noise-law times: the law exceeds the chain's exact mean at these points.
            law = _law(alpha, epsilon, width, height)
            escapes.append({
                "label": label,
                "landscape": {"name": "jaxescape._reproductions.levy:quartic_landscape",
                              "height": height, "width": width},
                "dynamics": {"name": "levy", "alpha": alpha, "epsilon": epsilon},
                "criterion": {"name": "outside-ball", "radius": width}, "start": [0.0],
                "dt": dt, "particles": config["particles"],
                "max_steps": int(min(STEP_LIMIT, 40 * law / dt + 1000)),
                "reference": False})  # the exact chain is the measure point below
            chains.append({
                "label": f"exact_chain/{label}", "method": "measure",
                "measurement": {"name": "jaxescape._reproductions.levy:chain_mean_exit_time",
                                "alpha": alpha, "epsilon": epsilon, "width": width,
                                "height": height, "dt": dt}})
    return reproduction_sweep("levy", size, seed, escapes + chains, extrapolate=False)


def _fit(x, y, standard_error=None):
    """Weighted least squares y = a + b·x: slope b and its SE (from the points' SEs; without
    them, unweighted, SE from the residuals)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    weights = np.ones_like(x) if standard_error is None else np.asarray(standard_error) ** -2.0
    design = np.stack([np.ones_like(x), x], axis=1)
    covariance = np.linalg.inv(design.T @ (weights[:, None] * design))
    coefficients = covariance @ design.T @ (weights * y)
    if standard_error is None:
        residual = y - design @ coefficients
        covariance = covariance * np.sum(residual**2) / max(x.size - 2, 1)
    return float(coefficients[1]), float(math.sqrt(covariance[1, 1]))


def _sweep(name, alpha, x_name, transform, rows):
    """Slopes of log τ against transform(x): simulated, exact chain and small-noise law."""
    x = np.array([transform(row["x"]) for row in rows])
    log_tau = np.log([row["tau"] for row in rows])
    slope, slope_se = _fit(x, log_tau, [row["tau_se"] / row["tau"] for row in rows])
    exact_slope, _ = _fit(x, np.log([row["tau_exact"] for row in rows]))
    law_slope, _ = _fit(x, np.log([row["tau_law"] for row in rows]))
    checks = {
        "all_points_agree_with_exact_chain": all(row["agrees_with_exact"] for row in rows),
        "slope_within_4se_of_exact_chain": abs(slope - exact_slope) <= 4 * slope_se,
        "none_censored": all(row["censored"] == 0 and row["diverged"] == 0 for row in rows),
    }
    return {"name": name, "alpha": alpha, "x_name": x_name, "points": rows, "slope": slope,
            "slope_se": slope_se, "exact_slope": exact_slope, "law_slope": law_slope,
            "checks": checks}


def reproduce_levy(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Escape under α-stable (α = 1.2, 1.5, 1.8) and Gaussian noise against ε, width and height.

    On the quartic well of width w and height h (module docstring), three sweeps per α, each
    point checked against the exact discretised chain within 4 SE:

    1. `epsilon`: w = h = 1, ε swept (the law's τ from τ₀/3 to 3τ₀): log τ against log ε,
       slope → −α for α < 2 (polynomial); log τ against 1/ε² for α = 2, slope → h.
       The slopes are reported for the simulation, the exact chain and the small-noise law.
    2. `width`: h = 1, ε at the middle of sweep 1, w from 0.6 to 1.6: log τ against log w,
       slope → α (α < 2) or 2 (the Kramers prefactor; the exponential is fixed by h).
    3. `height`: w = 1, same ε, h from 0.5 to 2: log τ against h, slope → 0 for α < 2
       (insensitive to the barrier), → 1/ε² − 1/h for α = 2 (Arrhenius).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The slopes against the exact chain and the small-noise law, the report and figure of the
    stored points (`jaxescape report DIR` reruns it)."""
    groups = grouped(run)
    exact = {record["point"]["label"].split("/", 1)[1]: record["summary"]["measured"]["tau_exact"]
             for record in groups["exact_chain"]}
    sweeps = []
    for series in _design(size):
        rows = []
        for record, (_, _, _, x) in zip(groups[series["name"]], series["settings"]):
            point, summary = record["point"], record["summary"]
            alpha, epsilon = point["dynamics.alpha"], point["dynamics.epsilon"]
            width, height = point["landscape.width"], point["landscape.height"]
            mean, standard_error = summary["mfpt"], summary["mfpt_standard_error"]
            tau_exact = exact[point["label"]]
            rows.append({
                "alpha": alpha, "x": x, "epsilon": epsilon, "width": width, "height": height,
                "dt": point["dt"], "particles": point["particles"], "tau": mean,
                "tau_se": standard_error, "tau_exact": tau_exact,
                "tau_law": _law(alpha, epsilon, width, height),
                "deviation_in_se": (mean - tau_exact) / standard_error,
                "agrees_with_exact": bool(abs(mean - tau_exact) <= 4 * standard_error),
                "censored": summary["num_censored"], "diverged": summary["num_diverged"],
                "particle_steps": summary["cost_particle_steps"],
                "wall_seconds": record["timing"]["wall_time_s"],
            })
        sweeps.append(_sweep(series["name"], series["alpha"], series["x_name"],
                             series["transform"], rows))
    return _finish(size, seed_of(run), timing(run), sweeps, run.environment.get("device_kind"))


def _finish(size, seed, began, sweeps, device) -> dict[str, bytes]:
    checks = {f"{sweep['name']}.{name}": bool(value) for sweep in sweeps
              for name, value in sweep["checks"].items()}
    summary = {
        "reproduction": "levy", "size": size, "seed": seed,
        "title": "α-stable against Gaussian noise: escape time against ε, width and height",
        "sweeps": {sweep["name"]: sweep for sweep in sweeps}, "checks": checks,
        "all_checks_passed": all(checks.values()),
        "particle_steps": sum(row["particle_steps"] for sweep in sweeps for row in sweep["points"]),
        "device": device, "wall_seconds": began.wall, "cpu_seconds": began.cpu,
    }
    lines = report_header(summary["title"], size, seed, began, [], device)
    lines += ["## Slopes of log τ", "",
              "| sweep | against | slope ± SE | exact chain | small-noise law |",
              "|---|---|---|---|---|"]
    for sweep in sweeps:
        lines.append(f"| {sweep['name']} | {sweep['x_name']} | {sweep['slope']:.4g} ± "
                     f"{sweep['slope_se']:.2g} | {sweep['exact_slope']:.4g} | "
                     f"{sweep['law_slope']:.3g} |")
    lines += ["", "## Points", "",
              "| sweep | x | ε | w | h | τ (sim) | SE | τ exact chain | τ law | (sim − exact)/SE |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for sweep in sweeps:
        for row in sweep["points"]:
            lines.append("| " + " | ".join([sweep["name"]] + [format_value(row[key]) for key in (
                "x", "epsilon", "width", "height", "tau", "tau_se", "tau_exact", "tau_law",
                "deviation_in_se")]) + " |")
    failed = [name for name, value in checks.items() if not value]
    lines += ["", "## Checks", "", f"{len(checks) - len(failed)} of {len(checks)} passed."]
    lines += [f"- failed: `{name}`" for name in failed] + [""]
    figure, axes = new_figure(3)
    for axis, part in zip(axes, ("epsilon", "width", "height")):
        for sweep in (s for s in sweeps if s["name"].endswith(part)):
            x = [row["x"] for row in sweep["points"]]
            axis.errorbar(x, [row["tau"] for row in sweep["points"]],
                          yerr=[row["tau_se"] for row in sweep["points"]], fmt="o", ms=4,
                          label=f"α = {sweep['alpha']:g}")
            axis.plot(x, [row["tau_exact"] for row in sweep["points"]], "-", color="grey", lw=0.8)
        axis.set_xscale("log" if part != "height" else "linear")
        axis.set_yscale("log")
        axis.set_xlabel({"epsilon": "ε", "width": "width w", "height": "barrier height h"}[part])
        axis.set_ylabel("mean escape time")
        axis.legend(fontsize=7)
    figure.tight_layout()
    return output_files("levy", summary, lines, figure)
