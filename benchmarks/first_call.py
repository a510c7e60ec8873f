"""First-call latency: tracing and compilation of the default experiment's kernel, on its own.

In a fresh process: import time of jaxescape, then the default experiment's first level
(double well ΔL = 1, k = 4, T = 0.5, dt = 0.01, escape past the saddle) called twice with the
same shapes on 1000 particles. The first call traces and compiles; the second reuses the
compiled kernel. Their difference is the first-call latency a user waits before any particle
moves (the issue's target: under 5 s on CPU).

Usage: python benchmarks/first_call.py
Writes benchmarks/results/first_call-<device>.json.
"""

import json
import pathlib
import time


def main():
    began = time.perf_counter()
    import jax

    import jaxescape as jxe

    imported = time.perf_counter() - began
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    criterion = jxe.past_saddle(landscape)

    def call(seed):
        started = time.perf_counter()
        jxe.simulate(dynamics, criterion, landscape.minimum(), jax.random.key(seed),
                     num_particles=1000, dt=0.01, max_steps=10**7)
        return time.perf_counter() - started

    first, second = call(0), call(1)
    device = jax.devices()[0]
    summary = dict(device=f"{device.platform}: {device.device_kind}", import_seconds=imported,
                   first_call_seconds=first, second_call_seconds=second,
                   first_call_latency_seconds=first - second)
    print(f"import {imported:.2f} s; first call {first:.2f} s; second call {second:.2f} s; "
          f"latency (tracing + compilation) {first - second:.2f} s")
    folder = pathlib.Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"first_call-{device.platform}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
