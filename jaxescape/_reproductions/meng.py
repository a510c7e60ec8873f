"""Meng et al. (arXiv 2006.13719): the power-law dynamic, whose escape time is polynomial in the
barrier height. `reproduce_meng` sweeps the barrier under the power-law dynamic and under constant
noise, and the sharpness under the Hessian-aligned form (docs/THEORY.md §4.4).
"""

import math
import time

import jax.random as jr
import numpy as np

from .._theory.closed_forms import meng_log_escape_time
from .._landscapes import TiltedDoubleWell
from .._dynamics.noise_models import MengPowerLawNoise
from .tools import check_size, escape_sweep, finish, one_d_point


_MENG = {
    "smoke": dict(particles=96, points=3, barriers=(0.26, 0.56), sharpness=(1.0, 1.5)),
    "default": dict(particles=800, points=5, barriers=(0.6, 1.6), sharpness=(1.0, 2.0)),
    "large": dict(particles=20_000, points=7, barriers=(1.0, 3.0), sharpness=(1.0, 3.0)),
}


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
    """
    check_size(size)
    began = (time.perf_counter(), time.process_time())
    config = _MENG[size]
    particles, count = config["particles"], config["points"]
    key = jr.key(seed)
    learning_rate, sigma, kappa = 0.1, 2.0, 2.5
    low, high = config["barriers"]
    barriers = np.geomspace(low, high, count)
    sweeps = []
    points = []
    for barrier in barriers:
        landscape = TiltedDoubleWell(barrier, 1.0, 2.0)
        dynamics = MengPowerLawNoise(landscape, learning_rate, sigma, kappa)
        point = one_d_point(f"meng/power ΔL={barrier:.3g}", barrier, dynamics, landscape, 0.1,
                             learning_rate, laplace=False)
        point["laplace_log"] = float(meng_log_escape_time(barrier, 1.0, 0.5, learning_rate, sigma,
                                                          kappa))
        points.append(point)
    sweeps.append(escape_sweep(
        "power_law",
        f"TiltedDoubleWell(ΔL, k=1, r=2), MengPowerLawNoise(η={learning_rate}, σ={sigma}, "
        f"κ={kappa}): log τ against log(1 + 2κΔL/σ).",
        points, "log(1+2κΔL/σ)", lambda b: math.log1p(2 * kappa * b / sigma),
        1 / (learning_rate * kappa) + 0.5, 0.05 if size != "smoke" else 0.2,
        particles, jr.fold_in(key, 1), progress,
    ))

    # Constant noise with the same barrier range and exponents from 2.5 to 7 (smoke: 1 to 3).
    top_exponent = 7.0 if size != "smoke" else 3.0
    sigma_constant = 2 * high / (learning_rate * top_exponent)
    points = []
    for barrier in barriers:
        landscape = TiltedDoubleWell(barrier, 1.0, 2.0)
        dynamics = MengPowerLawNoise(landscape, learning_rate, sigma_constant, 0.0)
        point = one_d_point(f"meng/constant ΔL={barrier:.3g}", barrier, dynamics, landscape, 0.1,
                             learning_rate, laplace=False)
        point["laplace_log"] = float(meng_log_escape_time(barrier, 1.0, 0.5, learning_rate,
                                                          sigma_constant, 0.0))
        points.append(point)
    sweeps.append(escape_sweep(
        "constant_noise",
        f"TiltedDoubleWell(ΔL, k=1, r=2), constant noise D = ησ₀/2 (σ₀={sigma_constant:.4g}, "
        "κ=0): log τ against ΔL.",
        points, "ΔL", lambda b: b, 2 / (learning_rate * sigma_constant),
        0.05 if size != "smoke" else 0.25, particles, jr.fold_in(key, 2), progress,
    ))

    # Hessian-aligned power law: sharpness sweep at fixed barrier.
    barrier = float(np.sqrt(low * high))
    k_low, k_high = config["sharpness"]
    growth = math.log1p(2 * kappa * barrier / sigma)
    # κ̄ (and σ̄ = σκ̄/κ, same growth factor) chosen so that the exponent at k_low is `top_exponent`.
    kappa_aligned = growth / (learning_rate * top_exponent * k_low)
    sigma_aligned = sigma * kappa_aligned / kappa
    sharpness = np.geomspace(k_low, k_high, count)
    points = []
    for k in sharpness:
        landscape = TiltedDoubleWell(barrier, k, 2.0)
        dynamics = MengPowerLawNoise(landscape, learning_rate, sigma_aligned, kappa_aligned,
                                     hessian_aligned=True)
        point = one_d_point(f"meng/aligned k={k:.3g}", k, dynamics, landscape, 0.1 / k,
                             learning_rate, laplace=False)
        point["laplace_log"] = float(meng_log_escape_time(
            barrier, k, k / 2, learning_rate, sigma_aligned, kappa_aligned, hessian_aligned=True))
        points.append(point)
    sweeps.append(escape_sweep(
        "aligned_sharpness",
        f"TiltedDoubleWell(ΔL={barrier:.3g}, k, r=2), MengPowerLawNoise(η={learning_rate}, "
        f"σ̄={sigma_aligned:.3g}, κ̄={kappa_aligned:.3g}, hessian_aligned=True): log τ minus the "
        "Laplace prefactor log(2π√(1+2κ̄ΔL/σ̄)/√(k·k/2)) against 1/k.",
        points, "1/k", lambda k: 1 / k, growth / (learning_rate * kappa_aligned), 0.10,
        particles, jr.fold_in(key, 3), progress,
        offset=lambda k: math.log(2 * math.pi / math.sqrt(k * k / 2)) + 0.5 * growth,
        offset_name="log prefactor",
    ))
    transforms = [
        (lambda b: math.log1p(2 * kappa * b / sigma), "log(1+2κΔL/σ)"), (lambda b: b, "ΔL"),
        (lambda k: 1 / k, "1/k"),
    ]
    return finish("meng", "Meng et al. (arXiv 2006.13719): power-law dynamic vs constant noise",
                   output_dir, size, seed, began, sweeps, transforms)
