"""Real SGD particles: particle-steps per second of jaxescape against per-trajectory loops.

Problem (issue 4): linear regression, d = 10, n = 1000 Gaussian samples, batch B = 10, plain SGD
(η = 0.05), minibatches without replacement (a fresh shuffle every epoch) and with replacement.
Every particle takes exactly `--steps` steps (no escape criterion), so the work is N · steps.

Rows, in one process:
- jaxescape: `jxe.simulate(MinibatchSGD(...), NeverEscape(), ...)` for N particles (default
  10^6), timed with compilation excluded (a warm-up run of the same length first); peak
  resident memory of the process is reported.
- numpy loop: one trajectory at a time, as the source papers ran it: per epoch
  `rng.permutation(n)`, then θ -= η·X_Bᵀ(X_B θ − y_B)/B.
- torch loop: one trajectory at a time with `torch.nn.Linear`, `torch.optim.SGD`, `randperm`
  per epoch and `loss.backward()` (PyTorch's usual training loop).
The loops run `--loop-steps` steps of a few trajectories; their rate does not depend on N.

Usage: python benchmarks/sgd_throughput.py [--particles N] [--steps S] [--loop-steps L]
Writes benchmarks/results/sgd_throughput-<device>.json.
"""

import argparse
import json
import pathlib
import platform
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxescape as jxe


DIMENSION, NUM_SAMPLES, BATCH, LEARNING_RATE = 10, 1000, 10, 0.05


def jaxescape_rate(data, num_particles, num_steps, replacement):
    sgd = jxe.MinibatchSGD(jxe.LinearRegression(DIMENSION), data, batch_size=BATCH,
                           learning_rate=LEARNING_RATE, replacement=replacement)
    start = jnp.zeros(DIMENSION)

    def run(steps):
        return jxe.simulate(sgd, jxe.NeverEscape(), start, jax.random.key(0),
                            num_particles=num_particles, max_steps=steps)

    run(num_steps)  # compiles (check_every follows max_steps: warm up at the timed length)
    began = time.perf_counter()
    result = run(num_steps)
    seconds = time.perf_counter() - began
    assert np.all(result.censored)
    return num_particles * num_steps / seconds, seconds


def numpy_rate(inputs, targets, num_steps, seed=0):
    generator = np.random.default_rng(seed)
    theta = np.zeros(DIMENSION)
    steps_per_epoch = NUM_SAMPLES // BATCH
    began = time.perf_counter()
    for step in range(num_steps):
        if step % steps_per_epoch == 0:
            order = generator.permutation(NUM_SAMPLES)
        batch = order[(step % steps_per_epoch) * BATCH:][:BATCH]
        x, y = inputs[batch], targets[batch]
        theta -= LEARNING_RATE * x.T @ (x @ theta - y) / BATCH
    return num_steps / (time.perf_counter() - began)


def torch_rate(inputs, targets, num_steps, seed=0):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x_all, y_all = torch.tensor(inputs), torch.tensor(targets)
    model = torch.nn.Linear(DIMENSION, 1, bias=False, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    steps_per_epoch = NUM_SAMPLES // BATCH
    began = time.perf_counter()
    for step in range(num_steps):
        if step % steps_per_epoch == 0:
            order = torch.randperm(NUM_SAMPLES)
        batch = order[(step % steps_per_epoch) * BATCH:][:BATCH]
        optimizer.zero_grad()
        loss = 0.5 * ((model(x_all[batch])[:, 0] - y_all[batch]) ** 2).mean()
        loss.backward()
        optimizer.step()
    return num_steps / (time.perf_counter() - began)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--loop-steps", type=int, default=20_000)
    args = parser.parse_args()
    data = jxe.gaussian_regression_data(jax.random.key(0), NUM_SAMPLES, DIMENSION)
    inputs = np.asarray(data.inputs, np.float64)
    targets = np.asarray(data.targets, np.float64)
    rows = {}
    rows["numpy loop"] = dict(particle_steps_per_second=numpy_rate(inputs, targets,
                                                                    args.loop_steps))
    try:
        rows["torch loop"] = dict(particle_steps_per_second=torch_rate(inputs, targets,
                                                                        args.loop_steps))
    except ImportError:
        print("torch not installed (pip install -e '.[bench]'): row skipped")
    for replacement in (False, True):
        rate, seconds = jaxescape_rate(data, args.particles, args.steps, replacement)
        name = "jaxescape, " + ("with replacement" if replacement else "per-epoch shuffling")
        rows[name] = dict(particle_steps_per_second=rate, seconds=seconds)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux
    device = jax.devices()[0]
    summary = dict(
        device=f"{device.platform}: {device.device_kind}", processor=platform.processor(),
        cpu_count=__import__("os").cpu_count(), particles=args.particles, steps=args.steps,
        loop_steps=args.loop_steps, peak_resident_memory_gib=peak_gib, rows=rows,
        jax_version=jax.__version__,
    )
    print(f"device {summary['device']}, N = {args.particles}, {args.steps} steps; "
          f"peak memory {peak_gib:.2f} GiB")
    for name, row in rows.items():
        rate = row["particle_steps_per_second"]
        ratios = "  ".join(
            f"{rate / rows[loop]['particle_steps_per_second']:8.1f}x {loop}"
            for loop in ("numpy loop", "torch loop") if loop in rows
        )
        print(f"{name:40s} {rate / 1e6:10.3f} M particle-steps/s  {ratios}")
    folder = pathlib.Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"sgd_throughput-{device.platform}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
