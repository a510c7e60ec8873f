r"""`jaxescape reproduce sgd-vs-sde`: real minibatch SGD against its SDEs, and Meng's added noise.

1. **η sweep** (docs/THEORY.md §1.1–1.2, §7.1). Two 1-D problems: Mori's linear regression
   (`gaussian_regression_data`, n = 1000, escape = `LossAbove(TrainingLoss, c·L*)`, two-sided) and
   Meng's landscape (`MengDoubleWell` on `meng_data`, escape past the barrier top with a
   `HalfSpace`). SGD particles (`MinibatchSGD` with i.i.d. minibatches drawn with replacement,
   time t = ηk) at B ∝ η (500η for Mori, 100η for Meng), so that the SDE
   $d\theta = -\nabla L\,dt + \sqrt{\eta\Sigma}\,dW$, Σ = V/B, stays the same while η grows.
   The reference is the exact
   quadrature of that SDE with the exact minibatch covariance (`MinibatchNoiseSDE`, §1.4;
   `exact_mfpt_interval` for the two-sided exit). SGD is only looked at every iteration, so it
   crosses a boundary as if it sat β·η·sqrt(Σ) further out, β = −ζ(1/2)/√(2π) ≈ 0.5826
   (Broadie, Glasserman & Kou 1997; an O(√η) effect): the quadrature with boundaries moved so is
   the discretisation allowance. The papers' models (`MoriLossNoise` with B → 1/p,
   `MengPowerLawNoise` with σ, κ fitted to Σ along the path) are evaluated by the same quadrature.
   Per-epoch reshuffling (the default `MinibatchSGD`, each sample once per epoch) is run at the
   smallest η against the SDE with the without-replacement factor: its minibatches are not
   independent across steps (an epoch's noise sums to ≈ 0), which the SDE does not describe.
2. **Meng's proposal** (§4.1, §4.5): at η = 0.1, small batch (B = 10) against large batch
   (B = 30) against large batch plus `noisy_sgd` noise $\eta\sqrt{\sigma + 2\kappa(L_B - L^*)}\zeta$
   with σ, κ fitted to the gap in noise, $(p_{10} - p_{30})\,V(w)$, V the per-sample gradient
   variance (least squares of V against L − L* along the path from the minimum to the top).

A declared experiment (`declared.py`): `sweep(size, seed)` lists the SGD particles as escape
points (dynamics "sgd", model and data by name; labels `mori/i`, `meng/i`, `mori_reshuffled/0`,
`meng_reshuffled/0`, `meng_noise/i`) and the quadratures they are compared with as measurement
points (`rate_references`, `noise_reference`; labels `*_exact/i`); `analyse` builds the ratios,
checks, report and figure from the store.
"""

import functools
import math

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._criteria import HalfSpace, LossAbove
from .._sgd.data import gaussian_regression_data, meng_data
from .._dynamics.sde import GeneralSDE
from .._experiments.components import options_of
from .._landscapes import AbstractLandscape
from .._particle import next_power_of_two
from .._sgd.minibatch_noise import MinibatchNoiseSDE, minibatch_factor
from .._sgd.models import LinearRegression, MengDoubleWell, TrainingLoss, meng_shift_for_barrier
from .._dynamics.noise_models import MengPowerLawNoise, MoriLossNoise, QuadraticLandscape
from .._sgd.optax_noise import noisy_sgd
from .._theory.reference import exact_mfpt, exact_mfpt_interval
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .mori import BRIDGE_SHIFT
from .tools import STEP_LIMIT, check_size, new_figure, format_value, output_files, report_header
from .._sgd.minibatch_sgd import MinibatchSGD


_SIZES = {  # learning rates of the Mori and Meng sweeps, SGD particles per point
    "smoke": dict(mori_rates=(0.01, 0.04), meng_rates=(0.02, 0.1, 0.4), particles=400,
                  noise_particles=300),
    "default": dict(mori_rates=(0.002, 0.004, 0.01, 0.02, 0.04, 0.1, 0.2),
                    meng_rates=(0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8), particles=4_000,
                    noise_particles=1_500),
    "large": dict(mori_rates=(0.002, 0.004, 0.01, 0.02, 0.04, 0.1, 0.2, 0.4),
                  meng_rates=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.2),
                  particles=200_000, noise_particles=50_000),
}
# B = (B/η)·η: the SDE's D ∝ η/B stays fixed along a sweep. Mori's exit (L ≥ cL*) is a level the
# particle reaches from inside, so SGD's discrete monitoring shifts it by O(√η) of the exponent:
# Mori needs smaller η, hence a larger B/η (and c closer to 1 for the same mean time).
BATCH_PER_RATE = {"mori": 500, "meng": 100}
MORI_SAMPLES, MORI_THRESHOLD = 1000, 1.008  # escape when L ≥ 1.008·L*
MORI_DATA_SEED, MENG_DATA_SEED = 1, 0
MENG_BARRIER = 0.05
NOISE_RATE, SMALL_BATCH, LARGE_BATCH, NOISE_BARRIER = 0.1, 10, 30, 0.04
_NOISE_RUNS = (("small_batch", SMALL_BATCH, False), ("large_batch", LARGE_BATCH, False),
               ("large_batch_plus_noise", LARGE_BATCH, True))
_QUADRATURE_POINTS = 20_001  # Richardson-combined trapezoids: ~1e-8 relative here, n grads/point
_BUDGET_POINTS = 2_001  # the coarser quadrature that sets a point's step budget
_MODULE = "jaxescape._reproductions.sgd_vs_sde"


class MengLandscape(AbstractLandscape):
    """The training loss of `MengDoubleWell` with its minimum and barrier top (for the models)."""

    training_loss: TrainingLoss
    minimum_position: jax.Array
    saddle_position: jax.Array

    @property
    def dim(self) -> int:
        return 1

    def loss(self, y):
        return self.training_loss.loss(y)

    def minimum(self):
        return self.minimum_position

    def saddle(self):
        return self.saddle_position


def _quadratic_of(data):
    """Linear regression d = 1 on `data` as its exact quadratic loss: (h*, θ*, L*)."""
    inputs, targets = np.asarray(data.inputs[:, 0], np.float64), np.asarray(data.targets)
    curvature = float(np.mean(inputs**2))
    optimum = float(np.mean(inputs * targets) / curvature)
    minimum_loss = float(0.5 * np.mean((optimum * inputs - targets) ** 2))
    return curvature, optimum, minimum_loss


def mori_exit(landscape, factor: float) -> LossAbove:
    """`LossAbove(L, factor·L*)` for linear regression d = 1 (`landscape` its `TrainingLoss`):
    the training loss is exactly the quadratic (h*, θ*, L*), so the criterion evaluates that
    instead of n per-sample losses per step."""
    curvature, optimum, minimum_loss = _quadratic_of(landscape.data)
    quadratic = QuadraticLandscape(jnp.array([[curvature]]), jnp.array([optimum]), minimum_loss)
    return LossAbove(quadratic, factor * minimum_loss)


def _mori_problem(key):
    data = gaussian_regression_data(key, MORI_SAMPLES, 1)
    curvature, optimum, minimum_loss = _quadratic_of(data)
    model = LinearRegression(1)
    radius = math.sqrt(2 * (MORI_THRESHOLD - 1) * minimum_loss / curvature)
    landscape = QuadraticLandscape(jnp.array([[curvature]]), jnp.array([optimum]), minimum_loss)
    return {
        "name": "mori", "model": model, "data": data, "landscape": landscape,
        "start": jnp.array([optimum], data.inputs.dtype),
        "interval": (optimum - radius, optimum + radius),
        "description": f"linear regression d=1, n={MORI_SAMPLES} (h*={curvature:.4f}, "
                       f"L*={minimum_loss:.4f}), exit when L ≥ {MORI_THRESHOLD}·L*",
    }


def _meng_problem(key, barrier):
    data = meng_data(key)
    inputs, targets = np.asarray(data.inputs, np.float64), np.asarray(data.targets, np.float64)
    optimum = float(np.mean(inputs * targets) / np.mean(inputs**2))
    shift = float(meng_shift_for_barrier(data, barrier))
    model = MengDoubleWell(shift)
    minimum, top = -shift - optimum, shift + optimum
    absorbing = top + 0.5 * (top - minimum)
    landscape = MengLandscape(TrainingLoss(model, data), jnp.array([minimum]), jnp.array([top]))
    return {
        "name": "meng", "model": model, "data": data, "landscape": landscape,
        "start": jnp.array([minimum], data.inputs.dtype), "absorbing": absorbing,
        "criterion": HalfSpace(jnp.array([1.0]), absorbing),
        "reflecting": minimum - 2 * (absorbing - minimum), "top": top,
        "description": f"MengDoubleWell on meng_data (n=500), ΔL={barrier}, exit at "
                       f"w ≥ {absorbing:.4f} (half the minimum–top distance past the top)",
    }


@functools.cache
def _problem(name: str):
    """The problems by name: `mori`, `meng` (ΔL = 0.05) and `meng_noise` (ΔL = 0.04)."""
    if name == "mori":
        return _mori_problem(jr.key(MORI_DATA_SEED))
    return _meng_problem(jr.key(MENG_DATA_SEED), MENG_BARRIER if name == "meng" else NOISE_BARRIER)


def _exact_time(dynamics, problem, widen=None, num_points=_QUADRATURE_POINTS):
    """Exact mean exit time (quadrature); `widen(boundary)` moves the exits outward."""
    start = float(problem["start"][0])
    widen = widen or (lambda boundary: 0.0)
    if "interval" in problem:
        lower, upper = problem["interval"]
        return exact_mfpt_interval(dynamics, start, lower - widen(lower), upper + widen(upper),
                                   num_points)
    absorbing = problem["absorbing"]
    return exact_mfpt(dynamics, start, problem["reflecting"], absorbing + widen(absorbing),
                      num_points)


def _monitoring_shift(sde, learning_rate):
    """β·η·sqrt(Σ(b)): the discrete-monitoring shift of an exit at b for steps of size η."""
    def widen(boundary):
        covariance = float(sde.covariance(jnp.array([boundary]))[0, 0])
        return BRIDGE_SHIFT * learning_rate * math.sqrt(covariance)

    return widen


def fit_loss_dependent_noise(model, data, minimum, top, minimum_loss, num_points=201):
    r"""Least squares $V(w) \approx v_0 + 2k(L(w) - L^*)$ along the path from `minimum` to `top`.

    V is the per-sample gradient variance $\frac1n\sum_\mu g_\mu^2 - \bar g^2$ (Σ = p·V, §1.1).
    Returns (v_0, k).
    """
    path = jnp.linspace(minimum, top, num_points)[:, None]
    sde = MinibatchNoiseSDE(model, data, 1.0, 1, replacement=True)  # Σ = V
    variance = np.asarray(jax.vmap(sde.covariance)(path)[:, 0, 0], np.float64)
    excess = np.asarray(jax.vmap(lambda w: model.loss(w, data))(path), np.float64) - minimum_loss
    design = np.stack([np.ones_like(excess), 2 * excess], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, variance, rcond=None)
    return float(intercept), float(slope)


def _noise_fit(problem):
    """(v₀, k) of `fit_loss_dependent_noise` on a Meng problem, and its L*."""
    landscape = problem["landscape"]
    minimum_loss = float(landscape.loss(landscape.minimum()))
    fit = fit_loss_dependent_noise(problem["model"], problem["data"],
                                   float(landscape.minimum()[0]), problem["top"], minimum_loss)
    return fit, minimum_loss


def _paper_model(problem, learning_rate, batch_size, fit):
    """Mori's D = ηLH*/B' (B' = 1/p) or Meng's D = η/2·p(v₀ + 2k(L − L*)) for this problem."""
    factor = 1 / batch_size
    if problem["name"] == "mori":
        return MoriLossNoise(problem["landscape"], learning_rate, 1 / factor)
    intercept, slope = fit
    return MengPowerLawNoise(problem["landscape"], learning_rate, factor * intercept,
                             factor * slope)


def _added_drift(t, y, parameters):
    return parameters["sde"].drift(t, y)


def _added_diffusion(t, y, parameters):
    r"""sqrt(η(Σ_B(w) + σ + 2κ[L − L*])): large-batch SDE plus Meng's noise (full-data L)."""
    sde = parameters["sde"]
    excess = jnp.maximum(sde.loss(y) - parameters["minimum_loss"], 0.0)
    added = parameters["sigma"] + 2 * parameters["kappa"] * excess
    total = sde.covariance(y)[0, 0] + added
    return jnp.sqrt(sde.learning_rate * jnp.maximum(total, 0.0)).astype(y.dtype)[None, None]


def _noise_sde(problem, batch_size, sigma, kappa, minimum_loss):
    """The SDE of SGD at B with replacement, plus Meng's added noise where σ or κ is nonzero."""
    sde = MinibatchNoiseSDE(problem["model"], problem["data"], NOISE_RATE, batch_size,
                            replacement=True)
    if sigma == kappa == 0:
        return sde
    return GeneralSDE(_added_drift, _added_diffusion,
                      {"sde": sde, "sigma": jnp.asarray(sigma), "kappa": jnp.asarray(kappa),
                       "minimum_loss": jnp.asarray(minimum_loss)}, noise_type="matrix")


def noisy_sgd_particles(model, data, batch_size: int, learning_rate: float, sigma: float,
                        kappa: float, minimum_loss: float) -> MinibatchSGD:
    r"""SGD with replacement plus Meng's added noise $\eta\sqrt{\sigma + 2\kappa(L_B - L^*)}\zeta$
    (`noisy_sgd`): the dynamics of the `large_batch_plus_noise` point."""
    return MinibatchSGD(model, data, batch_size=int(batch_size), learning_rate=learning_rate,
                        optimizer=noisy_sgd, optimizer_noise=True, replacement=True,
                        optimizer_options={"sigma": sigma, "kappa": kappa,
                                           "minimum_loss": minimum_loss})


def rate_references(problem: str, learning_rate: float, batch_size: int,
                    replacement: bool = True) -> dict:
    """The quadratures an SGD point of the η sweep is compared with (no simulation).

    `tau_exact`: the exact-covariance SDE (`MinibatchNoiseSDE`, p = 1/B with replacement, else
    (n − B)/(B(n − 1))); with replacement also `tau_shifted` (exits moved out by the
    discrete-monitoring shift) and `tau_paper_model` (Mori's or Meng's noise model), and for
    Meng the fitted v₀, k of the model (`noise_fit_intercept`, `noise_fit_slope`).
    """
    setting = _problem(problem)
    sde = MinibatchNoiseSDE(setting["model"], setting["data"], learning_rate, int(batch_size),
                            replacement=bool(replacement))
    values = {"tau_exact": _exact_time(sde, setting)}
    if replacement:
        fit = _noise_fit(setting)[0] if problem == "meng" else None
        values["tau_shifted"] = _exact_time(sde, setting, _monitoring_shift(sde, learning_rate))
        values["tau_paper_model"] = _exact_time(
            _paper_model(setting, learning_rate, int(batch_size), fit), setting)
        if fit is not None:
            values.update(noise_fit_intercept=fit[0], noise_fit_slope=fit[1])
    return values


def noise_reference(batch_size: int, sigma: float = 0.0, kappa: float = 0.0,
                    minimum_loss: float = 0.0) -> dict:
    """`tau_exact_sde`: the quadrature of a Meng-noise run's SDE (B with replacement, plus the
    added noise σ + 2κ(L − L*) where σ or κ is nonzero)."""
    setting = _problem("meng_noise")
    return {"tau_exact_sde": _exact_time(
        _noise_sde(setting, int(batch_size), sigma, kappa, minimum_loss), setting)}


def _noise_design():
    """σ, κ fitted to (p₁₀ − p₃₀)·V(w) (κ ≥ 0 for `noisy_sgd`), L*, and the fit (v₀, k)."""
    fit, minimum_loss = _noise_fit(_problem("meng_noise"))
    gap = 1 / SMALL_BATCH - 1 / LARGE_BATCH
    return gap * fit[0], gap * max(fit[1], 0.0), minimum_loss, fit


@functools.cache
def _expected_time(name: str, factor: float) -> float:
    """The coarse quadrature of a problem's SDE at D = factor·V/2 (η·p = factor): the SDE of
    η, B depends on them only through η·p."""
    setting = _problem(name)
    sde = MinibatchNoiseSDE(setting["model"], setting["data"], factor, 1, replacement=True)
    return _exact_time(sde, setting, num_points=_BUDGET_POINTS)


def _budget(name, learning_rate, batch_size, replacement):
    """Steps for 60 coarse-quadrature mean times plus 2000, as a power of two."""
    factor = minibatch_factor(batch_size, _problem(name)["data"].num_samples, replacement)
    expected = _expected_time(name, round(learning_rate * factor, 12))
    return min(next_power_of_two(int(60 * expected / learning_rate + 2000)), STEP_LIMIT)


def _components(name):
    """Model, data and criterion tables of a problem."""
    setting = _problem(name)
    if name == "mori":
        return {"model": {"name": "linear-regression", "dim": 1},
                "data": {"name": "gaussian-regression", "num_samples": MORI_SAMPLES, "dim": 1,
                         "seed": MORI_DATA_SEED},
                "criterion": {"name": f"{_MODULE}:mori_exit", "factor": MORI_THRESHOLD}}
    return {"model": {"name": "meng-double-well",
                      "barrier": MENG_BARRIER if name == "meng" else NOISE_BARRIER},
            "data": {"name": "meng", "seed": MENG_DATA_SEED},
            "criterion": {"name": "half-space", "normal": [1.0], "offset": setting["absorbing"]}}


def _sgd_point(label, name, learning_rate, batch_size, replacement, particles, dynamics=None):
    setting = _problem(name)
    dynamics = dynamics or {"name": "sgd", "batch_size": batch_size,
                            "learning_rate": learning_rate, "replacement": replacement}
    return {"label": label, **_components(name), "dynamics": dynamics,
            "start": [float(setting["start"][0])], "dt": learning_rate,
            "particles": int(particles), "max_steps": _budget(name, learning_rate, batch_size, replacement)}


def _measure(label, function, **options):
    return {"label": label, "method": "measure",
            "measurement": {"name": f"{_MODULE}:{function}", **options}}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: per problem the SGD points `NAME/i` with their quadratures
    `NAME_exact/i`, the reshuffled run `NAME_reshuffled/0` with `NAME_reshuffled_exact/0`, then
    the Meng-noise runs `meng_noise/i` with `meng_noise_exact/i`."""
    check_size(size)
    config = _SIZES[size]
    points = []
    for name in ("mori", "meng"):
        rates = config[f"{name}_rates"]
        for index, learning_rate in enumerate(rates):
            batch_size = max(1, round(BATCH_PER_RATE[name] * learning_rate))
            points += [
                _sgd_point(f"{name}/{index}", name, learning_rate, batch_size, True,
                           config["particles"]),
                _measure(f"{name}_exact/{index}", "rate_references", problem=name,
                         learning_rate=learning_rate, batch_size=batch_size)]
        # Per-epoch reshuffling at the smallest η, a fortieth of the particles: reshuffled SGD
        # escapes up to ~30x later (Mori, B = 1).
        batch_size = max(1, round(BATCH_PER_RATE[name] * rates[0]))
        points += [
            _sgd_point(f"{name}_reshuffled/0", name, rates[0], batch_size, False,
                       max(50, config["particles"] // 40)),
            _measure(f"{name}_reshuffled_exact/0", "rate_references", problem=name,
                     learning_rate=rates[0], batch_size=batch_size, replacement=False)]
    sigma, kappa, minimum_loss, _ = _noise_design()
    for index, (_, batch_size, noisy) in enumerate(_NOISE_RUNS):
        added = {"sigma": sigma, "kappa": kappa, "minimum_loss": minimum_loss} if noisy else {}
        dynamics = {"name": f"{_MODULE}:noisy_sgd_particles", "batch_size": batch_size,
                    "learning_rate": NOISE_RATE, **added} if noisy else None
        point = _sgd_point(f"meng_noise/{index}", "meng_noise", NOISE_RATE, batch_size, True,
                           config["noise_particles"], dynamics)
        points += [point, _measure(f"meng_noise_exact/{index}", "noise_reference",
                                   batch_size=batch_size, **added)]
    return reproduction_sweep("sgd-vs-sde", size, seed, points, extrapolate=False)


def reproduce_sgd_vs_sde(output_dir, size="default", seed=0, progress=True) -> dict:
    """Real SGD is compared with its exact-covariance SDE, the papers' models and Meng's noise.

    See the module docstring for the design; writes results.json, results.md, sgd-vs-sde.png.
    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def _measured(record):
    """An SGD point's mean escape time (t = ηk) ± SE, counts and cost."""
    summary = record["summary"]
    return {"tau": summary["mfpt"], "tau_se": summary["mfpt_standard_error"],
            "censored": summary["num_censored"], "diverged": summary["num_diverged"],
            "particle_steps": summary["cost_particle_steps"],
            "wall_seconds": record["timing"]["wall_time_s"]}


def _rate_sweep(name, groups):
    """The η sweep of a problem from its SGD points and their quadratures."""
    rows = []
    fit = None
    for record, reference in zip(groups[name], groups[f"{name}_exact"]):
        options = options_of(record["point"], "dynamics")
        learning_rate, batch_size = options["learning_rate"], options["batch_size"]
        references = reference["summary"]["measured"]
        measured = _measured(record)
        exact, shifted = references["tau_exact"], references["tau_shifted"]
        paper = references["tau_paper_model"]
        if "noise_fit_intercept" in references:
            fit = (references["noise_fit_intercept"], references["noise_fit_slope"])
        tau, standard_error = measured["tau"], measured["tau_se"]
        rows.append({
            "learning_rate": learning_rate, "batch_size": batch_size, **measured,
            "iterations": tau / learning_rate, "tau_exact": exact, "tau_shifted": shifted,
            "tau_paper_model": paper, "ratio": tau / exact, "ratio_se": standard_error / exact,
            "ratio_shifted": shifted / exact, "ratio_paper_model": paper / exact,
            "deviation_in_se": (tau - exact) / standard_error,
            "deviation_from_shifted_in_se": (tau - shifted) / standard_error,
            "agrees": bool(abs(tau - exact) <= 4 * standard_error + abs(shifted - exact)),
        })
    (record,), (reference,) = groups[f"{name}_reshuffled"], groups[f"{name}_reshuffled_exact"]
    options = options_of(record["point"], "dynamics")
    exact = reference["summary"]["measured"]["tau_exact"]
    reshuffled = _measured(record)
    reshuffled.update({"learning_rate": options["learning_rate"],
                       "batch_size": options["batch_size"], "tau_exact": exact,
                       "ratio": reshuffled["tau"] / exact,
                       "ratio_se": reshuffled["tau_se"] / exact,
                       "factor": minibatch_factor(options["batch_size"],
                                                  _problem(name)["data"].num_samples, False)})
    small = rows[:1]  # the smallest η
    checks = {
        "small_rate_within_10pct": all(abs(row["ratio"] - 1) <= 0.10 for row in small),
        "small_rate_within_10pct_of_monitoring_shifted": all(
            abs(row["tau"] / row["tau_shifted"] - 1) <= 0.10 for row in small),
        "small_rate_agrees_within_4se_plus_monitoring_shift": all(row["agrees"] for row in small),
        "no_censored_or_diverged": all(row["censored"] == row["diverged"] == 0 for row in rows),
    }
    return {"name": name, "description": _problem(name)["description"], "rows": rows,
            "reshuffled": reshuffled, "checks": checks, "noise_fit": fit}


def _noise_experiment(groups):
    """Small batch, large batch and large batch plus Meng's noise, against their SDEs."""
    sigma, kappa, minimum_loss, (intercept, slope) = _noise_design()
    runs = {}
    for (name, batch_size, _), record, reference in zip(
            _NOISE_RUNS, groups["meng_noise"], groups["meng_noise_exact"]):
        runs[name] = {"batch_size": batch_size,
                      "tau_exact_sde": reference["summary"]["measured"]["tau_exact_sde"],
                      **_measured(record)}
    small, large, noisy = (runs[name]["tau"] for name in runs)
    checks = {
        "large_batch_slower_than_small": large > 2 * small,
        "noise_brings_large_batch_back_toward_small": abs(math.log(noisy / small))
        < 0.5 * abs(math.log(large / small)),
    }
    return {
        "name": "meng_noise", "description": _problem("meng_noise")["description"],
        "learning_rate": NOISE_RATE, "sigma": sigma, "kappa": kappa, "minimum_loss": minimum_loss,
        "variance_fit": {"intercept": intercept, "slope": slope}, "runs": runs, "checks": checks,
    }


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The ratios to the quadratures, the checks, the report and figure of the stored points
    (`jaxescape report DIR` reruns it; only Meng's noise fit is recomputed, no quadrature)."""
    config = _SIZES[size]
    seed = seed_of(run)
    groups = grouped(run)
    sweeps = [_rate_sweep("mori", groups), _rate_sweep("meng", groups)]
    noise = _noise_experiment(groups)
    checks = {f"{sweep['name']}.{name}": value for sweep in sweeps
              for name, value in sweep["checks"].items()}
    checks.update({f"meng_noise.{name}": value for name, value in noise["checks"].items()})
    spent = timing(run)
    device = run.environment.get("device_kind")
    summary = {
        "reproduction": "sgd-vs-sde", "size": size, "seed": seed, "device": device,
        "particles": config["particles"],
        "sweeps": {sweep["name"]: sweep for sweep in sweeps}, "meng_noise": noise,
        "checks": checks, "all_checks_passed": all(checks.values()),
    }
    lines = report_header("SGD against its SDEs (docs/THEORY.md §1.1–1.2, §7.1) and Meng's added "
                          "noise", size, seed, spent, [], device)
    for sweep in sweeps:
        lines += [f"## {sweep['name']}: {sweep['description']}", "",
                  f"{config['particles']} SGD particles per η, B = "
                  f"{BATCH_PER_RATE[sweep['name']]}·η, with replacement. Exact = quadrature of the "
                  "exact-covariance SDE; shifted = the same "
                  "with the exits moved out by the discrete-monitoring shift 0.5826·η·√Σ; paper = "
                  "quadrature of the paper's noise model.", "",
                  "| η | B | τ SGD | SE | τ exact | SGD/exact | ± | shifted/exact | "
                  "paper/exact | (SGD−exact)/SE | agrees |", "|---" * 11 + "|"]
        for row in sweep["rows"]:
            lines.append("| " + " | ".join(format_value(row[name]) for name in (
                "learning_rate", "batch_size", "tau", "tau_se", "tau_exact", "ratio", "ratio_se",
                "ratio_shifted", "ratio_paper_model", "deviation_in_se", "agrees")) + " |")
        other = sweep["reshuffled"]
        lines += ["", f"Per-epoch reshuffling (without replacement, each sample once per epoch) "
                  f"at η = {other['learning_rate']}, B = {other['batch_size']}: τ = "
                  f"{other['tau']:.4g} ± {other['tau_se']:.2g} against {other['tau_exact']:.4g} "
                  f"for the SDE with p = (n−B)/(B(n−1)): ratio {other['ratio']:.3f} ± "
                  f"{other['ratio_se']:.3f}.", ""]
    lines += [f"## Meng's added noise: {noise['description']}", "",
              f"η = {NOISE_RATE}; σ = {noise['sigma']:.4g}, κ = {noise['kappa']:.4g} fitted to "
              f"(p_{SMALL_BATCH} − p_{LARGE_BATCH})·V(w) along the path.", "",
              "| run | B | τ SGD | SE | τ SDE (exact) |", "|---|---|---|---|---|"]
    for name, run in noise["runs"].items():
        lines.append(f"| {name} | {run['batch_size']} | {run['tau']:.4g} | {run['tau_se']:.2g} | "
                     f"{run['tau_exact_sde']:.4g} |")
    failed = [name for name, value in checks.items() if not value]
    lines += ["", "## Checks", "", f"{len(checks) - len(failed)} of {len(checks)} passed."]
    lines += [f"- failed: `{name}`" for name in failed] + [""]
    summary["wall_seconds"] = spent.wall
    return output_files("sgd-vs-sde", summary, lines, _plot(sweeps, noise))


def _plot(sweeps, noise):
    figure, (ratio_axis, noise_axis) = new_figure(2)
    for sweep, marker in zip(sweeps, ("o", "s")):
        rows = sweep["rows"]
        rates = [row["learning_rate"] for row in rows]
        line = ratio_axis.errorbar(rates, [row["ratio"] for row in rows],
                                   yerr=[row["ratio_se"] for row in rows], fmt=marker, ms=4,
                                   label=f"{sweep['name']}: SGD / exact SDE")[0]
        ratio_axis.plot(rates, [row["ratio_shifted"] for row in rows], ":",
                        color=line.get_color(), label=f"{sweep['name']}: monitoring shift")
        ratio_axis.plot(rates, [row["ratio_paper_model"] for row in rows], "--",
                        color=line.get_color(), label=f"{sweep['name']}: paper's model / exact")
    ratio_axis.axhspan(0.9, 1.1, color="0.9", zorder=0)
    ratio_axis.axhline(1.0, color="k", lw=0.8)
    ratio_axis.set_xscale("log")
    ratio_axis.set_xlabel("learning rate η (B ∝ η: Mori 500η, Meng 100η)")
    ratio_axis.set_ylabel("mean escape time / exact SDE")
    ratio_axis.set_title("SGD vs its exact-covariance SDE", fontsize=9)
    ratio_axis.legend(fontsize=6)
    names = list(noise["runs"])
    runs = [noise["runs"][name] for name in names]
    positions = np.arange(len(runs))
    noise_axis.bar(positions, [run["tau"] for run in runs],
                   yerr=[run["tau_se"] for run in runs], color="C0", alpha=0.7, label="SGD")
    noise_axis.plot(positions, [run["tau_exact_sde"] for run in runs], "k_", ms=20,
                    label="exact SDE")
    noise_axis.set_xticks(positions, [name.replace("_", " ") for name in names], fontsize=7)
    noise_axis.set_yscale("log")
    noise_axis.set_ylabel("mean escape time t = ηk")
    noise_axis.set_title(f"Meng's added noise (η = {NOISE_RATE})", fontsize=9)
    noise_axis.legend(fontsize=7)
    figure.tight_layout()
    return figure

