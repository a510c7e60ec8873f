r"""Xie, Sato & Sugiyama (ICLR 2021) on a network: the escape time from a minimum against B and 1/η.

The problem: scikit-learn's breast-cancer data (455 training samples, standardised, a random 30%
of the training labels replaced by random classes, so no small network fits them), a 30-4-2
tanh `eqx.nn.MLP` (134 parameters), softmax cross-entropy plus weight decay (w/2)|θ|²,
w = 0.003 (a true minimum). θ* is the BFGS minimum from the network's initialisation (the sweep
points' `start = "minimum"`). SGD particles draw their minibatches with replacement, so the
minibatch gradient covariance is exactly C₁/B (C₁: the per-sample gradients' covariance), and
restart at θ*; a particle escapes at the first iteration at which the full training loss
reaches c·L* (c = 1.15, ΔL = (c − 1)L*), the loss-threshold exit of Mori et al. (§3.5).

Predictions (docs/THEORY.md §2.5). Xie et al.: D = ηC/2 with C ≈ H/B near a minimum, so
$\log\tau \approx 2B\Delta L/(\eta\lambda_{\max}) + {\rm const}$: linear in B and in 1/η, with
slopes 2ΔL/(ηλ_max) and 2BΔL/λ_max (λ_max by Lanczos, `hessian_top_eigenvalues`). Measured
instead of assumed [D]: linearised at θ*, the SGD chain z ← (I − ηH)z + η·ξ, Cov ξ = C₁/B, has
the stationary covariance S = (I − ηH)S(I − ηH) + η²C₁/B (discrete Lyapunov; HS + SH = ηC₁/B
for the SDE). With z ~ N(0, S), L − L* ≈ ½zᵀHz = ½Σ_j μ_j w_j², w ~ N(0, I), μ_j the
eigenvalues of S^{1/2}HS^{1/2}, so the exit exponent is E = ΔL/μ_max ∝ B (C = H/B gives
μ_max = ηλ_max/(2B): Xie's exponent). The exact 1-D mean exit time F(E) of the normalised
Ornstein–Uhlenbeck process dz = −z dt + E^{−1/2} dW from 0 to |z| = 1 (§1.4 quadrature) gives
the prefactor's curvature: the chain's predicted log τ is log F(E) + const, fitted like the data.

A declared experiment (`declared.py`): the measurement point `minimum/0` (`minimum_facts`: L*,
accuracies, λ_max by Lanczos and dense, the Hessian trace by Hutchinson, C₁ along the top
eigenvector and its excess kurtosis, μ_max for the SDE and for the chain at each η) and escape
points built from components (`batch/i`: B at one η; `rate/i`: 1/η at one B). `analyse` fits
log τ against B and log(ητ) (SDE time) against 1/η by weighted least squares, compares the
slopes with the predictions, and tests Xie's B/η scaling: η₀·(slope in B) against (slope in
1/η)/B₀, whose ratio does not depend on the noise's scale (`ratio_scaling`).
"""

import math

import jax
import numpy as np
import scipy.linalg

from .._criteria import LossAbove
from .._dynamics.noise_models import QuadraticLandscape
from .._dynamics.sde import GeneralSDE
from .._engine.driver import simulate
from .._experiments.components import build_point
from .._experiments.sweep import make_sweep
from .._sgd.curvature import hessian_top_eigenvalues, hessian_trace
from .._sgd.datasets import load_sklearn_dataset
from .._sgd.minibatch_noise import MinibatchNoiseSDE
from .._theory.reference import interval_mfpt_quadrature
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, fit_line, new_figure, output_files, report_header
from .meng_networks import stored_values
from .wu_minima import checks_markdown


_MODULE = "jaxescape._reproductions.xie_networks"
_PROBLEM = dict(dataset="breast_cancer", random_label_fraction=0.3, width=4,
                weight_decay=0.003, loss_factor=1.15)
_XIE_NETWORKS = {
    "smoke": dict(particles=256, batches=(1, 2, 3), batch_rate=0.01, inverse_rates=(50, 100),
                  rate_batch=2, max_steps=100_000),
    "default": dict(particles=2000, batches=(1, 2, 3, 4, 5), batch_rate=0.01,
                    inverse_rates=(50, 75, 100, 125, 150), rate_batch=3, max_steps=400_000),
    "large": dict(particles=20_000, batches=(1, 2, 3, 4, 5, 6), batch_rate=0.01,
                  inverse_rates=(50, 75, 100, 125, 150, 175), rate_batch=3,
                  max_steps=2_000_000),
}
_LANCZOS_ITERATIONS = 60
_HUTCHINSON_PROBES = 256


def problem_point(seed: int, batch_size: int, learning_rate: float, **options) -> dict:
    """A sweep point of the problem (`_PROBLEM`): the components' tables at (B, η), data split
    and labels from `seed`, the network's initialisation from `seed + 1`."""
    return {"model": {"name": "mlp", "width": _PROBLEM["width"], "depth": 1,
                      "activation": "tanh", "loss": "cross_entropy",
                      "weight_decay": _PROBLEM["weight_decay"], "seed": int(seed) + 1},
            "data": {"name": "sklearn", "dataset": _PROBLEM["dataset"],
                     "random_label_fraction": _PROBLEM["random_label_fraction"],
                     "seed": int(seed)},
            "dynamics": {"name": "sgd", "batch_size": int(batch_size),
                         "learning_rate": float(learning_rate), "replacement": True},
            "start": "minimum",
            "criterion": {"name": "loss-above", "factor": _PROBLEM["loss_factor"]},
            "reference": False, **options}


def built_problem(seed: int) -> dict:
    """The problem's objects as a sweep point builds them: landscape (the training loss),
    dynamics (its `model` and `data`), criterion and start θ*."""
    sweep = make_sweep({"name": "xie-networks-problem",
                        "points": [problem_point(seed, 1, 0.01)]}, "xie-networks")
    return build_point(sweep.expand()[0])


def chain_exponent_scale(hessian, covariance, learning_rate: float | None) -> float:
    """μ_max·B: the top eigenvalue of S^{1/2}HS^{1/2} for B = 1, S the stationary covariance of
    the linearised SGD chain at `learning_rate` (discrete Lyapunov), or of the SDE (None:
    HS + SH = ηC₁ with η = 1; multiply by η)."""
    if learning_rate is None:
        stationary = scipy.linalg.solve_continuous_lyapunov(hessian, covariance)
    else:
        contraction = np.eye(hessian.shape[0]) - learning_rate * hessian
        stationary = scipy.linalg.solve_discrete_lyapunov(
            contraction, learning_rate**2 * covariance)
    values, vectors = np.linalg.eigh((stationary + stationary.T) / 2)
    root = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    return float(np.linalg.eigvalsh(root @ hessian @ root)[-1])


def minimum_facts(key, data_seed: int, learning_rates) -> dict:
    """The minimum θ*: L*, |∇L|, accuracies, λ_max (Lanczos and dense), the top Hessian
    eigenvalues, its trace (Hutchinson ± SE, and dense), C₁ along the top eigenvector, its
    trace and the excess kurtosis of the per-sample gradients along it (0 for Gaussian noise; a
    minibatch mean of B samples has 1/B of it), and the exit-exponent scales μ_max·B of the SDE
    and of the chain at each η."""
    built = built_problem(int(data_seed))
    model, data, theta = built["dynamics"].model, built["dynamics"].data, built["start"]
    split = _split(int(data_seed))
    loss = lambda parameters: model.loss(parameters, data)  # noqa: E731
    lanczos_key, trace_key = jax.random.split(key)
    lanczos = float(hessian_top_eigenvalues(loss, theta, 1, lanczos_key,
                                            num_iterations=_LANCZOS_ITERATIONS)[0])
    trace = hessian_trace(loss, theta, trace_key, num_probes=_HUTCHINSON_PROBES)
    hessian = np.asarray(jax.hessian(loss)(theta), np.float64)
    hessian = (hessian + hessian.T) / 2
    values, vectors = np.linalg.eigh(hessian)
    gradients = np.asarray(jax.vmap(jax.grad(model.per_sample_loss), (None, 0, 0))(
        theta, data.inputs, data.targets), np.float64)
    covariance = np.cov(gradients.T, bias=True)
    top = vectors[:, -1]
    along = (gradients - gradients.mean(0)) @ top
    rates = np.asarray(learning_rates, np.float64).reshape(-1)
    return {
        "minimum_loss": float(loss(theta)),
        "gradient_norm": float(np.linalg.norm(gradients.mean(0))),
        "train_accuracy": float(model.accuracy(theta, data)),
        "test_accuracy": float(model.accuracy(theta, split.test)),
        "num_parameters": int(theta.shape[0]), "num_train": int(data.inputs.shape[0]),
        "sharpness": lanczos, "sharpness_dense": float(values[-1]),
        "hessian_trace": float(trace.value), "hessian_trace_se": float(trace.standard_error),
        "hessian_trace_dense": float(values.sum()),
        "noise_along_top": float(top @ covariance @ top), "noise_trace": float(np.trace(covariance)),
        "noise_kurtosis_along_top": float(np.mean(along**4) / np.mean(along**2) ** 2 - 3),
        "sde_exponent_scale": chain_exponent_scale(hessian, covariance, None),
        "top_hessian_eigenvalues": values[::-1][:8].copy(),
        "learning_rates": rates,
        "chain_exponent_scales": np.array([chain_exponent_scale(hessian, covariance, rate)
                                           for rate in rates]),
    }


def _split(seed: int):
    return load_sklearn_dataset(_PROBLEM["dataset"], jax.random.key(int(seed)),
                                random_label_fraction=_PROBLEM["random_label_fraction"])


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `minimum/0`, `batch/i` (B at one η), `rate/i` (1/η at one B)."""
    check_size(size)
    config = _XIE_NETWORKS[size]
    rates = list(dict.fromkeys([float(config["batch_rate"])]
                               + [1 / float(x) for x in config["inverse_rates"]]))
    common = {"particles": config["particles"], "max_steps": config["max_steps"]}
    points = [{"label": "minimum/0", "method": "measure",
               "measurement": {"name": f"{_MODULE}:minimum_facts", "data_seed": int(seed),
                               "learning_rates": rates}}]
    points += [problem_point(seed, batch, config["batch_rate"], label=f"batch/{index}",
                             **common) for index, batch in enumerate(config["batches"])]
    points += [problem_point(seed, config["rate_batch"], 1 / float(inverse), label=f"rate/{index}",
                             **common) for index, inverse in enumerate(config["inverse_rates"])]
    return reproduction_sweep("xie-networks", size, seed, points, extrapolate=False)


def reproduce_xie_networks(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Xie et al. (ICLR 2021) on a network: log τ against B and against 1/η from a trained minimum.

    30-4-2 tanh MLP, cross-entropy + weight decay 0.003, on breast-cancer data with 30% random
    labels; SGD (minibatches with replacement) restarted at the BFGS minimum θ*, escape at
    L ≥ 1.15·L*. B ∈ {1, …, 5} at η = 0.01 and 1/η ∈ {50, …, 150} at B = 3, 2000 particles
    each (smoke: B ∈ {1, 2, 3}, 1/η ∈ {50, 100} at B = 2, 256 particles). The slopes against
    Xie's 2ΔL/(ηλ_max) and 2BΔL/λ_max (λ_max measured at θ*) and against the SGD chain
    linearised at θ* with the measured gradient covariance (docs/THEORY.md §2.5).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def normalised_exit_time(exponent: float) -> float:
    """F(E): exact mean exit time of dz = −z dt + E^{−1/2} dW from 0 to |z| = 1 (stationary
    law ∝ e^{−Ez²}, so the exit exponent is E; §1.4 quadrature)."""
    return interval_mfpt_quadrature(lambda z: -z, lambda z: np.full_like(z, 0.5 / exponent),
                                    0.0, -1.0, 1.0, num_points=20_001)


def _fit(x, tau, tau_se) -> dict:
    """log τ against x, weighted by 1/SE(log τ)²; with the χ² of the residuals."""
    x, log_tau = np.asarray(x, np.float64), np.log(tau)
    log_se = np.asarray(tau_se) / np.asarray(tau)
    fit = fit_line(x, log_tau, log_se)
    residual = log_tau - fit["intercept"] - fit["slope"] * x
    return {**fit, "chi2": float(np.sum((residual / log_se) ** 2)), "dof": int(x.size - 2)}


def _rows(records, facts, delta_loss) -> list[dict]:
    rows = []
    rates = np.asarray(facts["learning_rates"])
    scales = np.asarray(facts["chain_exponent_scales"])
    for record in records:
        point, summary = record["point"], record["summary"]
        rate, batch = float(point["dynamics.learning_rate"]), int(point["dynamics.batch_size"])
        scale = float(scales[int(np.argmin(np.abs(rates - rate)))])
        exponent = batch * delta_loss / scale
        rows.append({
            "batch_size": batch, "learning_rate": rate, "inverse_rate": 1 / rate,
            "particles": point["particles"], "tau_iterations": summary["mfpt"],
            "tau_iterations_se": summary["mfpt_standard_error"],
            "tau": rate * summary["mfpt"], "tau_se": rate * summary["mfpt_standard_error"],
            "censored": summary["num_censored"], "diverged": summary["num_diverged"],
            "chain_exponent": exponent, "xie_exponent": 2 * batch * delta_loss / (
                rate * facts["sharpness"]),
            "exit_time_shape": normalised_exit_time(exponent),
            "wall_seconds": record["timing"]["wall_time_s"]})
    return rows


def _compare(name, rows, x_name, transform, xie_slope, sde_slope) -> dict:
    """The fitted slope of log τ against x and the predictions', with the checks."""
    x = np.array([transform(row) for row in rows])
    tau = np.array([row["tau"] for row in rows])
    fit = _fit(x, tau, [row["tau_se"] for row in rows])
    chain = fit_line(x, np.log([row["exit_time_shape"] for row in rows]),
                     np.array([row["tau_se"] / row["tau"] for row in rows]))
    exponent = fit_line(x, [row["chain_exponent"] for row in rows])
    predictions = {"xie": xie_slope, "sde_measured_noise": sde_slope,
                   "chain_exponent": exponent["slope"], "chain_with_prefactor": chain["slope"]}
    checks = {
        f"log τ increases with {x_name} (slope > 4 SE)": fit["slope"] > 4 * fit["slope_se"],
        f"log τ against {x_name} is a straight line (R² ≥ 0.99)": fit["r2"] >= 0.99,
    }
    return {"name": name, "x_name": x_name, "points": rows, "fit": fit,
            "predicted_slopes": predictions,
            "slope_ratios": {key: fit["slope"] / value for key, value in predictions.items()},
            "censored": int(sum(row["censored"] for row in rows)),
            "diverged": int(sum(row["diverged"] for row in rows)), "checks": checks}


def ratio_scaling(sweeps, learning_rate: float, batch_size: int) -> dict:
    """Xie's exponent is a function of B/η: κ_B = η₀·∂log τ/∂B and κ_η = ∂log τ/∂(1/η)/B₀ agree
    (their ratio is 1 for E ∝ B/η). The measured ratio ± SE (independent fits) and the
    linearised chain's (discrete-time and prefactor effects included), in which the unknown
    scale of the noise (C₁ against H) cancels."""
    batch, rate = sweeps
    chain = (learning_rate * batch["predicted_slopes"]["chain_with_prefactor"]) / (
        rate["predicted_slopes"]["chain_with_prefactor"] / batch_size)
    return {**kappa_ratio(batch["fit"], rate["fit"], learning_rate, batch_size), "chain": chain}


def kappa_ratio(fit_batch, fit_rate, learning_rate: float, batch_size: int) -> dict:
    """κ_B = η₀·(slope in B), κ_η = (slope in 1/η)/B₀ and their ratio ± SE (independent fits)."""
    kappa_batch = learning_rate * fit_batch["slope"]
    kappa_rate = fit_rate["slope"] / batch_size
    measured = kappa_batch / kappa_rate
    relative = math.hypot(fit_batch["slope_se"] / fit_batch["slope"],
                          fit_rate["slope_se"] / fit_rate["slope"])
    return {"kappa_batch": kappa_batch, "kappa_rate": kappa_rate, "measured": measured,
            "measured_se": abs(measured) * relative}


# SGD's mean escape iterations at the default points (docs/THEORIES.md §9, seed 0): the Gaussian
# chain is censored at ten times them (an exponential law passes 10 means with probability 5e-5).
_SGD_TAU_DEFAULT = (26.7, 85.3, 248.8, 805, 3590, 24.8, 82.8, 264.7, 704, 2207)


def gaussian_chain_grid(particles: int = 2000, seed: int = 0, key: int = 11,
                        progress=False, covariance: str = "state") -> dict:
    """The default points' B and 1/η grids run by a Gaussian chain instead of SGD, by
    Euler–Maruyama at dt = η (θ ← θ − η∇L(θ) + η(C₁/B)^{1/2}ξ), tested once per iteration like
    SGD (no crossing correction), censored at 10× SGD's mean. `covariance="state"`: C₁ = C₁(θ),
    SGD's exact per-sample covariance where the chain is (`MinibatchNoiseSDE(per_sample_noise=
    True)`); `"frozen"`: C₁ = C₁(θ*) at every θ (the same n-normal factor, evaluated once), on
    the full loss. Against SGD's κ_B/κ_η, the state chain tells whether the B/η deviation comes
    from the noise's non-Gaussian law; the frozen one, whether from the covariance's dependence
    on θ or from the loss beyond quadratic order; `"linearised"`: the frozen chain on the
    quadratic loss L* + ½(θ − θ*)ᵀH(θ − θ*), H the dense Hessian at θ*, escaping when that loss
    reaches the same level (the chain of `chain_exponent_scale`, simulated; docs/THEORIES.md
    §9, with the figures and run times). Returns the rows and the fits."""
    if covariance not in ("state", "frozen", "linearised"):
        raise ValueError(
            f"covariance must be 'state', 'frozen' or 'linearised', got {covariance!r}")
    config = _XIE_NETWORKS["default"]
    built = built_problem(seed)
    sgd, criterion, start = built["dynamics"], built["criterion"], built["start"]
    if covariance == "linearised":
        quadratic = QuadraticLandscape(
            jax.hessian(lambda theta: sgd.model.loss(theta, sgd.data))(start), start,
            sgd.model.loss(start, sgd.data))
        criterion = LossAbove(quadratic, _PROBLEM["loss_factor"] * quadratic.minimum_loss)
    points = [("batch", batch, config["batch_rate"]) for batch in config["batches"]]
    points += [("rate", config["rate_batch"], 1 / x) for x in config["inverse_rates"]]
    rows = []
    for index, (kind, batch, rate) in enumerate(points):
        chain = MinibatchNoiseSDE(sgd.model, sgd.data, rate, batch, replacement=True,
                                  per_sample_noise=True)
        if covariance == "frozen":
            chain = GeneralSDE(_full_loss_descent, _constant_factor,
                               dict(model=sgd.model, data=sgd.data,
                                    factor=chain.diffusion(0.0, start)),
                               noise_type="matrix", noise_dimension=sgd.data.num_samples)
        elif covariance == "linearised":
            chain = GeneralSDE(_quadratic_descent, _constant_factor,
                               dict(landscape=quadratic, factor=chain.diffusion(0.0, start)),
                               noise_type="matrix", noise_dimension=sgd.data.num_samples)
        result = simulate(chain, criterion, start, jax.random.fold_in(jax.random.key(key), index),
                          num_particles=int(particles), dt=rate,
                          max_steps=int(10 * _SGD_TAU_DEFAULT[index]), crossing_correction=False,
                          num_slots=64, progress=progress, keep_positions=False)
        steps = np.asarray(result.escape_step, np.float64)[np.asarray(result.escaped)]
        rows.append(dict(kind=kind, batch_size=batch, learning_rate=rate,
                         tau_iterations=float(steps.mean()),
                         tau_iterations_se=float(steps.std(ddof=1) / np.sqrt(steps.size)),
                         censored=int(np.sum(result.censored)),
                         diverged=int(np.sum(result.diverged))))
    batch_rows = [row for row in rows if row["kind"] == "batch"]
    rate_rows = [row for row in rows if row["kind"] == "rate"]
    in_batch = _fit([row["batch_size"] for row in batch_rows],
                    [row["tau_iterations"] for row in batch_rows],
                    [row["tau_iterations_se"] for row in batch_rows])
    in_rate = _fit([1 / row["learning_rate"] for row in rate_rows],
                   [row["learning_rate"] * row["tau_iterations"] for row in rate_rows],
                   [row["learning_rate"] * row["tau_iterations_se"] for row in rate_rows])
    scaling = kappa_ratio(in_batch, in_rate, config["batch_rate"], config["rate_batch"])
    return dict(rows=rows, fit_batch=in_batch, fit_rate=in_rate, kappa_ratio=scaling["measured"],
                kappa_ratio_se=scaling["measured_se"])


def _full_loss_descent(t, theta, parameters):
    return -jax.grad(parameters["model"].loss)(theta, parameters["data"])


def _quadratic_descent(t, theta, parameters):
    return -parameters["landscape"].gradient(theta)


def _constant_factor(t, theta, parameters):
    return parameters["factor"]


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The fits, the predicted slopes, the checks, the report and the figure of the stored
    points (`jaxescape report DIR` reruns it)."""
    seed = seed_of(run)
    groups = grouped(run)
    facts = stored_values(run, groups["minimum"][0])
    delta_loss = (_PROBLEM["loss_factor"] - 1) * facts["minimum_loss"]
    a = facts["sharpness"]
    batch_rows = _rows(groups["batch"], facts, delta_loss)
    rate_rows = _rows(groups["rate"], facts, delta_loss)
    eta, batch = batch_rows[0]["learning_rate"], rate_rows[0]["batch_size"]
    sde = facts["sde_exponent_scale"]
    sweeps = [
        _compare(f"log τ against B (η = {eta:g})", batch_rows, "B",
                 lambda row: row["batch_size"], 2 * delta_loss / (eta * a),
                 delta_loss / (eta * sde)),
        _compare(f"log(ητ) against 1/η (B = {batch})", rate_rows, "1/η",
                 lambda row: row["inverse_rate"], 2 * batch * delta_loss / a,
                 batch * delta_loss / sde),
    ]
    checks = {f"{item['name']}: {name}": value for item in sweeps
              for name, value in item["checks"].items()}
    scaling = ratio_scaling(sweeps, eta, batch)
    checks["log τ depends on B/η: κ_B/κ_η within 4 SE of the linearised chain's"] = bool(
        abs(scaling["measured"] - scaling["chain"]) <= 4 * scaling["measured_se"])
    checks["no particle censored or diverged"] = all(
        item["censored"] == 0 and item["diverged"] == 0 for item in sweeps)
    checks["Lanczos λ_max within 1e-3 of the dense Hessian's"] = bool(
        abs(a - facts["sharpness_dense"]) <= 1e-3 * abs(facts["sharpness_dense"]))
    spent = timing(run)
    scalars = {name: value for name, value in facts.items() if np.ndim(value) == 0}
    summary = dict(name="xie-networks", size=size, seed=seed, problem=_PROBLEM,
                   minimum=scalars, top_hessian_eigenvalues=facts["top_hessian_eigenvalues"],
                   delta_loss=delta_loss, noise_to_curvature=facts["noise_along_top"] / a,
                   sweeps=sweeps, ratio_scaling=scaling, checks=checks, all_passed=all(checks.values()),
                   wall_seconds=spent.wall)
    lines = report_header("Xie, Sato & Sugiyama (ICLR 2021): escape from a network minimum "
                          "against B and 1/η", size, seed, spent, [],
                          run.environment.get("device_kind"),
                          times="τ is in SDE time t = η·iterations.")
    lines += _minimum_lines(facts, delta_loss)
    for item in sweeps:
        lines += _sweep_lines(item)
    lines += [f"B/η scaling: κ_B = η·(slope in B) = {scaling['kappa_batch']:.4g}, κ_η = (slope in "
              f"1/η)/B = {scaling['kappa_rate']:.4g}; κ_B/κ_η = {scaling['measured']:.3f} ± "
              f"{scaling['measured_se']:.3f} (the linearised chain with the 1-D prefactor: "
              f"{scaling['chain']:.3f}; E ∝ B/η exactly: 1).", ""]
    lines += checks_markdown(checks)
    figure, axes = new_figure(2)
    for axis, item in zip(axes, sweeps):
        _plot(axis, item)
    figure.tight_layout()
    return output_files("xie-networks", summary, lines + [""], figure)


def _minimum_lines(facts, delta_loss) -> list[str]:
    top = ", ".join(f"{value:.3g}" for value in facts["top_hessian_eigenvalues"][:5])
    return [
        f"Minimum θ* (BFGS): {_PROBLEM['dataset']}, n = {facts['num_train']}, "
        f"{_PROBLEM['random_label_fraction']:.0%} random labels, 30-{_PROBLEM['width']}-2 tanh "
        f"MLP ({facts['num_parameters']} parameters), cross-entropy + "
        f"{_PROBLEM['weight_decay']:g}/2·|θ|². L* = {facts['minimum_loss']:.4f}, |∇L| = "
        f"{facts['gradient_norm']:.1e}, training accuracy {facts['train_accuracy']:.3f}, test "
        f"{facts['test_accuracy']:.3f}. Escape: L ≥ {_PROBLEM['loss_factor']:g}·L* (ΔL = "
        f"{delta_loss:.4f}).", "",
        f"Hessian at θ*: λ_max = {facts['sharpness']:.4f} (Lanczos; dense "
        f"{facts['sharpness_dense']:.4f}), top eigenvalues {top}; trace "
        f"{facts['hessian_trace']:.3f} ± {facts['hessian_trace_se']:.3f} (Hutchinson; dense "
        f"{facts['hessian_trace_dense']:.3f}). Per-sample gradient covariance C₁ along the top "
        f"eigenvector: {facts['noise_along_top']:.4f} = {facts['noise_along_top'] / facts['sharpness']:.3f}"
        f"·λ_max (Xie: C₁ ≈ H, ratio 1), excess kurtosis {facts['noise_kurtosis_along_top']:.2f} "
        f"(Gaussian: 0; a minibatch of B: /B); Tr C₁ = {facts['noise_trace']:.3f}. Exit-exponent "
        f"scale B·μ_max/η: SDE {facts['sde_exponent_scale']:.4f} (Xie: λ_max/2 = "
        f"{facts['sharpness'] / 2:.4f}).", ""]


def _sweep_lines(item) -> list[str]:
    fit, predicted, ratios = item["fit"], item["predicted_slopes"], item["slope_ratios"]
    lines = [f"## {item['name']}", "",
             "| B | η | particles | τ (iterations) ± SE | ητ | chain exponent E | Xie exponent "
             "| censored | diverged |", "|---|---|---|---|---|---|---|---|---|"]
    for row in item["points"]:
        lines.append(f"| {row['batch_size']} | {row['learning_rate']:.4g} | {row['particles']} | "
                     f"{row['tau_iterations']:.1f} ± {row['tau_iterations_se']:.1f} | "
                     f"{row['tau']:.3f} | {row['chain_exponent']:.2f} | "
                     f"{row['xie_exponent']:.2f} | {row['censored']} | {row['diverged']} |")
    lines += ["", f"Fitted slope {fit['slope']:.4g} ± {fit['slope_se']:.2g} (R² {fit['r2']:.4f},"
              f" χ² {fit['chi2']:.1f} on {fit['dof']} degrees of freedom). Predicted: "
              f"Xie 2ΔL/(ηλ_max) form {predicted['xie']:.4g} (ratio {ratios['xie']:.3f}); "
              f"SDE with the measured C₁ {predicted['sde_measured_noise']:.4g} (ratio "
              f"{ratios['sde_measured_noise']:.3f}); linearised chain, exponent only "
              f"{predicted['chain_exponent']:.4g} (ratio {ratios['chain_exponent']:.3f}), with "
              f"the 1-D prefactor {predicted['chain_with_prefactor']:.4g} (ratio "
              f"{ratios['chain_with_prefactor']:.3f}).", ""]
    return lines


def _plot(axis, item):
    rows = item["points"]
    x = np.array([row["batch_size"] if item["x_name"] == "B" else row["inverse_rate"]
                  for row in rows])
    log_tau = np.log([row["tau"] for row in rows])
    error = np.array([row["tau_se"] / row["tau"] for row in rows])
    axis.errorbar(x, log_tau, yerr=error, fmt="o", ms=4, zorder=3, label="SGD on the network")
    centre, middle = log_tau.mean(), x.mean()
    shape = np.log([row["exit_time_shape"] for row in rows])
    axis.plot(x, shape - shape.mean() + centre, "-",
              label="linearised chain, 1-D prefactor (shifted)")
    for key, style, label in (("xie", "--", "Xie: C = H/B"),
                              ("sde_measured_noise", ":", "SDE, measured C₁")):
        slope = item["predicted_slopes"][key]
        axis.plot(x, centre + slope * (x - middle), style, label=f"{label}: slope {slope:.3g}")
    axis.set_xlabel(item["x_name"])
    axis.set_ylabel("log τ (τ = η·iterations)")
    axis.set_title(f"{item['name']}\nslope {item['fit']['slope']:.3g} ± "
                   f"{item['fit']['slope_se']:.1g}", fontsize=9)
    axis.legend(fontsize=7)
