"""Accelerator check: one command that measures and records what a GPU run of jaxescape must show.

Sections, each timed and run under try/except (one failing section does not lose the others;
the JSON and the Markdown table are rewritten after every section, so a run stopped at its time
limit keeps what it finished):

- `noise_bits`: jaxescape's counter-based Threefry words (`_noise.threefry_2x32`), the float32
  uniforms made from them and the normals (`normal_from_uniform`) for one fixed key over 2^16
  counters, plus `jax.random.bits` and `jax.random.normal`, as SHA-256 digests; compared with the
  stored CPU digests bit for bit.
- `engine_1d`: particle-steps per second of `simulate_chunks` (escape detection, crossing
  correction) on the 1-D problem of `peers.py` at ΔL/T = 20 (nobody escapes: the work is N·S),
  from 10^7 to 10^8 particles, next to the device's own RNG floor (`jax.random.normal`) in the
  same run, and their ratio; once more at the largest N with a 2^26-particle chunk and the 2^22
  pool. Target on an H100/H200: >= 10^10 particle-steps/s.
- `engine_10d`: the same for the 10-D well of `peers.py`.
- `escape_times`: wall time to 10^6 escape times (`peers.py`'s time-to-result problem, ΔL/T = 3).
- `noise_models`: SDE particles with Xie / Mori / Meng noise (`jaxescape.theories`).
- `sgd`: real SGD particles (`MinibatchSGD`): throughput of `sgd_throughput.py`'s problem and the
  mean escape time from Meng et al.'s double well.
- `network_sgd`: network particles (`NetworkModel`, an MLP on scikit-learn's wine set), with
  the default step block and with the earlier 2^18.
- `splitting`: `estimate_escape_time` at ΔL/T = 30 against the exact quadrature.
- `default_experiment`: `run_kramers_experiment` with the default configuration.
- `pool_sizes`: time to 10^6 escape times with the default pool and with 2^18 and 2^20 slots
  (the 1/16 rule's pool for 10^6 particles: benchmarks/README.md §8); the
  escape steps must be identical for every pool.
- `network_breakdown`: the mori MLP of `network_throughput.py` (8192 networks, 128 steps)
  through `simulate`, `simulate` with one pool of N, jaxescape's update without the driver, and
  the hand-written loop (what the H200 run left unexplained: benchmarks/README.md §10).
- `pool_loop`: µs per 1-D pool step with the round's step count traced (as the driver ran it
  before the second H200 lease), static (as it runs it now), and the bare step loop, at 2^16
  to 2^22 slots (benchmarks/README.md §8).
- `step_blocks`: the mori MLP through one pool of 2^14 slots stepped in blocks of 2^10, 2^12
  and 2^14 (one batch): the cost of the fixed step block (`default_step_block`).
- `fixed_costs`: the 1-D engine and the mori MLP at two run lengths: the marginal per-step
  rate and the per-run fixed cost (transfers, harvests), against the update in a bare loop.
- `pool_invariance`: the mori MLP (stepped in blocks) and the 1-D problem (one batch) at two
  pool sizes: the positions must be bit-identical (tests/test_pool_invariance.py on a CPU).
- `small_runs`: the digits MLP at 2^10, 2^13 and 2^16 networks through `simulate` with the
  default step block and with the earlier 2^15, against the hand-written loop: a pool is at
  least one block, so a block larger than the run steps empty slots.
- `host_copies`: GB/s of copying 8192 mori networks' parameters (577 MB) to the host:
  `simulate`'s `host_copy`, `np.asarray`, and through the device's pinned host memory.
- `memory_traffic`: the device-memory bandwidth, and for the digits and mori MLPs the bytes a
  particle-step moves (XLA's cost model of the compiled step), the memory roofline they set,
  and the hand-written loop and jaxescape's update as fractions of it.
- `compiled_programs`: the optimised XLA programs of the 1-D and the mori pools, written as text
  next to the JSON, with their kernel counts (is the 1-D step one kernel on the device?).

**Agreement with the CPU.** Every mean escape time is compared with the CPU value stored in
`benchmarks/results/accelerator_check-cpu-reference.json` for the same sizes (`--save-reference`
on a CPU writes it): z = (mean − mean_cpu)/sqrt(SE² + SE_cpu²), agreement when |z| <= 1. Both
runs use the same key, so particle i is the same particle: the two means differ only where the
backends round differently, far less than one standard error.

**Bit-identity across backends is not expected in general.** XLA's GPU and CPU backends fuse
and round float32 arithmetic differently (their log, exp and erfinv implementations differ, and
fused multiply-adds change the last bit), so a position, and rarely an escape step, can differ.
The Threefry words are integer operations (additions, rotations, xors) and must be identical on
every backend, and so must the uniforms made from them (mantissa bits with exponent 1, minus 1:
exact); `noise_bits` checks both. Whole-run digests are recorded with each estimate and reported
as `bit_identical`, for information. The CPU reference was recorded with one jax version; the
device may have another (the figures name both).

Usage:
    python benchmarks/accelerator_check.py [--output DIR] [--smoke] [--only a,b] [--time-limit S]
    python benchmarks/accelerator_check.py --save-reference [--smoke] --only ...   (on a CPU)
On the device (jax preinstalled there): `PYTHONPATH=. python3 benchmarks/accelerator_check.py`.
`--smoke` runs tiny sizes on a CPU in under a minute (tests/test_accelerator_check.py).
Writes DIR/accelerator_check-<device>.json and .md (benchmarks/README.md, "Accelerator check").
"""

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import math
import pathlib
import sys
import tempfile
import time
import traceback

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import jaxescape as jxe
import peers
import sgd_throughput
from engine_throughput import processor_name
from jaxescape import _noise, theories
from jaxescape._experiments.config import ExperimentConfig
from jaxescape._experiments.kramers import run_kramers_experiment


HERE = pathlib.Path(__file__).parent
REFERENCE = HERE / "results" / "accelerator_check-cpu-reference.json"
TARGET_PARTICLE_STEPS_PER_SECOND = 1e10  # 1-D Langevin with escape detection, H100/H200
NOISE_COUNTERS = 2**16  # counters of the noise_bits section (the same in every size)
NORMALS_KEPT = 256  # normals stored in the reference, to measure a difference in ulps
SIZES = {
    "full": dict(
        particles_1d=[10**7, 3 * 10**7, 10**8], particles_10d=[10**6, 10**7], steps=256,
        repeats=2, tuned=dict(chunk_size=2**26, num_slots=2**22), escapes=10**6,
        noise_model_particles=10**5, sgd_replacement=(False, True),
        sgd_throughput_particles=10**6, sgd_steps=100,
        sgd_particles=10**5, network_particles=10**6, splitting_replicas=400, splitting_runs=16,
        experiment_particles=10**6, time_limit=420, reserve_after_engine=200,
        pool_particles=10**6, pool_slots=[2**18, 2**20], breakdown_particles=8192,
        breakdown_steps=128, loop_slots=[2**16, 2**20, 2**22], loop_rounds=8,
        invariance_steps=64, invariance_blocks=8, block_particles=2**14,
        block_sizes=[2**10, 2**12, 2**14], mori_hidden=(100, 100),
        fixed_particles_1d=2**24, fixed_steps=[256, 1024],
        small_run_particles=[2**10, 2**13, 2**16], small_run_steps=256, earlier_block=2**15,
        network_earlier_block=2**18,
        host_copy_shape=(8192, 17610), traffic_particles=[2**13, 2**16], traffic_steps=256,
    ),
    "smoke": dict(
        # One chunk shape (2^12 particles, 2^8 slots) for every 1-D run: one compilation.
        particles_1d=[2**12], particles_10d=[2**10], steps=32, repeats=1,
        tuned=dict(chunk_size=2**12, num_slots=2**8), escapes=2**12, noise_model_particles=200,
        sgd_replacement=(True,), sgd_throughput_particles=2**10, sgd_steps=20, sgd_particles=200,
        network_particles=64,
        splitting_replicas=20, splitting_runs=4, experiment_particles=2**12, time_limit=600,
        reserve_after_engine=0, pool_particles=2**12, pool_slots=[2**9], breakdown_particles=64,
        breakdown_steps=4, loop_slots=[2**8], loop_rounds=2,
        # The mori sections' MLP shrunk to one hidden layer of 8 units: the code, not the size.
        invariance_steps=4, invariance_blocks=2, block_particles=2**8, block_sizes=[2**3, 2**8],
        mori_hidden=(8,),
        fixed_particles_1d=2**12, fixed_steps=[32, 64],
        small_run_particles=[2**6, 2**8], small_run_steps=8, earlier_block=2**8,
        network_earlier_block=2**6,
        host_copy_shape=(64, 17610), traffic_particles=[2**6], traffic_steps=4,
    ),
}


# ----------------------------------------------------------------------------------------------
# Helpers


def digest(*arrays) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array))
        hasher.update(str(array.dtype).encode() + array.tobytes())
    return hasher.hexdigest()[:24]


def estimate(times, exact=None, arrays=()) -> dict:
    """Mean escape time ± SE of fully escaped particles, with the run's digest."""
    mean, standard_error = jxe.mean_escape_time(np.asarray(times, np.float64))
    row = dict(mean=mean, standard_error=standard_error, particles=int(np.size(times)),
               digest=digest(*arrays) if arrays else None)
    if exact is not None:
        row.update(exact=exact, z_exact=(mean - exact) / standard_error)
    return row


def result_estimate(result, exact=None) -> dict:
    if result.censored.any() or result.diverged.any():
        raise RuntimeError(f"{int(result.censored.sum())} censored and "
                           f"{int(result.diverged.sum())} diverged particles: no mean")
    return estimate(result.escape_time, exact, (result.escape_step, result.position))


def chunked_work(dynamics, criterion, start, num_particles, steps, **options):
    """A zero-argument run of `simulate_chunks` that returns the particle-steps done (counted)
    and the escapes; each chunk is reduced as it arrives, as for 10^8 particles one would."""

    def run():
        work = escapes = 0
        for _, chunk in jxe.simulate_chunks(
            dynamics, criterion, start, jr.key(0), num_particles=num_particles, dt=peers.DT,
            max_steps=steps, **options,
        ):
            work += int(chunk.escape_step.sum(dtype=np.int64))
            escapes += int(chunk.escaped.sum())
        return work, escapes

    return run


def rate_row(function, repeats) -> dict:
    seconds, (work, escapes), compile_seconds = peers.best_time(function, repeats)
    return dict(seconds=seconds, particle_steps=work, escapes=escapes,
                particle_steps_per_second=work / seconds, compile_seconds_in_timing=compile_seconds)


class Clock:
    """Seconds left of the run's time limit; a section asks before each expensive step. Also
    names the run's output folder (`output`), for sections that write files of their own."""

    def __init__(self, limit, output=None):
        self.limit, self.start, self.output = limit, time.perf_counter(), output

    def left(self, reserve=0.0):
        """Seconds left, less `reserve` kept for the sections after this one."""
        return self.limit - reserve - (time.perf_counter() - self.start)


@contextlib.contextmanager
def forced_step_block(block: int):
    """Every blocked process steps in blocks of `block` slots inside the `with` (the block is
    read when a pool is traced: compilations are cleared on entry and exit)."""
    from jaxescape import _particle

    saved = _particle.default_step_block
    _particle.default_step_block = lambda dim: block
    jax.clear_caches()
    try:
        yield
    finally:
        _particle.default_step_block = saved
        jax.clear_caches()


def device_memory() -> dict:
    stats = jax.devices()[0].memory_stats() or {}
    return {name: stats[name] for name in ("bytes_limit", "peak_bytes_in_use") if name in stats}


# ----------------------------------------------------------------------------------------------
# Sections: each takes (sizes, clock) and returns a dict with "figures" (name -> number, for the
# table) and optionally "estimates" (name -> mean ± SE, compared with the CPU reference).


def noise_bits(sizes, clock):
    keys = _noise.stream_keys(jr.key(0), 1)
    counters = jnp.arange(NOISE_COUNTERS, dtype=jnp.uint32)

    @jax.jit
    def draw(keys, counters):
        high, low = _noise.threefry_2x32(keys[0, 0], keys[0, 1], counters // 256, counters)
        uniforms = _noise.uniform_from_words(high, jnp.float32)
        return high, low, uniforms, _noise.normal_from_uniform(uniforms)

    high, low, uniforms, normals = jax.device_get(draw(keys, counters))
    bits = jax.device_get(jr.bits(jr.key(0), (NOISE_COUNTERS,), jnp.uint32))
    jax_normals = jax.device_get(jr.normal(jr.key(0), (NOISE_COUNTERS,), jnp.float32))
    digests = {"threefry_words": digest(high, low), "uniforms": digest(uniforms),
               "normals": digest(normals), "jax_random_bits": digest(bits),
               "jax_random_normal": digest(jax_normals)}
    return dict(digests=digests, normals_head=[float(x) for x in normals[:NORMALS_KEPT]],
                figures={"counters": NOISE_COUNTERS})


def compare_noise_bits(section, reference):
    """Bit-for-bit comparison with the CPU digests; normals also in ulps (first 256)."""
    if not reference.get("noise_bits"):
        return {"note": "no CPU reference"}
    stored = reference["noise_bits"]
    same = {name: value == stored["digests"].get(name)
            for name, value in section["digests"].items()}
    ours = np.asarray(section["normals_head"], np.float32)
    theirs = np.asarray(stored["normals_head"], np.float32)
    ulps = np.abs(ours.view(np.int32).astype(np.int64) - theirs.view(np.int32).astype(np.int64))
    return {"identical": same, "normals_max_ulps": int(ulps.max()),
            "expected_identical": ["threefry_words", "uniforms", "jax_random_bits"]}


def engine_rows(problem_name, particle_counts, sizes, clock, tuned_at_largest):
    """RNG floor and engine throughput for each N that fits in the time left."""
    problem = peers.make_problem(problem_name, peers.THROUGHPUT_BARRIER_RATIO)
    steps, repeats = sizes["steps"], sizes["repeats"]
    reserve = sizes["reserve_after_engine"]
    rows, figures, rate = [], {}, None
    for count in particle_counts:
        # Warm-up plus repeats of the floor and the engine, at the last measured rate.
        needed = 2.5 * (repeats + 1) * count * steps / rate if rate else 0.0
        if needed > clock.left(reserve):
            rows.append(dict(particles=count, skipped=f"needs ~{needed:.0f} s, "
                                                      f"{clock.left(reserve):.0f} s left"))
            continue
        floor = rate_row(peers.throughput_rng_floor(problem, count, steps), repeats)
        engine = rate_row(chunked_work(problem.dynamics, problem.criterion, problem.start, count,
                                       steps), repeats)
        if engine["escapes"]:
            raise RuntimeError(f"{engine['escapes']} escapes at ΔL/T = 20: the work is not N·S")
        rate = engine["particle_steps_per_second"]
        ratio = rate / floor["particle_steps_per_second"]
        rows.append(dict(particles=count, rng_floor=floor, jaxescape=engine,
                         ratio_to_rng_floor=ratio))
        figures[f"N={count:.0e} M/s"] = rate / 1e6
        figures[f"N={count:.0e} / RNG floor"] = ratio
    measured = [row for row in rows if "jaxescape" in row]
    if tuned_at_largest and measured:
        count = measured[-1]["particles"]
        if 1.5 * (repeats + 1) * count * steps / rate < clock.left(reserve):
            tuned = rate_row(chunked_work(problem.dynamics, problem.criterion, problem.start,
                                          count, steps, **sizes["tuned"]), repeats)
            rows.append(dict(particles=count, options=sizes["tuned"], jaxescape=tuned))
            figures[f"N={count:.0e} chunk {sizes['tuned']['chunk_size']:.0e} M/s"] = (
                tuned["particle_steps_per_second"] / 1e6
            )
    if not measured:
        raise RuntimeError("no size fitted in the time left")
    best = max(row["jaxescape"]["particle_steps_per_second"] for row in rows if "jaxescape" in row)
    return dict(problem=problem_name, steps=steps, rows=rows, best_particle_steps_per_second=best,
                figures=figures)


def engine_1d(sizes, clock):
    section = engine_rows("1d", sizes["particles_1d"], sizes, clock, tuned_at_largest=True)
    section["target_particle_steps_per_second"] = TARGET_PARTICLE_STEPS_PER_SECOND
    section["meets_target"] = section["best_particle_steps_per_second"] >= (
        TARGET_PARTICLE_STEPS_PER_SECOND
    )
    return section


def engine_10d(sizes, clock):
    return engine_rows("10d", sizes["particles_10d"], sizes, clock, tuned_at_largest=False)


def escape_times(sizes, clock):
    """Wall time to N escape times (warm-up at twice the temperature excluded)."""
    ratio, count = 3.0, sizes["escapes"]
    problem, warm_up = peers.make_problem("1d", ratio), peers.make_problem("1d", ratio / 2)
    timer, output = peers.ttr_jaxescape(problem, warm_up, count, 2**20, True, 0)
    if output["censored"].any():
        raise RuntimeError("censored particles: raise max_steps")
    steps = output["escape_step"]
    row = estimate(steps * peers.DT, peers.exact_mean_escape_time(problem), (steps,))
    return dict(seconds=timer.seconds, compile_seconds=timer.compile_seconds,
                useful_particle_steps_per_second=float(steps.sum()) / timer.seconds,
                estimates={"1d": row},
                figures={"escape times": count, "wall s": timer.seconds,
                         "useful M/s": float(steps.sum()) / timer.seconds / 1e6})


def noise_models(sizes, clock):
    """1-D double well with the papers' SGD noise; dt = 0.02, means of ~2500–5600 steps."""
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    criterion = jxe.past_saddle(landscape)
    models = {
        "xie": theories.XieSGDNoise(landscape, 0.1, 0.6),
        "mori": theories.MoriLossNoise(theories.LossOffset(landscape, 0.1), 0.1, 0.5),
        "meng": theories.MengPowerLawNoise(landscape, 0.5, 1.0, 0.5),
    }
    estimates, figures = {}, {}
    for name, dynamics in models.items():
        with peers.Timer() as timer:
            result = jxe.simulate(dynamics, criterion, landscape.minimum(), jr.key(1),
                                  num_particles=sizes["noise_model_particles"], dt=0.02)
        estimates[name] = result_estimate(result)
        estimates[name].update(seconds=timer.seconds, compile_seconds=timer.compile_seconds)
        figures[f"{name} M/s (incl. compile)"] = result.escape_step.sum() / timer.seconds / 1e6
    return dict(estimates=estimates, figures=figures)


def sgd(sizes, clock):
    """Throughput of sgd_throughput.py's problem, and escapes from Meng's double well."""
    data = jxe.gaussian_regression_data(jr.key(0), sgd_throughput.NUM_SAMPLES,
                                        sgd_throughput.DIMENSION)
    figures, rates = {}, {}
    for replacement in sizes["sgd_replacement"]:
        name = "with replacement" if replacement else "per-epoch shuffling"
        rate, _ = sgd_throughput.jaxescape_rate(data, sizes["sgd_throughput_particles"],
                                                sizes["sgd_steps"], replacement)
        rates[name] = rate
        figures[f"{name} M/s"] = rate / 1e6
    meng = jxe.meng_data(jr.key(0))
    shift = float(jxe.meng_shift_for_barrier(meng, 0.05))
    inputs, targets = np.asarray(meng.inputs, np.float64), np.asarray(meng.targets, np.float64)
    optimum = float(np.mean(inputs * targets) / np.mean(inputs**2))
    minimum, top = -shift - optimum, shift + optimum
    particle = jxe.MinibatchSGD(jxe.MengDoubleWell(shift), meng, batch_size=10,
                                learning_rate=0.1, replacement=True)
    criterion = jxe.HalfSpace(jnp.array([1.0]), top + 0.5 * (top - minimum))
    with peers.Timer() as timer:
        result = jxe.simulate(particle, criterion, jnp.array([minimum], meng.inputs.dtype),
                              jr.key(2), num_particles=sizes["sgd_particles"], max_steps=10**6)
    row = result_estimate(result)
    row.update(seconds=timer.seconds, compile_seconds=timer.compile_seconds)
    figures["Meng escape wall s"] = timer.seconds
    return dict(throughput=rates, estimates={"meng_double_well": row}, figures=figures)


def network_sgd(sizes, clock):
    """Network particles: an MLP (13-8-3, 139 parameters) trained on scikit-learn's wine set
    (cross-entropy, B = 16, η = 0.1, as in tests/test_networks.py); compilation excluded. Then
    the same run stepped in blocks of `network_earlier_block` slots (2^18: the block of the
    2^27-coordinate rule before the H100 lease; `default_step_block` now gives 2^16)."""
    import equinox as eqx

    from jaxescape import _particle

    wine = jxe.load_sklearn_dataset("wine", jr.key(0))
    model = jxe.NetworkModel(eqx.nn.MLP(13, 3, 8, 1, key=jr.key(1)), loss="cross_entropy")
    particle = jxe.MinibatchSGD(model, wine.train, batch_size=16, learning_rate=0.1)
    count, steps = sizes["network_particles"], sizes["sgd_steps"]

    def run(num_steps):
        return jxe.simulate(particle, jxe.NeverEscape(), model.initial_parameters, jr.key(3),
                            num_particles=count, max_steps=num_steps)

    run(steps)  # compiles (check_every follows max_steps: warm up at the timed length)
    with peers.Timer() as timer:
        result = run(steps)
    accuracy = jxe.evaluate_particles(model, result.position[:1000], wine.train).accuracy
    rate = count * steps / timer.seconds
    figures = {"M/s": rate / 1e6, "mean train accuracy": float(np.mean(accuracy)),
               "block": _particle.default_step_block(model.num_parameters)}
    earlier = sizes["network_earlier_block"]
    if clock.left() > 30:
        with forced_step_block(earlier):
            run(steps)
            with peers.Timer() as earlier_timer:
                run(steps)
        figures[f"block 2^{earlier.bit_length() - 1} M/s"] = (
            count * steps / earlier_timer.seconds / 1e6)
    return dict(particles=count, steps=steps, seconds=timer.seconds,
                compile_seconds=timer.compile_seconds, particle_steps_per_second=rate,
                figures=figures)


def splitting(sizes, clock):
    """`estimate_escape_time` at ΔL/T = 30 (warm-up with another key, not timed)."""
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    criterion = jxe.past_saddle(landscape)
    dynamics = jxe.OverdampedLangevin(landscape, 1 / 30)
    exact = jxe.exact_mfpt(dynamics, 0.0, reflecting=-2 * float(landscape.saddle()[0]),
                           absorbing=float(criterion.offset))
    options = dict(dt=0.01, num_replicas=sizes["splitting_replicas"],
                   num_runs=sizes["splitting_runs"])
    jxe.estimate_escape_time(dynamics, criterion, landscape.minimum(), jr.key(1), **options)
    with peers.Timer() as timer:
        result = jxe.estimate_escape_time(dynamics, criterion, landscape.minimum(), jr.key(0),
                                          **options)
    row = dict(mean=result.mean_escape_time, standard_error=result.standard_error,
               particles=options["num_replicas"] * options["num_runs"], exact=exact,
               z_exact=(result.mean_escape_time - exact) / result.standard_error,
               digest=digest(np.float64(result.mean_escape_time), result.run_probabilities))
    return dict(seconds=timer.seconds, particle_steps=result.cost, estimates={"ratio_30": row},
                figures={"wall s": timer.seconds, "estimate / exact": row["mean"] / exact,
                         "(est - exact)/SE": row["z_exact"]})


def default_experiment(sizes, clock):
    """`run_kramers_experiment` with the default configuration (particles per level: `sizes`)."""
    with tempfile.TemporaryDirectory() as folder:
        config = ExperimentConfig(particles=sizes["experiment_particles"], progress=False,
                                  output=str(pathlib.Path(folder) / "run"))
        summary = run_kramers_experiment(config, stream=io.StringIO())
        with np.load(pathlib.Path(summary["run_directory"]) / "escape_times.npz") as arrays:
            digests = {level["index"]: digest(arrays[f"level{level['index']}_escape_step"])
                       for level in summary["levels"]}
    estimates, figures = {}, {"total wall s": summary["total_wall_time_s"]}
    for level in summary["levels"]:
        name = f"dL/T={level['barrier_over_temperature']:.3g}"
        if level["num_censored"] or level["num_diverged"]:
            raise RuntimeError(f"{name}: censored or diverged particles")
        estimates[name] = dict(
            mean=level["mfpt"], standard_error=level["mfpt_standard_error"],
            particles=level["num_particles"], exact=level["exact_mfpt"],
            z_exact=level["deviation_in_standard_errors"], digest=digests[level["index"]],
            seconds=level["wall_time_s"],
        )
        figures[f"{name} wall s"] = level["wall_time_s"]
    return dict(estimates=estimates, figures=figures)


def pool_sizes(sizes, clock):
    """Time to N escape times (`escape_times`' problem) with the default pool (the 1/16 rule of
    `initial_pool_size`) and with larger pools set by hand; the escape steps must be the same
    for every pool (the numbers never depend on it), and are checked here on the device."""
    ratio, count = 3.0, sizes["pool_particles"]
    problem, warm_up = peers.make_problem("1d", ratio), peers.make_problem("1d", ratio / 2)
    figures, rows, digests = {}, [], set()
    for slots in [None, *sizes["pool_slots"]]:
        def run(p, key):
            return jxe.simulate(p.dynamics, p.criterion, p.start, key, num_particles=count,
                                dt=peers.DT, max_steps=2**20, num_slots=slots)

        run(warm_up, jr.key(1000))  # compiles (same shapes, another temperature)
        with peers.Timer() as timer:
            result = run(problem, jr.key(0))
        if result.censored.any():
            raise RuntimeError("censored particles: raise max_steps")
        digests.add(digest(result.escape_step))
        name = "default pool" if slots is None else f"pool 2^{slots.bit_length() - 1}"
        rows.append(dict(num_slots=slots, seconds=timer.seconds,
                         compile_seconds=timer.compile_seconds))
        figures[f"{name} wall s"] = timer.seconds
    if len(digests) != 1:
        raise RuntimeError(f"the escape steps differ between pool sizes: {sorted(digests)}")
    figures["same escape steps"] = 1
    return dict(particles=count, rows=rows, figures=figures)


def network_breakdown(sizes, clock):
    """network_throughput.py's mori MLP (64-100-100-10, B = 32) on digits, taken apart: the
    driver (`simulate`, with replacement), the driver with one pool of N, jaxescape's update
    without the driver, and the hand-written loop; particle-steps per second, best of two."""
    import network_throughput as network

    count, steps = sizes["breakdown_particles"], sizes["breakdown_steps"]
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = network.make_model(sizes["mori_hidden"], "mse")
    runners = {
        "simulate": network.jaxescape_runner(model, data, count, True, steps=steps),
        "simulate, one pool": network.jaxescape_runner(model, data, count, True,
                                                       num_slots=count, steps=steps),
        "update in loop": network.step_loop_runner(model, data, count),
        "hand-written loop": network.vmap_runner(model, data, count),
    }
    figures = {}
    for name, (run, work) in runners.items():
        seconds = min(network.timed(lambda: run(steps)) for _ in range(2))
        figures[f"{name} M/s"] = work(steps) / seconds / 1e6
    return dict(particles=count, steps=steps, figures=figures)


def step_blocks(sizes, clock):
    """The step block's cost on the device: the mori MLP of `network_breakdown` (SGD with
    replacement, B = 32) through `simulate` with every slot in one pool of `block_particles`,
    stepped in blocks of each size of `block_sizes` (the last, the whole pool: one batch);
    particle-steps per second, best of two, and the particles whose positions differ from the
    first block's (the device's rounding by batch shape). `default_step_block` is the block
    this measures (`jaxescape/_particle.py`)."""
    import network_throughput as network

    from jaxescape import _particle

    count, steps = sizes["block_particles"], sizes["breakdown_steps"]
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = network.make_model(sizes["mori_hidden"], "mse")
    saved = (_particle.STEP_BLOCK_CPU, _particle.ACCELERATOR_BLOCK_RANGE)
    figures, first = {}, None
    try:
        for block in sizes["block_sizes"]:
            if clock.left() < 30:
                break
            _particle.STEP_BLOCK_CPU, _particle.ACCELERATOR_BLOCK_RANGE = block, (block, block)
            jax.clear_caches()  # the block is read when the pool is traced
            run, work = network.jaxescape_runner(model, data, count, True, num_slots=count,
                                                 steps=steps)
            seconds = min(network.timed(lambda: run(steps)) for _ in range(2))
            positions = np.asarray(run(steps))
            first = positions if first is None else first
            figures[f"block 2^{block.bit_length() - 1} M/s"] = work(steps) / seconds / 1e6
            figures[f"block 2^{block.bit_length() - 1} particles differing"] = int(
                np.sum(np.any(positions != first, axis=1)))
    finally:
        _particle.STEP_BLOCK_CPU, _particle.ACCELERATOR_BLOCK_RANGE = saved
        jax.clear_caches()
    return dict(particles=count, steps=steps, figures=figures)


def fixed_costs(sizes, clock):
    """Per-step rate and per-run fixed cost, from two run lengths S1 < S2 of the same N: the
    marginal rate N·(S2 − S1)/(t2 − t1) and the intercept t1 − N·S1/rate (transfers to the
    host, the first harvest, result assembly), for the 1-D engine (`simulate_chunks`, as
    `engine_1d`) and the mori MLP (`simulate`, as `network_breakdown`, with and without
    positions, against jaxescape's update in the hand-written loop). Tells a per-step gap from
    a per-run one, and how much of the latter is the copy of the parameters to the host."""
    import network_throughput as network

    problem = peers.make_problem("1d", peers.THROUGHPUT_BARRIER_RATIO)
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = network.make_model(sizes["mori_hidden"], "mse")
    count_1d, count_mori = sizes["fixed_particles_1d"], sizes["breakdown_particles"]
    short, long = sizes["fixed_steps"]
    runners = {
        "1-D simulate_chunks": (count_1d, lambda steps: chunked_work(
            problem.dynamics, problem.criterion, problem.start, count_1d, steps)),
        "mori simulate": (count_mori, lambda steps: (lambda run: lambda: run(steps))(
            network.jaxescape_runner(model, data, count_mori, True, steps=steps)[0])),
        "mori simulate, without positions": (count_mori, lambda steps: (
            lambda run: lambda: run(steps))(network.jaxescape_runner(
                model, data, count_mori, True, steps=steps, keep_positions=False)[0])),
        "mori update in loop": (count_mori, lambda steps: (lambda run: lambda: run(steps))(
            network.step_loop_runner(model, data, count_mori)[0])),
    }
    figures = {}
    for name, (count, make) in runners.items():
        if clock.left() < 30:
            break
        times = {}
        for steps in (short, long):
            function = make(steps)
            function()  # compile
            times[steps] = min(network.timed(function) for _ in range(2))
        rate = count * (long - short) / (times[long] - times[short])
        figures[f"{name}: marginal M/s"] = rate / 1e6
        figures[f"{name}: fixed s"] = times[short] - count * short / rate
        figures[f"{name}: M/s at {long} steps"] = count * long / times[long] / 1e6
    return dict(steps=[short, long], figures=figures)


def pool_invariance(sizes, clock):
    """Same key, same numbers at two pool sizes on the device: the mori MLP of
    `network_breakdown` on digits (SGD, B = 32: a contraction, stepped in blocks of
    `step_block`) and the 1-D Langevin problem (elementwise, one batch), NeverEscape,
    `invariance_steps` steps; the positions must be bit-identical between the pools."""
    import network_throughput as network

    from jaxescape._particle import default_step_block

    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = network.make_model(sizes["mori_hidden"], "mse")
    problem = peers.make_problem("1d", peers.THROUGHPUT_BARRIER_RATIO)
    block = default_step_block(model.initial_parameters.shape[0])
    steps = sizes["invariance_steps"]
    cases = {
        "mori MLP": (jxe.MinibatchSGD(model, data, batch_size=network.BATCH,
                                      learning_rate=network.LEARNING_RATE, replacement=True),
                     model.initial_parameters, 1.0, [block, sizes["invariance_blocks"] * block]),
        "1-D Langevin": (problem.dynamics, jnp.asarray(problem.start), peers.DT, [2**10, 2**16]),
    }
    figures = {"step block": block}
    for name, (process, start, dt, pools) in cases.items():
        positions = [np.asarray(jxe.simulate(
            process, jxe.NeverEscape(), start, jr.key(9), num_particles=pools[-1],
            num_slots=slots, max_steps=steps, dt=dt).position) for slots in pools]
        differing = int(np.sum(np.any(positions[0] != positions[1], axis=1)))
        figures[f"{name}: particles differing between {pools[0]} and {pools[1]} slots"] = differing
        if differing:
            raise RuntimeError(f"{name}: {differing} particles differ between pools {pools}")
    return dict(steps=steps, figures=figures)


def pool_loop(sizes, clock):
    """Where a 1-D pool step's time goes (`engine_1d`'s problem at ΔL/T = 20: nobody escapes, so
    every slot steps every step): µs per pool step of `advance_chunk` with the round's step
    count `check_every` traced (a loop whose trip count the device knows only at run time, as
    the driver compiled it before the second H200 lease), the same with `check_every` static
    (a loop of known trip count, as the driver compiles it now), and the bare step loop
    (`lax.fori_loop` of the vmapped step over static 256 steps, no harvests, no status
    bookkeeping), at each pool size. The static variant minus the last is what the pool's
    bookkeeping costs (benchmarks/README.md §8)."""
    from jax import lax

    from jaxescape._engine.pool import Slots, advance_chunk, empty_buffers, empty_slots, slot_step
    from jaxescape._particle import StepOptions

    problem = peers.make_problem("1d", peers.THROUGHPUT_BARRIER_RATIO)
    process, start = problem.dynamics, jnp.asarray(problem.start)
    options = StepOptions(True, "gaussian")
    initial_state = process.initial_state(start)
    keys = _noise.stream_keys(jr.key(0), process.num_streams(1, start.dtype))
    check_every, rounds = 32, sizes["loop_rounds"]
    constants = (process, [problem.criterion], initial_state, keys,
                 jnp.asarray(peers.DT, start.dtype), jnp.int32(2**30))

    @jax.jit
    def traced(slots, buffers, check_every):
        return advance_chunk(constants, jnp.int32(slots.step.shape[0]), jnp.uint32(0), slots,
                             buffers, jnp.int32(0), jnp.int32(rounds), check_every, options)

    @jax.jit
    def static(slots, buffers):
        return advance_chunk(constants, jnp.int32(slots.step.shape[0]), jnp.uint32(0), slots,
                             buffers, jnp.int32(0), jnp.int32(rounds), check_every, options)

    @jax.jit
    def bare(slots):
        step_all = jax.vmap(slot_step(*constants[:2], keys, constants[4], constants[5], options,
                                      jnp.uint32(0)))
        return lax.fori_loop(0, rounds * check_every,
                             lambda _, slots: Slots(*step_all(*slots)), slots)

    figures, rows = {}, []
    for count in sizes["loop_slots"]:
        if clock.left() < 30:
            break
        slots = empty_slots(count, initial_state)
        buffers = empty_buffers(count, 1, start.dtype)
        # Every slot running from the start, for the bare loop (the driver's first harvest
        # does the same for the other two).
        running = slots._replace(particle=jnp.arange(count, dtype=jnp.int32),
                                 status=jnp.zeros(count, jnp.int8))
        variants = {"traced check_every": lambda: traced(slots, buffers, jnp.int32(check_every)),
                    "static check_every": lambda: static(slots, buffers),
                    "bare step loop": lambda: bare(running)}
        row = dict(slots=count, steps=rounds * check_every)
        for name, function in variants.items():
            seconds, _, _ = peers.best_time(function, sizes["repeats"] + 1)
            row[name] = seconds / (rounds * check_every) * 1e6
            figures[f"2^{count.bit_length() - 1} slots, {name} µs/step"] = row[name]
        rows.append(row)
    return dict(check_every=check_every, rows=rows, figures=figures)


def compiled_programs(sizes, clock):
    """The optimised XLA programs of two pools, written to the output folder as text
    (`compiled-1d.hlo.txt`, `compiled-mori.hlo.txt`) to be read off the device: the 1-D
    Langevin pool of `engine_1d` (with the crossing correction) and the mori MLP's SGD pool of
    `network_breakdown`, each `advance_chunk` over 256 slots (or four step blocks) with 32 steps
    a round, static, as the driver compiles it. Figures: the program's kernel
    launches as XLA counts them (`fusion`, `custom-call` and library calls outside fused
    computations) and its size. The text shows whether the step is one kernel on the device
    (why the engine runs far below the GPU's RNG floor: benchmarks/README.md §8)."""
    import re

    import network_throughput as network

    from jaxescape._engine.pool import advance_chunk, empty_buffers, empty_slots
    from jaxescape._particle import StepOptions

    problem = peers.make_problem("1d", peers.THROUGHPUT_BARRIER_RATIO)
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = network.make_model(sizes["mori_hidden"], "mse")
    processes = {
        "1d": (problem.dynamics, [problem.criterion], jnp.asarray(problem.start), peers.DT,
               StepOptions(True, "gaussian")),
        "mori": (jxe.MinibatchSGD(model, data, batch_size=network.BATCH,
                                  learning_rate=network.LEARNING_RATE, replacement=True),
                 [jxe.NeverEscape()], model.initial_parameters, 1.0,
                 StepOptions(False, "gaussian")),
    }
    figures, files = {}, {}
    for name, (process, criteria, start, dt, options) in processes.items():
        # Four step blocks where the process has them: the block loop, and what XLA copies
        # around it, show (benchmarks/README.md §10, "Memory traffic").
        slots_count = max(256, 4 * (process.step_block(start.shape[0]) or 0))
        initial_state = process.initial_state(start)
        keys = _noise.stream_keys(jr.key(0), process.num_streams(start.shape[0], start.dtype))

        def advance(process, keys, slots, buffers, process_criteria=tuple(criteria),
                    initial_state=initial_state, dt=dt, options=options,
                    slots_count=slots_count):
            constants = (process, list(process_criteria), initial_state, keys,
                         jnp.asarray(dt, start.dtype), jnp.int32(256))
            return advance_chunk(constants, jnp.int32(slots_count), jnp.uint32(0), slots,
                                 buffers, jnp.int32(0), jnp.int32(8), 32, options)

        text = jax.jit(advance).lower(
            process, keys, empty_slots(slots_count, initial_state),
            empty_buffers(slots_count, start.shape[0], start.dtype)).compile().as_text()
        path = clock.output / f"compiled-{name}.hlo.txt"
        path.write_text(text)
        files[name] = path.name
        # Kernels: instructions outside fused computations that launch work on the device.
        outside = "\n".join(block for block in re.split(r"\n(?=\S)", text)
                            if not re.match(r"(%?fused_|%?region_\d+.*fusion)", block))
        figures[f"{name} kernels"] = len(re.findall(r"= [^=]*\b(fusion|custom-call)\(", outside))
        figures[f"{name} copies"] = len(re.findall(r"= [^=]*\bcopy\(", outside))
        figures[f"{name} HLO lines"] = text.count("\n")
    return dict(files=files, figures=figures)


def small_runs(sizes, clock):
    """Runs of fewer networks than a step block: the digits MLP of `network_throughput.py`
    (64-32-10, cross-entropy, B = 32, with replacement) through `simulate` at each count of
    `small_run_particles`, with the default step block and with `earlier_block` (2^15 slots,
    the block of the 2^27-coordinate rule before the H100 lease), against the hand-written
    loop over the same networks; particle-steps per second, best of two. A pool is at least
    one block, so a block larger than the run steps empty slots (benchmarks/README.md §8)."""
    import network_throughput as network

    from jaxescape import _particle

    steps = sizes["small_run_steps"]
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = network.make_model((32,), "cross_entropy")
    default_block = _particle.default_step_block(model.initial_parameters.shape[0])
    earlier = sizes["earlier_block"]
    figures = {"default block": default_block}
    for count in sizes["small_run_particles"]:
        if clock.left() < 30:
            break
        label = f"N=2^{count.bit_length() - 1}"
        runners = {"loop": lambda: network.vmap_runner(model, data, count),
                   "default block": lambda: network.jaxescape_runner(model, data, count, True,
                                                                     steps=steps)}
        for name, make in runners.items():
            run, work = make()
            seconds = min(network.timed(lambda: run(steps)) for _ in range(2))
            figures[f"{label} {name} M/s"] = work(steps) / seconds / 1e6
        with forced_step_block(earlier):
            run, work = network.jaxescape_runner(model, data, count, True, steps=steps)
            seconds = min(network.timed(lambda: run(steps)) for _ in range(2))
        figures[f"{label} block 2^{earlier.bit_length() - 1} M/s"] = work(steps) / seconds / 1e6
    return dict(steps=steps, figures=figures)


def host_copies(sizes, clock):
    """The copy of a run's final parameters to the host, which `fixed_costs` found to be most of
    a network run's fixed cost on the H100 (benchmarks/README.md §8, third lease):
    `simulate`'s own `host_copy` (`_engine/devices.py`: into one writable NumPy array) against
    `np.asarray` (read-only), and against a `jax.device_put` to the device's "pinned_host"
    memory first; a float32 array of `host_copy_shape` (8192 mori networks: 577 MB), made anew
    on the device for each copy (an array caches its host value); GB/s, best of three."""
    from jaxescape._engine.devices import host_copy

    shape = tuple(sizes["host_copy_shape"])
    make = jax.jit(lambda value: jnp.full(shape, value, jnp.float32))
    kinds = {memory.kind for memory in jax.devices()[0].addressable_memories()}

    def to_pinned(array):
        return np.asarray(jax.device_put(array, array.sharding.with_memory_kind("pinned_host")))

    copies = {"host_copy (simulate's)": host_copy, "np.asarray": np.asarray}
    if "pinned_host" in kinds:
        copies["pinned_host, then np.asarray"] = to_pinned
    figures = {"MB": 4 * math.prod(shape) / 1e6}
    for name, copy in copies.items():
        seconds = []
        for repeat in range(3):
            array = make(float(repeat)).block_until_ready()
            began = time.perf_counter()
            host = copy(array)
            seconds.append(time.perf_counter() - began)
            if host.shape != shape or host[0, 0] != repeat:
                raise RuntimeError(f"{name}: wrong copy")
        figures[f"{name} GB/s"] = 4 * math.prod(shape) / min(seconds) / 1e9
    return dict(shape=list(shape), figures=figures)


def memory_traffic(sizes, clock):
    """Are the network steps bound by device memory? The device's bandwidth (a streaming 2·x)
    and matmul rate, and for the digits and mori MLPs of `network_throughput.py` at each count
    of `traffic_particles`: the bytes a particle-step reads and writes as XLA's cost model
    counts them for this device's compiled step (`step_traffic`), the memory roofline
    bandwidth / bytes, and the hand-written loop and jaxescape's update in it, as fractions of
    that roofline (benchmarks/README.md §10)."""
    import network_throughput as network

    steps = sizes["traffic_steps"]
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    bandwidth, matmul = network.memory_bandwidth(), network.matmul_rate()
    figures = {"memory GB/s": bandwidth / 1e9, "matmul TFLOP/s": matmul / 1e12}
    for workload, hidden, loss in (("digits", (32,), "cross_entropy"),
                                   ("mori", sizes["mori_hidden"], "mse")):
        model = network.make_model(hidden, loss)
        for count in sizes["traffic_particles"]:
            if clock.left() < 30:
                break
            label = f"{workload} N=2^{count.bit_length() - 1}"
            traffic = network.step_traffic(model, data, count)
            bound = bandwidth / traffic["bytes_per_particle_step"]
            figures[f"{label} kB a particle-step"] = traffic["bytes_per_particle_step"] / 1e3
            figures[f"{label} memory bound M/s"] = bound / 1e6
            figures[f"{label} memory bound of matmul"] = (
                bound * network.flop_per_step(hidden) / matmul)
            for name, make in (("loop", network.vmap_runner),
                               ("update in the loop", network.step_loop_runner)):
                run, work = make(model, data, count)
                seconds = min(network.timed(lambda: run(steps)) for _ in range(2))
                figures[f"{label} {name} of memory bound"] = work(steps) / seconds / bound
    return dict(steps=steps, figures=figures)


SECTIONS = {
    "noise_bits": noise_bits, "engine_1d": engine_1d, "engine_10d": engine_10d,
    "escape_times": escape_times, "noise_models": noise_models, "sgd": sgd,
    "network_sgd": network_sgd, "splitting": splitting, "default_experiment": default_experiment,
    "pool_sizes": pool_sizes, "network_breakdown": network_breakdown,
    "pool_loop": pool_loop, "step_blocks": step_blocks, "fixed_costs": fixed_costs,
    "pool_invariance": pool_invariance, "small_runs": small_runs, "host_copies": host_copies,
    "memory_traffic": memory_traffic, "compiled_programs": compiled_programs,
}


# ----------------------------------------------------------------------------------------------
# Agreement with the CPU reference, and the record


def compare_estimates(estimates, stored) -> dict:
    """z = (mean − mean_cpu)/sqrt(SE² + SE_cpu²) per estimate of the same size."""
    agreement = {}
    for name, row in estimates.items():
        reference = stored.get(name)
        if reference is None or reference["particles"] != row["particles"]:
            agreement[name] = {"note": "no CPU reference at this size"}
            continue
        spread = math.hypot(row["standard_error"], reference["standard_error"])
        z = (row["mean"] - reference["mean"]) / spread if spread > 0 else 0.0
        agreement[name] = dict(cpu_mean=reference["mean"], cpu_standard_error=
                               reference["standard_error"], z=float(z), agree=bool(abs(z) <= 1),
                               bit_identical=row["digest"] == reference["digest"])
    return agreement


def environment() -> dict:
    device = jax.devices()[0]
    return dict(device_kind=device.device_kind, platform=device.platform,
                num_devices=jax.device_count(), processor=processor_name(),
                jax=jax.__version__, jaxlib=peers.version("jaxlib"), jaxescape=jxe.__version__,
                python=sys.version.split()[0], memory=device_memory(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(record) -> str:
    env = record["environment"]
    stored = record["reference"]
    if isinstance(stored, dict):
        stored = f"jax {stored['jax']} on {stored['processor']}, {stored['date']}"
    lines = [
        f"# Accelerator check ({record['size']})", "",
        f"{env['device_kind']} ({env['platform']}, {env['num_devices']} device(s)), "
        f"jax {env['jax']}, jaxescape {env['jaxescape']}, {env['date']}; CPU reference: "
        f"{stored}", "",
        "| section | status | s | figures | agreement with the CPU |",
        "|---|---|---|---|---|",
    ]
    for name, section in record["sections"].items():
        figures = "; ".join(f"{key} {_cell(value)}"
                            for key, value in section.get("figures", {}).items())
        agreement = section.get("agreement", {})
        if "note" in agreement:
            text = agreement["note"]
        elif name == "noise_bits":
            text = ", ".join(f"{key} {'=' if same else '≠'}"
                             for key, same in agreement["identical"].items())
            text += f"; normals ≤ {agreement['normals_max_ulps']} ulp"
        else:
            text = "; ".join(
                f"{key}: z {value['z']:+.2f}{' (bits =)' if value['bit_identical'] else ''}"
                if "z" in value else f"{key}: {value['note']}" for key, value in agreement.items()
            )
        status = section["status"] + (f": {section['error']}" if "error" in section else "")
        lines.append(f"| {name} | {status.replace('|', '/')} | {section['seconds']:.1f} | "
                     f"{figures} | {text} |")
    return "\n".join(lines) + "\n"


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}


def save_reference(record):
    """Store this CPU run's digests and estimates (the sizes and jax version named), merged into
    the stored reference (read again now: a run of the other size may have written it)."""
    if record["environment"]["platform"] != "cpu":
        raise SystemExit("--save-reference records the CPU reference: run it on a CPU")
    reference = load_reference()
    size = record["size"]
    reference.setdefault("recorded_with", {})[size] = {
        key: record["environment"][key] for key in ("device_kind", "processor", "jax", "date")
    }
    reference.setdefault("sizes", {})[size] = SIZES[size]
    stored = reference.setdefault("estimates", {}).setdefault(size, {})
    for name, section in record["sections"].items():
        if name == "noise_bits" and section["status"] == "ok":
            reference["noise_bits"] = {key: section[key] for key in ("digests", "normals_head")}
        elif section["status"] == "ok" and "estimates" in section:
            stored[name] = {key: {field: row[field] for field in
                                  ("mean", "standard_error", "particles", "digest")}
                            for key, row in section["estimates"].items()}
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(reference, indent=1) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=HERE / "results")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU, < 60 s)")
    parser.add_argument("--only", default="", help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds; sizes and sections that would not fit are skipped")
    parser.add_argument("--save-reference", action="store_true",
                        help="store this CPU run's figures as the CPU reference")
    args = parser.parse_args(argv)
    size = "smoke" if args.smoke else "full"
    sizes = SIZES[size]
    names = [name for name in args.only.split(",") if name] or list(SECTIONS)
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}: choose from {list(SECTIONS)}")
    clock = Clock(args.time_limit or sizes["time_limit"], args.output)
    reference = load_reference()
    env = environment()
    record = dict(benchmark="accelerator_check", size=size, sizes=sizes, environment=env,
                  reference=reference.get("recorded_with", {}).get(size, "none"), sections={})
    stem = "accelerator_check-" + ("smoke-" if args.smoke else "") + (
        env["device_kind"].replace(" ", "_").lower())
    args.output.mkdir(parents=True, exist_ok=True)
    print(f"{env['device_kind']} ({env['platform']}), jax {env['jax']}, {size} sizes", flush=True)
    for name in names:
        began, cpu_began = time.perf_counter(), time.process_time()
        if clock.left() <= 0:
            section = dict(status="skipped", error="time limit reached")
        else:
            try:
                section = dict(status="ok", **SECTIONS[name](sizes, clock))
                if name == "noise_bits":
                    section["agreement"] = compare_noise_bits(section, reference)
                elif "estimates" in section:
                    section["agreement"] = compare_estimates(
                        section["estimates"], reference.get("estimates", {}).get(size, {})
                        .get(name, {}))
            except Exception as error:  # one section's failure must not lose the others
                section = dict(status="error", error=f"{type(error).__name__}: {error}",
                               traceback=traceback.format_exc(limit=-4))
        section.update(seconds=time.perf_counter() - began,
                       host_cpu_seconds=time.process_time() - cpu_began, memory=device_memory())
        record["sections"][name] = section
        print(f"{name}: {section['status']} in {section['seconds']:.1f} s "
              f"{section.get('figures', section.get('error', ''))}", flush=True)
        (args.output / f"{stem}.json").write_text(json.dumps(record, indent=1, default=float)
                                                  + "\n")
        (args.output / f"{stem}.md").write_text(markdown(record))
    if args.save_reference:
        save_reference(record)
        print(f"wrote {REFERENCE}")
    print(markdown(record))
    print(f"wrote {args.output / stem}.json and .md")


if __name__ == "__main__":
    main()
