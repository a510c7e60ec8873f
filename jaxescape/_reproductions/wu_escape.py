r"""Wu, Ma & E (NeurIPS 2018), their restart experiment: SGD started at a GD minimum leaves it.

A minimum is found by full-batch gradient descent on n digits (64-H-10 ReLU `eqx.nn.MLP`, MSE
on one-hot targets, features standardised) at a learning rate η small enough that GD converges
(its sharpness stays below 2/η). At that minimum θ* the sharpness
$a = \lambda_{\max}(\nabla^2L)$ and the non-uniformity $s = \lambda_{\max}(\Sigma)^{1/2}$
(`hessian_top_eigenvalues`, `network_non_uniformity`) give Wu's linear-stability test for SGD
at (η, B): stable only if $a \le 2/\eta$ and $s \le \frac1\eta\sqrt{B(n-1)/(n-B)}$
(docs/THEORY.md §5.3). Then N SGD trajectories per B restart at θ* with the same η (per-epoch
shuffling), and GD (B = n) at larger rates η' = f·2/a, f < 1 (stable) and f > 1 (unstable).
A trajectory has escaped at the first iteration where the training accuracy falls below a
threshold (Wu's criterion, `accuracy_below`) or the training loss exceeds c·L* (both checked
every iteration; `boundary` says which), and, for the unstable B, by the accuracy alone
(`accuracy/i`: does leaving the minimum also cost the fit, as in Wu's waiting-time runs?).

A declared experiment (`declared.py`): one measurement point per B (`sgd/i`) and per GD rate
(`gd/i`), each `restart_from_minimum` (the minimum is recomputed, deterministic and cached, in
each process); `analyse` gives the fraction escaped by `max_steps` with Wilson 95% intervals
against the predicted stability, and the survival curves (`wu-escape.png`).
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._criteria import Predicate
from .._engine.driver import simulate
from .._sgd.curvature import hessian_top_eigenvalues, network_non_uniformity
from .._sgd.datasets import load_sklearn_dataset
from .._sgd.minibatch_sgd import MinibatchSGD
from .._sgd.networks import NetworkModel, accuracy_below
from .._sgd.stability import mean_square_growth, stability_bounds
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, new_figure, output_files, report_header
from .meng_networks import stored_values
from .wu_minima import checks_markdown, measurement_options, wilson_interval


_MODULE = "jaxescape._reproductions.wu_escape"
_MINIMUM = dict(num_train=200, hidden=16, learning_rate=0.05, gd_steps=60_000,
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


@functools.lru_cache(maxsize=4)
def gd_minimum(num_train: int, hidden: int, data_seed: int, learning_rate: float,
               gd_steps: int):
    """(model, data, θ*, facts): full-batch GD for `gd_steps` iterations at `learning_rate` from
    eqx's initialisation (key `data_seed`) on n = `num_train` digits, and at θ* the loss L*, the
    gradient norm, the training and test accuracy, the sharpness a and the non-uniformity s
    (cached: deterministic)."""
    data = load_sklearn_dataset("digits", jax.random.key(data_seed), num_train=num_train)
    model = NetworkModel(eqx.nn.MLP(64, 10, hidden, 1,
                                    key=jax.random.fold_in(jax.random.key(data_seed), 1)),
                         loss="mse")

    def loss(theta):
        return model.loss(theta, data.train)

    @jax.jit
    def descend(theta):
        def body(theta, _):
            return theta - learning_rate * jax.grad(loss)(theta), None

        return jax.lax.scan(body, theta, None, length=gd_steps)[0]

    theta = descend(model.initial_parameters)
    sharpness_key, spread_key = jax.random.split(jax.random.key(data_seed))
    a = hessian_top_eigenvalues(loss, theta, 1, sharpness_key,
                                num_iterations=_CURVATURE_ITERATIONS)[0]
    s = network_non_uniformity(model.per_sample_loss, theta, data.train, spread_key,
                               num_iterations=_CURVATURE_ITERATIONS)
    facts = {"minimum_loss": float(loss(theta)),
             "gradient_norm": float(jnp.linalg.norm(jax.grad(loss)(theta))),
             "train_accuracy": float(model.accuracy(theta, data.train)),
             "test_accuracy": float(model.accuracy(theta, data.test)),
             "sharpness": float(a), "non_uniformity": float(s),
             "num_parameters": int(theta.shape[0])}
    return model, data, theta, facts


def _loss_above(position, parameters):
    model, data, threshold = parameters
    return model.loss(position, data) >= threshold


def restart_from_minimum(key, batch_size: int, particles: int, max_steps: int, num_train: int,
                         hidden: int, data_seed: int, learning_rate: float, gd_steps: int,
                         accuracy_threshold: float, loss_factor: float,
                         rate_factor: float = 0.0, progress=False) -> dict:
    """`particles` SGD runs at batch `batch_size` restarted at the GD minimum θ*, each until its
    training accuracy falls below `accuracy_threshold` or its training loss reaches
    `loss_factor`·L*, or `max_steps`. The rate is `learning_rate` (GD's), or with
    `rate_factor` > 0, rate_factor·2/a (GD at a larger rate when batch_size = n). Returns the
    escape steps, flags and criterion hit per run and the minimum's facts."""
    if not 1 <= int(batch_size) <= int(num_train):
        raise ValueError(f"batch_size must be between 1 and num_train = {num_train}, got "
                         f"{batch_size}")
    if not (loss_factor > 1 or loss_factor == 0):
        raise ValueError(f"loss_factor must be > 1 (or 0: the accuracy criterion alone), got "
                         f"{loss_factor}")
    model, data, theta, facts = gd_minimum(int(num_train), int(hidden), int(data_seed),
                                           float(learning_rate), int(gd_steps))
    rate = rate_factor * 2 / facts["sharpness"] if rate_factor > 0 else float(learning_rate)
    sgd = MinibatchSGD(model, data.train, batch_size=int(batch_size), learning_rate=rate)
    criteria = (accuracy_below(model, data.train, accuracy_threshold),)
    if loss_factor:
        criteria += (Predicate(_loss_above, (model, data.train, jnp.asarray(
            loss_factor * facts["minimum_loss"], data.train.inputs.dtype))),)
    result = simulate(sgd, criteria, theta, key, num_particles=int(particles),
                      max_steps=int(max_steps), progress=progress)
    return {"exit_step": np.asarray(result.escape_step), "boundary": np.asarray(result.boundary),
            "censored": np.asarray(result.censored), "diverged": np.asarray(result.diverged),
            "rate": rate, **facts}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `sgd/i`, one per B at GD's rate; `gd/i`, GD at f·2/a."""
    check_size(size)
    config = _WU_ESCAPE[size]
    common = {**_MINIMUM, "data_seed": int(seed)}
    points = [{"label": f"sgd/{index}", "method": "measure",
               "measurement": {"name": f"{_MODULE}:restart_from_minimum",
                               "batch_size": int(batch), "particles": config["particles"],
                               "max_steps": config["max_steps"], **common}}
              for index, batch in enumerate(config["batches"])]
    points += [{"label": f"gd/{index}", "method": "measure",
                "measurement": {"name": f"{_MODULE}:restart_from_minimum",
                                "batch_size": _MINIMUM["num_train"], "rate_factor": float(factor),
                                "particles": config["gd_particles"],
                                "max_steps": config["gd_max_steps"], **common}}
               for index, factor in enumerate(config["gd_factors"])]
    points += [{"label": f"accuracy/{index}", "method": "measure",
                "measurement": {"name": f"{_MODULE}:restart_from_minimum",
                                "batch_size": int(batch), "particles": config["particles"],
                                "max_steps": config["max_steps"], **common, "loss_factor": 0.0}}
               for index, batch in enumerate(config["accuracy_batches"])]
    return reproduction_sweep("wu-escape", size, seed, points, extrapolate=False)


def reproduce_wu_escape(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Wu, Ma & E (NeurIPS 2018): SGD restarted from a full-batch GD minimum leaves it at small B.

    GD (η = 0.05, 60000 iterations) on n = 200 digits, 64-16-10 ReLU, MSE on one-hot targets,
    gives θ* with sharpness a and non-uniformity s. SGD at η = 0.05 restarted at θ* for
    B ∈ {1, 4, 8, 32} (smoke {1, 4, 32}), N = 10⁴ runs each (smoke 256) of at most 500
    iterations (smoke 300), and GD at η' = 0.9·2/a and 1.2·2/a; escape: training accuracy
    below 0.9 or loss above 10·L* (and, for B ∈ {1, 4, 8}, the accuracy alone). The fraction
    escaped (Wilson 95%) against Wu's test s ≤ √(B(n−1)/(n−B))/η, a ≤ 2/η (docs/THEORY.md
    §5.3, §5.5), and the survival curves.

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def survival(escape_step, escaped, steps) -> np.ndarray:
    """The fraction of runs not yet escaped after each of `steps` iterations (a run that
    escaped at step k counts as gone from k on; censored runs stay)."""
    escape_step, escaped = np.asarray(escape_step), np.asarray(escaped, bool)
    return np.array([1 - np.mean(escaped & (escape_step <= step)) for step in steps])


def point_summary(options: dict, arrays: dict) -> dict:
    """One stored point's escape fraction, times and stability prediction (arrays only)."""
    n, batch = options["num_train"], options["batch_size"]
    rate = float(arrays["rate"])
    a, s = float(arrays["sharpness"]), float(arrays["non_uniformity"])
    a_bound, s_bound = (float(bound) for bound in stability_bounds(rate, batch, n))
    censored, diverged = np.asarray(arrays["censored"], bool), np.asarray(arrays["diverged"], bool)
    escaped = ~censored  # a run that diverged left the minimum too (counted separately)
    steps, boundary = np.asarray(arrays["exit_step"]), np.asarray(arrays["boundary"])
    low, high = wilson_interval(int(escaped.sum()), escaped.size)
    gone = escaped & ~diverged
    return {
        "batch_size": batch, "learning_rate": rate, "rate_factor": options.get("rate_factor", 0.0),
        "runs": int(escaped.size), "max_steps": options["max_steps"],
        "escaped": int(escaped.sum()), "diverged": int(diverged.sum()),
        "escaped_fraction": float(escaped.mean()), "wilson_low": low, "wilson_high": high,
        "by_accuracy": int((gone & (boundary == 0)).sum()),
        "by_loss": int((gone & (boundary == 1)).sum()),
        "median_escape_step": float(np.median(steps[escaped])) if escaped.any() else None,
        "mean_escape_step": float(np.mean(steps[escaped])) if escaped.any() else None,
        "sharpness_bound": a_bound, "non_uniformity_bound": s_bound,
        "growth_factor": float(mean_square_growth(rate, batch, n, a, s)),
        "predicted_unstable": bool(a > a_bound or s > s_bound),
    }


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The escape fractions against the stability test, the checks, the report and the
    survival curves of the stored points (`jaxescape report DIR` reruns it)."""
    seed = seed_of(run)
    groups = grouped(run)
    records = groups["sgd"] + groups.get("gd", []) + groups.get("accuracy", [])
    kinds = (["SGD"] * len(groups["sgd"]) + ["GD"] * len(groups.get("gd", []))
             + ["SGD, accuracy only"] * len(groups.get("accuracy", [])))
    arrays = [stored_values(run, record) for record in records]
    rows = [dict(kind=kind, **point_summary(measurement_options(record), values))
            for kind, record, values in zip(kinds, records, arrays)]
    config = measurement_options(records[0])
    facts = {name: float(arrays[0][name]) for name in (
        "minimum_loss", "gradient_norm", "train_accuracy", "test_accuracy", "sharpness",
        "non_uniformity", "num_parameters")}
    checks = {}
    for row in rows:
        if row["kind"] == "SGD, accuracy only":
            continue  # the stability test predicts leaving θ*, not losing the fit
        name = (f"{row['kind']} B = {row['batch_size']}, η = {row['learning_rate']:.4g}: "
                f"predicted {'unstable' if row['predicted_unstable'] else 'stable'}, ")
        if row["predicted_unstable"]:
            checks[name + "most runs leave (Wilson interval above 1/2)"] = row["wilson_low"] > 0.5
        else:
            checks[name + "most runs stay (Wilson interval below 1/2)"] = row["wilson_high"] < 0.5
    spent = timing(run)
    summary = dict(name="wu-escape", size=size, seed=seed, minimum=facts, points=rows,
                   checks=checks, all_passed=all(checks.values()), wall_seconds=spent.wall,
                   network=f"64-{config['hidden']}-10 ReLU MLP, MSE on one-hot digits",
                   num_train=config["num_train"], gd_learning_rate=config["learning_rate"],
                   gd_steps=config["gd_steps"], accuracy_threshold=config["accuracy_threshold"],
                   loss_factor=config["loss_factor"])
    lines = report_header("Wu, Ma & E (NeurIPS 2018): SGD restarted from a GD minimum", size,
                          seed, spent, [], run.environment.get("device_kind"),
                          times="")
    lines += [f"Minimum: {summary['network']}, n = {config['num_train']}, full-batch GD at "
              f"η = {config['learning_rate']:g} for {config['gd_steps']} iterations: L* = "
              f"{facts['minimum_loss']:.3g}, |∇L| = {facts['gradient_norm']:.2g}, training "
              f"accuracy {facts['train_accuracy']:.3f}, test {facts['test_accuracy']:.3f}, "
              f"sharpness a = {facts['sharpness']:.4g} (2/η = {2 / config['learning_rate']:.4g})"
              f", non-uniformity s = {facts['non_uniformity']:.4g}. Escape: training accuracy "
              f"< {config['accuracy_threshold']:g} or loss ≥ {config['loss_factor']:g}·L*. "
              "Predicted unstable: a > 2/η or s > √(B(n−1)/(n−B))/η; ρ = (1 − ηa)² + η²ps² "
              "(1-D mean-square growth per step). Fractions with Wilson 95% intervals; diverged "
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
            f"{row['growth_factor']:.3g} | {'unstable' if row['predicted_unstable'] else 'stable'}"
            f" | {row['escaped']}/{row['runs']} ({row['by_accuracy']}, {row['by_loss']}, "
            f"{row['diverged']}) | {row['escaped_fraction']:.4f} ({row['wilson_low']:.4f}–"
            f"{row['wilson_high']:.4f}) | {median} |")
    lines += checks_markdown(checks)
    figure, axes = new_figure(1)
    axis = axes[0]
    sgd_batches = [row["batch_size"] for row in rows if row["kind"] == "SGD"]
    for index, (row, values) in enumerate(zip(rows, arrays)):
        same = row["kind"] != "GD" and row["batch_size"] in sgd_batches  # one colour per B
        colour = f"C{sgd_batches.index(row['batch_size']) if same else index}"
        steps = np.arange(0, row["max_steps"] + 1)
        curve = survival(values["exit_step"], ~np.asarray(values["censored"], bool), steps)
        verdict = "unstable" if row["predicted_unstable"] else "stable"
        style = {"SGD": "-", "GD": "--"}.get(row["kind"], ":")
        axis.step(steps, curve, where="post", color=colour, ls=style,
                  label=f"{row['kind']} B = {row['batch_size']}, η = "
                  f"{row['learning_rate']:.3g} ({verdict} by Wu's test)")
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
