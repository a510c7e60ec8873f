"""Xie, Sato, Sugiyama (ICLR 2021): SGD escapes sharp minima exponentially fast, white noise only
polynomially. The reproduction is a declared experiment (`declared.py`): `sweep(size, seed)` lists
1-D escapes against sharpness, batch size and learning rate (docs/THEORY.md §2); `analyse` fits
them from the store: −log Γ is linear in 1/k under SGD noise and a power law under GLD.
"""

import math

import numpy as np

from .._experiments.components import build_point
from .._theory.closed_forms import laplace_exponent, laplace_log_escape_time
from .._landscapes import TiltedDoubleWell
from .._dynamics.noise_models import PiecewiseQuadraticValley, XieSGDNoise
from .._dynamics.sde import OverdampedLangevin
from .._theory.reference import numpy_coefficients
from .declared import escape_point, grouped, record_row, reproduction_sweep, run_reproduction, \
    seed_of, timing
from .tools import check_size, finish, fit_sweep, one_d_point


_XIE = {  # particles, points per sweep, exponent range of the SGD sweeps, white-noise exponent
    "smoke": dict(particles=96, points=3, exponents=(2.0, 3.0), white_exponent=3.0),
    "default": dict(particles=600, points=5, exponents=(3.5, 7.0), white_exponent=5.0),
    "large": dict(particles=20_000, points=7, exponents=(5.0, 10.0), white_exponent=8.0),
}
_BARRIER, _BARRIER_ETA, _BATCH, _FLOOR, _LEARNING_RATE_BATCH = 0.25, 0.2, 1.0, 0.5, 0.5
# The fixed-saddle valley: |H_b| = 0.5, 30% / 50% of the barrier in the quadratic pieces.
_VALLEY = {"saddle_curvature": 0.5, "minimum_fraction": 0.3, "saddle_fraction": 0.5}
_VALLEY_PATH = "jaxescape.theories:PiecewiseQuadraticValley"


def _design(size: str) -> dict:
    """The six series' parameters at a size. `factor`: the local-Hessian exponent of the k = 1
    well at η/B = 1 over 2ΔL (the §1.4 integral; the family is self-similar, exponent ∝ 1/k)."""
    config = _XIE[size]
    low, high, count = *config["exponents"], config["points"]
    reference = XieSGDNoise(TiltedDoubleWell(_BARRIER, 1.0, 2.0), 1.0, 1.0, hessian="local",
                            floor=_FLOOR)
    drift, diffusion = numpy_coefficients(reference)
    factor = laplace_exponent(lambda u: -drift(u), diffusion, 0.0,
                              float(reference.landscape.saddle()[0])) / (2 * _BARRIER)
    return {
        "learning_rate": 2 * _BARRIER / high,  # exponent `high` at k = 1
        "sharpness": np.geomspace(1.0, high / low, count), "factor": factor,
        "path_fraction": (factor - 2.0) / (1.0 - 2.0),  # factor = s/H_a + (1 − s)/|H_b|
        "learning_rate_local": 2 * _BARRIER * factor / high,
        "temperature": _BARRIER / config["white_exponent"],
        "wide": np.geomspace(1.0, 8.0, count),
        "batches": np.linspace(low, high, count) * _LEARNING_RATE_BATCH / (2 * _BARRIER),
        "inverse_rates": np.linspace(low, high, count) / (2 * _BARRIER_ETA),
    }


def _well(barrier, k) -> dict:
    return {"name": "double-well", "barrier_height": float(barrier), "curvature": float(k),
            "asymmetry": 2.0}


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: labels `sharpness_sgd/i`, `sharpness_sgd_local/i`,
    `sharpness_white_scaled/i`, `sharpness_white_fixed_saddle/i`, `batch_size/i`,
    `learning_rate/i`."""
    check_size(size)
    design = _design(size)
    particles = _XIE[size]["particles"]
    points = []

    def add(label, landscape_table, landscape, dynamics_table, dynamics, dt):
        exact_log = one_d_point(label, 0.0, dynamics, landscape, dt, laplace=False)["exact_log"]
        points.append(escape_point(label, landscape_table, dynamics_table, dt, particles,
                                   exact_log))

    def xie(landscape, learning_rate, batch, **local):
        return ({"name": "xie", "learning_rate": float(learning_rate),
                 "batch_size": float(batch), **local},
                XieSGDNoise(landscape, learning_rate, batch, **local))

    temperature = design["temperature"]
    for index, k in enumerate(design["sharpness"]):
        landscape = TiltedDoubleWell(_BARRIER, k, 2.0)
        add(f"sharpness_sgd/{index}", _well(_BARRIER, k), landscape,
            *xie(landscape, design["learning_rate"], _BATCH), 0.1 / k)
    for index, k in enumerate(design["sharpness"]):
        landscape = TiltedDoubleWell(_BARRIER, k, 2.0)
        add(f"sharpness_sgd_local/{index}", _well(_BARRIER, k), landscape,
            *xie(landscape, design["learning_rate_local"], _BATCH, hessian="local",
                 floor=_FLOOR), 0.05 / k)
    for index, k in enumerate(design["wide"]):
        landscape = TiltedDoubleWell(_BARRIER, k, 2.0)
        add(f"sharpness_white_scaled/{index}", _well(_BARRIER, k), landscape,
            {"name": "langevin", "temperature": temperature},
            OverdampedLangevin(landscape, temperature), 0.1 / k)
    for index, k in enumerate(design["wide"]):
        landscape = PiecewiseQuadraticValley(_BARRIER, k, **_VALLEY)
        largest = max(k, float(landscape.middle_curvature()))
        add(f"sharpness_white_fixed_saddle/{index}",
            {"name": _VALLEY_PATH, "barrier_height": _BARRIER, "curvature": float(k), **_VALLEY},
            landscape, {"name": "langevin", "temperature": temperature},
            OverdampedLangevin(landscape, temperature), 0.1 / largest)
    landscape = TiltedDoubleWell(_BARRIER, 1.0, 2.0)
    for index, b in enumerate(design["batches"]):
        add(f"batch_size/{index}", _well(_BARRIER, 1.0), landscape,
            *xie(landscape, _LEARNING_RATE_BATCH, b), 0.1)
    landscape = TiltedDoubleWell(_BARRIER_ETA, 1.0, 2.0)
    for index, v in enumerate(design["inverse_rates"]):  # dt = η: one step per SGD iteration
        add(f"learning_rate/{index}", _well(_BARRIER_ETA, 1.0), landscape,
            *xie(landscape, 1 / v, 1.0), 1 / v)
    return reproduction_sweep("xie", size, seed, points)


def reproduce_xie(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Xie et al. (ICLR 2021): −log Γ is linear in 1/k under SGD noise and in log k under GLD.

    Six sweeps of 1-D escapes (docs/THEORY.md §2), escape = crossing `past_saddle`:

    1. `sharpness_sgd`: `TiltedDoubleWell(ΔL, k, r=2)` with `XieSGDNoise` (D = ηH*/(2B)),
       k ∈ [1, 2]. Exponent exactly $2B\Delta L/(\eta k)$; the Itô prefactor $2\pi/\sqrt{k|H_b|}
       \propto 1/k$ is divided out before fitting against 1/k (it alone adds ≈ 1/⟨1/k⟩ ≈ 1.3 to
       the raw slope of −log Γ; raw fit and R² are reported too).
    2. `sharpness_sgd_local`: the same wells with the local-Hessian model
       D = η·max(|L''|, H_a/2)/(2B) (floor at the saddle's curvature, so D stays between its
       saddle and minimum values, as in Xie's two-regime picture): exponent from the §1.4
       integral, ∝ 1/k, equal to Xie's boxed form with an effective s ≈ 0.05; prefactor 2π/k
       divided out. (`PiecewiseQuadraticValley` gives Xie's form with s = 1/3 exactly, but its
       jump in D(θ) lowers Euler–Maruyama's weak order to 1/2: −16% at k·dt = 0.05. See
       docs/THEORIES.md.)
    3. `sharpness_white_scaled`: white noise of fixed T on `TiltedDoubleWell(ΔL, k, 2)`, k ∈ [1, 8]:
       every curvature ∝ k, so τ ∝ 1/k exactly (time rescaling): slope of log τ vs log k = −1.
    4. `sharpness_white_fixed_saddle`: white noise on a three-piece valley with |H_b| fixed and
       30%/50% of the barrier in the quadratic pieces: Xie's polynomial law τ ∝ H_a^{−1/2}.
    5. `batch_size`: log τ linear in B (η, k fixed), slope 2ΔL/(ηk).
    6. `learning_rate`: log τ linear in 1/η (B, k fixed), slope 2BΔL/k, simulated with dt = η
       (Euler–Maruyama at dt = η is SGD with Gaussian noise, §7.1).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The six fits, the exact and Laplace comparisons, the report and figure of the stored
    points (`jaxescape report DIR` reruns it)."""
    design = _design(size)
    groups = grouped(run)
    learning_rate, local_rate = design["learning_rate"], design["learning_rate_local"]
    temperature, factor = design["temperature"], design["factor"]

    def rows(label, x_of):
        result = []
        for record in groups[label]:
            point = record["point"]
            built = build_point(point)  # the stored point's landscape and dynamics (no runs)
            drift, diffusion = numpy_coefficients(built["dynamics"])
            laplace_log = laplace_log_escape_time(
                lambda u: -drift(u), diffusion, float(built["start"][0]),
                float(built["landscape"].saddle()[0]))
            result.append(record_row(record, x_of(point),
                                     learning_rate=point.get("dynamics.learning_rate"),
                                     laplace_log=float(laplace_log)))
        return result

    def curvature(point):
        return point["landscape.curvature"]

    sweeps = [
        fit_sweep(
            "sharpness_sgd",
            f"TiltedDoubleWell(ΔL={_BARRIER}, k, r=2), XieSGDNoise(η={learning_rate:.4g}, "
            f"B={_BATCH}), D = ηH*/(2B). −log Γ = log τ against 1/k, Itô prefactor "
            "2π/sqrt(k·k/2) divided out.",
            rows("sharpness_sgd", curvature), "1/k", lambda k: 1 / k,
            2 * _BATCH * _BARRIER / learning_rate, 0.10,
            offset=lambda k: math.log(2 * math.pi / math.sqrt(k * k / 2)),
            offset_name="log(2π/√(k|H_b|))"),
        fit_sweep(
            "sharpness_sgd_local",
            f"TiltedDoubleWell(ΔL={_BARRIER}, k, r=2), XieSGDNoise(η={local_rate:.4g}, "
            f"B={_BATCH}, hessian='local', floor={_FLOOR}): D = η·max(|L''|, {_FLOOR}k)/(2B). "
            f"Exponent (2BΔL/η)·{factor:.4f}/k from the §1.4 integral, i.e. Xie's (s/H_a + "
            f"(1−s)/|H_b|) with effective s = {design['path_fraction']:.3f}; Itô prefactor 2π/k "
            "divided out.",
            rows("sharpness_sgd_local", curvature), "1/k", lambda k: 1 / k,
            2 * _BATCH * _BARRIER * factor / local_rate, 0.10,
            offset=lambda k: math.log(2 * math.pi / k), offset_name="log(2π/H_a)"),
        fit_sweep(
            "sharpness_white_scaled",
            f"TiltedDoubleWell(ΔL={_BARRIER}, k, r=2), white noise T={temperature:.4g} (ΔL/T="
            f"{_XIE[size]['white_exponent']}): H_a and |H_b| both ∝ k, Kramers τ ∝ 1/k.",
            rows("sharpness_white_scaled", curvature), "log k", math.log, -1.0,
            0.05 if size != "smoke" else 0.15),
        fit_sweep(
            "sharpness_white_fixed_saddle",
            f"PiecewiseQuadraticValley(ΔL={_BARRIER}, k, |H_b|=0.5, 30%/50% of ΔL in the "
            f"quadratic pieces), white noise T={temperature:.4g}: Kramers τ ∝ H_a^(−1/2) (Xie's "
            "'polynomial').",
            rows("sharpness_white_fixed_saddle", curvature), "log k", math.log, -0.5,
            0.10 if size != "smoke" else 0.3),
        fit_sweep(
            "batch_size",
            f"TiltedDoubleWell(ΔL={_BARRIER}, k=1, r=2), XieSGDNoise(η={_LEARNING_RATE_BATCH}, "
            "B): log τ against B.",
            rows("batch_size", lambda point: point["dynamics.batch_size"]), "B", lambda b: b,
            2 * _BARRIER / _LEARNING_RATE_BATCH, 0.10),
        fit_sweep(
            "learning_rate",
            f"TiltedDoubleWell(ΔL={_BARRIER_ETA}, k=1, r=2), XieSGDNoise(η, B=1) simulated with "
            "dt = η (one Euler–Maruyama step per SGD iteration): log τ against 1/η.",
            rows("learning_rate", lambda point: point["dynamics.learning_rate"]), "1/η",
            lambda eta: 1 / eta, 2 * _BARRIER_ETA, 0.10),
    ]
    transforms = [
        (lambda k: 1 / k, "1/k"), (lambda k: 1 / k, "1/k"), (math.log, "log k"),
        (math.log, "log k"), (lambda b: b, "B"), (lambda eta: 1 / eta, "1/η"),
    ]
    return finish("xie", "Xie et al. (ICLR 2021): escape time against sharpness, B and η",
                  size, seed_of(run), timing(run), sweeps, transforms,
                  device=run.environment.get("device_kind"))
