"""Two `jax.distributed` processes on localhost give the numbers of one process, bit for bit.

The two processes run `examples/distributed_localhost.py` as subprocesses (the example is thus
tested too); each saves the gathered result, which must equal `simulate` in this process.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxescape as jxe


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "distributed_localhost.py"
NUM_PARTICLES = 3001  # odd: the shares differ in size (1500 and 1501), so padding is exercised
TIMEOUT = 240  # seconds for both processes together; they are killed after it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def run_processes(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Runs the commands side by side; kills them all if any outlives TIMEOUT."""
    environment = dict(
        os.environ, JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    processes = [
        subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    ]
    try:
        outputs = [process.communicate(timeout=TIMEOUT)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return [
        subprocess.CompletedProcess(process.args, process.returncode, output)
        for process, output in zip(processes, outputs)
    ]


def run_two_processes(output: Path) -> list[str]:
    """Runs the example as processes 0 and 1 and returns their printed lines."""
    command = [
        sys.executable, str(EXAMPLE), "--coordinator", f"localhost:{free_port()}",
        "--particles", str(NUM_PARTICLES), "--temperature", "0.5", "--seed", "11",
        "--timeout", "60", "--output", str(output),
    ]
    done = run_processes([command + ["--process-id", str(index)] for index in range(2)])
    for index, process in enumerate(done):
        assert process.returncode == 0, f"process {index} failed:\n{process.stdout}"
    return [process.stdout for process in done]


def test_two_processes_equal_one_process_bit_for_bit(tmp_path):
    outputs = run_two_processes(tmp_path / "result")
    # Each process ran only its own contiguous half.
    assert "process 0 of 2 ran particles [0, 1500)" in outputs[0], outputs[0]
    assert f"process 1 of 2 ran particles [1500, {NUM_PARTICLES})" in outputs[1], outputs[1]

    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    one = jxe.simulate(
        dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(11),
        num_particles=NUM_PARTICLES, dt=0.01, max_steps=10**7, devices=jax.devices("cpu"),
    )
    assert one.escaped.all()
    for index in range(2):  # every process holds the full result
        gathered = np.load(tmp_path / f"result-{index}.npz")
        assert len(gathered.files) == len(one) - 1
        for position, field in enumerate(one[:-1]):
            assert gathered[f"arr_{position}"].dtype == field.dtype
            np.testing.assert_array_equal(gathered[f"arr_{position}"], field)


@pytest.mark.parametrize("num_particles", [1, 2, 3, 10, 3001])
@pytest.mark.parametrize("process_count", [1, 2, 3, 8])
def test_shares_are_contiguous_and_cover_every_particle(num_particles, process_count):
    shares = [jxe.process_share(num_particles, p, process_count) for p in range(process_count)]
    assert shares[0][0] == 0 and shares[-1][1] == num_particles
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(shares, shares[1:]))
    sizes = [stop - start for start, stop in shares]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1


def test_one_process_is_simulate_and_inputs_are_checked():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    arguments = (dynamics, jxe.past_saddle(landscape), landscape.minimum())
    options = dict(dt=0.01, max_steps=10**6)
    result = jxe.simulate_distributed(*arguments, jax.random.key(3), num_particles=50, **options)
    expected = jxe.simulate(*arguments, jax.random.key(3), num_particles=50, **options)
    for got, want in zip(result, expected):
        np.testing.assert_array_equal(got, want)
    dropped = jxe.simulate_distributed(*arguments, jax.random.key(3), num_particles=50,
                                       keep_positions=False, **options)
    assert dropped.position.shape == (50, 0)
    np.testing.assert_array_equal(dropped.escape_step, expected.escape_step)
    with pytest.raises(ValueError, match="num_particles"):
        jxe.simulate_distributed(*arguments, jax.random.key(3), num_particles=0, **options)
    with pytest.raises(TypeError, match="keep_positions must be True or False"):
        jxe.simulate_distributed(*arguments, jax.random.key(3), num_particles=10,
                                 keep_positions=None, **options)
    with pytest.raises(TypeError, match="key"):
        jxe.simulate_distributed(*arguments, 3, num_particles=10, **options)


MISMATCH = """
import sys, jax
process_id = int(sys.argv[2])
jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=process_id,
                           initialization_timeout=60)
import jaxescape as jxe
landscape = jxe.TiltedDoubleWell(1.0, 4.0)
try:
    jxe.simulate_distributed(
        jxe.OverdampedLangevin(landscape, 0.5), jxe.past_saddle(landscape), landscape.minimum(),
        jax.random.key(process_id), num_particles=100, dt=0.01, max_steps=1000,
    )
except ValueError as error:
    print(error)
    sys.exit(3)
"""


def test_processes_given_different_keys_all_raise():
    coordinator = f"localhost:{free_port()}"
    done = run_processes(
        [[sys.executable, "-c", MISMATCH, coordinator, str(index)] for index in range(2)]
    )
    for process in done:
        assert process.returncode == 3, process.stdout
        assert "differ across processes" in process.stdout
