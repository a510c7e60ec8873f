"""Network particles: particle-steps per second of MLP training runs against the matmul rate
and against PyTorch's `torch.func` ensembling.

Workloads (issue 19, item 5), digits (scikit-learn's bundled set, n = 1000 training samples,
one-hot targets), plain SGD (η = 0.1), B = 32:
- `digits`: MLP 64-32-10 (ReLU), cross-entropy, 2410 parameters (2368 weights).
- `mori`: MLP 64-100-100-10 (two hidden layers of 100 ReLU units, Mori et al.'s size), squared
  error on the one-hot targets, 17 610 parameters (17 400 weights).
FLOPs per particle-step: 6 · B · W with W the weights (multiply-adds of the matmuls): forward
2·B·W, backward twice that (input and weight gradients); biases, activations, loss and update not
counted. digits: 454 656, mori: 3 340 800. The convention counts the first layer's input gradient,
which is never computed (its inputs are data): the products executed are 4·B·W + 2·B·W₂₊ (W₂₊
the weights after the first layer), 0.712 and 0.877 of these (benchmarks/README.md §10).

Rows, in one process, each workload × particle count N, interleaved over `--rounds` rounds (the
best of each row is kept, so a round slowed by other processes does not count):
- matmul: a jitted float32 product at jax's default precision, 2048² on a CPU and 8192² on an
  accelerator (`matmul_rate`), measured in every round.
- memory: the device-memory bandwidth of a streaming `2·x` (`memory_bandwidth`), measured in
  every round, and each workload's bytes per particle-step as XLA's cost model counts them for
  this device's compiled step (`step_traffic`). "of bound" is a row's rate over the memory
  roofline bandwidth / bytes: the rate of a step whose kernels stream their operands and results
  through device memory. A GPU's rows are bound by it (benchmarks/README.md §10); a CPU's step
  blocks stay in cache, so its rows can exceed it.
- batched dot: only the forward layers' per-particle products as one jitted `einsum`
  ('nbi,noi->nbo', eqx's weight layout) at the same N: what XLA's batched dot gives these
  shapes on this device, an upper bound for any JAX implementation of the step.
- jaxescape: `jxe.simulate(MinibatchSGD(NetworkModel(eqx.nn.MLP), ...), NeverEscape(), ...)`,
  per-epoch shuffling (the default) and with replacement; each timed call includes input
  validation and the copy of the results to NumPy (every network's parameters, or with
  `keep_positions=False` only the escape records); compilation excluded (a warm-up call).
  On a CPU the process first exposes one device per core (`jxe.use_cpu_cores`, as the
  command line does; `--cpu-devices D` to choose), and `simulate` runs a chunk on each; the
  other JAX rows run on the first device, as a user's own `jit` does. Three rows take it apart:
  on the first device only (`devices=jax.devices()[:1]`), with `num_slots=N` (every particle
  in one pool, no refills), and jaxescape's own update (`MinibatchSGD.update`) in the
  hand-written loop below (no driver).
- vmap loop: the hand-written JAX baseline, `jit(vmap(fori_loop(SGD step)))`, minibatches drawn
  with replacement by `jr.randint(fold_in(key, step))`.
- torch.func: N `torch.nn.Sequential` MLPs stacked by `torch.func.stack_module_state`, the
  per-model minibatch gradient by `torch.vmap(torch.func.grad(loss of functional_call))`, each
  model its own minibatch (`torch.randint`, with replacement) every step, the SGD update by
  `torch._foreach_add_`; eager, one row per `--torch-threads` value (on a loaded machine
  multi-threaded torch collapses, benchmarks/PEERS.md). Skipped with a message when torch is not
  installed (`pip install torch==2.13.0`, benchmarks/PEERS.md). "of torch" is the ratio to the
  best torch.func row of that workload and N.

`--memory`: peak resident memory of `simulate_chunks` over 2·10^4 and 10^5 networks
(the digits MLP, 2410 parameters, 4 steps, chunks of 2^14, each chunk reduced to the mean loss of
256 of its networks as it arrives) and of one `simulate` call over 10^5 (whose result holds
every network's parameters, 10^5 · 2410 · 4 B = 0.96 GB; and with `keep_positions=False`, only
the escape records), each in a fresh subprocess; the peak is its VmHWM. Written to
benchmarks/results/network_memory-<platform>.json (`--only-memory`: these rows alone).

Usage: python benchmarks/network_throughput.py [--particles 1024,4096,16384] [--rounds R]
       [--workloads digits,mori] [--torch-threads 1,2] [--cpu-devices D]
       [--memory | --only-memory]
Writes benchmarks/results/network_throughput-<platform>.json.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import jaxescape as jxe
from jaxescape import _noise


BATCH, LEARNING_RATE = 32, 0.1
WORKLOADS = {  # name: (hidden widths, loss, steps per timed call)
    "digits": ((32,), "cross_entropy", 32),
    "mori": ((100, 100), "mse", 8),
}


def layer_sizes(hidden):
    return [64, *hidden, 10]


def flop_per_step(hidden):
    sizes = layer_sizes(hidden)
    return 6 * BATCH * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def timed(function):
    began = time.perf_counter()
    jax.block_until_ready(function())
    return time.perf_counter() - began


def matmul_rate(size=None, repeats=3):
    """float32 matmul FLOP rate at jax's default precision (the network rows use the same):
    2048² on a CPU, 8192² on an accelerator (a 2048² product there lasts about as long as its
    dispatch)."""
    size = size or (2048 if jax.default_backend() == "cpu" else 8192)
    a, b = (jr.normal(jr.key(i), (size, size), jnp.float32) for i in range(2))
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    return 2 * size**3 / min(timed(lambda: product(a, b)) for _ in range(repeats))


def memory_bandwidth(size=None, repeats=3):
    """Device-memory bandwidth in bytes/s: a jitted `2·x` over `size` float32 values (2^26 on
    a CPU, 256 MiB; 2^28 on an accelerator, 1 GiB), counted as one read and one write of each
    value (the STREAM "scale" kernel)."""
    size = size or (2**26 if jax.default_backend() == "cpu" else 2**28)
    values = jr.normal(jr.key(0), (size,), jnp.float32)
    scale = jax.jit(lambda x: 2 * x)
    scale(values).block_until_ready()
    return 2 * 4 * size / min(timed(lambda: scale(values)) for _ in range(repeats))


def step_traffic(model, data, num_particles):
    """Bytes read and written, and FLOPs executed, per particle-step of one jitted step of
    `num_particles` networks (jaxescape's update, with replacement), as XLA's cost model counts
    them for this device's compiled program: each kernel's operands and results, no cache
    reuse between kernels. bandwidth / bytes is the rate at which a step that streams these
    bytes through device memory runs (the memory roofline; benchmarks/README.md §10)."""
    sgd = jxe.MinibatchSGD(model, data, batch_size=BATCH, learning_rate=LEARNING_RATE,
                           replacement=True)
    theta = model.initial_parameters
    keys = _noise.stream_keys(jr.key(0), sgd.num_streams(theta.shape[0], theta.dtype))
    # Shapes only: the step is compiled, never run, so nothing of N networks is allocated.
    particles = jax.ShapeDtypeStruct((num_particles,), jnp.uint32)
    states = jax.eval_shape(jax.vmap(lambda _: sgd.initial_state(theta)), particles)
    step = jax.jit(jax.vmap(lambda state, particle: sgd.update(state, keys, particle,
                                                               jnp.int32(0))))
    cost = step.lower(states, particles).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list in older jax versions
    return {"bytes_per_particle_step": cost["bytes accessed"] / num_particles,
            "executed_flop_per_particle_step": cost["flops"] / num_particles}


def make_model(hidden, loss):
    network = eqx.nn.MLP(64, 10, hidden[0], len(hidden), key=jr.key(1))
    return jxe.NetworkModel(network, loss=loss)


def batched_dot_runner(hidden, num_particles):
    """The forward layers' per-particle products only: FLOPs 2·N·B·W (a third of a step's)."""
    sizes = layer_sizes(hidden)
    inputs = jr.normal(jr.key(2), (num_particles, BATCH, 64))
    weights = [jr.normal(jr.key(3 + i), (num_particles, b, a)) * a**-0.5
               for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]

    @jax.jit
    def forward(inputs, weights):
        for weight in weights:
            inputs = jnp.einsum("nbi,noi->nbo", inputs, weight)
        return inputs

    forward(inputs, weights).block_until_ready()
    return (lambda steps: forward(inputs, weights)), lambda steps: num_particles / 3


def jaxescape_runner(model, data, num_particles, replacement, num_slots=None, *, steps,
                     devices=None, keep_positions=True):
    """`simulate`; `num_slots=num_particles` runs every particle in one pool (no refills);
    `devices` and `keep_positions` as `simulate`'s (default: all devices, positions kept).
    Compiles by a warm-up run of the timed length `steps` (`check_every` follows max_steps)."""
    sgd = jxe.MinibatchSGD(model, data, batch_size=BATCH, learning_rate=LEARNING_RATE,
                           replacement=replacement)

    def run(steps):
        return jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jr.key(0),
                            num_particles=num_particles, max_steps=steps,
                            num_slots=num_slots, devices=devices,
                            keep_positions=keep_positions).position

    run(steps)  # compiles
    return run, lambda steps: num_particles * steps


def step_loop_runner(model, data, num_particles):
    """jaxescape's own SGD update (`MinibatchSGD.update`, with replacement) in the hand-written
    loop instead of the driver's pool: tells the step's cost from the driver's."""
    sgd = jxe.MinibatchSGD(model, data, batch_size=BATCH, learning_rate=LEARNING_RATE,
                           replacement=True)
    theta = model.initial_parameters
    keys = _noise.stream_keys(jr.key(0), sgd.num_streams(theta.shape[0], theta.dtype))

    @jax.jit
    def train(particles, num_steps):
        def one(particle):
            def body(step, state):
                return sgd.update(state, keys, particle, step)

            return jax.lax.fori_loop(0, num_steps, body, sgd.initial_state(theta))[0]

        return jax.vmap(one)(particles)

    particles = jnp.arange(num_particles, dtype=jnp.uint32)
    jax.block_until_ready(train(particles, 2))
    return (lambda steps: train(particles, steps)), lambda steps: num_particles * steps


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
    return (lambda steps: train(keys, steps)), lambda steps: num_particles * steps


def torch_func_runner(model, data, num_particles, loss_name, threads):
    """`torch.func` ensembling: stack_module_state + vmap(grad(functional_call)), on `threads`
    intra-op threads."""
    import copy

    import torch
    from torch.func import functional_call, grad, stack_module_state

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    network = model.unflatten(model.initial_parameters)
    layers = []
    for i, linear in enumerate(network.layers):
        torch_linear = torch.nn.Linear(linear.in_features, linear.out_features)
        with torch.no_grad():  # the same start as the JAX rows
            torch_linear.weight.copy_(torch.from_numpy(np.array(linear.weight)))
            torch_linear.bias.copy_(torch.from_numpy(np.array(linear.bias)))
        layers += [torch_linear] + ([torch.nn.ReLU()] if i < len(network.layers) - 1 else [])
    base = torch.nn.Sequential(*layers).to(device)
    parameters, buffers = stack_module_state([base] * num_particles)  # copies: N models
    skeleton = copy.deepcopy(base).to("meta")
    inputs = torch.from_numpy(np.array(data.inputs)).to(device)
    targets = torch.from_numpy(np.array(data.targets)).to(device)

    def batch_loss(parameters, buffers, x, y):
        output = functional_call(skeleton, (parameters, buffers), (x,))
        if loss_name == "cross_entropy":
            return torch.nn.functional.cross_entropy(output, y)
        return 0.5 * ((output - y) ** 2).sum(dim=1).mean()

    gradient = torch.vmap(grad(batch_loss), in_dims=(0, 0, 0, 0), randomness="different")
    generator = torch.Generator(device).manual_seed(0)
    names = list(parameters)

    def run(steps):
        torch.set_num_threads(threads)
        for _ in range(steps):
            indices = torch.randint(0, inputs.shape[0], (num_particles, BATCH),
                                    generator=generator, device=device)
            gradients = gradient(parameters, buffers, inputs[indices], targets[indices])
            with torch.no_grad():
                torch._foreach_add_([parameters[k] for k in names],
                                    [gradients[k] for k in names], alpha=-LEARNING_RATE)
        if device == "cuda":
            torch.cuda.synchronize()
        return None

    run(2)
    return run, lambda steps: num_particles * steps


MEMORY_RUNS = ("simulate", "simulate_chunks", "simulate, keep_positions=False")


def memory_probe(num_particles, run):
    """Peak memory (MiB) of one run (one of `MEMORY_RUNS`) over `num_particles` MLP 64-32-10
    networks (this process)."""
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    model = make_model((32,), "cross_entropy")
    sgd = jxe.MinibatchSGD(model, data, batch_size=BATCH, learning_rate=LEARNING_RATE)
    options = dict(num_particles=num_particles, max_steps=4)
    began = time.perf_counter()
    if run == "simulate_chunks":
        losses = []
        for _, result in jxe.simulate_chunks(sgd, jxe.NeverEscape(), model.initial_parameters,
                                             jr.key(0), chunk_size=2**14, **options):
            losses.append(float(jxe.evaluate_particles(model, result.position[:256],
                                                       data).loss.mean()))
            del result  # a chunk held while the next wave runs keeps its wave's arrays
    else:
        keep = run == "simulate"
        result = jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jr.key(0),
                              keep_positions=keep, **options)
        assert result.position.shape == (num_particles, model.num_parameters * keep)
    seconds = time.perf_counter() - began
    # VmHWM, the peak of this process's memory map (ru_maxrss would carry the parent's peak over
    # fork and exec).
    peak = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM")) / 1024
    print(json.dumps({"particles": num_particles, "run": run,
                      "parameters": model.num_parameters, "seconds": seconds,
                      "peak_rss_mib": peak}))


def memory_rows():
    rows = []
    for num_particles, run in ((2 * 10**4, "simulate_chunks"), (10**5, "simulate_chunks"),
                               (10**5, "simulate"), (10**5, "simulate, keep_positions=False")):
        output = subprocess.run(
            [sys.executable, __file__, "--probe", f"{num_particles},{MEMORY_RUNS.index(run)}"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return rows


def write_memory(device):
    out = pathlib.Path(__file__).parent / "results" / f"network_memory-{device.platform}.json"
    out.write_text(json.dumps({"device": device.device_kind, "jax": jax.__version__,
                               "chunk_size": 2**14, "rows": memory_rows()}, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", default="1024,4096,16384")
    parser.add_argument("--workloads", default="digits,mori")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch-threads", default="1,2")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--only-memory", action="store_true")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--note", default="")
    parser.add_argument("--steps-multiplier", type=int, default=1,
                        help="steps per timed call × this (on an accelerator an 8-step call "
                             "measures the copy of the parameters back to the host)")
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="CPU devices for jaxescape's rows (default: one per core, "
                             "`jxe.use_cpu_cores`); the other JAX rows use the first")
    parser.add_argument("--output", default=str(pathlib.Path(__file__).parent / "results"))
    args = parser.parse_args()
    # Before JAX's first computation: JAX takes three quarters of a GPU's memory by default, and
    # the torch.func rows in the same process then run out of it (benchmarks/README.md §10);
    # allocate as needed.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    jxe.use_cpu_cores(args.cpu_devices)
    if args.probe:
        count, run = args.probe.split(",")
        return memory_probe(int(count), MEMORY_RUNS[int(run)])
    if args.only_memory:
        return write_memory(jax.devices()[0])

    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: the torch.func rows are skipped "
              "(pip install torch==2.13.0)")
    data = jxe.load_sklearn_dataset("digits", jr.key(0), num_train=1000).train
    counts = [int(count) for count in args.particles.split(",")]
    torch_threads = [] if torch is None else [int(t) for t in args.torch_threads.split(",")]
    best, meta, loads = {}, {}, []
    runners = {}
    for workload in args.workloads.split(","):
        hidden, loss, steps = WORKLOADS[workload]
        steps *= args.steps_multiplier
        model = make_model(hidden, loss)
        meta[workload] = {"hidden": hidden, "loss": loss, "steps": steps,
                          "parameters": model.num_parameters,
                          "flop_per_particle_step": flop_per_step(hidden), "traffic": {}}
        for count in counts:
            meta[workload]["traffic"][count] = step_traffic(model, data, count)
            rows = {
                "batched dot (forward layers)": lambda: batched_dot_runner(hidden, count),
                "jaxescape, per-epoch shuffling": lambda: jaxescape_runner(
                    model, data, count, False, steps=steps),
                "jaxescape, per-epoch, without positions": lambda: jaxescape_runner(
                    model, data, count, False, steps=steps, keep_positions=False),
                "jaxescape, with replacement": lambda: jaxescape_runner(
                    model, data, count, True, steps=steps),
                "jaxescape, with replacement, one pool of N": lambda: jaxescape_runner(
                    model, data, count, True, num_slots=count, steps=steps),
                "jaxescape, with replacement, one device": lambda: jaxescape_runner(
                    model, data, count, True, steps=steps, devices=jax.devices()[:1]),
                "jaxescape's update in the vmap loop": lambda: step_loop_runner(model, data,
                                                                               count),
                "vmap loop (hand-written JAX)": lambda: vmap_runner(model, data, count),
            }
            for threads in torch_threads:
                rows[f"torch.func, {threads} thread{'s' * (threads > 1)}"] = (
                    lambda threads=threads: torch_func_runner(model, data, count, loss, threads))
            for name, make in rows.items():
                runners[(workload, count, name)] = make()
    for round_index in range(args.rounds):
        print(f"round {round_index + 1} of {args.rounds}", flush=True)
        loads.append(os.getloadavg()[0])
        best["matmul"] = max(best.get("matmul", 0.0), matmul_rate())
        best["bandwidth"] = max(best.get("bandwidth", 0.0), memory_bandwidth())
        for (workload, count, name), (run, work) in runners.items():
            steps = meta[workload]["steps"]
            seconds = timed(lambda: run(steps))
            rate = work(steps) / seconds  # particle-steps per second
            key = (workload, count, name)
            best[key] = max(best.get(key, 0.0), rate)
            print(f"  {workload} N={count} {name}: {rate / 1e6:.4f} M particle-steps/s",
                  flush=True)

    matmul, bandwidth = best.pop("matmul"), best.pop("bandwidth")
    device = jax.devices()[0]
    for workload in meta:
        for count, traffic in meta[workload]["traffic"].items():
            bound = bandwidth / traffic["bytes_per_particle_step"]
            traffic["memory_bound_m_particle_steps_per_s"] = bound / 1e6
            traffic["memory_bound_of_matmul"] = (
                bound * meta[workload]["flop_per_particle_step"] / matmul)
    rows = []
    for (workload, count, name), rate in best.items():
        flop = meta[workload]["flop_per_particle_step"]
        traffic = meta[workload]["traffic"][count]
        torch_rate = max((rate for (w, c, n), rate in best.items()
                          if (w, c) == (workload, count) and n.startswith("torch.func")),
                         default=None)
        rows.append({"workload": workload, "particles": count, "row": name,
                     "m_particle_steps_per_s": rate / 1e6, "gflop_per_s": rate * flop / 1e9,
                     "of_matmul": rate * flop / matmul,
                     # the batched dot is not a step: the step's bound does not apply to it
                     "of_memory_bound": (None if name.startswith("batched dot") else
                                         rate * traffic["bytes_per_particle_step"] / bandwidth),
                     "of_best_torch_func": rate / torch_rate if torch_rate else None})
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"device: {device.device_kind} × {jax.device_count()}, {cpu}, {os.cpu_count()} CPUs, "
          f"matmul {matmul / 1e9:.1f} GFLOP/s, memory {bandwidth / 1e9:.1f} GB/s, "
          f"load averages {loads}")
    for workload in meta:
        for count, traffic in meta[workload]["traffic"].items():
            print(f"{workload} N={count}: {traffic['bytes_per_particle_step'] / 1e3:.1f} kB a "
                  f"particle-step (XLA's cost model), memory bound "
                  f"{traffic['memory_bound_m_particle_steps_per_s']:.4f} M particle-steps/s, "
                  f"{traffic['memory_bound_of_matmul']:.3f} of the matmul rate")
    print(f"{'workload':8s} {'N':>6s} {'row':40s} {'M steps/s':>10s} {'GFLOP/s':>8s} "
          f"{'of matmul':>9s} {'of bound':>8s} {'of torch':>8s}")
    for row in rows:
        of_torch = ("" if row["of_best_torch_func"] is None
                    else f"{row['of_best_torch_func']:.2f}")
        of_bound = "" if row["of_memory_bound"] is None else f"{row['of_memory_bound']:.2f}"
        print(f"{row['workload']:8s} {row['particles']:6d} {row['row']:40s} "
              f"{row['m_particle_steps_per_s']:10.4f} {row['gflop_per_s']:8.1f} "
              f"{row['of_matmul']:9.3f} {of_bound:>8s} {of_torch:>8s}")
    if args.memory:
        write_memory(device)
    out = pathlib.Path(args.output) / f"network_throughput-{device.platform}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "device": device.device_kind, "num_devices": jax.device_count(), "cpu": cpu,
        "cpus": os.cpu_count(),
        "jax": jax.__version__, "torch": None if torch is None else torch.__version__,
        "torch_threads": torch_threads,
        "xla_flags": os.environ.get("XLA_FLAGS"), "rounds": args.rounds,
        "load_averages": loads, "matmul_gflop_per_s": matmul / 1e9,
        "memory_gb_per_s": bandwidth / 1e9, "workloads": meta,
        "flop_formula": "6 * B * W (W = weights; forward 2BW, backward 4BW)",
        "rows": rows, "note": args.note,
    }, indent=1))


if __name__ == "__main__":
    main()
