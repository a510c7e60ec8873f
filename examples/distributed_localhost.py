"""Two JAX processes on localhost share one escape-time simulation (`jax.distributed`).

Start the two processes yourself (each runs half of the particles; both print the same result):

    python3 examples/distributed_localhost.py --process-id 0 &
    python3 examples/distributed_localhost.py --process-id 1

or let this script start both as subprocesses on a free port:

    python3 examples/distributed_localhost.py

On several hosts, give every process the coordinator's address (`--coordinator host:port`)
and `--num-processes`. The numbers equal a one-process `jxe.simulate` with the same seed.
"""

import argparse
import socket
import subprocess
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process-id", type=int, help="this process (omit: start all of them)")
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--coordinator", default="localhost:12355", help="host:port of process 0")
    parser.add_argument("--particles", type=int, default=100_000)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=120, help="seconds to wait for the others")
    parser.add_argument("--output", help="save the gathered result to OUTPUT-<process id>.npz")
    args = parser.parse_args(argv)
    if args.process_id is None:
        return launch(args, sys.argv[1:] if argv is None else argv)
    return run(args)


def launch(args, argv) -> int:
    """Starts every process on localhost (a free port) and waits for them."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, __file__, *argv, "--coordinator", f"localhost:{port}"]
    processes = [
        subprocess.Popen(command + ["--process-id", str(index)])
        for index in range(args.num_processes)
    ]
    try:
        codes = [process.wait(timeout=args.timeout + 600) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return max(codes, key=abs)


def run(args) -> int:
    import jax

    jax.distributed.initialize(
        coordinator_address=args.coordinator, num_processes=args.num_processes,
        process_id=args.process_id, initialization_timeout=args.timeout,
    )
    import numpy as np

    import jaxescape as jxe

    landscape = jxe.TiltedDoubleWell(barrier_height=1.0, curvature=4.0)
    dynamics = jxe.OverdampedLangevin(landscape, temperature=args.temperature)
    criterion = jxe.past_saddle(landscape)
    result = jxe.simulate_distributed(
        dynamics, criterion, landscape.minimum(), jax.random.key(args.seed),
        num_particles=args.particles, dt=0.01, max_steps=10**7,
    )
    mean, standard_error = jxe.mean_escape_time(result.escape_time)
    exact = jxe.exact_mfpt(dynamics, 0.0, reflecting=-2 * float(landscape.saddle()[0]),
                           absorbing=float(criterion.offset))
    start, stop = jxe.process_share(args.particles, jax.process_index(), jax.process_count())
    print(
        f"process {jax.process_index()} of {jax.process_count()} ran particles [{start}, {stop}) "
        f"on {jax.local_devices()}; all {result.escape_step.size}: mean escape time "
        f"{mean:.4f} ± {standard_error:.4f} (exact {exact:.4f})",
        flush=True,
    )
    if args.output:
        np.savez(f"{args.output}-{args.process_id}.npz", *result[:-1])
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
