r"""`jaxescape reproduce wu`: Wu, Ma & E's stability with real SGD particles (docs/THEORY.md §5).

1. The toy example (§5.4): at x = 1, a = 2 < 2/η but (1 − ηa)² + η²s² = 1.75 > 1 at η = 0.7, so
   SGD (B = 1) leaves the sharp minimum for x = 0 while GD (B = 2) stays.
2. A phase diagram over (η, B) at an interpolating minimum of 1-D least squares (n samples,
   h_μ = x_μ²): the mean-square growth per step, measured from particles as
   ρ̂ = (mean (θ_T − θ*)² / (θ_0 − θ*)²)^{1/T}, against the exact 1-D condition
   ρ = (1 − ηa)² + η²p s² (p = (n − B)/(B(n − 1)) for per-epoch shuffling, Wu's factor; p = 1/B
   with replacement, §1.1), and the fraction of particles that leave (|θ − θ*| grows 1000-fold),
   which follows the almost-sure (Lyapunov) exponent E log|1 − η h̄_B| instead.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from .._criteria import NeverEscape, OutsideBall
from .._sgd.data import Dataset
from .._sgd.models import LinearRegression, MinimumOfQuadratics
from .tools import check_size, new_figure, report_header, write_outputs
from .._sgd.minibatch_sgd import MinibatchSGD
from .._engine.driver import simulate
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


def _toy(key, num_particles):
    data = Dataset(jnp.array([0.1, 1.9]), jnp.zeros(2))
    model, start = MinimumOfQuadratics(), jnp.array([1 + 1e-5])
    rows = {}
    for name, batch in (("SGD (B = 1)", 1), ("GD (B = 2)", 2)):
        sgd = MinibatchSGD(model, data, batch_size=batch, learning_rate=0.7, replacement=True)
        left = simulate(sgd, OutsideBall(jnp.array([1.0]), 0.5), start, key,
                        num_particles=num_particles, max_steps=500)
        final = simulate(sgd, NeverEscape(), start, key, num_particles=num_particles,
                         max_steps=500)
        rows[name] = dict(
            fraction_leaving_x1=float(np.mean(left.escaped)),
            fraction_at_x0=float(np.mean(np.abs(final.position[:, 0]) < 1e-3)),
            fraction_at_x1=float(np.mean(np.abs(final.position[:, 0] - 1) < 1e-3)),
        )
    for point in (1.0, 0.0):
        a = float(sharpness(model, data, jnp.array([point])))
        s = float(non_uniformity(model, data, jnp.array([point])))
        rows[f"x = {point:g}"] = dict(sharpness=a, non_uniformity=s,
                                     growth_sgd=float(mean_square_growth(0.7, 1, 2, a, s)))
    return rows


def _phase_diagram(key, config, progress):
    data_key, run_key = jax.random.split(key)
    inputs = jax.random.normal(data_key, (_NUM_SAMPLES,))
    data = Dataset(inputs[:, None], jnp.zeros_like(inputs))  # teacher θ* = 0: interpolating
    model, minimum = LinearRegression(1), jnp.array([0.0])
    a = float(sharpness(model, data, minimum))
    s = float(non_uniformity(model, data, minimum))
    h = np.asarray(inputs, np.float64) ** 2
    etas = np.linspace(0.1, 1.3, config["etas"]) * 2 / a
    start = minimum + 1.0
    results = {}
    for replacement in (False, True):
        rows = []
        for batch in config["batches"]:
            p = 1 / batch if replacement else batch_factor(batch, _NUM_SAMPLES)
            for eta in etas:
                sgd = MinibatchSGD(model, data, batch_size=batch, learning_rate=float(eta),
                                   replacement=replacement)
                growth = simulate(sgd, NeverEscape(), start, run_key,
                                  num_particles=config["particles"], max_steps=_GROWTH_STEPS,
                                  check_every=_GROWTH_STEPS)
                ratio = np.asarray(growth.position[:, 0], np.float64) ** 2
                mean, standard_error = ratio.mean(), ratio.std() / np.sqrt(ratio.size)
                leaving = simulate(
                    sgd, OutsideBall(minimum, _LEAVING_FACTOR), start, run_key,
                    num_particles=config["leaving_particles"], max_steps=_LEAVING_STEPS,
                )
                rows.append(dict(
                    batch_size=batch, learning_rate=float(eta),
                    measured_growth=float(mean ** (1 / _GROWTH_STEPS)),
                    log_mean_square=float(np.log(mean)),
                    log_mean_square_se=float(standard_error / mean),
                    theory_growth=float((1 - eta * a) ** 2 + eta**2 * p * s**2),
                    fraction_leaving=float(np.mean(leaving.escaped)),
                    diverged=int(np.sum(growth.diverged) + np.sum(leaving.diverged)),
                ))
                if progress:
                    print(f"  B={batch:3d} η={eta:.3f} ρ̂={rows[-1]['measured_growth']:.4f} "
                          f"ρ={rows[-1]['theory_growth']:.4f} "
                          f"leaving={rows[-1]['fraction_leaving']:.3f}", flush=True)
        results["with replacement" if replacement else "per-epoch shuffling"] = rows
    lyapunov = _lyapunov_boundaries(h, etas, config["batches"])
    return dict(sharpness=a, non_uniformity=s, exact_sharpness=float(h.mean()),
                exact_non_uniformity=float(h.std()), learning_rates=etas.tolist(),
                modes=results, lyapunov=lyapunov)


def _lyapunov_boundaries(h, etas, batches, draws=200_000):
    """E log|1 − η h̄_B| with replacement (Monte Carlo over batch draws, fixed seed)."""
    generator = np.random.default_rng(0)
    exponents = {}
    for batch in batches:
        means = h[generator.integers(0, h.size, (draws, batch))].mean(1)
        exponents[batch] = [float(np.mean(np.log(np.abs(1 - eta * means)))) for eta in etas]
    return exponents


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
    """
    check_size(size)
    config = _WU[size]
    began = (time.perf_counter(), time.process_time())
    toy_key, diagram_key = jax.random.split(jax.random.key(seed))
    toy = _toy(toy_key, config["leaving_particles"])
    diagram = _phase_diagram(diagram_key, config, progress)
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
    summary = dict(name="wu", size=size, seed=seed, toy=toy, diagram=diagram,
                   boundaries=boundaries, checks=checks, all_passed=all(checks.values()))
    lines = report_header("Wu, Ma & E (NeurIPS 2018): dynamical stability of SGD", size, seed, began, [])
    lines += ["## Toy example (§5.4), η = 0.7, 500 iterations", "",
              "| run | fraction leaving x = 1 | ends at x = 0 | ends at x = 1 |",
              "|---|---|---|---|"]
    for name in ("SGD (B = 1)", "GD (B = 2)"):
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
    write_outputs(output_dir, "wu", summary, lines, figure)
    return summary
