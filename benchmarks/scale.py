"""Scale: throughput against the number of particles, 10^3 to 10^8, streamed in bounded memory.

Problem: 1-D double well (ΔL = 1, k = 4), overdamped Langevin at T = 1, dt = 0.04, escape past
the saddle with the crossing correction: a mean of about 150 steps per particle, so 10^8
particles are 1.5·10^10 particle-steps. Each N runs in its own process (so its peak resident
memory is its own) through `simulate_chunks`: every chunk of 2^22 particles is reduced to a sum
and a sum of squares of the escape steps as it arrives, so memory does not grow with N.
Throughput counts useful work: the sum of the particles' escape steps over the wall time
(compilation included, as a user sees it; the first row is dominated by it).

Usage: python benchmarks/scale.py [--largest 1e8]
Writes benchmarks/results/scale-<device>.json and scale-<device>.png.
"""

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time


def one_size(num_particles):
    import jax

    import jaxescape as jxe

    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 1.0)
    began = time.perf_counter()
    total = total_squares = escaped = 0
    for _, chunk in jxe.simulate_chunks(
        dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(0),
        num_particles=num_particles, dt=0.04, max_steps=10**6,
    ):
        steps = chunk.escape_step.astype("float64")
        total += steps.sum()
        total_squares += (steps**2).sum()
        escaped += int(chunk.escaped.sum())
    seconds = time.perf_counter() - began
    mean = total / num_particles
    return dict(
        particles=num_particles, seconds=seconds, particle_steps=total,
        particle_steps_per_second=total / seconds, mean_escape_steps=mean,
        mean_escape_steps_se=((total_squares / num_particles - mean**2) / num_particles) ** 0.5,
        escaped=escaped,
        peak_resident_memory_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        device=str(jax.devices()[0].device_kind),
    )


def plot(rows, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 3.8))
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    particles = [row["particles"] for row in rows]
    axis.loglog(particles, [row["particle_steps_per_second"] for row in rows], "o-")
    axis.set_xlabel("particles N")
    axis.set_ylabel("useful particle-steps per second")
    axis.set_title("1-D double well, dt = 0.04 (wall time incl. compilation)", fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--largest", type=float, default=1e8)
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.single:
        print(json.dumps(one_size(args.single)))
        return
    rows = []
    size = 1000
    while size <= args.largest:
        output = subprocess.run([sys.executable, __file__, "--single", str(size)], check=True,
                                capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"N = {size:>11,d}: {row['seconds']:8.1f} s, "
              f"{row['particle_steps_per_second'] / 1e6:7.1f} M particle-steps/s, "
              f"peak memory {row['peak_resident_memory_gib']:.2f} GiB, mean "
              f"{row['mean_escape_steps']:.3f} ± {row['mean_escape_steps_se']:.3f} steps",
              flush=True)
        size *= 10
    import jax

    platform = jax.devices()[0].platform
    folder = pathlib.Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"scale-{platform}.json").write_text(json.dumps(rows, indent=2))
    plot(rows, folder / f"scale-{platform}.png")
    print(f"wrote {folder / f'scale-{platform}.json'} and .png")


if __name__ == "__main__":
    main()
