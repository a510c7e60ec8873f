"""One JAX device per CPU core, so that `simulate` runs a chunk on each core.

XLA's CPU backend runs a network particle's small batched products on about one core
(benchmarks/README.md §10), while `simulate` already shards its chunks over all devices of the
default backend (`devices.py`). Exposing the cores as devices
(`jax_num_cpu_devices`) puts every core to work. The numbers do not change with the device count
(`tests/test_devices.py`).
"""

import os

import jax


def use_cpu_cores(count: int | None = None) -> int:
    """Exposes the CPU as `count` JAX devices (default: the cores this process may use), before
    JAX's first computation; returns the count.

    `simulate` then runs one chunk per core (the gain for networks: benchmarks/README.md §10).
    Must be called right after the imports, before any array is
    made: JAX fixes its devices when its backend starts (a later call with another count raises
    RuntimeError; with the same count it changes nothing). An accelerator's devices are not
    touched.
    """
    if count is None:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer (CPU devices), got {count!r}")
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError as error:
        raise RuntimeError(
            "use_cpu_cores must be called before JAX's first computation (right after the "
            "imports): JAX has already started its devices"
        ) from error
    return count
