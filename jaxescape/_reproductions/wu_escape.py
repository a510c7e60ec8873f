r"""Wu, Ma & E (NeurIPS 2018), their restart experiment: SGD started at a GD minimum leaves it.

A minimum is found by full-batch gradient descent on n digits (64-H-10 ReLU `eqx.nn.MLP`, MSE
on one-hot targets, features standardised) at a learning rate η small enough that GD converges
(its sharpness stays below 2/η). At that minimum θ* the sharpness
$a = \lambda_{\max}(\nabla^2L)$ and the non-uniformity $s = \lambda_{\max}(\Sigma)^{1/2}$
(`start_sharpness`, `network_non_uniformity`) give Wu's linear-stability test for SGD at
(η, B): stable only if $a \le 2/\eta$ and $s \le \frac1\eta\sqrt{B(n-1)/(n-B)}$
(docs/THEORY.md §5.3). Then N SGD trajectories per B restart at θ* with the same η (per-epoch
shuffling), and GD (B = n) at larger rates η' = f·2/a, f < 1 (stable) and f > 1 (unstable).
A trajectory has escaped at the first iteration where the training accuracy falls below a
threshold (Wu's criterion) or the training loss exceeds c·L* (both checked every iteration;
`boundary` says which), and, for the unstable B, by the accuracy alone (`accuracy/i`: does
leaving the minimum also cost the fit, as in Wu's waiting-time runs?).

A declared experiment (`declared.py`) built from components: the measure point `minimum/0`
(`minimum_facts`: L*, |∇L|, accuracies, a and s at θ*) and escape points `sgd/i` (one per B
at GD's rate), `gd/i` (B = n at `dynamics.stability_fraction` f: η' = f·2/a) and
`accuracy/i`, each with the start `gd-minimum` (full-batch GD from the network's
initialisation, `start.learning_rate`, `start.steps`) and the criterion `accuracy-below`
(with `loss_factor` c: the loss criterion too). `analyse` gives the fraction escaped by
`max_steps` with Wilson 95% intervals against the predicted stability (`verdict`), and the
survival curves (`wu-escape.png`).
"""

import jax
import numpy as np

from .._experiments.components import build_point, start_sharpness
from .._experiments.sweep import make_sweep
from .._sgd.curvature import network_non_uniformity
from .._sgd.datasets import load_sklearn_dataset
from .._sgd.stability import mean_square_growth, stability_bounds
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, new_figure, output_files, report_header
from .meng_networks import stored_values
from .wu_minima import checks_markdown, measurement_options, wilson_interval


_MODULE = "jaxescape._reproductions.wu_escape"
PROBLEM = dict(num_train=200, hidden=16, gd_learning_rate=0.05, gd_steps=60_000,
               accuracy_threshold=0.9, loss_factor=10.0)
_WU_ESCAPE = {
    "smoke": dict(particles=256, max_steps=300, batches=(1, 32), gd_factors=(0.9, 1.2),
                  gd_particles=4, gd_max_steps=1000, accuracy_batches=(1,)),
    "default": dict(particles=10_000, max_steps=500, batches=(1, 4, 8, 32),
                    gd_factors=(0.9, 1.2), gd_particles=4, gd_max_steps=2000,
                    accuracy_batches=(1, 4, 8)),
    "large": dict(particles=100_000, max_steps=2000, batches=(1, 2, 4, 8, 16, 32),
                  gd_factors=(0.9, 1.1, 1.5), gd_particles=4, gd_max_steps=4000,
                  accuracy_batches=(1, 2, 4, 8)),
}
_CURVATURE_ITERATIONS = 40


def problem_point(problem: dict, seed: int, batch_size: int, *, learning_rate=None,
                  stability_fraction=None, accuracy_only=False, **options) -> dict:
    """A sweep point of the problem: the 64-H-10 network (initialised from `seed + 1`) on n
    digits (split from `seed`), restarted at the GD minimum, SGD at batch `batch_size` with
    `learning_rate` or at `stability_fraction`·2/a; escape when the training accuracy falls
    below the threshold or (unless `accuracy_only`) the loss reaches c·L*."""
    dynamics = {"name": "sgd", "batch_size": int(batch_size)}
    if stability_fraction is None:
        dynamics["learning_rate"] = float(learning_rate)
    else:
        dynamics["stability_fraction"] = float(stability_fraction)
    criterion = {"name": "accuracy-below", "threshold": problem["accuracy_threshold"]}
    if not accuracy_only:
        criterion["loss_factor"] = problem["loss_factor"]
    return {"model": {"name": "mlp", "width": int(problem["hidden"]), "depth": 1,
                      "activation": "relu", "loss": "mse", "seed": int(seed) + 1},
            "data": {"name": "sklearn", "dataset": "digits",
                     "num_train": int(problem["num_train"]), "seed": int(seed)},
            "dynamics": dynamics,
            "start": {"name": "gd-minimum", "learning_rate": problem["gd_learning_rate"],
                      "steps": int(problem["gd_steps"])},
            "criterion": criterion, "reference": False, **options}


def built_problem(problem: dict, seed: int) -> dict:
    """The problem's objects as its sweep points build them (the GD minimum θ* is `start`)."""
    point = problem_point(problem, seed, 1, learning_rate=problem["gd_learning_rate"])
    sweep = make_sweep({"name": "wu-escape-problem", "points": [point]}, "wu-escape")
    return build_point(sweep.expand()[0])


def minimum_facts(key, data_seed: int, num_train: int, hidden: int, gd_learning_rate: float,
                  gd_steps: int, accuracy_threshold: float, loss_factor: float) -> dict:
    """At the GD minimum θ* of the escape points: the loss L*, the gradient norm, the training
    and test accuracy, the sharpness a (`start_sharpness`, which sets the GD points' rates) and
    the non-uniformity s (Lanczos)."""
    problem = dict(num_train=num_train, hidden=hidden, gd_learning_rate=gd_learning_rate,
                   gd_steps=gd_steps, accuracy_threshold=accuracy_threshold,
                   loss_factor=loss_factor)
    built = built_problem(problem, int(data_seed))
    model, data, theta = built["dynamics"].model, built["dynamics"].data, built["start"]
    test = load_sklearn_dataset("digits", jax.random.key(int(data_seed)),
                                num_train=int(num_train)).test
    loss = built["landscape"].loss
    return {"minimum_loss": float(loss(theta)),
            "gradient_norm": float(np.linalg.norm(jax.grad(loss)(theta))),
            "train_accuracy": float(model.accuracy(theta, data)),
            "test_accuracy": float(model.accuracy(theta, test)),
            "sharpness": start_sharpness(built["landscape"], theta),
            "non_uniformity": float(network_non_uniformity(
                model.per_sample_loss, theta, data, key, num_iterations=_CURVATURE_ITERATIONS)),
            "num_parameters": int(theta.shape[0])}


def sweep_points(config: dict, problem: dict, seed: int) -> list[dict]:
    """`minimum/0`, then `sgd/i` (one per B at GD's rate), `gd/i` (GD at f·2/a) and
    `accuracy/i` (the accuracy criterion alone) for a size's `config`."""
    rate = problem["gd_learning_rate"]
    escape = {"particles": config["particles"], "max_steps": config["max_steps"]}
    points = [{"label": "minimum/0", "method": "measure",
               "measurement": {"name": f"{_MODULE}:minimum_facts", "data_seed": int(seed),
                               **problem}}]
    points += [problem_point(problem, seed, batch, learning_rate=rate, label=f"sgd/{index}",
                             **escape) for index, batch in enumerate(config["batches"])]
    points += [problem_point(problem, seed, problem["num_train"], stability_fraction=factor,
                             label=f"gd/{index}", particles=config["gd_particles"],
                             max_steps=config["gd_max_steps"])
               for index, factor in enumerate(config["gd_factors"])]
    points += [problem_point(problem, seed, batch, learning_rate=rate, accuracy_only=True,
                             label=f"accuracy/{index}", **escape)
               for index, batch in enumerate(config["accuracy_batches"])]
    return points


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points (`sweep_points`) at `size`."""
    check_size(size)
    return reproduction_sweep("wu-escape", size, seed,
                              sweep_points(_WU_ESCAPE[size], PROBLEM, seed), extrapolate=False)


def reproduce_wu_escape(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Wu, Ma & E (NeurIPS 2018): SGD restarted from a full-batch GD minimum leaves it at small B.

    GD (η = 0.05, 60000 iterations) on n = 200 digits, 64-16-10 ReLU, MSE on one-hot targets,
    gives θ* with sharpness a and non-uniformity s. SGD at η = 0.05 restarted at θ* for
    B ∈ {1, 4, 8, 32} (smoke {1, 32}), N = 10⁴ runs each (smoke 256) of at most 500
    iterations (smoke 300), and GD at η' = 0.9·2/a and 1.2·2/a; escape: training accuracy
    below 0.9 or loss above 10·L* (and, for B ∈ {1, 4, 8}, the accuracy alone). The fraction
    escaped (Wilson 95%) against Wu's bounds s ≤ √(B(n−1)/(n−B))/η, a ≤ 2/η (necessary for
    stability: one that fails predicts leaving) and, where both hold, the 1-D mean-square
    growth ρ ≤ 1 (docs/THEORY.md §5.3, §5.5), and the survival curves.

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def survival(escape_step, escaped, steps) -> np.ndarray:
    """The fraction of runs not yet escaped after each of `steps` iterations (a run that
    escaped at step k counts as gone from k on; censored runs stay)."""
    escape_step, escaped = np.asarray(escape_step), np.asarray(escaped, bool)
    return np.array([1 - np.mean(escaped & (escape_step <= step)) for step in steps])


def point_rate(point: dict, sharpness: float) -> float:
    """A stored escape point's learning rate: its `dynamics.learning_rate`, or f·2/a for
    `dynamics.stability_fraction` f (a: the minimum's sharpness, as its build used)."""
    fraction = point.get("dynamics.stability_fraction")
    return float(point["dynamics.learning_rate"]) if fraction is None else (
        float(fraction) * 2 / sharpness)


def point_summary(point: dict, arrays: dict, facts: dict, num_train: int) -> dict:
    """One stored escape point's fraction escaped, times and stability prediction."""
    batch = int(point["dynamics.batch_size"])
    rate = point_rate(point, facts["sharpness"])
    a, s = facts["sharpness"], facts["non_uniformity"]
    a_bound, s_bound = (float(bound) for bound in stability_bounds(rate, batch, num_train))
    censored, diverged = np.asarray(arrays["censored"], bool), np.asarray(arrays["diverged"], bool)
    escaped = ~censored  # a run that diverged left the minimum too (counted separately)
    steps, boundary = np.asarray(arrays["escape_step"]), np.asarray(arrays["boundary"])
    low, high = wilson_interval(int(escaped.sum()), escaped.size)
    gone = escaped & ~diverged
    bound_violated = bool(a > a_bound or s > s_bound)
    growth = float(mean_square_growth(rate, batch, num_train, a, s))
    return {
        "batch_size": batch, "learning_rate": rate,
        "stability_fraction": point.get("dynamics.stability_fraction"),
        "runs": int(escaped.size), "max_steps": int(point["max_steps"]),
        "escaped": int(escaped.sum()), "diverged": int(diverged.sum()),
        "escaped_fraction": float(escaped.mean()), "wilson_low": low, "wilson_high": high,
        "by_accuracy": int((gone & (boundary == 0)).sum()),
        "by_loss": int((gone & (boundary == 1)).sum()),
        "median_escape_step": float(np.median(steps[escaped])) if escaped.any() else None,
        "mean_escape_step": float(np.mean(steps[escaped])) if escaped.any() else None,
        "sharpness_bound": a_bound, "non_uniformity_bound": s_bound,
        "growth_factor": growth,
        "predicted_unstable": bound_violated,
        "verdict": verdict(bound_violated, growth),
    }


def verdict(bound_violated: bool, growth: float) -> str:
    """'unstable' where one of Wu's bounds fails (a > 2/η or s above its bound: necessary for
    linear stability, docs/THEORY.md §5.3); where both hold, 'stable' if the 1-D mean-square
    growth ρ = (1 − ηa)² + η²ps² ≤ 1, else 'undecided' (the bounds do not suffice)."""
    if bound_violated:
        return "unstable"
    return "stable" if growth <= 1 else "undecided"


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The escape fractions against the stability test, the checks, the report and the
    survival curves of the stored points (`jaxescape report DIR` reruns it)."""
    seed = seed_of(run)
    groups = grouped(run)
    (minimum,) = groups["minimum"]
    config = measurement_options(minimum)
    facts = {name: float(value) for name, value in stored_values(run, minimum).items()}
    records = groups["sgd"] + groups.get("gd", []) + groups.get("accuracy", [])
    kinds = (["SGD"] * len(groups["sgd"]) + ["GD"] * len(groups.get("gd", []))
             + ["SGD, accuracy only"] * len(groups.get("accuracy", [])))
    arrays = [run.arrays(record["index"]) for record in records]
    rows = [dict(kind=kind, **point_summary(record["point"], values, facts,
                                            config["num_train"]))
            for kind, record, values in zip(kinds, records, arrays)]
    checks = {}
    for row in rows:
        if row["kind"] == "SGD, accuracy only":
            continue  # the stability test predicts leaving θ*, not losing the fit
        name = f"{row['kind']} B = {row['batch_size']}, η = {row['learning_rate']:.4g}: "
        if row["verdict"] == "unstable":
            checks[name + "a bound fails, most runs leave (Wilson interval above 1/2)"] = (
                row["wilson_low"] > 0.5)
        elif row["verdict"] == "stable":
            checks[name + "bounds hold and ρ ≤ 1, most runs stay (Wilson interval below 1/2)"] \
                = row["wilson_high"] < 0.5
    spent = timing(run)
    summary = dict(name="wu-escape", size=size, seed=seed, minimum=facts, points=rows,
                   checks=checks, all_passed=all(checks.values()), wall_seconds=spent.wall,
                   network=f"64-{config['hidden']}-10 ReLU MLP, MSE on one-hot digits",
                   num_train=config["num_train"], gd_learning_rate=config["gd_learning_rate"],
                   gd_steps=config["gd_steps"], accuracy_threshold=config["accuracy_threshold"],
                   loss_factor=config["loss_factor"])
    lines = report_header("Wu, Ma & E (NeurIPS 2018): SGD restarted from a GD minimum", size,
                          seed, spent, [], run.environment.get("device_kind"),
                          times="")
    lines += [f"Minimum: {summary['network']}, n = {config['num_train']}, full-batch GD at "
              f"η = {config['gd_learning_rate']:g} for {config['gd_steps']} iterations: L* = "
              f"{facts['minimum_loss']:.3g}, |∇L| = {facts['gradient_norm']:.2g}, training "
              f"accuracy {facts['train_accuracy']:.3f}, test {facts['test_accuracy']:.3f}, "
              f"sharpness a = {facts['sharpness']:.4g} (2/η = {2 / config['gd_learning_rate']:.4g})"
              f", non-uniformity s = {facts['non_uniformity']:.4g}. Escape: training accuracy "
              f"< {config['accuracy_threshold']:g} or loss ≥ {config['loss_factor']:g}·L*. "
              "Predicted unstable: a > 2/η or s > √(B(n−1)/(n−B))/η (Wu's bounds, necessary "
              "for stability); where both hold, stable if ρ = (1 − ηa)² + η²ps² ≤ 1 (1-D "
              "mean-square growth per step), else undecided (no check). Fractions with Wilson "
              "95% intervals; diverged "
              "runs count as escaped. Times are SGD iterations. 'SGD, accuracy only': the "
              "same restarts with the accuracy criterion alone (no check: the stability test "
              "predicts leaving θ*, not losing the fit).", "",
              "| run | B | η | 2/η | s bound | ρ | predicted | escaped (by accuracy, by loss, "
              "diverged) | fraction (95%) | median step |", "|---" * 10 + "|"]
    for row in rows:
        median = "–" if row["median_escape_step"] is None else f"{row['median_escape_step']:g}"
        lines.append(
            f"| {row['kind']} | {row['batch_size']} | {row['learning_rate']:.4g} | "
            f"{row['sharpness_bound']:.3g} | {row['non_uniformity_bound']:.3g} | "
            f"{row['growth_factor']:.3g} | {row['verdict']} | {row['escaped']}/{row['runs']} "
            f"({row['by_accuracy']}, {row['by_loss']}, {row['diverged']}) | {row['escaped_fraction']:.4f} ({row['wilson_low']:.4f}–"
            f"{row['wilson_high']:.4f}) | {median} |")
    lines += checks_markdown(checks)
    figure, axes = new_figure(1)
    axis = axes[0]
    sgd_batches = [row["batch_size"] for row in rows if row["kind"] == "SGD"]
    for index, (row, values) in enumerate(zip(rows, arrays)):
        same = row["kind"] != "GD" and row["batch_size"] in sgd_batches  # one colour per B
        colour = f"C{sgd_batches.index(row['batch_size']) if same else index}"
        steps = np.arange(0, row["max_steps"] + 1)
        curve = survival(values["escape_step"], ~np.asarray(values["censored"], bool), steps)
        style = {"SGD": "-", "GD": "--"}.get(row["kind"], ":")
        axis.step(steps, curve, where="post", color=colour, ls=style,
                  label=f"{row['kind']} B = {row['batch_size']}, η = "
                  f"{row['learning_rate']:.3g} ({row['verdict']})")
    axis.set_xscale("symlog", linthresh=10)
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("iterations after the restart at the GD minimum")
    axis.set_ylabel("fraction still at the minimum")
    axis.set_title(f"a = {facts['sharpness']:.3g}, s = {facts['non_uniformity']:.3g}; escape: "
                   f"accuracy < {config['accuracy_threshold']:g} or L ≥ "
                   f"{config['loss_factor']:g}·L*", fontsize=8)
    axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.set_size_inches(8.5, 3.8)
    figure.tight_layout()
    return output_files("wu-escape", summary, lines + [""], figure)
