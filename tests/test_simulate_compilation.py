"""Sweeps over temperature, dt, max_steps, key and landscape parameters reuse one compilation.

How compilations are counted: JAX reports every trace and every XLA compilation through
`jax.monitoring` duration events, with the function's name as `fun_name`:
"/jax/core/compile/jaxpr_trace_duration" (fun_name "advance") and
"/jax/core/compile/backend_compile_duration" (fun_name "jit(advance)"). A listener counts the
events whose fun_name is that of the driver's kernel `jaxescape._engine.devices.advance` (the only
jitted function that runs per chunk). The loss below is defined in this module only, so no other
test can have compiled the same kernel before: the first call must compile, and every later
call with the same structure must not. As a cross-check, the size of the jit cache of
`advance` (`advance._cached._cache_size()`, equinox/jaxlib internals) must grow by the same
amount where that attribute exists.

Note: swept numbers must be JAX arrays; `FunctionLandscape.parameters` / `GeneralSDE.parameters`
given as Python floats would be static under `eqx.filter_jit` and recompile for each value.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxescape as jxe
import jaxescape._engine.devices as kernel_module  # the engine's compiled kernel `advance`


def cubic_well(y, parameters):
    """L = a·y²/2 − b·y³/3: minimum at 0, barrier top at a/b, ΔL = a³/(6b²)."""
    a, b = parameters
    return jnp.sum(a * y**2 / 2 - b * y**3 / 3)


class KernelEvents:
    def __init__(self):
        self.traces = 0
        self.compiles = 0

    def __call__(self, event, duration, **kwargs):
        name = str(kwargs.get("fun_name", ""))
        if name not in ("advance", "jit(advance)"):
            return
        if event == "/jax/core/compile/jaxpr_trace_duration":
            self.traces += 1
        elif event == "/jax/core/compile/backend_compile_duration":
            self.compiles += 1


@contextlib.contextmanager
def count_kernel_compilations():
    events = KernelEvents()
    jax.monitoring.register_event_duration_secs_listener(events)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(events)


def cache_size():
    cached = getattr(kernel_module.advance, "_cached", None)
    return cached._cache_size() if hasattr(cached, "_cache_size") else None


def run(a, b, temperature, dt, key, *, num_particles, num_slots, max_steps=2000):
    parameters = (jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    landscape = jxe.FunctionLandscape(cubic_well, 1, parameters)
    dynamics = jxe.OverdampedLangevin(landscape, temperature)
    criterion = jxe.HalfSpace(jnp.array([1.0]), 1.5 * a / b)
    return jxe.simulate(
        dynamics, criterion, jnp.zeros(1), jax.random.key(key), num_particles=num_particles,
        dt=dt, max_steps=max_steps, num_slots=num_slots,
    )


def test_temperature_and_dt_sweep_compiles_the_kernel_once():
    sweep = [
        (1.0, 1.0, temperature, dt, key)
        for key, (temperature, dt) in enumerate(
            [(t, dt) for t in (0.05, 0.1, 0.2) for dt in (0.01, 0.02)]
        )
    ] + [(2.0, 1.5, 0.1, 0.01, 9)]  # landscape parameters and the criterion's offset too
    before = cache_size()
    with count_kernel_compilations() as events:
        run(*sweep[0], num_particles=256, num_slots=256)
        assert (events.traces, events.compiles) == (1, 1)  # counted: new kernel compiled
        after_first = cache_size()
        for index, point in enumerate(sweep[1:]):
            result = run(*point, num_particles=256, num_slots=256, max_steps=1000 + index)
            assert result.escaped.any()
    assert (events.traces, events.compiles) == (1, 1)
    if before is not None:
        # The first run's calls add the kernel's entries (its first call's inputs come from the
        # host, the later calls' from the kernel's outputs: two dispatch entries, one
        # compilation); the sweep adds none.
        assert before < after_first == cache_size()


def test_a_shrinking_pool_compiles_once_per_pool_size(monkeypatch):
    """4096 particles in a 4096-slot pool shrink to 256 slots in the tail: two pool sizes, two
    compilations for the whole sweep. The first pool needs several `advance` calls (each runs
    at most 2^24 slot-steps), which is what exposes a recompilation between calls."""
    pool_sizes = {4096}
    original_shrink = kernel_module.shrink

    def recording_shrink(slots, num_slots, *blocks):
        pool_sizes.add(num_slots)
        return original_shrink(slots, num_slots, *blocks)

    monkeypatch.setattr(kernel_module, "shrink", recording_shrink)
    with count_kernel_compilations() as events:
        for key, temperature in enumerate((0.08, 0.1, 0.12)):
            result = run(1.0, 1.0, temperature, 0.02, key, num_particles=4096, num_slots=4096,
                         max_steps=20_000)
            assert result.escaped.mean() > 0.9
    assert pool_sizes == {4096, 256}
    assert events.compiles == events.traces == len(pool_sizes)
    assert np.all(result.escape_step >= 1)
