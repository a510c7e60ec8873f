r"""Wu, Ma & E (NeurIPS 2018), their network experiment: which minima does SGD find?

For each setting (η, B), N fully connected networks (64-H-10 ReLU, eqx's default random
initialisation) are trained by `MinibatchSGD` from scratch on n digits (scikit-learn, features
standardised, MSE on one-hot targets, per-epoch shuffling), then each network's sharpness
$a = \lambda_{\max}(\nabla^2 L)$ (Lanczos, `hessian_top_eigenvalues`) and non-uniformity
$s = \lambda_{\max}(\frac1n\sum_\mu H_\mu^2 - H^2)^{1/2}$ (`network_non_uniformity`) are taken
at the end of training. Wu, Ma & E's claim (docs/THEORY.md §5.3, §5.5): the minima SGD finds
are linearly stable, $a \le 2/\eta$ and $s \le \frac1\eta\sqrt{B(n-1)/(n-B)}$.

A declared experiment (`declared.py`): `sweep(size, seed)` lists one measurement point per
setting (`settings/i`, `train_and_measure`); `analyse` gives the fraction of networks inside
each bound with a Wilson 95% interval, the networks that diverged (counted, not dropped
silently), the scatter of s against a with both bounds (`wu-minima.png`).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._criteria import NeverEscape
from .._engine.driver import simulate
from .._sgd.curvature import hessian_top_eigenvalues, network_non_uniformity
from .._sgd.datasets import load_sklearn_dataset
from .._sgd.minibatch_sgd import MinibatchSGD
from .._sgd.networks import NetworkModel, evaluate_particles
from .._sgd.stability import stability_bounds
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, new_figure, output_files, report_header


_MODULE = "jaxescape._reproductions.wu_minima"
# (η, B) settings: B = 32 at a small and a large η (the a-bound binds as η grows), then small
# batches (the s-bound √B/η binds as B shrinks).
_SETTINGS = ((0.1, 32), (0.4, 32), (0.1, 8), (0.15, 4))
_WU_MINIMA = {
    "smoke": dict(networks=64, num_train=300, hidden=16, steps=1500, settings=_SETTINGS[:2],
                  sharpness_iterations=16, non_uniformity_iterations=10),
    "default": dict(networks=1000, num_train=1000, hidden=16, steps=4000, settings=_SETTINGS,
                    sharpness_iterations=20, non_uniformity_iterations=12),
    "large": dict(networks=10_000, num_train=1000, hidden=64, steps=10_000, settings=_SETTINGS,
                  sharpness_iterations=30, non_uniformity_iterations=20),
}
# A network counts as trained (it found a minimum of the training set) at this training accuracy.
_TRAINED_ACCURACY = 0.9
_CHUNK = 8  # networks whose curvature is computed at once (memory: chunk · n · P)


@functools.lru_cache(maxsize=8)
def digits_problem(num_train: int, hidden: int, data_seed: int):
    """(model, split data, initializer): a 64-`hidden`-10 ReLU `eqx.nn.MLP` with MSE on one-hot
    digits (n = `num_train`, drawn by `data_seed`) and eqx's random initialisation per particle
    (cached: the initializer compiles once per process)."""
    data = load_sklearn_dataset("digits", jax.random.key(data_seed), num_train=num_train)

    def make(key):
        return eqx.nn.MLP(64, 10, hidden, 1, key=key)

    model = NetworkModel(make(jax.random.key(0)), loss="mse")
    return model, data, model.random_initializer(make)


def train_networks(key, learning_rate, batch_size, networks, num_train, hidden, steps,
                   data_seed, progress=False):
    """`networks` SGD runs of `steps` iterations from random starts: (model, data, θ (N, P),
    diverged (N,)); a diverged run (non-finite loss) is flagged by the engine."""
    model, data, initializer = digits_problem(int(num_train), int(hidden), int(data_seed))
    sgd = MinibatchSGD(model, data.train, batch_size=int(batch_size),
                       learning_rate=float(learning_rate), initializer=initializer)
    return (model, data, *trained_positions(sgd, model.initial_parameters, key, networks,
                                            steps, progress))


def trained_positions(sgd, start, key, networks, steps, progress=False):
    """θ (N, P) of `networks` SGD runs after `steps` iterations (`NeverEscape`), and which
    diverged (N,): flagged by the engine, or with a non-finite parameter."""
    result = simulate(sgd, NeverEscape(), start, key, num_particles=int(networks),
                      max_steps=int(steps), progress=progress)
    positions = np.asarray(result.position)
    return positions, np.asarray(result.diverged) | ~np.all(np.isfinite(positions), axis=1)


@eqx.filter_jit
def _curvatures(model, data, positions, keys, sharpness_iterations, non_uniformity_iterations):
    """a and s of every row of `positions` (lax.map in chunks of `_CHUNK`)."""
    def one(arguments):
        theta, key = arguments
        sharpness_key, spread_key = jax.random.split(key)
        a = hessian_top_eigenvalues(lambda t: model.loss(t, data), theta, 1, sharpness_key,
                                    num_iterations=sharpness_iterations)[0]
        s = network_non_uniformity(model.per_sample_loss, theta, data, spread_key,
                                   num_iterations=non_uniformity_iterations)
        return a, s

    return jax.lax.map(one, (positions, keys), batch_size=_CHUNK)


def train_and_measure(key, learning_rate: float, batch_size: int, networks: int, num_train: int,
                      hidden: int, steps: int, data_seed: int, sharpness_iterations: int,
                      non_uniformity_iterations: int, progress=False) -> dict:
    """One setting (η, B): trains the networks, then each one's sharpness a, non-uniformity s,
    training loss and accuracy and test accuracy. Diverged networks get NaN and are flagged."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    train_key, curvature_key = jax.random.split(key)
    model, data, positions, diverged = train_networks(
        train_key, learning_rate, batch_size, networks, num_train, hidden, steps, data_seed,
        progress)
    finite = np.where(diverged[:, None], np.asarray(model.initial_parameters), positions)
    a, s = _curvatures(model, data.train, jnp.asarray(finite),
                       jax.random.split(curvature_key, positions.shape[0]),
                       int(sharpness_iterations), int(non_uniformity_iterations))
    train = evaluate_particles(model, finite, data.train)
    test = evaluate_particles(model, finite, data.test)

    def masked(values):
        return np.where(diverged, np.nan, np.asarray(values, np.float64))

    return {"sharpness": masked(a), "non_uniformity": masked(s),
            "train_loss": masked(train.loss), "train_accuracy": masked(train.accuracy),
            "test_accuracy": masked(test.accuracy), "diverged": diverged,
            "num_diverged": int(diverged.sum())}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `settings/i`, one per (η, B)."""
    check_size(size)
    config = _WU_MINIMA[size]
    options = {name: config[name] for name in ("networks", "num_train", "hidden", "steps",
                                                "sharpness_iterations",
                                                "non_uniformity_iterations")}
    points = [{"label": f"settings/{index}", "method": "measure",
               "measurement": {"name": f"{_MODULE}:train_and_measure",
                               "learning_rate": float(eta), "batch_size": int(batch),
                               "data_seed": int(seed), **options}}
              for index, (eta, batch) in enumerate(config["settings"])]
    return reproduction_sweep("wu-minima", size, seed, points, extrapolate=False)


def reproduce_wu_minima(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Wu, Ma & E (NeurIPS 2018): the minima SGD finds on digits lie inside a ≤ 2/η, s ≤ √B/η.

    Per setting (η, B) ∈ {(0.1, 32), (0.4, 32), (0.1, 8), (0.15, 4)} (smoke: the first two),
    N networks (64-16-10 ReLU; default N = 1000, n = 1000 digits, 4000 iterations; smoke 64,
    n = 300, 1500) trained by SGD from random initialisation with MSE on one-hot targets; the
    sharpness a and non-uniformity s of each (docs/THEORY.md §5.2, §5.3) against the bounds
    a ≤ 2/η and s ≤ (1/η)√(B(n − 1)/(n − B)), with the fraction inside and its Wilson interval.

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (95% at the default z); (0, 1) for no
    trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _fraction(inside) -> dict:
    inside = np.asarray(inside, bool)
    low, high = wilson_interval(int(inside.sum()), inside.size)
    return {"inside": int(inside.sum()), "of": int(inside.size),
            "fraction": float(inside.mean()) if inside.size else math.nan,
            "wilson_low": low, "wilson_high": high}


def setting_summary(options: dict, arrays: dict) -> dict:
    """The bounds and fractions of one stored setting (from its arrays only)."""
    eta, batch, n = options["learning_rate"], options["batch_size"], options["num_train"]
    a_bound, s_bound = (float(bound) for bound in stability_bounds(eta, batch, n))
    diverged = np.asarray(arrays["diverged"], bool)
    a, s = np.asarray(arrays["sharpness"]), np.asarray(arrays["non_uniformity"])
    accuracy = np.asarray(arrays["train_accuracy"])
    finite = ~diverged
    trained = finite & (accuracy >= _TRAINED_ACCURACY)
    inside_a, inside_s = a <= a_bound, s <= s_bound
    return {
        "learning_rate": eta, "batch_size": batch, "num_train": n,
        "networks": int(diverged.size), "diverged": int(diverged.sum()),
        "not_trained": int((finite & ~trained).sum()), "trained": int(trained.sum()),
        "sharpness_bound": a_bound, "non_uniformity_bound": s_bound,
        "sharpness_median": float(np.median(a[finite])) if finite.any() else None,
        "non_uniformity_median": float(np.median(s[finite])) if finite.any() else None,
        "largest_sharpness_over_bound": float(np.max(a[finite]) / a_bound) if finite.any()
        else None,
        "largest_non_uniformity_over_bound": float(np.max(s[finite]) / s_bound)
        if finite.any() else None,
        "median_non_uniformity_over_bound": float(np.median(s[finite]) / s_bound)
        if finite.any() else None,
        "train_accuracy_median": float(np.median(accuracy[finite])) if finite.any() else None,
        "test_accuracy_median": float(np.median(np.asarray(arrays["test_accuracy"])[finite]))
        if finite.any() else None,
        "train_loss_median": float(np.median(np.asarray(arrays["train_loss"])[finite]))
        if finite.any() else None,
        "inside_sharpness": _fraction(inside_a[finite]),
        "inside_non_uniformity": _fraction(inside_s[finite]),
        "inside_both": _fraction((inside_a & inside_s)[finite]),
        "inside_both_trained": _fraction((inside_a & inside_s)[trained]),
    }


def measurement_options(record) -> dict:
    """A stored measure point's measurement options (`measurement.NAME` → NAME)."""
    return {key.split(".", 1)[1]: value for key, value in record["point"].items()
            if key.startswith("measurement.")}


def checks_markdown(checks: dict) -> list[str]:
    """The report's checks section, one line per check."""
    return ["", "## Checks", ""] + [f"- {name}: {'yes' if value else 'NO'}"
                                    for name, value in checks.items()]


def plain_log_axes(axis):
    """Log scales on both axes, labelled at the decades only."""
    from matplotlib.ticker import NullFormatter

    axis.set_xscale("log")
    axis.set_yscale("log")
    for part in (axis.xaxis, axis.yaxis):
        part.set_minor_formatter(NullFormatter())


def _plot(axis, settings, arrays):
    colours = ["C0", "C1", "C2", "C3", "C4", "C5"]
    for index, (row, values) in enumerate(zip(settings, arrays)):
        colour = colours[index % len(colours)]
        finite = ~np.asarray(values["diverged"], bool)
        axis.scatter(values["sharpness"][finite], values["non_uniformity"][finite], s=4,
                     alpha=0.35, color=colour, lw=0,
                     label=f"η = {row['learning_rate']:g}, B = {row['batch_size']} "
                           f"({row['diverged']} of {row['networks']} diverged)")
        axis.axvline(row["sharpness_bound"], color=colour, ls="--", lw=1)
        axis.axhline(row["non_uniformity_bound"], color=colour, ls=":", lw=1)
    plain_log_axes(axis)
    axis.set_xlabel("sharpness a = λ_max(H)")
    axis.set_ylabel("non-uniformity s")
    axis.set_title("SGD minima on digits; bounds a ≤ 2/η (--), s ≤ √(B(n−1)/(n−B))/η (:)",
                   fontsize=8)
    axis.legend(fontsize=6, loc="lower right")


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The per-setting fractions inside the bounds, the checks, the report and the scatter of
    the stored points (`jaxescape report DIR` reruns it)."""
    seed = seed_of(run)
    records = grouped(run)["settings"]
    config = measurement_options(records[0])  # the sizes the points ran with
    arrays = [run.arrays(record["index"]) for record in records]
    settings = [setting_summary(measurement_options(record), values)
                for record, values in zip(records, arrays)]
    checks = {}
    for row in settings:
        name = f"η = {row['learning_rate']:g}, B = {row['batch_size']}"
        for bound, part in (("a ≤ 2/η", "inside_sharpness"),
                            ("s ≤ √(B(n−1)/(n−B))/η", "inside_non_uniformity")):
            inside = row[part]
            checks[f"{name}: every network that did not diverge has {bound}"] = bool(
                inside["of"] > 0 and inside["inside"] == inside["of"])
    spent = timing(run)
    summary = dict(name="wu-minima", size=size, seed=seed, settings=settings, checks=checks,
                   all_passed=all(checks.values()), wall_seconds=spent.wall,
                   network=f"64-{config['hidden']}-10 ReLU MLP, MSE on one-hot digits",
                   steps=config["steps"], trained_accuracy=_TRAINED_ACCURACY)
    lines = report_header("Wu, Ma & E (NeurIPS 2018): sharpness and non-uniformity of the "
                          "minima SGD finds", size, seed, spent, [],
                          run.environment.get("device_kind"),
                          times="")
    lines += [f"{config['networks']} networks per setting: {summary['network']}, n = "
              f"{config['num_train']} training digits, {config['steps']} SGD iterations from "
              "random initialisation (per-epoch shuffling). a: top Hessian eigenvalue of the "
              "full-batch loss (Lanczos), s: Wu's non-uniformity. Fractions are over the "
              "networks that did not diverge, with Wilson 95% intervals; 'trained': training "
              f"accuracy ≥ {_TRAINED_ACCURACY}.", "",
              "| η | B | diverged | not trained | a median | 2/η | max a·η/2 | s median | "
              "s bound | median, max s/bound | inside a | inside s | inside both | both, trained |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(part):
        if not part["of"]:
            return "–"
        return (f"{part['inside']}/{part['of']} ({part['wilson_low']:.3f}–"
                f"{part['wilson_high']:.3f})")

    def number(value):
        return "–" if value is None else f"{value:.3g}"

    for row in settings:
        lines.append(
            f"| {row['learning_rate']:g} | {row['batch_size']} | {row['diverged']}/"
            f"{row['networks']} | {row['not_trained']} | {number(row['sharpness_median'])} | "
            f"{row['sharpness_bound']:.3g} | {number(row['largest_sharpness_over_bound'])} | "
            f"{number(row['non_uniformity_median'])} | {row['non_uniformity_bound']:.3g} | "
            f"{number(row['median_non_uniformity_over_bound'])}, "
            f"{number(row['largest_non_uniformity_over_bound'])} | "
            f"{cell(row['inside_sharpness'])} | {cell(row['inside_non_uniformity'])} | "
            f"{cell(row['inside_both'])} | {cell(row['inside_both_trained'])} |")
    lines += checks_markdown(checks)
    figure, axes = new_figure(1)
    _plot(axes[0], settings, arrays)
    figure.tight_layout()
    return output_files("wu-minima", summary, lines + [""], figure)
