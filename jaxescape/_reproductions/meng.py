"""Meng et al. (arXiv 2006.13719): the power-law dynamic, whose escape time is polynomial in the
barrier height. The reproduction is a declared experiment (`declared.py`): `sweep(size, seed)`
lists the barrier sweep under the power-law dynamic and under constant noise, and the sharpness
sweep under the Hessian-aligned form (docs/THEORY.md §4.4); `analyse` fits them from the store.
"""

import math

import numpy as np

from .._theory.closed_forms import meng_log_escape_time
from .._landscapes import TiltedDoubleWell
from .._dynamics.noise_models import MengPowerLawNoise
from .declared import escape_point, grouped, record_row, reproduction_sweep, run_reproduction, \
    seed_of, timing
from .tools import check_size, finish, fit_sweep, one_d_point


_MENG = {
    "smoke": dict(particles=96, points=3, barriers=(0.26, 0.56), sharpness=(1.0, 1.5)),
    "default": dict(particles=800, points=5, barriers=(0.6, 1.6), sharpness=(1.0, 2.0)),
    "large": dict(particles=20_000, points=7, barriers=(1.0, 3.0), sharpness=(1.0, 3.0)),
}
_LEARNING_RATE, _SIGMA, _KAPPA = 0.1, 2.0, 2.5


def _design(size: str) -> dict:
    """The three series' parameters at a size (constant noise: exponents 2.5 to 7, smoke 1 to 3;
    aligned: κ̄ and σ̄ = σκ̄/κ with the same growth factor, exponent `top` at the lowest k)."""
    config = _MENG[size]
    low, high = config["barriers"]
    top = 7.0 if size != "smoke" else 3.0
    barrier = float(np.sqrt(low * high))
    growth = math.log1p(2 * _KAPPA * barrier / _SIGMA)
    kappa_aligned = growth / (_LEARNING_RATE * top * config["sharpness"][0])
    return {"barriers": np.geomspace(low, high, config["points"]),
            "sigma_constant": 2 * high / (_LEARNING_RATE * top), "aligned_barrier": barrier,
            "kappa_aligned": kappa_aligned, "sigma_aligned": _SIGMA * kappa_aligned / _KAPPA,
            "sharpness": np.geomspace(*config["sharpness"], config["points"]), "growth": growth}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: labels `power_law/i`, `constant_noise/i`, `aligned/i`."""
    check_size(size)
    design = _design(size)
    particles = _MENG[size]["particles"]
    points = []

    def add(label, barrier, k, sigma, kappa, aligned, dt):
        landscape = TiltedDoubleWell(barrier, k, 2.0)
        dynamics = MengPowerLawNoise(landscape, _LEARNING_RATE, sigma, kappa,
                                     hessian_aligned=aligned)
        exact_log = one_d_point(label, 0.0, dynamics, landscape, dt, laplace=False)["exact_log"]
        points.append(escape_point(
            label, {"name": "double-well", "barrier_height": float(barrier),
                    "curvature": float(k), "asymmetry": 2.0},
            {"name": "meng", "learning_rate": _LEARNING_RATE, "sigma": float(sigma),
             "kappa": float(kappa), "hessian_aligned": aligned}, dt, particles, exact_log))

    for index, barrier in enumerate(design["barriers"]):
        add(f"power_law/{index}", barrier, 1.0, _SIGMA, _KAPPA, False, 0.1)
    for index, barrier in enumerate(design["barriers"]):
        add(f"constant_noise/{index}", barrier, 1.0, design["sigma_constant"], 0.0, False, 0.1)
    for index, k in enumerate(design["sharpness"]):
        add(f"aligned/{index}", design["aligned_barrier"], k, design["sigma_aligned"],
            design["kappa_aligned"], True, 0.1 / k)
    return reproduction_sweep("meng", size, seed, points)


def reproduce_meng(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Meng et al. (arXiv 2006.13719): the power-law dynamic escapes in a time polynomial in ΔL.

    `TiltedDoubleWell(ΔL, k, r=2)`, exit past the saddle (docs/THEORY.md §4.4):

    1. `power_law`: `MengPowerLawNoise(η=0.1, σ=2, κ=2.5)`, ΔL swept: log τ against
       log(1 + 2κΔL/σ), predicted slope 1/(ηκ) + 1/2 = 4.5 (tolerance 5%).
    2. `constant_noise`: κ = 0 (Langevin, D = ησ₀/2), same ΔL: log τ against ΔL, slope 2/(ησ₀)
       (tolerance 5%) — exponential, against the power law of 1.
    3. `aligned_sharpness`: the Hessian-aligned form (κ ∝ h) at fixed ΔL, sharpness k swept:
       log τ − log(prefactor) against 1/k, slope log(1 + 2κΔL/σ)/(ηκ) (tolerance 10%): Meng's v3
       claim that sharp minima are escaped exponentially faster needs κ ∝ h.

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The three fits, the exact and Laplace comparisons, the report and figure of the stored
    points (`jaxescape report DIR` reruns it)."""
    design = _design(size)
    groups = grouped(run)
    sigma_constant = design["sigma_constant"]
    kappa_aligned, sigma_aligned = design["kappa_aligned"], design["sigma_aligned"]

    def rows(label, x_of, laplace_of):
        result = []
        for record in groups[label]:
            landscape = {key.split(".", 1)[1]: value for key, value in record["point"].items()
                         if key.startswith("landscape.")}
            result.append(record_row(record, x_of(landscape), learning_rate=_LEARNING_RATE,
                                     laplace_log=float(laplace_of(landscape))))
        return result

    sweeps = [
        fit_sweep(
            "power_law",
            f"TiltedDoubleWell(ΔL, k=1, r=2), MengPowerLawNoise(η={_LEARNING_RATE}, σ={_SIGMA}, "
            f"κ={_KAPPA}): log τ against log(1 + 2κΔL/σ).",
            rows("power_law", lambda p: p["barrier_height"], lambda p: meng_log_escape_time(
                p["barrier_height"], 1.0, 0.5, _LEARNING_RATE, _SIGMA, _KAPPA)),
            "log(1+2κΔL/σ)", lambda b: math.log1p(2 * _KAPPA * b / _SIGMA),
            1 / (_LEARNING_RATE * _KAPPA) + 0.5, 0.05 if size != "smoke" else 0.2),
        fit_sweep(
            "constant_noise",
            f"TiltedDoubleWell(ΔL, k=1, r=2), constant noise D = ησ₀/2 (σ₀={sigma_constant:.4g}, "
            "κ=0): log τ against ΔL.",
            rows("constant_noise", lambda p: p["barrier_height"], lambda p: meng_log_escape_time(
                p["barrier_height"], 1.0, 0.5, _LEARNING_RATE, sigma_constant, 0.0)),
            "ΔL", lambda b: b, 2 / (_LEARNING_RATE * sigma_constant),
            0.05 if size != "smoke" else 0.25),
        fit_sweep(
            "aligned_sharpness",
            f"TiltedDoubleWell(ΔL={design['aligned_barrier']:.3g}, k, r=2), "
            f"MengPowerLawNoise(η={_LEARNING_RATE}, σ̄={sigma_aligned:.3g}, "
            f"κ̄={kappa_aligned:.3g}, hessian_aligned=True): log τ minus the "
            "Laplace prefactor log(2π√(1+2κ̄ΔL/σ̄)/√(k·k/2)) against 1/k.",
            rows("aligned", lambda p: p["curvature"], lambda p: meng_log_escape_time(
                p["barrier_height"], p["curvature"], p["curvature"] / 2, _LEARNING_RATE,
                sigma_aligned, kappa_aligned, hessian_aligned=True)),
            "1/k", lambda k: 1 / k, design["growth"] / (_LEARNING_RATE * kappa_aligned), 0.10,
            offset=lambda k: math.log(2 * math.pi / math.sqrt(k * k / 2)) + 0.5 * design["growth"],
            offset_name="log prefactor"),
    ]
    transforms = [
        (lambda b: math.log1p(2 * _KAPPA * b / _SIGMA), "log(1+2κΔL/σ)"), (lambda b: b, "ΔL"),
        (lambda k: 1 / k, "1/k"),
    ]
    return finish("meng", "Meng et al. (arXiv 2006.13719): power-law dynamic vs constant noise",
                  size, seed_of(run), timing(run), sweeps, transforms,
                  device=run.environment.get("device_kind"))
