"""Cheaper noise than Gaussian: Rademacher increments (±1), measured for speed and bias.

Euler–Maruyama with i.i.d. increments ξ of mean 0, variance 1 and zero third moment is still
weak order 1 (Kloeden & Platen 1992, §14.1), and a ±1 sign needs no inverse error function.
This script measures both sides of the trade on the default problem of tests/MEASURED_BIAS.md
(double well ΔL = 1, k = 4, T = 0.5, escape past the saddle, exact MFPT 17.513482):
- bias: mean first-passage time of 10^6 particles per dt against the exact quadrature, Gaussian
  and Rademacher, both with the Brownian-bridge crossing correction;
- speed: particle-steps per second at a low temperature where no particle escapes.

The Rademacher variant is `simulate(..., noise="rademacher")`: the sign of the same uniform
the Gaussian scheme feeds to the inverse error function (same hash count). It is offered because
its measured bias stays within the Gaussian scheme's band (benchmarks/README.md).

Usage: python benchmarks/cheap_noise.py [--particles N] [--speed-particles M]
Writes benchmarks/results/cheap_noise-<device>.json.
"""

import argparse
import json
import pathlib
import time

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


def speed(kind, num_particles, num_steps=512, repeats=3):
    dynamics = jxe.OverdampedLangevin(LANDSCAPE, 0.05)  # ΔL/T = 20: nobody escapes
    def run(steps):
        return jxe.simulate(dynamics, CRITERION, LANDSCAPE.minimum(), jax.random.key(0),
                            num_particles=num_particles, dt=0.01, max_steps=steps, noise=kind)

    run(2)
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
    args = parser.parse_args()
    rows = {}
    for kind in ("gaussian", "rademacher"):
        rows[kind] = dict(particle_steps_per_second=speed(kind, args.speed_particles))
        print(f"{kind:10s} {rows[kind]['particle_steps_per_second'] / 1e6:8.1f} M particle-steps/s",
              flush=True)
        if args.skip_bias:
            continue
        for index, dt in enumerate((0.02, 0.01)):
            measured = bias(kind, dt, args.particles, 20_000 + index)
            rows[kind][f"dt={dt}"] = measured
            print(f"{kind:10s} dt={dt}: bias {measured['bias_percent']:+.3f} ± "
                  f"{measured['se_percent']:.3f} %", flush=True)
    device = jax.devices()[0]
    summary = dict(device=f"{device.platform}: {device.device_kind}", exact_mfpt=EXACT,
                   particles=args.particles, speed_particles=args.speed_particles, rows=rows,
                   speedup=rows["rademacher"]["particle_steps_per_second"]
                   / rows["gaussian"]["particle_steps_per_second"])
    print(f"speed-up of Rademacher over Gaussian: {summary['speedup']:.2f}x")
    folder = pathlib.Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"cheap_noise-{device.platform}.json"
    path.write_text(json.dumps(summary, indent=2, default=np.asarray))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
