"""Network particles: particle-steps per second of MLP training runs against the matmul roofline.

Problem (issue 19): digits (scikit-learn's bundled set, n = 1000 training samples, one-hot
targets), an MLP 64-32-10 (ReLU, 2410 parameters), cross-entropy, plain SGD (η = 0.1),
B = 32. FLOPs per particle-step: forward 2·B·(64·32 + 32·10) and a backward of twice that,
3 · 2 · 32 · 2368 = 454 656 (biases, activations and the update not counted).

Rows, in one process, interleaved over `--rounds` rounds (the best of each row is kept, so a
round slowed by other processes does not count):
- matmul: a jitted 2048 × 2048 float32 product, 2 · 2048³ FLOP; its rate is the roofline.
- jaxescape: `jxe.simulate(MinibatchSGD(NetworkModel(eqx.nn.MLP), ...), NeverEscape(), ...)`
  for N particles × S steps, per-epoch shuffling (the default) and with replacement;
  compilation excluded (a warm-up run of 2 steps).
- vmap loop: the hand-written JAX baseline, `jit(vmap(fori_loop(SGD step)))` with minibatches
  drawn with replacement by `jr.randint(fold_in(key, step))`.

Usage: python benchmarks/network_throughput.py [--particles N] [--steps S] [--rounds R]
Writes benchmarks/results/network_throughput-<device>.json.
"""

import argparse
import json
import os
import pathlib
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import jaxescape as jxe


BATCH, LEARNING_RATE, WIDTH = 32, 0.1, 32
FLOP_PER_STEP = 3 * 2 * BATCH * (64 * WIDTH + WIDTH * 10)


def timed(function):
    began = time.perf_counter()
    jax.block_until_ready(function())
    return time.perf_counter() - began


def matmul_rate(size=2048, repeats=5):
    a, b = (jr.normal(jr.key(i), (size, size), jnp.float32) for i in range(2))
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    return 2 * size**3 / min(timed(lambda: product(a, b)) for _ in range(repeats))


def jaxescape_runner(model, data, num_particles, replacement):
    sgd = jxe.MinibatchSGD(model, data, batch_size=BATCH, learning_rate=LEARNING_RATE,
                           replacement=replacement)

    def run(steps):
        return jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jr.key(0),
                            num_particles=num_particles, max_steps=steps).position

    run(2)  # compile (the step count is an argument: the timed run does not recompile)
    return run


def vmap_runner(model, data, num_particles):
    """The 20-line hand-written JAX loop: vmap over particles of a fori_loop of SGD steps."""
    inputs, targets = data.inputs, data.targets

    def batch_loss(theta, indices):
        return jnp.mean(jax.vmap(model.per_sample_loss, (None, 0, 0))(
            theta, inputs[indices], targets[indices]))

    @jax.jit
    def train(keys, num_steps):
        def one(key):
            def body(step, theta):
                indices = jr.randint(jr.fold_in(key, step), (BATCH,), 0, data.num_samples)
                return theta - LEARNING_RATE * jax.grad(batch_loss)(theta, indices)

            return jax.lax.fori_loop(0, num_steps, body, model.initial_parameters)

        return jax.vmap(one)(keys)

    keys = jr.split(jr.key(0), num_particles)
    train(keys, 2).block_until_ready()
    return lambda steps: train(keys, steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=2**14)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = jxe.NetworkModel(eqx.nn.MLP(64, 10, WIDTH, 1, key=jr.key(1)), loss="cross_entropy")
    assert model.num_parameters == 2410
    runners = {
        "jaxescape, per-epoch shuffling": jaxescape_runner(model, data, args.particles, False),
        "jaxescape, with replacement": jaxescape_runner(model, data, args.particles, True),
        "vmap loop (hand-written JAX)": vmap_runner(model, data, args.particles),
    }
    best = {"matmul 2048² float32": 0.0, **{name: 0.0 for name in runners}}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        best["matmul 2048² float32"] = max(best["matmul 2048² float32"], matmul_rate())
        for name, run in runners.items():
            seconds = timed(lambda: run(args.steps))
            best[name] = max(best[name], FLOP_PER_STEP * args.particles * args.steps / seconds)

    roofline = best["matmul 2048² float32"]
    device = jax.devices()[0]
    rows = [{"row": name, "gflop_per_s": rate / 1e9,
             "m_particle_steps_per_s": None if name.startswith("matmul") else
             rate / FLOP_PER_STEP / 1e6, "of_matmul": rate / roofline}
            for name, rate in best.items()]
    print(f"device: {device.device_kind}, {os.cpu_count()} CPUs, load averages {loads}")
    print(f"{'row':34s} {'GFLOP/s':>8s} {'M steps/s':>10s} {'of matmul':>10s}")
    for row in rows:
        steps = row["m_particle_steps_per_s"]
        print(f"{row['row']:34s} {row['gflop_per_s']:8.1f} "
              f"{'' if steps is None else f'{steps:.4f}':>10s} {row['of_matmul']:10.2f}")
    out = pathlib.Path(__file__).parent / "results" / f"network_throughput-{device.platform}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "device": device.device_kind, "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "jax": jax.__version__, "particles": args.particles,
        "steps": args.steps, "rounds": args.rounds, "load_averages": loads,
        "flop_per_particle_step": FLOP_PER_STEP, "rows": rows,
    }, indent=1))


if __name__ == "__main__":
    main()
