r"""`jaxescape reproduce wu`: Wu, Ma & E's stability with real SGD particles (docs/THEORY.md §5).

1. The toy example (§5.4): at x = 1, a = 2 < 2/η but (1 − ηa)² + η²s² = 1.75 > 1 at η = 0.7, so
   SGD (B = 1) leaves the sharp minimum for x = 0 while GD (B = 2) stays.
2. A phase diagram over (η, B) at an interpolating minimum of 1-D least squares (n samples,
   h_μ = x_μ²): the mean-square growth per step, measured from particles as
   ρ̂ = (mean (θ_T − θ*)² / (θ_0 − θ*)²)^{1/T}, against the exact 1-D condition
   ρ = (1 − ηa)² + η²p s² (p = (n − B)/(B(n − 1)) for per-epoch shuffling, Wu's factor; p = 1/B
   with replacement, §1.1), and the fraction of particles that leave (|θ − θ*| grows 1000-fold),
   which follows the almost-sure (Lyapunov) exponent E log|1 − η h̄_B| instead.

A declared experiment (`declared.py`): `sweep(size, seed)` lists one measurement point per toy
run (`toy/i`: `toy_run`) and per (η, B) cell of each sampling mode (`shuffling/i`,
`replacement/i`: `stability_cell`); `analyse` builds the diagram, boundaries and checks from the
store.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .._criteria import NeverEscape, OutsideBall
from .._sgd.data import Dataset
from .._sgd.models import LinearRegression, MinimumOfQuadratics
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .tools import check_size, new_figure, output_files, report_header
from .._sgd.minibatch_sgd import MinibatchSGD
from .._engine.driver import simulate
from .._experiments.components import options_of
from .._sgd.stability import batch_factor, mean_square_growth, non_uniformity, sharpness


_WU = {
    "smoke": dict(particles=4000, leaving_particles=500, etas=5, batches=(1, 20)),
    "default": dict(particles=100_000, leaving_particles=4000, etas=12, batches=(1, 2, 4, 8, 20)),
    "large": dict(particles=2_000_000, leaving_particles=100_000, etas=24,
                  batches=(1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20)),
}
_NUM_SAMPLES = 20
_GROWTH_STEPS = 10  # T for the mean-square growth
_LEAVING_STEPS, _LEAVING_FACTOR = 500, 1000.0
_LYAPUNOV_DRAWS = 200_000
_TOY_RATE, _TOY_STEPS = 0.7, 500
_TOY_RUNS = (("SGD (B = 1)", 1), ("GD (B = 2)", 2))
_MODES = (("shuffling", "per-epoch shuffling", False), ("replacement", "with replacement", True))
_MODULE = "jaxescape._reproductions.wu"


def _toy_problem():
    return MinimumOfQuadratics(), Dataset(jnp.array([0.1, 1.9]), jnp.zeros(2))


def toy_run(key, batch_size: int, particles: int) -> dict:
    """The toy (§5.4) at η = 0.7 from x = 1 + 1e-5, 500 iterations of `batch_size` with
    replacement: the fractions that leave |x − 1| < 0.5, and that end at x = 0 and at x = 1."""
    model, data = _toy_problem()
    start = jnp.array([1 + 1e-5])
    sgd = MinibatchSGD(model, data, batch_size=int(batch_size), learning_rate=_TOY_RATE,
                       replacement=True)
    left = simulate(sgd, OutsideBall(jnp.array([1.0]), 0.5), start, key,
                    num_particles=int(particles), max_steps=_TOY_STEPS)
    final = simulate(sgd, NeverEscape(), start, key, num_particles=int(particles),
                     max_steps=_TOY_STEPS)
    return dict(fraction_leaving_x1=float(np.mean(left.escaped)),
                fraction_at_x0=float(np.mean(np.abs(final.position[:, 0]) < 1e-3)),
                fraction_at_x1=float(np.mean(np.abs(final.position[:, 0] - 1) < 1e-3)))


def _diagram_problem(data_seed: int):
    """The phase diagram's data (n = 20 inputs x ~ N(0, 1), targets 0: teacher θ* = 0) drawn
    from `split(split(key(seed))[1])[0]`, the model and the interpolating minimum."""
    _, diagram_key = jax.random.split(jax.random.key(int(data_seed)))
    data_key, _ = jax.random.split(diagram_key)
    inputs = jax.random.normal(data_key, (_NUM_SAMPLES,))
    data = Dataset(inputs[:, None], jnp.zeros_like(inputs))
    return LinearRegression(1), data, jnp.array([0.0]), np.asarray(inputs, np.float64) ** 2


def stability_cell(key, data_seed: int, batch_size: int, learning_rate: float,
                   replacement: bool, particles: int, leaving_particles: int,
                   lyapunov_draws: int = _LYAPUNOV_DRAWS) -> dict:
    r"""One (η, B) cell of the phase diagram, from θ_0 = θ* + 1.

    Returns `log_mean_square` = log mean (θ_T − θ*)² over `particles` SGD particles after
    T = 10 steps, its SE (delta method) and ρ̂ = mean^{1/T} (`measured_growth`); the fraction of
    `leaving_particles` whose |θ − θ*| reaches 1000 within 500 steps (`fraction_leaving`);
    diverged particles; with replacement, the Lyapunov exponent E log|1 − η h̄_B| over
    `lyapunov_draws` minibatches drawn with the point's key (else None).
    """
    model, data, minimum, curvatures = _diagram_problem(data_seed)
    growth_key, lyapunov_key = jax.random.split(key)
    sgd = MinibatchSGD(model, data, batch_size=int(batch_size), learning_rate=float(learning_rate),
                       replacement=bool(replacement))
    start = minimum + 1.0
    growth = simulate(sgd, NeverEscape(), start, growth_key, num_particles=int(particles),
                      max_steps=_GROWTH_STEPS, check_every=_GROWTH_STEPS)
    ratio = np.asarray(growth.position[:, 0], np.float64) ** 2
    mean, standard_error = ratio.mean(), ratio.std() / np.sqrt(ratio.size)
    leaving = simulate(sgd, OutsideBall(minimum, _LEAVING_FACTOR), start, growth_key,
                       num_particles=int(leaving_particles), max_steps=_LEAVING_STEPS)
    lyapunov = None
    if replacement:
        draws = jax.random.randint(lyapunov_key, (int(lyapunov_draws), int(batch_size)), 0,
                                   curvatures.size)
        means = curvatures[np.asarray(draws)].mean(1)
        lyapunov = float(np.mean(np.log(np.abs(1 - learning_rate * means))))
    return dict(measured_growth=float(mean ** (1 / _GROWTH_STEPS)),
                log_mean_square=float(np.log(mean)),
                log_mean_square_se=float(standard_error / mean),
                fraction_leaving=float(np.mean(leaving.escaped)),
                diverged=int(np.sum(growth.diverged) + np.sum(leaving.diverged)),
                lyapunov_exponent=lyapunov)


def _learning_rates(size: str, seed: int) -> np.ndarray:
    """η from 0.1·2/a to 1.3·2/a (a: the sharpness at the minimum)."""
    model, data, minimum, _ = _diagram_problem(seed)
    a = float(sharpness(model, data, minimum))
    return np.linspace(0.1, 1.3, _WU[size]["etas"]) * 2 / a


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: labels `toy/i`, then `shuffling/i` and `replacement/i` over
    B (slow) and η (fast)."""
    check_size(size)
    config = _WU[size]
    points = [{"label": f"toy/{index}", "method": "measure",
               "measurement": {"name": f"{_MODULE}:toy_run", "batch_size": batch,
                               "particles": config["leaving_particles"]}}
              for index, (_, batch) in enumerate(_TOY_RUNS)]
    etas = _learning_rates(size, seed)
    for series, _, replacement in _MODES:
        cells = [(batch, eta) for batch in config["batches"] for eta in etas]
        points += [{"label": f"{series}/{index}", "method": "measure",
                    "measurement": {"name": f"{_MODULE}:stability_cell", "data_seed": int(seed),
                                    "batch_size": batch, "learning_rate": float(eta),
                                    "replacement": replacement,
                                    "particles": config["particles"],
                                    "leaving_particles": config["leaving_particles"]}}
                   for index, (batch, eta) in enumerate(cells)]
    return reproduction_sweep("wu", size, seed, points, extrapolate=False)


def _boundary_index(unstable):
    """Index of the first unstable grid point (len if none)."""
    unstable = np.asarray(unstable)
    return int(np.argmax(unstable)) if unstable.any() else len(unstable)


def _cell_distances(diagram):
    table = {}
    for mode, rows in diagram["modes"].items():
        for batch in sorted({row["batch_size"] for row in rows}):
            points = [row for row in rows if row["batch_size"] == batch]
            measured = [
                row["log_mean_square"] > 2 * row["log_mean_square_se"] for row in points
            ]
            theory = [row["theory_growth"] > 1 for row in points]
            leaving = [row["fraction_leaving"] > 0.5 for row in points]
            lyapunov = [value > 0 for value in diagram["lyapunov"][batch]]
            table[f"{mode}, B = {batch}"] = dict(
                measured_mean_square=_boundary_index(measured), wu=_boundary_index(theory),
                leaving_half=_boundary_index(leaving),
                lyapunov=_boundary_index(lyapunov) if mode == "with replacement" else None,
            )
    return table


def _plot(figure_axes, diagram, boundaries):
    etas = np.array(diagram["learning_rates"])
    for axis, (mode, rows) in zip(figure_axes, diagram["modes"].items()):
        batches = sorted({row["batch_size"] for row in rows})
        growth = np.array([[row["measured_growth"] for row in rows if row["batch_size"] == b]
                           for b in batches])
        image = axis.pcolormesh(etas, np.arange(len(batches)), np.log(growth), cmap="RdBu_r",
                                vmin=-1, vmax=1, shading="nearest")
        wu = [boundaries[f"{mode}, B = {b}"]["wu"] for b in batches]
        leaving = [boundaries[f"{mode}, B = {b}"]["leaving_half"] for b in batches]
        edge = np.append(etas, etas[-1] + etas[1] - etas[0])
        axis.plot([edge[i] for i in wu], np.arange(len(batches)), "k-o", ms=3,
                  label="Wu: (1−ηa)²+η²ps² = 1")
        axis.plot([edge[i] for i in leaving], np.arange(len(batches)), "g--s", ms=3,
                  label="half the particles leave")
        axis.axvline(2 / diagram["sharpness"], color="grey", ls=":", label="2/a (GD)")
        axis.set_yticks(np.arange(len(batches)), [str(b) for b in batches])
        axis.set_xlabel("learning rate η")
        axis.set_ylabel("batch size B")
        axis.set_title(f"log ρ̂ (measured, {mode})", fontsize=9)
        axis.legend(fontsize=6)
        axis.figure.colorbar(image, ax=axis)


def reproduce_wu(output_dir, size="default", seed=0, progress=True) -> dict:
    """Wu, Ma & E (NeurIPS 2018): real SGD particles leave the minima their stability test rejects.

    Runs the toy example and the (η, B) phase diagram; writes results and `wu.png`.
    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def _toy(groups):
    """The toy runs' fractions and the sharpness, non-uniformity and growth at x = 1, 0."""
    rows = {name: dict(record["summary"]["measured"])
            for (name, _), record in zip(_TOY_RUNS, groups["toy"])}
    model, data = _toy_problem()
    for point in (1.0, 0.0):
        a = float(sharpness(model, data, jnp.array([point])))
        s = float(non_uniformity(model, data, jnp.array([point])))
        rows[f"x = {point:g}"] = dict(sharpness=a, non_uniformity=s, growth_sgd=float(
            mean_square_growth(_TOY_RATE, 1, 2, a, s)))
    return rows


def _diagram(groups, seed):
    """The phase diagram's table from the cells, with the exact sharpness and theory ρ."""
    model, data, minimum, curvatures = _diagram_problem(seed)
    a = float(sharpness(model, data, minimum))
    s = float(non_uniformity(model, data, minimum))
    modes, lyapunov = {}, {}
    for series, mode, replacement in _MODES:
        rows = []
        for record in groups[series]:
            options = options_of(record["point"], "measurement")
            measured = record["summary"]["measured"]
            batch, eta = options["batch_size"], options["learning_rate"]
            p = 1 / batch if replacement else batch_factor(batch, _NUM_SAMPLES)
            rows.append(dict(
                batch_size=batch, learning_rate=eta,
                measured_growth=measured["measured_growth"],
                log_mean_square=measured["log_mean_square"],
                log_mean_square_se=measured["log_mean_square_se"],
                theory_growth=float((1 - eta * a) ** 2 + eta**2 * p * s**2),
                fraction_leaving=measured["fraction_leaving"], diverged=measured["diverged"]))
            if replacement:
                lyapunov.setdefault(batch, []).append(measured["lyapunov_exponent"])
        modes[mode] = rows
    first = modes["per-epoch shuffling"]
    etas = [row["learning_rate"] for row in first if row["batch_size"] == first[0]["batch_size"]]
    return dict(sharpness=a, non_uniformity=s, exact_sharpness=float(curvatures.mean()),
                exact_non_uniformity=float(curvatures.std()), learning_rates=etas,
                modes=modes, lyapunov=lyapunov)


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The toy's fractions, the diagram's boundaries and the checks, the report and figure of the
    stored points (`jaxescape report DIR` reruns it)."""
    config = _WU[size]
    seed = seed_of(run)
    groups = grouped(run)
    toy = _toy(groups)
    diagram = _diagram(groups, seed)
    boundaries = _cell_distances(diagram)
    worst = max(abs(row["measured_mean_square"] - row["wu"])
                for name, row in boundaries.items() if name.startswith("with replacement"))
    checks = {
        "toy: SGD leaves x = 1": toy["SGD (B = 1)"]["fraction_leaving_x1"] > 0.99,
        "toy: GD stays at x = 1": toy["GD (B = 2)"]["fraction_leaving_x1"] == 0.0,
        "sharpness and non-uniformity match the exact 1-D values (1e-4)": bool(
            abs(diagram["sharpness"] / diagram["exact_sharpness"] - 1) < 1e-4
            and abs(diagram["non_uniformity"] / diagram["exact_non_uniformity"] - 1) < 1e-4),
        "with replacement: measured mean-square boundary within one grid cell of theory":
            worst <= 1,
    }
    spent = timing(run)
    summary = dict(name="wu", size=size, seed=seed, toy=toy, diagram=diagram,
                   boundaries=boundaries, checks=checks, all_passed=all(checks.values()),
                   wall_seconds=spent.wall)
    lines = report_header("Wu, Ma & E (NeurIPS 2018): dynamical stability of SGD", size, seed,
                          spent, [], run.environment.get("device_kind"))
    lines += [f"## Toy example (§5.4), η = {_TOY_RATE}, {_TOY_STEPS} iterations", "",
              "| run | fraction leaving x = 1 | ends at x = 0 | ends at x = 1 |",
              "|---|---|---|---|"]
    for name, _ in _TOY_RUNS:
        row = toy[name]
        lines.append(f"| {name} | {row['fraction_leaving_x1']:.3f} | {row['fraction_at_x0']:.3f} "
                     f"| {row['fraction_at_x1']:.3f} |")
    for name in ("x = 1", "x = 0"):
        row = toy[name]
        lines.append(f"\nAt {name}: a = {row['sharpness']:.4g}, s = {row['non_uniformity']:.4g}, "
                     f"(1 − ηa)² + η²s² = {row['growth_sgd']:.4g}.")
    lines += ["", f"## Phase diagram: 1-D least squares, n = {_NUM_SAMPLES}, interpolating", "",
              f"a = {diagram['sharpness']:.5g} (exact {diagram['exact_sharpness']:.5g}), s = "
              f"{diagram['non_uniformity']:.5g} (exact {diagram['exact_non_uniformity']:.5g}). "
              f"Grid of {len(diagram['learning_rates'])} learning rates from "
              f"{diagram['learning_rates'][0]:.3g} to {diagram['learning_rates'][-1]:.3g}; "
              f"ρ̂ from {config['particles']} particles over {_GROWTH_STEPS} steps; leaving: "
              f"{config['leaving_particles']} particles, {_LEAVING_STEPS} steps, 1000-fold growth.",
              "", "First unstable grid index per batch size (grid cells). Theory: p = 1/B with "
              "replacement, Wu's p = (n − B)/(B(n − 1)) for per-epoch shuffling.", "",
              "| mode, B | measured mean square | theory ρ = 1 | half leave | Lyapunov |",
              "|---|---|---|---|---|"]
    for name, row in boundaries.items():
        lyapunov = row["lyapunov"] if row["lyapunov"] is not None else "–"
        lines.append(f"| {name} | {row['measured_mean_square']} | {row['wu']} | "
                     f"{row['leaving_half']} | {lyapunov} |")
    lines += ["", "Checks: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items())]
    figure, axes = new_figure(2)
    _plot(axes, diagram, boundaries)
    return output_files("wu", summary, lines, figure)
