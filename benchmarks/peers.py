"""jaxescape against its peers (NumPy, diffrax, torchsde) on the same escape problems.

Problems (overdamped Langevin dy = -∇L dt + sqrt(2T) dW, Euler–Maruyama, dt = 0.01, float32,
start at the minimum, escape = crossing the `past_saddle` plane normal to the first axis):
- 1d:  TiltedDoubleWell(ΔL = 1, curvature 4, asymmetry 2).
- 10d: AnisotropicWell(ΔL = 1, curvature 4, transverse curvatures linspace(1, 10, 9),
       asymmetry 2); the escape coordinate is decoupled from the others, so its exact mean
       first-passage time is the 1-D one.

Two measurements per problem (see benchmarks/PEERS.md for what every row counts):
- throughput: N particles, S steps, ΔL/T = 20 (no escapes): particle-steps per second, timed as
  the minimum over repeats after a warm-up call (compilation excluded).
- time to result: wall time until all N particles have escaped at ΔL/T = 3 (mean escape time of
  a few thousand steps), with each implementation's mean escape time ± SE against the exact
  continuous-time value, and the wasted work of the implementations that step every particle
  until the slowest one has escaped.

Usage:
    python benchmarks/peers.py [--particles N] [--steps S] [--ttr-particles N]
                               [--skip torchsde,diffrax,...] [--problems 1d,10d] [--quick]
Writes benchmarks/results/peers-<device>.json.
"""

import argparse
import functools
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import sys
import time
import traceback
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax import lax

import jaxescape as jxe


BARRIER, CURVATURE, ASYMMETRY, DT = 1.0, 4.0, 2.0, 0.01
THROUGHPUT_BARRIER_RATIO = 20.0  # ΔL/T: no escapes within S steps
IMPLEMENTATIONS = (
    "rng_floor", "jaxescape", "numpy", "diffrax", "diffrax_batched", "torchsde",
)
MEASUREMENTS = ("throughput", "time_to_result")
# jaxescape with ±1 increments (weak order 1, no erfinv; bias measured in cheap_noise.py).
RADEMACHER_ROW = "jaxescape (Rademacher, crossing correction)"
DIFFRAX_REFERENCE = "diffrax (vmap, Event)"
# The Rademacher rows measure that option on purpose; its warning is meant for results.
warnings.filterwarnings("ignore", message="noise='rademacher' is kept for measuring")


# ----------------------------------------------------------------------------------------------
# Problems


@dataclass
class Problem:
    name: str
    landscape: jxe.AbstractLandscape
    temperature: float
    dynamics: jxe.OverdampedLangevin
    criterion: jxe.HalfSpace
    start: np.ndarray  # (dim,) float32
    normal: np.ndarray  # (dim,) float32, the escape plane's unit normal
    offset: float  # escaped once normal · y >= offset
    scale: float  # L'(u) = scale · u (u − p)(u − r p) along the escape axis
    saddle_offset: float  # p
    transverse: np.ndarray  # (dim − 1,) transverse curvatures (empty in 1-D)

    @property
    def dim(self) -> int:
        return self.start.shape[0]

    @property
    def sigma(self) -> float:
        return math.sqrt(2 * self.temperature)


def make_problem(name: str, barrier_ratio: float) -> Problem:
    temperature = BARRIER / barrier_ratio
    if name == "1d":
        landscape = jxe.TiltedDoubleWell(BARRIER, CURVATURE, ASYMMETRY)
        transverse = np.zeros(0, np.float32)
    elif name == "10d":
        transverse = np.linspace(1.0, 10.0, 9).astype(np.float32)
        landscape = jxe.AnisotropicWell(BARRIER, CURVATURE, transverse, ASYMMETRY)
    else:
        raise ValueError(f"unknown problem {name!r}: choose 1d or 10d")
    criterion = jxe.past_saddle(landscape)
    # The quartic's coefficients (as in jaxescape._landscapes._quartic_coefficients).
    r = ASYMMETRY
    saddle_offset = math.sqrt(12 * r * BARRIER / (CURVATURE * (2 * r - 1)))
    scale = CURVATURE / (r * saddle_offset**2)
    problem = Problem(
        name, landscape, temperature, jxe.OverdampedLangevin(landscape, temperature), criterion,
        np.asarray(landscape.minimum(), np.float32), np.asarray(criterion.normal, np.float32),
        float(criterion.offset), scale, saddle_offset, transverse,
    )
    _check_gradient(problem)
    return problem


def numpy_gradient(problem: Problem, y: np.ndarray) -> np.ndarray:
    """∇L of a batch y of shape (n, dim), written out by hand (for the NumPy and torch peers)."""
    u = y[:, 0]
    p, q = problem.saddle_offset, ASYMMETRY * problem.saddle_offset
    gradient = np.empty_like(y)
    gradient[:, 0] = problem.scale * u * (u - p) * (u - q)
    if problem.dim > 1:
        gradient[:, 1:] = problem.transverse * y[:, 1:]
    return gradient


def _check_gradient(problem: Problem) -> None:
    """The hand-written gradient of the NumPy/torch peers must match jaxescape's (jax.grad)."""
    points = np.random.default_rng(0).normal(size=(64, problem.dim)).astype(np.float32)
    expected = np.asarray(jax.vmap(problem.landscape.gradient)(jnp.asarray(points)))
    np.testing.assert_allclose(numpy_gradient(problem, points), expected, rtol=1e-4, atol=1e-4)
    assert abs(np.linalg.norm(problem.normal) - 1) < 1e-6 and problem.normal[0] > 0.999


def exact_mean_escape_time(problem: Problem) -> float:
    """Continuous-time MFPT to the plane (1-D quadrature; the 10-D escape axis is decoupled)."""
    one_dimensional = jxe.OverdampedLangevin(
        jxe.TiltedDoubleWell(BARRIER, CURVATURE, ASYMMETRY), problem.temperature
    )
    reflecting = -3 * problem.saddle_offset  # L there is > 100 ΔL: never reached
    return jxe.exact_mfpt(one_dimensional, 0.0, reflecting, problem.offset)


# ----------------------------------------------------------------------------------------------
# Timing helpers


_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compile_seconds = [0.0]  # XLA compilation time so far, summed by a jax.monitoring listener


def _on_duration_event(event, duration_secs, **kwargs):
    if event == _COMPILE_EVENT:
        _compile_seconds[0] += duration_secs


jax.monitoring.register_event_duration_secs_listener(_on_duration_event)


class Timer:
    """Wall time of a block, and the XLA compile time that fell inside it (should be 0)."""

    def __enter__(self):
        self.compile_start = _compile_seconds[0]
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.compile_seconds = _compile_seconds[0] - self.compile_start


def best_time(function, repeats):
    """Minimum wall time over `repeats` calls after one warm-up call.

    Returns (seconds, output, compile seconds inside the timed calls).
    """
    output = _block(function())  # warm-up: compiles
    times, compile_seconds = [], 0.0
    for _ in range(repeats):
        with Timer() as timer:
            output = _block(function())
        times.append(timer.seconds)
        compile_seconds += timer.compile_seconds
    return min(times), output, compile_seconds


def _block(output):
    return jax.block_until_ready(output)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------------------
# Throughput rows: each builder returns a zero-argument function whose output is
# (particle_steps, escapes): the work actually done (counted, not assumed) and how many particles
# were found outside (0 expected at ΔL/T = 20).


def throughput_rng_floor(problem, n, steps):
    @jax.jit
    def draw(key):
        def body(total, step):
            return total + jr.normal(jr.fold_in(key, step), (n, problem.dim)), None

        return lax.scan(body, jnp.zeros((n, problem.dim)), jnp.arange(steps))[0]

    def run():
        _block(draw(jr.key(0)))
        return n * steps, 0

    return run


def throughput_jaxescape(problem, n, steps, crossing_correction, noise="gaussian"):
    def run():
        result = jxe.simulate(
            problem.dynamics, problem.criterion, problem.start, jr.key(0), num_particles=n,
            dt=DT, max_steps=steps, crossing_correction=crossing_correction, noise=noise,
        )
        return int(result.escape_step.sum(dtype=np.int64)), int(result.escaped.sum())

    return run


def numpy_masked_run(problem, n, max_steps, seed):
    """Vectorised NumPy Euler–Maruyama with escape detection by masking.

    Every particle is updated every step (escaped ones are frozen by the mask) until all have
    escaped or `max_steps` is reached. Returns (escape_step, censored, loop_steps).
    """
    rng = np.random.default_rng(seed)
    dim = problem.dim
    y = np.tile(problem.start, (n, 1))
    new = np.empty_like(y)
    noise = np.empty_like(y)
    projection = np.empty(n, np.float32)
    alive = np.ones(n, bool)
    outside = np.empty(n, bool)
    escape_step = np.full(n, max_steps, np.int64)
    noise_scale = np.float32(problem.sigma * math.sqrt(DT))
    dt = np.float32(DT)
    p = np.float32(problem.saddle_offset)
    q = np.float32(ASYMMETRY * problem.saddle_offset)
    scale = np.float32(problem.scale)
    transverse_factor = (1 - dt * problem.transverse).astype(np.float32)  # y − k y dt
    num_alive = n
    step = 0
    while num_alive and step < max_steps:
        rng.standard_normal(out=noise, dtype=np.float32)
        u = y[:, 0]
        # new = y − ∇L(y) dt + σ sqrt(dt) ξ, in place.
        np.multiply(noise, noise_scale, out=new)
        new[:, 0] -= (scale * dt) * u * (u - p) * (u - q)
        new[:, 0] += u
        if dim > 1:
            new[:, 1:] += y[:, 1:] * transverse_factor
        np.copyto(y, new, where=alive[:, None])
        if dim > 1:
            np.dot(y, problem.normal, out=projection)
        else:
            np.copyto(projection, y[:, 0])
        np.greater_equal(projection, problem.offset, out=outside)
        outside &= alive
        step += 1
        if outside.any():
            escape_step[outside] = step
            alive &= ~outside
            num_alive = int(alive.sum())
    return escape_step, alive, step


def throughput_numpy(problem, n, steps):
    def run():
        escape_step, censored, loop_steps = numpy_masked_run(problem, n, steps, seed=0)
        return n * loop_steps, int((~censored).sum())

    return run


def _diffrax_terms(problem, key, brownian="unsafe", t1=None):
    import diffrax
    import lineax as lx

    dynamics = problem.dynamics

    def drift(t, y, args):
        return dynamics.drift(t, y)

    def diffusion(t, y, args):
        return lx.DiagonalLinearOperator(dynamics.diffusion(t, y))

    if brownian == "unsafe":
        path = diffrax.UnsafeBrownianPath(shape=(problem.dim,), key=key)
    else:  # a Brownian bridge tree resolved to dt/2 (exact at the grid points up to float error)
        path = diffrax.VirtualBrownianTree(0.0, t1, tol=DT / 2, shape=(problem.dim,), key=key)
    return diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, path))


def diffrax_vmapped(problem, n, max_steps, brownian="unsafe"):
    """A jitted function key -> (steps taken, event triggered, final y), one solve per particle.

    vmap of `diffeqsolve` with Euler at fixed dt (ConstantStepSize), an `UnsafeBrownianPath`
    (or, with brownian="virtual", a `VirtualBrownianTree`) per particle, and a boolean `Event`
    on the escape plane; the solve of a particle ends on the first step that ends outside (or at
    t1 = max_steps · dt). `ForwardMode` is the adjoint diffrax requires with UnsafeBrownianPath
    (nothing is differentiated here).
    """
    import diffrax

    normal, offset = jnp.asarray(problem.normal), jnp.float32(problem.offset)
    start = jnp.asarray(problem.start)

    def escaped(t, y, args, **kwargs):
        return jnp.dot(normal, y) >= offset

    def one(key):
        solution = diffrax.diffeqsolve(
            _diffrax_terms(problem, key, brownian, max_steps * DT), diffrax.Euler(), t0=0.0,
            t1=max_steps * DT, dt0=DT,
            y0=start, saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.ConstantStepSize(), event=diffrax.Event(escaped),
            max_steps=max_steps, throw=False, adjoint=diffrax.ForwardMode(),
        )
        return solution.stats["num_steps"], solution.event_mask, solution.ys[-1]

    return jax.jit(lambda key: jax.vmap(one)(jr.split(key, n)))


def throughput_diffrax(problem, n, steps, brownian="unsafe"):
    solve = diffrax_vmapped(problem, n, steps, brownian)

    def run():
        num_steps, event, _ = _block(solve(jr.key(0)))
        return int(np.asarray(num_steps).sum(dtype=np.int64)), int(np.asarray(event).sum())

    return run


def throughput_diffrax_batched(problem, n, steps):
    """One `diffeqsolve` of the whole (n·dim,) state: one Brownian draw per step, no events."""
    import diffrax
    import lineax as lx

    dynamics, dim = problem.dynamics, problem.dim
    normal, offset = jnp.asarray(problem.normal), jnp.float32(problem.offset)

    def drift(t, y, args):
        return jax.vmap(lambda x: dynamics.drift(t, x))(y.reshape(n, dim)).reshape(-1)

    def diffusion(t, y, args):
        return lx.DiagonalLinearOperator(jnp.full_like(y, problem.sigma))

    @jax.jit
    def solve(key):
        brownian = diffrax.UnsafeBrownianPath(shape=(n * dim,), key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, brownian))
        y0 = jnp.tile(jnp.asarray(problem.start), n)
        solution = diffrax.diffeqsolve(
            terms, diffrax.Euler(), t0=0.0, t1=steps * DT, dt0=DT, y0=y0,
            saveat=diffrax.SaveAt(t1=True), stepsize_controller=diffrax.ConstantStepSize(),
            max_steps=steps, throw=False, adjoint=diffrax.ForwardMode(),
        )
        final = solution.ys[-1].reshape(n, dim)
        return solution.stats["num_steps"], jnp.sum(final @ normal >= offset)

    def run():
        num_steps, outside = _block(solve(jr.key(0)))
        return n * int(num_steps), int(outside)

    return run


def throughput_torchsde(problem, n, steps, threads):
    """torchsde.sdeint(method="euler"), float32 on the CPU, only t0 and t1 saved (no events)."""
    import torch
    import torchsde

    torch.set_num_threads(threads)

    class CountingBrownianInterval(torchsde.BrownianInterval):
        """sdeint's default Brownian motion; Euler queries it exactly once per step."""

        calls = 0

        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            CountingBrownianInterval.calls += 1
            return super().__call__(ta, tb, return_U, return_A)

    p, q = problem.saddle_offset, ASYMMETRY * problem.saddle_offset
    # Drift −∇L = −k ⊙ y on the transverse axes (k = 0 on the escape axis), then the quartic.
    negative_curvatures = -torch.tensor(np.concatenate([[0.0], problem.transverse]),
                                        dtype=torch.float32)

    class Langevin(torch.nn.Module):
        noise_type = "diagonal"
        sde_type = "ito"

        def __init__(self):
            super().__init__()
            self.g_value = torch.full((n, problem.dim), problem.sigma, dtype=torch.float32)

        def f(self, t, y):
            u = y[:, :1]
            along = (-problem.scale) * u * (u - p) * (u - q)
            if problem.dim == 1:
                return along
            drift = y * negative_curvatures
            drift[:, :1] = along
            return drift

        def g(self, t, y):
            return self.g_value

    sde = Langevin()
    y0 = torch.tensor(problem.start).repeat(n, 1)
    # float64 times: with float32 ones torchsde's t += dt accumulates to 1.99999 and takes a
    # 201st, tiny step.
    ts = torch.tensor([0.0, steps * DT], dtype=torch.float64)
    normal = torch.tensor(problem.normal)

    def run():
        bm = CountingBrownianInterval(
            t0=0.0, t1=steps * DT, size=(n, problem.dim), dtype=torch.float32,
            levy_area_approximation="none",
        )
        CountingBrownianInterval.calls = 0
        with torch.no_grad():
            ys = torchsde.sdeint(sde, y0, ts, bm=bm, method="euler", dt=DT)
        outside = int((ys[-1] @ normal >= problem.offset).sum())
        return n * CountingBrownianInterval.calls, outside

    return run


# ----------------------------------------------------------------------------------------------
# Time-to-result rows: each returns a dict with escape_step (n,), censored (n,), and, for the
# implementations that step all particles until the slowest, loop_steps.


def ttr_jaxescape(problem, warmup_problem, n, max_steps, crossing_correction, seed,
                  noise="gaussian"):
    """Warm-up at the same N (the compiled shapes depend on N and the pool sizes) but twice the
    temperature (a parameter, not a shape: no recompilation; escapes ~5x sooner), then one timed
    run. Compilation that still falls in the timed run is reported, not hidden."""

    def run(p, key):
        result = jxe.simulate(
            p.dynamics, p.criterion, p.start, key, num_particles=n, dt=DT,
            max_steps=max_steps, crossing_correction=crossing_correction, noise=noise,
        )
        return {"escape_step": result.escape_step.astype(np.int64), "censored": result.censored}

    run(warmup_problem, jr.key(seed + 1000))
    with Timer() as timer:
        output = run(problem, jr.key(seed))
    return timer, output


def ttr_numpy(problem, n, max_steps, seed):
    with Timer() as timer:
        escape_step, censored, loop_steps = numpy_masked_run(problem, n, max_steps, seed)
    return timer, {"escape_step": escape_step, "censored": censored, "loop_steps": loop_steps}


def ttr_diffrax(problem, n, max_steps, seed):
    solve = diffrax_vmapped(problem, n, max_steps)
    key = jr.key(seed)
    compiled = solve.lower(key).compile()  # ahead-of-time: compilation excluded, nothing run
    with Timer() as timer:
        num_steps, event, _ = _block(compiled(key))
    num_steps, event = np.asarray(num_steps, np.int64), np.asarray(event)
    return timer, {
        "escape_step": num_steps, "censored": ~event, "loop_steps": int(num_steps.max()),
    }


# ----------------------------------------------------------------------------------------------
# Driver


@functools.cache
def available(package):
    try:
        __import__(package)
        return True
    except ImportError as error:
        print(f"  [skip] {package} is not installed ({error}); pip install {package}")
        return False


def run_throughput(problem, args, skip):
    work_rows = []  # (row name, implementation, builder, particles)
    n, steps = args.particles, args.steps
    if "rng_floor" not in skip:
        work_rows.append(("RNG floor (jax.random.normal)", "jax", lambda m: throughput_rng_floor(
            problem, m, steps), n))
    if "jaxescape" not in skip:
        work_rows.append(("jaxescape (crossing correction)", "jax", lambda m: throughput_jaxescape(
            problem, m, steps, True), n))
        work_rows.append(("jaxescape (no crossing correction)", "jax",
                          lambda m: throughput_jaxescape(problem, m, steps, False), n))
        work_rows.append((RADEMACHER_ROW, "jax", lambda m: throughput_jaxescape(
            problem, m, steps, True, "rademacher"), n))
    if "numpy" not in skip:
        work_rows.append(("NumPy (masked, float32)", "numpy", lambda m: throughput_numpy(
            problem, m, steps), args.numpy_particles or n))
    if "diffrax" not in skip and available("diffrax"):
        work_rows.append((DIFFRAX_REFERENCE, "jax", lambda m: throughput_diffrax(
            problem, m, steps), args.diffrax_particles or n))
    if args.diffrax_vbt and "diffrax" not in skip and available("diffrax"):
        work_rows.append(("diffrax (vmap, Event, VirtualBrownianTree)", "jax",
                          lambda m: throughput_diffrax(problem, m, steps, "virtual"),
                          args.diffrax_vbt_particles))
    if "diffrax_batched" not in skip and "diffrax" not in skip and available("diffrax"):
        work_rows.append(("diffrax (one batched solve, no events)", "jax",
                          lambda m: throughput_diffrax_batched(problem, m, steps),
                          args.diffrax_particles or n))
    if "torchsde" not in skip and available("torchsde"):
        for threads in args.torch_threads or [args.torch_default_threads]:
            work_rows.append((
                f"torchsde (euler, CPU, {threads} thread{'s' * (threads > 1)})", "torch",
                lambda m, t=threads: throughput_torchsde(problem, m, steps, t),
                args.torchsde_particles,
            ))
    rows = {}
    for name, backend, builder, particles in work_rows:
        print(f"  throughput: {name}, N = {particles} ...", flush=True)
        try:
            seconds, (particle_steps, escapes), compile_seconds = best_time(
                builder(particles), args.repeats
            )
        except Exception as error:  # a peer failing must not lose the other rows
            traceback.print_exc()
            rows[name] = {"error": f"{type(error).__name__}: {error}"}
            continue
        rows[name] = {
            "backend": backend,
            "device": _row_device(backend),
            "particles": particles,
            "steps": steps,
            "particle_steps": particle_steps,
            "escapes": escapes,
            "seconds": seconds,
            "compile_seconds_in_timed_calls": compile_seconds,
            "particle_steps_per_second": particle_steps / seconds,
        }
    floor = rows.get("RNG floor (jax.random.normal)", {}).get("particle_steps_per_second")
    reference = rows.get(DIFFRAX_REFERENCE, {}).get("particle_steps_per_second")
    for row in rows.values():
        if "error" in row:
            continue
        rate = row["particle_steps_per_second"]
        row["ratio_to_rng_floor"] = rate / floor if floor else None
        row["ratio_to_diffrax"] = rate / reference if reference else None
    return rows


def run_time_to_result(problem, warmup_problem, args, skip, exact):
    n, max_steps = args.ttr_particles, args.ttr_max_steps
    work_rows = []
    if "jaxescape" not in skip:
        for correction in (True, False):
            work_rows.append((
                f"jaxescape ({'' if correction else 'no '}crossing correction)", "jax",
                lambda m, c=correction: ttr_jaxescape(
                    problem, warmup_problem, m, max_steps, c, args.seed
                ), n,
            ))
        work_rows.append((RADEMACHER_ROW, "jax", lambda m: ttr_jaxescape(
            problem, warmup_problem, m, max_steps, True, args.seed, "rademacher"), n))
    if "diffrax" not in skip and available("diffrax"):
        work_rows.append(("diffrax (vmap, Event)", "jax",
                          lambda m: ttr_diffrax(problem, m, max_steps, args.seed),
                          args.ttr_diffrax_particles))
    if "numpy" not in skip:
        work_rows.append(("NumPy (masked, float32)", "numpy",
                          lambda m: ttr_numpy(problem, m, max_steps, args.seed),
                          args.ttr_numpy_particles or n))
    rows = {}
    for name, backend, runner, particles in work_rows:
        print(f"  time to result: {name}, N = {particles} ...", flush=True)
        try:
            timer, output = runner(particles)
            seconds = timer.seconds
        except Exception as error:
            traceback.print_exc()
            rows[name] = {"error": f"{type(error).__name__}: {error}"}
            continue
        steps, censored = output["escape_step"], output["censored"]
        total = int(steps.sum(dtype=np.int64))
        escaped_steps = steps[~censored]
        mean = float(escaped_steps.mean()) * DT if escaped_steps.size else math.nan
        se = float(escaped_steps.std(ddof=1) / math.sqrt(escaped_steps.size)) * DT \
            if escaped_steps.size > 1 else math.nan
        row = {
            "backend": backend,
            "device": _row_device(backend),
            "particles": particles,
            "max_steps": max_steps,
            "seconds": seconds,
            "compile_seconds_in_timed_run": timer.compile_seconds,
            "sum_escape_steps": total,
            "max_escape_step": int(steps.max()),
            "censored": int(censored.sum()),
            "useful_particle_steps_per_second": total / seconds,
            "mean_escape_time": mean,
            "standard_error": se,
            "z_vs_exact": (mean - exact) / se if se and math.isfinite(se) else None,
        }
        if "loop_steps" in output:
            row["loop_steps"] = output["loop_steps"]
            row["stepped_particle_steps"] = particles * output["loop_steps"]
            row["wasted_work_ratio"] = particles * output["loop_steps"] / total
        rows[name] = row
    reference = rows.get("jaxescape (crossing correction)", {}).get("seconds")
    reference_n = rows.get("jaxescape (crossing correction)", {}).get("particles")
    for row in rows.values():
        if "error" not in row and reference:
            # Per-particle wall time relative to jaxescape (N may differ between rows).
            row["time_per_particle_vs_jaxescape"] = (
                (row["seconds"] / row["particles"]) / (reference / reference_n)
            )
    return rows


def _row_device(backend):
    if backend == "jax":
        device = jax.devices()[0]
        return f"{device.platform}:{device.device_kind}"
    return "cpu (host)"


def print_throughput(rows):
    print(f"\n  {'throughput row':42s} {'N':>9s} {'M p-steps/s':>12s} {'/ RNG floor':>12s} "
          f"{'/ diffrax':>10s} {'escapes':>8s}")
    for name, row in rows.items():
        if "error" in row:
            print(f"  {name:42s} ERROR {row['error']}")
            continue
        print(f"  {name:42s} {row['particles']:9d} {row['particle_steps_per_second'] / 1e6:12.2f} "
              f"{_ratio(row['ratio_to_rng_floor']):>12s} {_ratio(row['ratio_to_diffrax']):>10s} "
              f"{row['escapes']:8d}")


def print_time_to_result(rows, exact):
    print(f"\n  exact continuous-time mean escape time: {exact:.3f}")
    print(f"  {'time-to-result row':36s} {'N':>8s} {'wall s':>8s} {'s/particle vs jxe':>17s} "
          f"{'useful M p-steps/s':>18s} {'max step':>9s} {'wasted':>7s} "
          f"{'mean ± SE':>18s} {'z vs exact':>10s} {'cens':>5s}")
    for name, row in rows.items():
        if "error" in row:
            print(f"  {name:36s} ERROR {row['error']}")
            continue
        wasted = row.get("wasted_work_ratio")
        print(f"  {name:36s} {row['particles']:8d} {row['seconds']:8.2f} "
              f"{_ratio(row.get('time_per_particle_vs_jaxescape')):>17s} "
              f"{row['useful_particle_steps_per_second'] / 1e6:18.2f} "
              f"{row['max_escape_step']:9d} {_ratio(wasted):>7s} "
              f"{row['mean_escape_time']:9.3f} ± {row['standard_error']:6.3f} "
              f"{row['z_vs_exact'] if row['z_vs_exact'] is not None else math.nan:10.2f} "
              f"{row['censored']:5d}")


def _ratio(value):
    return "-" if value is None else f"{value:.2f}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=None,
                        help="throughput N (default 10^6; --quick: 10^4)")
    parser.add_argument("--steps", type=int, default=None,
                        help="throughput steps S (default 200; --quick: 50)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats after the warm-up (default 3; --quick: 1)")
    parser.add_argument("--numpy-particles", type=int, default=None,
                        help="throughput N for NumPy (default: --particles)")
    parser.add_argument("--diffrax-particles", type=int, default=None,
                        help="throughput N for diffrax (default: --particles)")
    parser.add_argument("--diffrax-vbt", action="store_true",
                        help="add a throughput row with diffrax's VirtualBrownianTree (slow)")
    parser.add_argument("--diffrax-vbt-particles", type=int, default=None,
                        help="throughput N of the VirtualBrownianTree row (default 10^4)")
    parser.add_argument("--torch-threads", default="",
                        help="comma list of torch.set_num_threads values, one torchsde row each "
                        "(default: torch's own choice)")
    parser.add_argument("--torchsde-particles", type=int, default=None,
                        help="throughput N for torchsde (default: min(--particles, 10^5): its "
                        "Python loop and BrownianInterval are slow in 10-D)")
    parser.add_argument("--ttr-particles", type=int, default=None,
                        help="time-to-result N (default 10^5; --quick: 2000)")
    parser.add_argument("--ttr-diffrax-particles", type=int, default=None,
                        help="time-to-result N for diffrax (default: min(--ttr-particles, 10^4): "
                        "its loop is the slowest; pass --ttr-particles to compare at equal N)")
    parser.add_argument("--ttr-numpy-particles", type=int, default=None,
                        help="time-to-result N for NumPy (default: --ttr-particles)")
    parser.add_argument("--ttr-barrier-ratio", type=float, default=None,
                        help="ΔL/T of the time-to-result runs (default 3; --quick: 2)")
    parser.add_argument("--ttr-max-steps", type=int, default=2**20,
                        help="censoring bound of the time-to-result runs (default 2^20)")
    parser.add_argument("--problems", default="1d,10d", help="comma list of 1d, 10d")
    parser.add_argument("--skip", default="",
                        help="comma list of " + ", ".join(IMPLEMENTATIONS + MEASUREMENTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    parser.add_argument("--note", default="", help="free text stored in the JSON (e.g. contended)")
    parser.add_argument("--output", default=None, help="JSON path (default results/peers-<dev>)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.particles = args.particles or (10_000 if quick else 1_000_000)
    args.steps = args.steps or (50 if quick else 200)
    args.repeats = args.repeats or (1 if quick else 3)
    args.ttr_particles = args.ttr_particles or (1_000 if quick else 100_000)
    args.ttr_diffrax_particles = args.ttr_diffrax_particles or min(args.ttr_particles, 10_000)
    args.ttr_barrier_ratio = args.ttr_barrier_ratio or (2.0 if quick else 3.0)
    args.diffrax_vbt_particles = args.diffrax_vbt_particles or min(args.particles, 10_000)
    args.torchsde_particles = args.torchsde_particles or min(args.particles, 100_000)
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    unknown = skip - set(IMPLEMENTATIONS + MEASUREMENTS)
    if unknown:
        parser.error(f"--skip: unknown {sorted(unknown)}; choose from "
                     f"{', '.join(IMPLEMENTATIONS + MEASUREMENTS)}")
    args.skip_set = skip
    args.torch_threads = [int(t) for t in args.torch_threads.split(",") if t.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    device = jax.devices()[0]
    threads = {"os_cpu_count": os.cpu_count(), "torch_threads_per_row": args.torch_threads}
    args.torch_default_threads = None
    try:
        import torch

        threads["torch_default_num_threads"] = args.torch_default_threads = (
            torch.get_num_threads()
        )
    except ImportError:
        pass
    packages = {name: version(name) for name in (
        "jax", "jaxlib", "equinox", "numpy", "scipy", "diffrax", "lineax", "optimistix",
        "torch", "torchsde", "jaxescape",
    )}
    print(f"device: {device.device_kind} ({device.platform}); python {platform.python_version()}; "
          + ", ".join(f"{k} {v}" for k, v in packages.items() if v) + f"; threads {threads}")
    record = {
        "benchmark": "peers",
        "device_kind": device.device_kind,
        "platform": device.platform,
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "packages": packages,
        "threads": threads,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "note": args.note,
        "dt": DT,
        "throughput": {
            "particles": args.particles, "numpy_particles": args.numpy_particles or args.particles,
            "diffrax_particles": args.diffrax_particles or args.particles,
            "torchsde_particles": args.torchsde_particles, "steps": args.steps,
            "repeats": args.repeats, "barrier_over_temperature": THROUGHPUT_BARRIER_RATIO,
        },
        "time_to_result": {
            "particles": args.ttr_particles, "diffrax_particles": args.ttr_diffrax_particles,
            "numpy_particles": args.ttr_numpy_particles or args.ttr_particles,
            "max_steps": args.ttr_max_steps, "barrier_over_temperature": args.ttr_barrier_ratio,
        },
        "problems": {},
    }
    for name in (p.strip() for p in args.problems.split(",") if p.strip()):
        print(f"\n=== problem {name} ===", flush=True)
        entry = record["problems"][name] = {}
        if "throughput" not in args.skip_set:
            problem = make_problem(name, THROUGHPUT_BARRIER_RATIO)
            print(f" throughput: ΔL/T = {THROUGHPUT_BARRIER_RATIO:g}, N = {args.particles}, "
                  f"S = {args.steps}, dim = {problem.dim}", flush=True)
            entry["throughput"] = run_throughput(problem, args, args.skip_set)
            print_throughput(entry["throughput"])
        if "time_to_result" not in args.skip_set:
            problem = make_problem(name, args.ttr_barrier_ratio)
            warmup_problem = make_problem(name, args.ttr_barrier_ratio / 2)
            exact = exact_mean_escape_time(problem)
            print(f"\n time to result: ΔL/T = {args.ttr_barrier_ratio:g}, N = "
                  f"{args.ttr_particles}, exact mean escape time {exact:.3f} "
                  f"({exact / DT:.0f} steps)", flush=True)
            entry["time_to_result"] = {
                "exact_mean_escape_time": exact,
                "rows": run_time_to_result(problem, warmup_problem, args, args.skip_set, exact),
            }
            print_time_to_result(entry["time_to_result"]["rows"], exact)
    if args.output:
        path = pathlib.Path(args.output)
    else:
        kind = device.device_kind.replace(" ", "_").lower()
        path = pathlib.Path(__file__).parent / "results" / f"peers-{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    sys.exit(main())
