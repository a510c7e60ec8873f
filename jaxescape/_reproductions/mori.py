"""Mori, Ziyin, Liu, Ueda (ICML 2022) Fig. 3: power-law stationary law and power-law escape in
linear regression with Gaussian data, SDE (13). `reproduce_mori` fits the stationary exponent φ
(eq. 18, Fig. 3a) and the mean time until L ≥ cL* against c (eqs. 17, 19, Fig. 3b). It is a
declared experiment (`declared.py`): `sweep(size, seed)` lists the stationary measurements
(`measure_stationary_exponent`, method "measure") and the passage points (`regression_landscape`,
dynamics "mori", criterion "loss-above"); `analyse` fits them from the store.
"""

import math

import jax.random as jr
import numpy as np
from scipy import optimize, special

from .._criteria import NeverEscape
from .._experiments.components import options_of
from .._theory.closed_forms import (
    mori_loss_threshold_time,
    mori_passage_exponent,
    mori_stationary_exponent,
)
from .._dynamics.noise_models import MoriLossNoise, QuadraticLandscape
from .declared import escape_point, grouped, record_row, reproduction_sweep, run_reproduction, \
    seed_of, timing
from .tools import check_size, finish, fit_sweep, format_value, run_direct


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
_NUM_SAMPLES = 100_000  # samples per data set (Mori: N = 10^5)


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


def regression_landscape(key, dimension: int, num_samples: int = _NUM_SAMPLES) -> \
        QuadraticLandscape:
    """The loss of `linear_regression_problem(fold_in(key, 100 + dimension), num_samples,
    dimension)` as a `QuadraticLandscape` (a sweep's landscape by import path; `seed` gives key).
    """
    problem = _problem(key, dimension, num_samples)
    return QuadraticLandscape(problem["hessian"], problem["optimum"], problem["minimum_loss"])


def _problem(key, dimension, num_samples=_NUM_SAMPLES) -> dict:
    for name, value, lower in (("dimension", dimension, 1), ("num_samples", num_samples, 2)):
        if isinstance(value, bool) or int(value) != value or value < lower:
            raise ValueError(f"{name} must be an integer >= {lower}, got {value!r}")
    return linear_regression_problem(jr.fold_in(key, 100 + int(dimension)), int(num_samples),
                                     int(dimension))


def measure_stationary_exponent(key, *, dimension: int, learning_rate: float, batch_size: float,
                                dt: float, end_time: float, particles: int, seed: int = 0,
                                num_samples: int = _NUM_SAMPLES, progress=False) -> dict:
    r"""φ of the stationary law $P \propto L^{-\phi}$ of `MoriLossNoise` on Mori's regression loss.

    `particles` particles start at θ* of `regression_landscape(key(seed), dimension)` and run
    to `end_time` (`NeverEscape`) at `dt` (key `key`) and at 2·dt (key `fold_in(key, 1)`); the
    final losses give φ ± SE by `fit_stationary_exponent`. Returns `phi`, `phi_se`, `phi_2dt`,
    `phi_2dt_se`, `flatness` h* (mean eigenvalue of H), `minimum_loss` L*, `diverged`,
    `particle_steps` and the arrays `loss`, `loss_2dt` (a sweep's measurement, method "measure").
    """
    for name, value in (("dt", dt), ("end_time", end_time)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if isinstance(particles, bool) or int(particles) != particles or particles < 2:
        raise ValueError(f"particles must be an integer >= 2, got {particles!r}")
    problem = _problem(jr.key(int(seed)), dimension, num_samples)
    landscape = QuadraticLandscape(problem["hessian"], problem["optimum"],
                                   problem["minimum_loss"])
    dynamics = MoriLossNoise(landscape, learning_rate, batch_size)
    values = {"flatness": float(np.mean(problem["eigenvalues"])),
              "minimum_loss": problem["minimum_loss"], "diverged": 0, "particle_steps": 0}
    for suffix, step, run_key in (("", dt, key), ("_2dt", 2 * dt, jr.fold_in(key, 1))):
        steps = int(round(end_time / step))
        label = f"{progress} ({suffix[1:] or 'dt'})" if progress else False
        result, _ = run_direct(dynamics, NeverEscape(), landscape.minimum(), run_key, step,
                               int(particles), steps, label, bool(progress))
        offsets = result.position[~result.diverged].astype(np.float64) - problem["optimum"]
        losses = problem["minimum_loss"] + 0.5 * np.einsum(
            "ni,ij,nj->n", offsets, problem["hessian"], offsets)
        values[f"phi{suffix}"], values[f"phi{suffix}_se"] = fit_stationary_exponent(
            losses, problem["minimum_loss"], dimension)
        values[f"loss{suffix}"] = losses
        values["diverged"] += int(np.count_nonzero(result.diverged))
        values["particle_steps"] += steps * int(particles)
    return values


def _threshold_grid(dimension, flatness, minimum_loss, learning_rate, batch, largest_time, count):
    """Thresholds c spanning a factor 4 whose largest has exact mean passage time `largest_time`."""
    def excess(log_ratio):
        time_ = mori_loss_threshold_time(math.exp(log_ratio), dimension, flatness, minimum_loss,
                                         learning_rate, batch, num_points=20_001)
        return math.log(time_) - math.log(largest_time)

    largest = math.exp(optimize.brentq(excess, math.log(1.05), math.log(1e6)))
    return np.geomspace(max(largest / 4, 1.25), largest, count)


# −ζ(1/2)/√(2π) (Siegmund 1979; Broadie, Glasserman, Kou 1997).
BRIDGE_SHIFT = 0.5825971579390106


def discrete_monitoring_threshold(threshold_ratio, flatness, loss_minimum, learning_rate, batch,
                                  dt):
    r"""The threshold c' whose continuous passage time equals the discretely monitored one at c.

    A boundary checked only every dt (no Brownian-bridge correction: `LossAbove` with
    `crossing_correction=False`, or SGD's iterates) is crossed later, as if it sat
    $\beta\sigma_n\sqrt{dt}$ further out, β = −ζ(1/2)/√(2π) ≈ 0.5826
    (Broadie, Glasserman, Kou 1997): an O(√dt) bias. For Mori's noise on $L = L^* + \frac h2r^2$
    the normal noise at the sphere is $\sigma_n^2 = 2\eta h\,cL^*/B$, so
    $R' = R + \beta\sigma_n\sqrt{dt}$ and $c' = 1 + hR'^2/(2L^*)$ ([D], leading order).
    """
    radius = math.sqrt(2 * (threshold_ratio - 1) * loss_minimum / flatness)
    sigma = math.sqrt(2 * learning_rate * flatness * threshold_ratio * loss_minimum / batch)
    shifted = radius + BRIDGE_SHIFT * sigma * math.sqrt(dt)
    return 1 + flatness * shifted**2 / (2 * loss_minimum)


def _stationary_settings(config) -> list[tuple]:
    """(d, η, B): d = 1 at the first `stationary_settings` (η, B), then d > 1 at η = 1/3, B = 1."""
    settings = [(1, eta, b) for eta, b in _MORI_SETTINGS[: config["stationary_settings"]]]
    return settings + [(d, *_MORI_PASSAGE) for d in config["dimensions"] if d > 1]


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `stationary/i` (measurements of φ, method "measure") and
    `passage_dD/i` (escape times until L ≥ cL* in dimension D, a factor-4 range of c)."""
    check_size(size)
    config = _MORI[size]
    dt = config["dt"]
    points = [{
        "label": f"stationary/{index}", "method": "measure",
        "measurement": {"name": f"{__name__}:measure_stationary_exponent",
                        "dimension": dimension, "learning_rate": learning_rate,
                        "batch_size": float(batch), "dt": dt,
                        "end_time": config["stationary_time"],
                        "particles": config["stationary_particles"], "seed": int(seed)},
    } for index, (dimension, learning_rate, batch) in enumerate(_stationary_settings(config))]
    learning_rate, batch = _MORI_PASSAGE
    for dimension in config["dimensions"]:
        problem = _problem(jr.key(seed), dimension)
        flatness = float(np.mean(problem["eigenvalues"]))
        loss_minimum = problem["minimum_loss"]
        thresholds = _threshold_grid(dimension, flatness, loss_minimum, learning_rate, batch,
                                     config["passage_time"], config["points"])
        for index, ratio in enumerate(thresholds):
            exact = mori_loss_threshold_time(ratio, dimension, flatness, loss_minimum,
                                             learning_rate, batch)
            # LossAbove has the Brownian-bridge crossing correction: O(dt), measured τ_2dt − τ_dt.
            points.append(escape_point(
                f"passage_d{dimension}/{index}",
                {"name": f"{__name__}:regression_landscape", "dimension": dimension,
                 "seed": int(seed)},
                {"name": "mori", "learning_rate": learning_rate, "batch_size": batch},
                dt, config["passage_particles"], math.log(exact),
                criterion={"name": "loss-above", "factor": float(ratio)}))
    return reproduction_sweep("mori", size, seed, points)


def reproduce_mori(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Mori et al. (ICML 2022), Fig. 3: the stationary law and passage times are powers of L.

    Data from `linear_regression_problem` (N = 10^5 samples per dimension d); the quadratic loss is
    simulated with `MoriLossNoise`, $D = \eta L(\theta)H^*/B$.

    - Stationary exponent (Fig. 3a): long `NeverEscape` runs from θ* (t = 20/h*), the final
      positions' losses fitted by `fit_stationary_exponent`; φ against $1 + B/(\eta h^*)$ (eq. 18)
      for d = 1 at six (η, B) and for d = 2–4 at η = 1/3, B = 1. Tolerance 5%.
    - Passage time (Fig. 3b): mean time until L ≥ cL* against c for d = 1–4 at B/(ηh*) ≈ 3;
      log-log slope against $B/(\eta h^*) + 1 - n/2$ (eqs. 17, 19), tolerance 10%. Each d gets a
      factor-4 range of c ending where the exact mean time is `passage_time` (the finite-c slope
      approaches the asymptote from below, as $c^{\phi}(c-1)^{-n/2}$: see docs/THEORIES.md).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def _stationary_summary(records, config, size) -> dict:
    """The stationary measurements as rows, against eq. 18, with their checks."""
    tolerance = 0.05 if size != "smoke" else 0.15
    rows = []
    for record in records:
        options = options_of(record["point"], "measurement")
        measured = record["summary"]["measured"]
        learning_rate, batch = options["learning_rate"], options["batch_size"]
        predicted = float(mori_stationary_exponent(learning_rate, batch, measured["flatness"]))
        phi, bias = measured["phi"], measured["phi"] - measured["phi_2dt"]
        rows.append({
            "dimension": options["dimension"], "learning_rate": learning_rate,
            "batch_size": batch, "flatness": measured["flatness"], "phi": phi,
            "phi_se": measured["phi_se"], "phi_2dt": measured["phi_2dt"], "bias": bias,
            "phi_extrapolated": phi - bias, "phi_predicted": predicted,
            "ratio": phi / predicted, "within_tolerance": abs(phi / predicted - 1) <= tolerance,
            "particle_steps": measured["particle_steps"],
        })
    checks = {
        f"phi_within_{round(100 * tolerance)}pct_d{row['dimension']}_eta{row['learning_rate']:.3g}"
        f"_B{row['batch_size']:g}": row["within_tolerance"] for row in rows
    }
    return {"name": "stationary_exponent", "rows": rows, "checks": checks, "dt": config["dt"],
            "time": config["stationary_time"], "particles": config["stationary_particles"],
            "wall_seconds": sum(record["timing"]["wall_time_s"] for record in records),
            "particle_steps": sum(row["particle_steps"] for row in rows)}


def _passage_fit(dimension, records, problem, size) -> dict:
    """The passage times of dimension d against the exact radial quadrature, fitted in log c."""
    learning_rate, batch = _MORI_PASSAGE
    flatness = float(np.mean(problem["eigenvalues"]))
    loss_minimum = problem["minimum_loss"]
    rows = []
    for record in records:
        ratio = record["point"]["criterion.factor"]
        exact = mori_loss_threshold_time(ratio, dimension, flatness, loss_minimum,
                                         learning_rate, batch)
        # The store has no exact reference for a d-dimensional `loss-above` exit: the quadrature's.
        record = {**record, "summary": {**record["summary"], "exact_mfpt": exact}}
        rows.append(record_row(record, ratio, learning_rate=learning_rate))
    predicted = float(mori_passage_exponent(learning_rate, batch, flatness, dimension))
    return fit_sweep(
        f"passage_d{dimension}",
        f"Linear regression d={dimension} (h* = {flatness:.4f}, L* = {loss_minimum:.4f}), "
        f"MoriLossNoise(η={learning_rate:.4g}, B={batch}); exit when L ≥ cL* (LossAbove). Mean "
        "time against c on log-log axes; exact = radial quadrature with isotropic H = h*I.",
        rows, "log c", math.log, predicted, 0.10 if size != "smoke" else 0.35)


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The stationary exponents and the passage-time fits of the stored points, their report and
    figure (`jaxescape report DIR` reruns it; the data sets are regenerated from the seed)."""
    config = _MORI[size]
    seed = seed_of(run)
    groups = grouped(run)
    problems = {d: _problem(jr.key(seed), d) for d in sorted(set(config["dimensions"]) | {1})}
    stationary = _stationary_summary(groups["stationary"], config, size)
    sweeps = [_passage_fit(d, groups[f"passage_d{d}"], problems[d], size)
              for d in config["dimensions"]]
    lines = ["## Stationary exponent φ (Mori eq. 18, Fig. 3a)", "",
             f"{stationary['particles']} particles per setting run to t = {stationary['time']} "
             f"(dt = {stationary['dt']}, and 2dt for the bias); φ from the Beta MLE of "
             "w = 1 − L*/L.", "",
             "| d | η | B | h* | φ (sim) | SE | φ (2dt) | bias | 1 + B/(ηh*) | ratio | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in stationary["rows"]:
        lines.append("| " + " | ".join(format_value(row[key]) for key in (
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
    return finish(
        "mori", "Mori et al. (ICML 2022) Fig. 3: power-law stationary law and passage times",
        size, seed, timing(run), sweeps, transforms,
        extra={"stationary_exponent": stationary,
               "problems": {str(d): dict(p) for d, p in problems.items()}},
        extra_markdown=lines, extra_panels=[stationary_panel],
        device=run.environment.get("device_kind"),
    )
