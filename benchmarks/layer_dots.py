"""The three batched dots of one dense layer's training step, against the matmul rate.

A network particle's gradient step runs, per layer, three per-particle products that XLA
compiles to batched dots: the forward x·W (contracting the layer's inputs), the input gradient
δ·Wᵀ (contracting its outputs) and the weight gradient xᵀ·δ (contracting the batch B). For N
particles, B = 32 and the digits MLP's first layer (64 → 32), each is timed alone and as the
gradient of a whole tanh layer, in GFLOP/s (2·N·B·64·32 per dot) and as a fraction of a jitted
2048² float32 matmul measured in the same process (benchmarks/README.md §10). Best of 3 × 30
calls each; compilation excluded.

    python benchmarks/layer_dots.py [--particles 1024 4096] [--output results/layer_dots-cpu.json]
"""

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp

BATCH, INPUTS, OUTPUTS = 32, 64, 32


def best_seconds(function, *arguments, repeats: int = 30) -> float:
    """The best of three timings of `repeats` calls (after a warm-up call)."""
    jax.block_until_ready(function(*arguments))
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(repeats):
            result = function(*arguments)
        jax.block_until_ready(result)
        best = min(best, (time.perf_counter() - began) / repeats)
    return best


def measure(num_particles: int, matmul_rate: float) -> dict:
    keys = jax.random.split(jax.random.key(0), 3)
    inputs = jax.random.normal(keys[0], (num_particles, BATCH, INPUTS))
    weights = jax.random.normal(keys[1], (num_particles, INPUTS, OUTPUTS))
    errors = jax.random.normal(keys[2], (num_particles, BATCH, OUTPUTS))
    flops = 2 * num_particles * BATCH * INPUTS * OUTPUTS
    layer = jax.grad(lambda w, x: jnp.sum(jnp.tanh(jnp.einsum("pbi,pio->pbo", x, w))))
    dots = {
        "forward x·W (contracts the 64 inputs)": ("pbi,pio->pbo", inputs, weights),
        "input gradient δ·Wᵀ (contracts the 32 outputs)": ("pbo,pio->pbi", errors, weights),
        "weight gradient xᵀ·δ (contracts B = 32)": ("pbi,pbo->pio", inputs, errors),
    }
    result = {}
    for name, (spec, left, right) in dots.items():
        seconds = best_seconds(jax.jit(lambda a, b, spec=spec: jnp.einsum(spec, a, b)), left,
                               right)
        result[name] = flops / seconds / 1e9
    seconds = best_seconds(jax.jit(layer), weights, inputs)
    result["whole layer: gradient of sum(tanh(x·W)) (3 dots)"] = 3 * flops / seconds / 1e9
    return {"particles": num_particles,
            "gflops": result,
            "fraction_of_matmul": {name: value / matmul_rate for name, value in result.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--output", default=str(pathlib.Path(__file__).parent / "results"
                                               / "layer_dots-cpu.json"))
    arguments = parser.parse_args()
    square = jax.random.normal(jax.random.key(1), (2048, 2048))
    matmul_rate = 2 * 2048**3 / best_seconds(jax.jit(lambda a: a @ a), square, repeats=5) / 1e9
    device = jax.devices()[0]
    print(f"{device.device_kind}: 2048² matmul {matmul_rate:.1f} GFLOP/s")
    rows = []
    for num_particles in arguments.particles:
        row = measure(num_particles, matmul_rate)
        rows.append(row)
        for name, rate in row["gflops"].items():
            print(f"  N = {num_particles:5d}  {name:50s} {rate:6.1f} GFLOP/s = "
                  f"{row['fraction_of_matmul'][name]:.2f} of the matmul rate")
    pathlib.Path(arguments.output).write_text(json.dumps(
        {"device": device.device_kind, "jax": jax.__version__, "matmul_gflops": matmul_rate,
         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
