"""Cost of a 10 % mean escape time: adaptive multilevel splitting against direct simulation.

Problem: 1-D tilted double well (ΔL = 1, L'' = 4), overdamped Langevin at temperature
D = 1/ratio, escape plane `past_saddle`, Euler–Maruyama dt = 0.01, Brownian-bridge crossing
correction. For each ΔL/D:

- splitting: `mean_escape_time_by_splitting` with N replicas × R runs and the automatic level grid (each
  ΔL/D is first run once with another key to compile; that warm-up is not timed). Its relative
  standard error s falls like 1/√R at fixed N (the runs are i.i.d.) and its cost grows like R,
  so a 10 % error costs cost · (s / 0.1)² particle-steps (and likewise seconds). The estimate
  is compared with the exact quadrature MFPT.
- direct simulation (extrapolated): a 10 % error needs ~100 escapes (exponential times: relative
  error 1/√n), each ~τ/dt steps: 100 · τ/dt particle-steps; seconds from the engine's measured
  throughput on this machine (`simulate` on 2^14 particles that do not escape).

Particle-steps do not depend on the machine; seconds do, and on a shared CPU they are contended.

With --extrapolate, each ΔL/D also runs at 2dt (`mean_escape_time_by_splitting_extrapolated`:
the dt run is the same run as without the option) and the table adds the estimate extrapolated
to dt → 0, τ(dt)²/τ(2dt), its ratio to exact, and the dt run's estimated relative bias
τ(2dt)/τ(dt) − 1 (seconds and steps then cover both runs).

Usage: python benchmarks/splitting_cost.py [--ratios 5 10 20 30] [--replicas N] [--runs R]
       [--extrapolate]
Writes benchmarks/results/splitting_cost-<device>.json (splitting_cost_extrapolated-<device>.json
with --extrapolate).
"""

import argparse
import json
import pathlib
import platform
import time

import jax
import numpy as np

import jaxescape as jxe


BARRIER, CURVATURE, DT, TARGET = 1.0, 4.0, 0.01, 0.1


def engine_throughput(landscape, criterion, num_particles=2**14, num_steps=2000):
    """Particle-steps per second of `simulate` (ΔL/D = 30: nobody escapes, all are censored)."""
    dynamics = jxe.OverdampedLangevin(landscape, 1 / 30)

    def run():
        return jxe.simulate(dynamics, criterion, landscape.minimum(), jax.random.key(0),
                            num_particles=num_particles, dt=DT, max_steps=num_steps)

    run()
    start = time.perf_counter()
    run()
    return num_particles * num_steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=[5, 10, 15, 20, 25, 30])
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extrapolate", action="store_true",
                        help="also run at 2dt and extrapolate to dt -> 0")
    args = parser.parse_args()

    landscape = jxe.TiltedDoubleWell(BARRIER, CURVATURE)
    criterion = jxe.past_saddle(landscape)
    reflecting = -2 * float(landscape.saddle()[0])
    device = jax.devices()[0]
    options = {"dt": DT, "num_replicas": args.replicas, "num_runs": args.runs}

    def estimate(ratio, seed):
        dynamics = jxe.OverdampedLangevin(landscape, 1 / ratio)
        if args.extrapolate:
            return jxe.mean_escape_time_by_splitting_extrapolated(
                dynamics, criterion, landscape.minimum(), jax.random.key(seed), **options)
        return jxe.mean_escape_time_by_splitting(dynamics, criterion, landscape.minimum(),
                                    jax.random.key(seed), **options)

    throughput = engine_throughput(landscape, criterion)
    print(f"device: {device.device_kind} ({device.platform}), jax {jax.__version__}, "
          f"N = {args.replicas} replicas x R = {args.runs} runs, dt = {DT}; engine "
          f"{throughput / 1e6:.1f} M particle-steps/s")
    header = (f"{'ΔL/D':>5s} {'exact τ':>10s} {'estimate [95% CI]':>32s} {'ratio':>6s} "
              f"{'rel.err':>7s} {'iters':>5s} {'steps':>9s} {'s':>6s} {'steps@10%':>10s} "
              f"{'s@10%':>7s} {'direct steps@10%':>16s} {'direct s@10%':>12s} {'speed-up':>9s}")
    print(header)
    rows = []
    for ratio in args.ratios:
        dynamics = jxe.OverdampedLangevin(landscape, 1 / ratio)
        exact = jxe.exact_mfpt(dynamics, 0.0, reflecting=reflecting,
                               absorbing=float(criterion.offset))
        # Warm-up with another key: the automatic level grid (a static shape) depends on the
        # temperature, so each new grid size compiles once, outside the timing.
        start = time.perf_counter()
        estimate(ratio, args.seed + 10**6)
        warm_up = time.perf_counter() - start
        start = time.perf_counter()
        result = extrapolated = estimate(ratio, args.seed)
        seconds = time.perf_counter() - start
        if args.extrapolate:
            result = extrapolated.result
        cost = result.cost + (extrapolated.coarse_result.cost if args.extrapolate else 0)
        scale = (result.relative_error / TARGET) ** 2
        direct_steps = 100 * exact / DT
        row = {
            "ratio": ratio,
            "exact": exact,
            "estimate": result.mean_escape_time,
            "lower": result.lower,
            "upper": result.upper,
            "estimate_over_exact": result.mean_escape_time / exact,
            "relative_error": result.relative_error,
            "probability": result.probability,
            "loop_time": result.loop_time,
            "mean_iterations": float(np.mean(result.num_iterations)),
            "num_levels": result.num_levels,
            "warm_up_seconds": warm_up,
            "particle_steps": cost,
            "particle_steps_loops": result.cost_loops,
            "seconds": seconds,
            "particle_steps_at_10_percent": result.cost * scale,
            "seconds_at_10_percent": seconds * scale,
            "direct_particle_steps_at_10_percent": direct_steps,
            "direct_seconds_at_10_percent": direct_steps / throughput,
            "speed_up_in_particle_steps": direct_steps / (result.cost * scale),
        }
        if args.extrapolate:
            row.update({
                "coarse_estimate_over_exact":
                    extrapolated.coarse_result.mean_escape_time / exact,
                "coarse_relative_error": extrapolated.coarse_result.relative_error,
                "extrapolated": extrapolated.mean_escape_time,
                "extrapolated_over_exact": extrapolated.mean_escape_time / exact,
                "extrapolated_relative_error": extrapolated.relative_error,
                "extrapolated_deviation_in_standard_errors":
                    (extrapolated.mean_escape_time - exact) / extrapolated.standard_error,
                "deviation_in_standard_errors":
                    (result.mean_escape_time - exact) / result.standard_error,
                "relative_bias": extrapolated.relative_bias,
                "relative_bias_standard_error": extrapolated.relative_bias_standard_error,
            })
        rows.append(row)
        interval = f"{row['estimate']:.4g} [{row['lower']:.3g}, {row['upper']:.3g}]"
        print(f"{ratio:5.0f} {exact:10.4g} {interval:>32s} {row['estimate_over_exact']:6.3f} "
              f"{row['relative_error']:7.3f} {row['mean_iterations']:5.0f} "
              f"{row['particle_steps']:9.3g} {seconds:6.2f} "
              f"{row['particle_steps_at_10_percent']:10.3g} {row['seconds_at_10_percent']:7.2f} "
              f"{direct_steps:16.3g} {row['direct_seconds_at_10_percent']:12.3g} "
              f"{row['speed_up_in_particle_steps']:9.3g}", flush=True)
        if args.extrapolate:
            print(f"      dt: {row['estimate_over_exact']:.3f} ({row['deviation_in_standard_errors']:+.2f}"
                  f" SE); 2dt: {row['coarse_estimate_over_exact']:.3f} ± "
                  f"{row['coarse_relative_error']:.3f}; extrapolated: "
                  f"{row['extrapolated_over_exact']:.3f} ± {row['extrapolated_relative_error']:.3f}"
                  f" ({row['extrapolated_deviation_in_standard_errors']:+.2f} SE); dt bias "
                  f"{row['relative_bias']:+.3f} ± {row['relative_bias_standard_error']:.3f}",
                  flush=True)
    record = {
        "benchmark": "splitting_cost",
        "device_kind": device.device_kind,
        "platform": device.platform,
        "processor": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "jaxescape": jxe.__version__,
        "problem": {"landscape": f"TiltedDoubleWell({BARRIER}, {CURVATURE})",
                    "criterion": "past_saddle", "dt": DT},
        "replicas": args.replicas,
        "runs": args.runs,
        "seed": args.seed,
        "extrapolate": args.extrapolate,
        "engine_particle_steps_per_second": throughput,
        "results": rows,
    }
    out = pathlib.Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = device.device_kind.replace(" ", "_").lower()
    stem = "splitting_cost_extrapolated" if args.extrapolate else "splitting_cost"
    (out / f"{stem}-{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
