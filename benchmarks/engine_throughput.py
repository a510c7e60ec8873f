"""Particle-steps per second of the engine against the RNG floor, in one process.

Problem: 1-D tilted double well (ΔL = 1, k = 4), overdamped Langevin, N particles, dt = 0.01.
The temperature is low (ΔL/T = 20) so that no particle escapes in the measured steps: every
particle takes exactly `num_steps` steps (then is censored) and the work is N · num_steps.

Rows, all timed as the minimum over repeats after a warm-up call (compilation excluded):
- rng_floor: `jax.random.normal(fold_in(key, step), (N,))` per step inside `lax.scan`, summed
  so it cannot be optimised away — the cost of merely drawing the Gaussians.
- unrolled_threefry_normals: the same count of normals from jaxescape's own counter-based noise
  (Threefry written out in jnp operations; `jax.random` uses a rolled loop on CPU).
- scan_baseline: the same Euler–Maruyama update written by hand in `lax.scan` with
  `jax.random.normal` noise and no escape detection.
- jaxescape (crossing correction on / off): `jaxescape.simulate`, with escape detection,
  censoring, divergence flags and per-particle reproducible noise, on all visible devices (the
  other rows use the first). To compare device counts on a CPU, simulate several with
  XLA_FLAGS=--xla_force_host_platform_device_count=D (the JSON name then ends in -Ddevices).

Usage: python benchmarks/engine_throughput.py [--particles N] [--steps S] [--repeats R]
Writes benchmarks/results/engine_throughput-<device>[-<D>devices].json.
"""

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax

import jaxescape as jxe


BARRIER, CURVATURE, TEMPERATURE, DT = 1.0, 4.0, 0.05, 0.01


def best_time(function, repeats):
    jax.block_until_ready(function())  # warm-up: compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function())
        times.append(time.perf_counter() - start)
    return min(times)


def rng_floor(num_particles, num_steps):
    @jax.jit
    def draw(key):
        def body(total, step):
            return total + jr.normal(jr.fold_in(key, step), (num_particles,)), None

        return lax.scan(body, jnp.zeros(num_particles), jnp.arange(num_steps))[0]

    return lambda: draw(jr.key(0))


def unrolled_floor(num_particles, num_steps):
    """The same count of normals from jaxescape's own noise (unrolled Threefry of (step, i))."""
    from jaxescape import _noise

    @jax.jit
    def draw(keys):
        particles = jnp.arange(num_particles, dtype=jnp.uint32)

        def body(total, step):
            words = _noise.threefry_2x32(keys[0, 0], keys[0, 1], step, particles)[0]
            uniform = _noise.uniform_from_words(words, jnp.float32)
            return total + _noise.normal_from_uniform(uniform), None

        steps = jnp.arange(num_steps, dtype=jnp.uint32)
        return lax.scan(body, jnp.zeros(num_particles), steps)[0]

    keys = _noise.stream_keys(jr.key(0), 1)
    return lambda: draw(keys)


def scan_baseline(num_particles, num_steps, landscape):
    @jax.jit
    def run(key, landscape):
        def body(y, step):
            noise = jr.normal(jr.fold_in(key, step), (num_particles,))
            drift = -jax.vmap(jax.grad(lambda x: landscape.loss(x[None])))(y)
            return y + drift * DT + jnp.sqrt(2 * TEMPERATURE * DT) * noise, None

        return lax.scan(body, jnp.zeros(num_particles), jnp.arange(num_steps))[0]

    return lambda: run(jr.key(0), landscape)


def engine(num_particles, num_steps, landscape, crossing_correction):
    dynamics = jxe.OverdampedLangevin(landscape, TEMPERATURE)
    criterion = jxe.past_saddle(landscape)

    def run():
        return jxe.simulate(
            dynamics, criterion, landscape.minimum(), jr.key(0), num_particles=num_particles,
            dt=DT, max_steps=num_steps, crossing_correction=crossing_correction,
        ).escape_step

    return run


def processor_name():
    """The CPU model (from /proc/cpuinfo where there is one)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    landscape = jxe.TiltedDoubleWell(BARRIER, CURVATURE)
    work = args.particles * args.steps
    device = jax.devices()[0]
    rows = {
        "rng_floor": rng_floor(args.particles, args.steps),
        "unrolled_threefry_normals": unrolled_floor(args.particles, args.steps),
        "scan_baseline": scan_baseline(args.particles, args.steps, landscape),
        "jaxescape (crossing correction)": engine(args.particles, args.steps, landscape, True),
        "jaxescape (no crossing correction)": engine(
            args.particles, args.steps, landscape, False
        ),
    }
    num_devices = len(jax.devices())
    print(f"device: {device.device_kind} ({device.platform}, {processor_name()}), "
          f"{num_devices} device(s), jax {jax.__version__}, "
          f"N = {args.particles}, steps = {args.steps}")
    results = {}
    for name, function in rows.items():
        seconds = best_time(function, args.repeats)
        results[name] = {"seconds": seconds, "particle_steps_per_second": work / seconds}
    floor = results["rng_floor"]["particle_steps_per_second"]
    print(f"{'row':38s} {'M particle-steps/s':>20s} {'/ RNG floor':>12s}")
    for name, row in results.items():
        row["ratio_to_rng_floor"] = row["particle_steps_per_second"] / floor
        print(f"{name:38s} {row['particle_steps_per_second'] / 1e6:20.1f} "
              f"{row['ratio_to_rng_floor']:12.2f}")
    record = {
        "benchmark": "engine_throughput",
        "device_kind": device.device_kind,
        "platform": device.platform,
        "num_devices": num_devices,
        "processor": processor_name(),
        "jax": jax.__version__,
        "jaxescape": jxe.__version__,
        "particles": args.particles,
        "steps": args.steps,
        "results": results,
    }
    out = pathlib.Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = device.device_kind.replace(" ", "_").lower()
    name += f"-{num_devices}devices" if num_devices > 1 else ""
    (out / f"engine_throughput-{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
