r"""Meng et al.'s proposal on a network: does state-dependent noise help large-batch SGD generalise?

Four settings, each N networks (64-H-10 ReLU `eqx.nn.MLP`, eqx's random initialisation per
network, softmax cross-entropy) trained by `MinibatchSGD` (per-epoch shuffling) on n digits
(scikit-learn, features standardised) for the same number of iterations at the same η:
small-batch SGD (B = b), plain large-batch SGD (B = b'), and large-batch SGD with Meng's added
noise at two strengths (`noisy_sgd`: $\theta \mathrel{-}= \eta\nabla L_B$, then
$\theta \mathrel{+}= \eta\sqrt{\sigma + 2\kappa\max(L_B - L^*, 0)}\,\zeta$, `optax_noise.py`,
docs/THEORY.md §4.1-4.2). The claim (Meng et al. v3 abstract [V-abs]; its exact noise form and
data sets are [R]): adding state-dependent noise to large-batch SGD improves its generalisation.

Same iterations, not epochs: large-batch SGD then makes as many updates as small-batch SGD and
reaches a comparable training loss, so what differs between the settings is the gradient noise,
not how far the optimisation got (at equal epochs it would make b'/b times fewer updates).

κ is chosen so that the added noise's trace, $\eta^2 P\cdot2\kappa L$, matches small-batch
SGD's own, $\eta^2\frac{n-b}{b(n-1)}\mathcal N$ with $\mathcal N \approx cL$ (Mori's 𝒩 ∝ L;
c ≈ 34 measured at the end of training at default size, so κ = c(n−b)/(2Pb(n−1)) ≈ 4·10⁻⁴;
every point stores `noise_trace` and `train_loss` per network and the report gives both
traces), and at 4 times that. The added noise is isotropic where SGD's is not.

A declared experiment (`declared.py`): one measurement point per setting (`settings/i`,
`train_and_evaluate`, independent keys); `analyse` gives each setting's test accuracy mean ±
SE with a 95% interval, the differences between settings with theirs (SE of a difference of
independent means: $\sqrt{{\rm SE}_1^2 + {\rm SE}_2^2}$), and the histograms
(`meng-networks.png`).
"""

import functools
import math

import equinox as eqx
import jax
import numpy as np

from .._sgd.curvature import gradient_noise_trace
from .._sgd.datasets import load_sklearn_dataset
from .._sgd.minibatch_sgd import MinibatchSGD
from .._sgd.networks import NetworkModel, evaluate_particles
from .._sgd.optax_noise import noisy_sgd
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, new_figure, output_files, report_header
from .wu_minima import checks_markdown, measurement_options, trained_positions


_MODULE = "jaxescape._reproductions.meng_networks"
# The settings: (name, which batch, κ as a multiple of the configuration's `kappa`, the added
# noise's trace matched to small-batch SGD's at the end of training: see the docstring).
_SETTINGS = (("small batch", "small", 0.0), ("large batch", "large", 0.0),
             ("large batch + noise", "large", 1.0), ("large batch + 4× noise", "large", 4.0))
_MENG_NETWORKS = {
    "smoke": dict(networks=24, num_train=300, hidden=16, steps=300, small_batch=16,
                  large_batch=150, learning_rate=0.1, kappa=5e-4),
    "default": dict(networks=128, num_train=1000, hidden=32, steps=1000, small_batch=16,
                    large_batch=500, learning_rate=0.1, kappa=5e-4),
    "large": dict(networks=1024, num_train=1000, hidden=64, steps=4000, small_batch=16,
                  large_batch=500, learning_rate=0.1, kappa=5e-4),
}
_Z95 = 1.959964  # two-sided 95% normal quantile
_CHUNK = 16  # networks whose noise trace is computed at once


@functools.lru_cache(maxsize=8)
def digits_classifier(num_train: int, hidden: int, data_seed: int):
    """(model, split data, initializer): a 64-`hidden`-10 ReLU `eqx.nn.MLP` with softmax
    cross-entropy on digits labels (n = `num_train`, split drawn by `data_seed`) and eqx's random
    initialisation per particle (cached: the initializer compiles once per process)."""
    data = load_sklearn_dataset("digits", jax.random.key(data_seed), num_train=num_train,
                                targets="label")

    def make(key):
        return eqx.nn.MLP(64, 10, hidden, 1, key=key)

    model = NetworkModel(make(jax.random.key(0)), loss="cross_entropy")
    return model, data, model.random_initializer(make)


@eqx.filter_jit
def _noise(model, data, positions):
    return jax.lax.map(lambda theta: gradient_noise_trace(model.per_sample_loss, theta, data),
                       positions, batch_size=_CHUNK)


def train_and_evaluate(key, learning_rate: float, batch_size: int, networks: int,
                       num_train: int, hidden: int, steps: int, data_seed: int,
                       kappa: float = 0.0, added_noise: bool = False, progress=False) -> dict:
    """One setting: `networks` SGD runs of `steps` iterations from random starts (with
    `added_noise`: `noisy_sgd` with σ = 0, κ = `kappa`, L* = 0), then each network's training
    loss and accuracy, test loss and accuracy, and gradient-noise trace 𝒩 on the training set.
    Diverged networks get NaN and are flagged."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not kappa >= 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}")
    model, data, initializer = digits_classifier(int(num_train), int(hidden), int(data_seed))
    if added_noise:
        sgd = MinibatchSGD(model, data.train, batch_size=int(batch_size),
                           learning_rate=float(learning_rate), optimizer=noisy_sgd,
                           optimizer_options={"sigma": 0.0, "kappa": float(kappa),
                                              "minimum_loss": 0.0},
                           optimizer_noise=True, initializer=initializer)
    else:
        sgd = MinibatchSGD(model, data.train, batch_size=int(batch_size),
                           learning_rate=float(learning_rate), initializer=initializer)
    positions, diverged = trained_positions(sgd, model.initial_parameters, key, networks, steps,
                                            progress)
    finite = np.where(diverged[:, None], np.asarray(model.initial_parameters), positions)
    train = evaluate_particles(model, finite, data.train)
    test = evaluate_particles(model, finite, data.test)
    noise = _noise(model, data.train, jax.numpy.asarray(finite))

    def masked(values):
        return np.where(diverged, np.nan, np.asarray(values, np.float64))

    return {"train_loss": masked(train.loss), "train_accuracy": masked(train.accuracy),
            "test_loss": masked(test.loss), "test_accuracy": masked(test.accuracy),
            "noise_trace": masked(noise), "diverged": diverged,
            "num_diverged": int(diverged.sum()), "num_parameters": int(finite.shape[1])}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `settings/i`, small batch, large batch, large batch + noise."""
    check_size(size)
    config = _MENG_NETWORKS[size]
    options = {name: config[name] for name in ("networks", "num_train", "hidden", "steps",
                                                "learning_rate")}
    points = []
    for index, (_, which, multiple) in enumerate(_SETTINGS):
        points.append({"label": f"settings/{index}", "method": "measure",
                       "measurement": {"name": f"{_MODULE}:train_and_evaluate",
                                       "batch_size": int(config[f"{which}_batch"]),
                                       "kappa": float(multiple * config["kappa"]),
                                       "added_noise": bool(multiple > 0),
                                       "data_seed": int(seed),
                                       **options}})
    return reproduction_sweep("meng-networks", size, seed, points, extrapolate=False)


def reproduce_meng_networks(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Meng et al.: noisy large-batch SGD against plain large- and small-batch SGD on digits.

    Four settings on digits (64-H-10 ReLU, cross-entropy, η = 0.1, the same number of
    iterations): SGD at B = 16, at B = 500 (smoke 150), and at B = 500 with `noisy_sgd`
    (σ = 0, L* = 0, κ = 5·10⁻⁴, about small-batch SGD's noise trace, and 2·10⁻³); N networks
    each from random initialisation (default N = 128, n = 1000 digits, H = 32, 1000
    iterations; smoke 24, n = 300, H = 16, 300). The test-accuracy
    distribution of each, its mean ± SE with a 95% interval, and the differences between
    settings with theirs (docs/THEORY.md §4.1).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def mean_interval(values, z: float = _Z95) -> dict:
    """Mean, its standard error s/√N and the normal interval mean ± z·SE of the finite values."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    count = values.size
    mean = float(values.mean()) if count else math.nan
    error = float(values.std(ddof=1) / math.sqrt(count)) if count > 1 else math.nan
    return {"count": int(count), "mean": mean, "standard_error": error,
            "low": mean - z * error, "high": mean + z * error}


def difference_interval(first: dict, second: dict, z: float = _Z95) -> dict:
    """first − second for independent means: SE = √(SE₁² + SE₂²), interval ± z·SE."""
    difference = first["mean"] - second["mean"]
    error = math.hypot(first["standard_error"], second["standard_error"])
    return {"difference": difference, "standard_error": error,
            "low": difference - z * error, "high": difference + z * error}


def setting_summary(name: str, options: dict, arrays: dict) -> dict:
    """One stored setting's accuracies, losses and noise (from its arrays only)."""
    diverged = np.asarray(arrays["diverged"], bool)
    finite = ~diverged

    def median(part):
        values = np.asarray(arrays[part])[finite]
        return float(np.median(values)) if values.size else None

    batch, n = options["batch_size"], options["num_train"]
    loss = np.asarray(arrays["train_loss"])[finite]
    noise = np.asarray(arrays["noise_trace"])[finite]
    factor = (n - batch) / (batch * (n - 1))  # Tr Σ_B = factor · 𝒩 (without replacement)
    parameters = int(np.asarray(arrays["num_parameters"]))
    added = (parameters * 2 * options["kappa"] * float(np.median(loss))
             if options["added_noise"] and loss.size else 0.0)
    return {"setting": name, "batch_size": batch, "kappa": options["kappa"],
            "added_noise": bool(options["added_noise"]), "networks": int(diverged.size),
            "diverged": int(diverged.sum()),
            "test_accuracy": mean_interval(np.asarray(arrays["test_accuracy"])[finite]),
            "train_accuracy_median": median("train_accuracy"),
            "train_loss_median": median("train_loss"), "test_loss_median": median("test_loss"),
            "noise_over_loss_median": float(np.median(noise / loss)) if loss.size else None,
            "sgd_noise_trace_median": factor * float(np.median(noise)) if loss.size else None,
            "added_noise_trace_median": added}


def stored_values(run, record) -> dict:
    """A stored measure point's scalars (`summary.measured`) and arrays, in one dict."""
    return {**record["summary"].get("measured", {}), **run.arrays(record["index"])}


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The per-setting test-accuracy intervals, their differences, the checks, the report and
    the histograms of the stored points (`jaxescape report DIR` reruns it)."""
    seed = seed_of(run)
    records = grouped(run)["settings"]
    config = measurement_options(records[0])
    arrays = [stored_values(run, record) for record in records]
    settings = [setting_summary(name, measurement_options(record), values)
                for (name, _, _), record, values in zip(_SETTINGS, records, arrays)]
    small, large = settings[0]["test_accuracy"], settings[1]["test_accuracy"]
    differences = {"small − large": difference_interval(small, large)}
    gap = differences["small − large"]["difference"]
    checks = {"small batch generalises better than large batch (95% interval of the "
              "difference > 0)": differences["small − large"]["low"] > 0}
    closed = {}
    for row in settings[2:]:
        name, noisy = row["setting"], row["test_accuracy"]
        differences[f"small − ({name})"] = difference_interval(small, noisy)
        differences[f"({name}) − large"] = difference_interval(noisy, large)
        closed[name] = differences[f"({name}) − large"]["difference"] / gap if gap else math.nan
        checks[f"{name} (κ = {row['kappa']:g}) raises large-batch test accuracy (interval of "
               "the difference > 0)"] = differences[f"({name}) − large"]["low"] > 0
        checks[f"{name} is not worse than small batch (interval of small − noisy holds 0 or "
               "lies below it)"] = differences[f"small − ({name})"]["low"] <= 0
    spent = timing(run)
    summary = dict(name="meng-networks", size=size, seed=seed, settings=settings,
                   differences=differences, fraction_of_gap_closed=closed, checks=checks,
                   all_passed=all(checks.values()), wall_seconds=spent.wall,
                   network=f"64-{config['hidden']}-10 ReLU MLP, cross-entropy on digits",
                   steps=config["steps"], learning_rate=config["learning_rate"],
                   num_train=config["num_train"])
    lines = report_header("Meng et al.: added state-dependent noise for large-batch SGD "
                          "(network)", size, seed, spent, [], run.environment.get("device_kind"),
                          times="")
    lines += [f"{config['networks']} networks per setting: {summary['network']}, n = "
              f"{config['num_train']} training digits, {config['steps']} SGD iterations at "
              f"η = {config['learning_rate']:g} from random initialisation (per-epoch "
              "shuffling), the same number of iterations in every setting. Test accuracy: "
              "mean ± SE and the 95% interval mean ± 1.96·SE (networks that diverged left out "
              "and counted). Noise traces (medians at the end): SGD's Tr Σ_B = "
              "(n−B)/(B(n−1))·𝒩 and the added noise's P·2κL (per unit η²).", "",
              "| setting | B | κ | diverged | test accuracy mean ± SE | 95% interval | "
              "train accuracy | train loss | 𝒩/L | Tr Σ_B | added trace |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]

    def number(value):
        return "–" if value is None else f"{value:.3g}"

    for row in settings:
        accuracy = row["test_accuracy"]
        lines.append(
            f"| {row['setting']} | {row['batch_size']} | {row['kappa']:g} | {row['diverged']}/"
            f"{row['networks']} | {accuracy['mean']:.4f} ± {accuracy['standard_error']:.4f} | "
            f"{accuracy['low']:.4f}–{accuracy['high']:.4f} | "
            f"{number(row['train_accuracy_median'])} | {number(row['train_loss_median'])} | "
            f"{number(row['noise_over_loss_median'])} | {number(row['sgd_noise_trace_median'])}"
            f" | {number(row['added_noise_trace_median'])} |")
    lines += ["", "| difference of test accuracy | mean ± SE | 95% interval |", "|---|---|---|"]
    for name, row in differences.items():
        lines.append(f"| {name} | {row['difference']:+.4f} ± {row['standard_error']:.4f} | "
                     f"{row['low']:+.4f} – {row['high']:+.4f} |")
    lines += ["", "Fraction of the small/large-batch gap closed by the noise: " + ", ".join(
        f"{name} {value:.2f}" for name, value in closed.items()) + " (the gap itself: "
        f"{gap:+.4f})."]
    lines += checks_markdown(checks)
    figure, axes = new_figure(2)
    values = [np.asarray(a["test_accuracy"])[~np.asarray(a["diverged"], bool)] for a in arrays]
    finite = np.concatenate(values)
    bins = 10
    if finite.size:  # accuracies are multiples of 1/(test size): one bin per value
        levels = np.unique(finite)
        step = float(np.min(np.diff(levels))) if levels.size > 1 else 0.01
        bins = np.arange(levels[0] - step / 2, levels[-1] + step, step)
    for index, (row, data) in enumerate(zip(settings, values)):
        axes[0].hist(data, bins=bins, histtype="step", lw=1.5, color=f"C{index}",
                     label=f"{row['setting']} (B = {row['batch_size']})")
        axes[0].axvline(row["test_accuracy"]["mean"], color=f"C{index}", ls="--", lw=1)
        accuracy = row["test_accuracy"]
        axes[1].errorbar([index], [accuracy["mean"]],
                         yerr=[[accuracy["mean"] - accuracy["low"]],
                               [accuracy["high"] - accuracy["mean"]]],
                         fmt="o", color=f"C{index}", capsize=4)
    axes[0].set_xlabel("test accuracy")
    axes[0].set_ylabel("networks")
    axes[0].set_title("test accuracy per network (dashed: means)", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].set_xticks(range(len(settings)), [row["setting"].replace("large batch", "LB")
                                               .replace("small batch", "SB")
                                               for row in settings], fontsize=7)
    axes[1].set_ylabel("mean test accuracy (95% interval)")
    axes[1].set_title("mean test accuracy per setting", fontsize=9)
    figure.tight_layout()
    return output_files("meng-networks", summary, lines + [""], figure)
