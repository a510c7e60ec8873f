"""Cheaper noise than Gaussian: Rademacher increments (±1), measured for speed and bias.

Euler–Maruyama with i.i.d. increments ξ of mean 0, variance 1 and zero third moment is still
weak order 1 (Kloeden & Platen 1992, §14.1), and a ±1 sign needs no inverse error function.
This script measures both sides of the trade on the default problem of tests/MEASURED_BIAS.md
(double well ΔL = 1, k = 4, T = 0.5, escape past the saddle, exact MFPT 17.513482):
- bias: mean first-passage time of 10^6 particles per dt against the exact quadrature, Gaussian
  and Rademacher, both with the Brownian-bridge crossing correction;
- speed: particle-steps per second at a low temperature where no particle escapes.

A second bias problem is the time-to-result problem of benchmarks/peers.py (ΔL = 1, k = 4,
asymmetry 2, ΔL/T = 3, plane at the default `past_saddle`), at dt = 0.01 and 0.005.

The Rademacher variant is `simulate(..., noise="rademacher")`: the sign of the same uniform
the Gaussian scheme feeds to the inverse error function (same hash count). Its bias is 3.3x the
Gaussian one on the second problem, so it is not offered for results and warns when used
(benchmarks/README.md).

Usage: python benchmarks/cheap_noise.py [--particles N] [--speed-particles M]
           [--skip-speed] [--skip-bias] [--skip-second]
Writes benchmarks/results/cheap_noise-<device>.json (cheap_noise-second-<device>.json with
--skip-speed --skip-bias).
"""

import argparse
import json
import pathlib
import time
import warnings

import jax
import numpy as np

import jaxescape as jxe


EXACT = 17.513482019
LANDSCAPE = jxe.TiltedDoubleWell(1.0, 4.0)
CRITERION = jxe.past_saddle(LANDSCAPE)


def bias(kind, dt, num_particles, key):
    dynamics = jxe.OverdampedLangevin(LANDSCAPE, 0.5)
    result = jxe.simulate(dynamics, CRITERION, LANDSCAPE.minimum(), jax.random.key(key),
                          num_particles=num_particles, dt=dt, max_steps=10**7, noise=kind)
    mean, standard_error = jxe.mean_escape_time(result.escape_time)
    return dict(mean=mean, bias_percent=100 * (mean / EXACT - 1),
                se_percent=100 * standard_error / EXACT, censored=int(result.censored.sum()))


def second_problem_bias(kind, dt, num_particles, key=11):
    """The bias on the time-to-result problem of peers.py (exact MFPT by quadrature)."""
    landscape = jxe.TiltedDoubleWell(1.0, 4.0, 2.0)
    criterion = jxe.past_saddle(landscape)
    dynamics = jxe.OverdampedLangevin(landscape, 1 / 3)
    exact = jxe.exact_mfpt(dynamics, 0.0, -3 * float(landscape.saddle()[0]),
                           float(criterion.offset))
    result = jxe.simulate(dynamics, criterion, landscape.minimum(), jax.random.key(key),
                          num_particles=num_particles, dt=dt, max_steps=2**24, noise=kind)
    mean, standard_error = jxe.mean_escape_time(result.escape_time)
    return dict(exact=exact, mean=mean, bias_percent=100 * (mean / exact - 1),
                se_percent=100 * standard_error / exact, censored=int(result.censored.sum()))


def speed(kind, num_particles, num_steps=512, repeats=3):
    dynamics = jxe.OverdampedLangevin(LANDSCAPE, 0.05)  # ΔL/T = 20: nobody escapes
    def run(steps):
        return jxe.simulate(dynamics, CRITERION, LANDSCAPE.minimum(), jax.random.key(0),
                            num_particles=num_particles, dt=0.01, max_steps=steps, noise=kind)

    run(num_steps)  # compiles (check_every follows max_steps)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(num_steps)
        times.append(time.perf_counter() - began)
    return num_particles * num_steps / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--speed-particles", type=int, default=1_000_000)
    parser.add_argument("--skip-bias", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-second", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="noise='rademacher'")  # measured here on purpose
    rows = {}
    for kind in ("gaussian", "rademacher"):
        rows[kind] = {}
        if not args.skip_speed:
            rows[kind]["particle_steps_per_second"] = speed(kind, args.speed_particles)
            print(f"{kind:10s} {rows[kind]['particle_steps_per_second'] / 1e6:8.1f} "
                  "M particle-steps/s", flush=True)
        for index, dt in enumerate(() if args.skip_bias else (0.02, 0.01)):
            measured = bias(kind, dt, args.particles, 20_000 + index)
            rows[kind][f"dt={dt}"] = measured
            print(f"{kind:10s} dt={dt}: bias {measured['bias_percent']:+.3f} ± "
                  f"{measured['se_percent']:.3f} %", flush=True)
        for dt in () if args.skip_second else (0.01, 0.005):
            measured = second_problem_bias(kind, dt, args.particles)
            rows[kind][f"second problem, dt={dt}"] = measured
            print(f"{kind:10s} second problem, dt={dt}: bias {measured['bias_percent']:+.3f} ± "
                  f"{measured['se_percent']:.3f} %", flush=True)
    device = jax.devices()[0]
    summary = dict(device=f"{device.platform}: {device.device_kind}", exact_mfpt=EXACT,
                   particles=args.particles, speed_particles=args.speed_particles, rows=rows)
    if not args.skip_speed:
        summary["speedup"] = (rows["rademacher"]["particle_steps_per_second"]
                              / rows["gaussian"]["particle_steps_per_second"])
        print(f"speed-up of Rademacher over Gaussian: {summary['speedup']:.2f}x")
    second_only = args.skip_speed and args.skip_bias
    folder = pathlib.Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    name = "cheap_noise-second" if second_only else "cheap_noise"
    path = folder / f"{name}-{device.platform}.json"
    path.write_text(json.dumps(summary, indent=2, default=np.asarray))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
