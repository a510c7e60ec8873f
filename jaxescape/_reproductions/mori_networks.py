r"""Mori et al.'s network claim: late in training, SGD's gradient noise is proportional to the loss.

For each setting (η, B, n, H), networks (64-H-10 ReLU, random initialisation) are trained by
`MinibatchSGD` on n digits with MSE on one-hot targets (`wu_minima.digits_problem`). At
checkpoints spaced geometrically in the iterations, each network's full training loss L and the
trace of its per-sample gradient covariance
$\mathcal N = \frac1n\sum_\mu|\nabla\ell_\mu - \nabla L|^2$ (`gradient_noise_trace`; SGD's
${\rm Tr}\,\Sigma_B = \frac{n-B}{B(n-1)}\mathcal N$, Mori et al. eq. 24, docs/THEORY.md §3.5)
are measured. The claim: $\mathcal N \propto L$ late in training, a log-log slope of 1. For MSE,
$\nabla\ell_\mu = J_\mu^{\rm T}(f_\mu - y_\mu)$, so $\mathcal N \approx 2L\,\overline{|J|^2}$
when the residuals are uncorrelated with the Jacobians' size [D].

The checkpoints of one network are the same trajectory: a run of t iterations is the first t
iterations of a longer run with the same key (minibatches and starts are pure functions of
the key, the particle and the step), so each checkpoint is a fresh `simulate` to that step.

A declared experiment: one measurement point per setting (`settings/i`, `noise_along_training`);
`analyse` fits log 𝒩 against log L per network over the late checkpoints and averages the
slopes (mean ± SE over networks), predicted 1.
"""

import equinox as eqx
import jax
import numpy as np

from .._sgd.curvature import gradient_noise_trace
from .._sgd.networks import evaluate_particles
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, new_figure, output_files, report_header
from .wu_minima import checks_markdown, measurement_options, plain_log_axes, train_networks


_MODULE = "jaxescape._reproductions.mori_networks"
# (η, B, n, H): a network that can interpolate its n digits (10n targets against 74H + 10
# parameters; the loss falls towards 0) at two (η, B), and one that cannot (the loss levels off).
_SETTINGS = ((0.1, 32, 200, 64), (0.05, 8, 200, 64), (0.1, 32, 1000, 32))
_MORI_NETWORKS = {
    "smoke": dict(networks=4, steps=4000, checkpoints=10,
                  settings=((0.1, 32, 100, 32), (0.1, 32, 400, 8))),
    "default": dict(networks=16, steps=20_000, checkpoints=12, settings=_SETTINGS),
    "large": dict(networks=64, steps=100_000, checkpoints=16, settings=_SETTINGS),
}
# "Late in training": the checkpoints at or after this fraction of the run (log-spaced).
_LATE_FRACTION = 1 / 8
# Agreement with the predicted slope 1: within 4 standard errors of the mean over networks.
_SLOPE_SE_TOLERANCE = 4.0
# ... and, since the log-log curve bends (a systematic error the SE over networks does not
# hold), within this absolute distance of 1 (𝒩 ∝ L^{1 ± 0.1}).
_SLOPE_TOLERANCE = 0.1


def checkpoint_steps(steps: int, checkpoints: int) -> np.ndarray:
    """`checkpoints` even iteration counts spaced geometrically from steps/256 to `steps`."""
    raw = np.geomspace(max(steps / 256, 2), steps, checkpoints)
    return np.unique(2 * np.round(raw / 2).astype(int))


@eqx.filter_jit
def _noise(model, data, positions):
    """𝒩 of every row of `positions`."""
    return jax.lax.map(lambda theta: gradient_noise_trace(model.per_sample_loss, theta, data),
                       positions)


def noise_along_training(key, learning_rate: float, batch_size: int, networks: int,
                         num_train: int, hidden: int, steps: int, checkpoints: int,
                         data_seed: int, progress=False) -> dict:
    """One setting (η, B): the training loss L and the noise trace 𝒩 of each network at each
    checkpoint, arrays (checkpoints, networks); NaN where a network diverged."""
    times = checkpoint_steps(int(steps), int(checkpoints))
    losses, noises, diverged = [], [], np.zeros(int(networks), bool)
    for step in times:
        model, data, positions, flagged = train_networks(
            key, learning_rate, batch_size, networks, num_train, hidden, int(step), data_seed,
            progress)
        diverged |= flagged
        finite = np.where(flagged[:, None], np.asarray(model.initial_parameters), positions)
        loss = np.asarray(evaluate_particles(model, finite, data.train).loss, np.float64)
        noise = np.asarray(_noise(model, data.train, finite), np.float64)
        losses.append(np.where(flagged, np.nan, loss))
        noises.append(np.where(flagged, np.nan, noise))
    return {"steps": times, "loss": np.array(losses), "noise_trace": np.array(noises),
            "diverged": diverged, "num_diverged": int(diverged.sum())}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `settings/i`, one per (η, B)."""
    check_size(size)
    config = _MORI_NETWORKS[size]
    options = {name: config[name] for name in ("networks", "steps", "checkpoints")}
    points = [{"label": f"settings/{index}", "method": "measure",
               "measurement": {"name": f"{_MODULE}:noise_along_training",
                               "learning_rate": float(eta), "batch_size": int(batch),
                               "num_train": int(num_train), "hidden": int(hidden),
                               "data_seed": int(seed), **options}}
              for index, (eta, batch, num_train, hidden) in enumerate(config["settings"])]
    return reproduction_sweep("mori-networks", size, seed, points, extrapolate=False)


def reproduce_mori_networks(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Mori et al.: on an MLP trained on digits, SGD's gradient-noise trace is ∝ the loss late on.

    Per setting (η, B, n digits, 64-H-10 ReLU): (0.1, 32, 200, 64) and (0.05, 8, 200, 64),
    which interpolate, and (0.1, 32, 1000, 32), which does not (smoke: (0.1, 32, 100, 32) and
    (0.1, 32, 400, 8)), networks (default 16, 20000 iterations; smoke 4, 4000) trained by SGD
    from random initialisation with MSE on one-hot targets; log 𝒩 against log L over the
    checkpoints after 1/8 of the run, per network; the mean slope ± SE against the predicted 1
    (docs/THEORY.md §3.5).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def late_slopes(steps, loss, noise, late_fraction: float = _LATE_FRACTION) -> dict:
    """Per-network least-squares slopes of log 𝒩 against log L over the checkpoints at or after
    `late_fraction` of the run, their mean and its SE over networks (diverged networks, NaN
    columns, are left out and counted)."""
    steps, loss, noise = np.asarray(steps), np.asarray(loss), np.asarray(noise)
    late = steps >= late_fraction * steps[-1]
    slopes = []
    for column in range(loss.shape[1]):
        x, y = np.log(loss[late, column]), np.log(noise[late, column])
        if np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.ptp(x) > 0:
            slopes.append(float(np.polyfit(x, y, 1)[0]))
    slopes = np.array(slopes)
    count = slopes.size
    return {"checkpoints": int(late.sum()), "first_step": int(steps[late][0]),
            "networks": count, "left_out": int(loss.shape[1] - count), "slopes": slopes.tolist(),
            "mean": float(slopes.mean()) if count else None,
            "standard_error": float(slopes.std(ddof=1) / np.sqrt(count)) if count > 1 else None,
            "loss_range": [float(np.nanmin(loss[late])), float(np.nanmax(loss[late]))]
            if count else None}


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The late-training slopes, the checks, the report and the figure of the stored points."""
    seed = seed_of(run)
    records = grouped(run)["settings"]
    config = measurement_options(records[0])  # the sizes the points ran with
    settings, arrays = [], []
    for record in records:
        options, values = measurement_options(record), run.arrays(record["index"])
        fit = late_slopes(values["steps"], values["loss"], values["noise_trace"])
        deviation = None if fit["standard_error"] in (None, 0) else \
            (fit["mean"] - 1) / fit["standard_error"]
        settings.append(dict(learning_rate=options["learning_rate"],
                             batch_size=options["batch_size"], num_train=options["num_train"],
                             hidden=options["hidden"], diverged=int(
                                 np.sum(values["diverged"])), deviation_in_se=deviation, **fit))
        arrays.append(values)
    checks = {}
    for row in settings:
        name = (f"η = {row['learning_rate']:g}, B = {row['batch_size']}, n = {row['num_train']}, "
                f"H = {row['hidden']}: late slope of log 𝒩 against log L")
        checks[f"{name} within {_SLOPE_SE_TOLERANCE:g} SE of 1"] = bool(
            row["deviation_in_se"] is not None
            and abs(row["deviation_in_se"]) <= _SLOPE_SE_TOLERANCE)
        checks[f"{name} within {_SLOPE_TOLERANCE:g} of 1"] = bool(
            row["mean"] is not None and abs(row["mean"] - 1) <= _SLOPE_TOLERANCE)
    spent = timing(run)
    summary = dict(name="mori-networks", size=size, seed=seed, settings=settings,
                   checks=checks, all_passed=all(checks.values()), wall_seconds=spent.wall,
                   network="64-H-10 ReLU MLP, MSE on one-hot digits", steps=config["steps"],
                   late_fraction=_LATE_FRACTION, predicted_slope=1.0)
    lines = report_header("Mori et al.: gradient noise against loss along training (network)",
                          size, seed, spent, [], run.environment.get("device_kind"),
                          times="Times are SGD iterations.")
    lines += [f"{config['networks']} networks per setting: {summary['network']}, "
              f"{config['steps']} SGD iterations from random "
              "initialisation. 𝒩 = (1/n)Σ|∇ℓ_μ − ∇L|² (Tr Σ_B = (n−B)/(B(n−1))·𝒩); per network "
              f"the least-squares slope of log 𝒩 against log L over the checkpoints from "
              f"{_LATE_FRACTION:g} of the run on; mean ± SE over networks; predicted 1.", "",
              "| η | B | n | H | diverged | late checkpoints (from step) | L range | "
              "slope mean ± SE | (slope − 1)/SE |", "|---|---|---|---|---|---|---|---|---|"]
    for row in settings:
        mean = "–" if row["mean"] is None else f"{row['mean']:.3f}"
        error = "–" if row["standard_error"] is None else f"{row['standard_error']:.3f}"
        span = "–" if row["loss_range"] is None else \
            f"{row['loss_range'][0]:.3g}–{row['loss_range'][1]:.3g}"
        deviation = "–" if row["deviation_in_se"] is None else f"{row['deviation_in_se']:.2f}"
        lines.append(f"| {row['learning_rate']:g} | {row['batch_size']} | {row['num_train']} | "
                     f"{row['hidden']} | {row['diverged']} | "
                     f"{row['checkpoints']} ({row['first_step']}) | {span} | {mean} ± {error} "
                     f"| {deviation} |")
    lines += checks_markdown(checks)
    figure, axes = new_figure(1)
    axis = axes[0]
    for index, (row, values) in enumerate(zip(settings, arrays)):
        late = values["steps"] >= _LATE_FRACTION * values["steps"][-1]
        for column in range(values["loss"].shape[1]):
            axis.plot(values["loss"][:, column], values["noise_trace"][:, column], "-",
                      color=f"C{index}", alpha=0.25, lw=0.8)
            axis.plot(values["loss"][late, column], values["noise_trace"][late, column], "o",
                      color=f"C{index}", ms=2,
                      label=(f"η = {row['learning_rate']:g}, B = {row['batch_size']}, n = "
                             f"{row['num_train']}, H = {row['hidden']}: late "
                             f"slope {row['mean']:.3f}" if column == 0 and row["mean"]
                             is not None else None))
    axis.set_xlabel("training loss L")
    axis.set_ylabel("gradient-noise trace N = (1/n)Σ|∇ℓ_μ − ∇L|²")
    axis.set_title("N against L along training (dots: late checkpoints)", fontsize=9)
    plain_log_axes(axis)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return output_files("mori-networks", summary, lines + [""], figure)
