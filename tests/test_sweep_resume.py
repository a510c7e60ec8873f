"""Interrupted sweeps: killed with SIGKILL (a real subprocess) or stopped with Ctrl-C, then
resumed with the same command, they end with the files of an uninterrupted run, bit for bit."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxescape import load_sweep, run_sweep

# Internal machinery under test (not exported): the store and the runner's point files and status.
import jaxescape._experiments.sweep_run as sweep_run
from jaxescape._experiments.store import RunStore
from jaxescape._experiments.sweep_run import point_file, sweep_status
from jaxescape.cli import main


# Point 0 is quick (ΔL/T = 1, 200 particles); point 1 has another shape (500 particles), so a
# fresh process compiles for seconds before it can store it: SIGKILL arrives in between.
SWEEP = """
name = "resume"
[parameters]
temperature = 0.4
dt = 0.02
particles = 500
[[points]]
barrier = 0.4
particles = 200
[[points]]
barrier = 1.2
[[points]]
barrier = 1.2
seed = 1
"""
# The subprocess test below interrupts a point's simulation, which must take a while.
SLOW_SWEEP = SWEEP.replace("barrier = 1.2", "barrier = 1.8").replace("500", "3000")
TIMINGS = ("environment.json",)  # holds the creation time; point files hold their wall time


def start(config, output):
    command = [sys.executable, "-m", "jaxescape", "sweep", str(config), "--output", str(output),
               "--no-progress"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def wait_for_point(process, output, index, timeout=300.0):
    """Polls the manifest until point `index` is committed."""
    manifest = output / "manifest.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            files = json.loads(manifest.read_text())["files"]
        except (FileNotFoundError, ValueError):
            files = {}
        if point_file(index, "json") in files:
            return
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"point {index} was not stored within {timeout} s")


def kill_after_first_point(config, output):
    """Starts the sweep command and sends SIGKILL once point 0 is committed."""
    killed = start(config, output)
    wait_for_point(killed, output, 0)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()


def without_timing(store, name):
    if name.endswith(".json") and name.startswith("points/"):
        record = store.read_json(name)
        record.pop("timing")
        return record
    return store.read(name)


def assert_same_files(directory, reference):
    """Every committed file equal, bit for bit, but for timings."""
    store, reference_store = RunStore(directory), RunStore(reference)
    assert store.corrupted() == {}
    assert store.files == reference_store.files
    for name in store.files:
        if name not in TIMINGS:
            assert without_timing(store, name) == without_timing(reference_store, name), name
    assert not [name for _, _, names in os.walk(directory) for name in names
                if name.endswith(".tmp")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The config file and an uninterrupted run of it (in this process)."""
    directory = tmp_path_factory.mktemp("reference")
    config = directory / "resume.toml"
    config.write_text(SWEEP)
    return config, run_sweep(load_sweep(config), str(directory / "run"), progress=False,
                             stream=io.StringIO())


def test_sigkill_then_the_same_command_recomputes_only_unfinished_points(reference, tmp_path,
                                                                          capsys):
    config, uninterrupted = reference
    output = tmp_path / "resumed"
    kill_after_first_point(config, output)
    status = sweep_status(output)["status"]
    assert status in ("partial 1 of 3", "partial 2 of 3"), status
    first_point = os.stat(output / point_file(0, "npz")).st_mtime_ns

    assert main(["sweep", str(config), "--output", str(output), "--no-progress"]) == 0
    assert f"{status.split()[1]} already stored" in capsys.readouterr().out
    assert os.stat(output / point_file(0, "npz")).st_mtime_ns == first_point  # not recomputed
    assert_same_files(output, uninterrupted)


@pytest.fixture
def default_sigint():
    """Ctrl-C raises KeyboardInterrupt here even where the shell made this process ignore it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_keeps_finished_points_and_resumes(reference, tmp_path, monkeypatch, capsys,
                                                  default_sigint):
    """SIGINT while point 1 simulates; then SIGINT while point 2 commits, which is held back
    until the commit is complete; then the rest."""
    config, uninterrupted = reference
    output = tmp_path / "resumed"
    simulate, commit = sweep_run.simulate, RunStore.commit
    calls = []

    def interrupted_simulate(*args, **kwargs):
        calls.append("simulate")
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return simulate(*args, **kwargs)

    monkeypatch.setattr(sweep_run, "simulate", interrupted_simulate)
    assert main(["sweep", str(config), "--output", str(output), "--no-progress"]) == 130
    captured = capsys.readouterr()
    assert "interrupted: 1 of 3 points stored" in captured.out
    assert captured.err == "jaxescape: interrupted\n"
    assert sweep_status(output)["status"] == "partial 1 of 3"

    def interrupted_commit(store):
        if any(name.endswith("00001.npz") for name in store._files):
            os.kill(os.getpid(), signal.SIGINT)
        commit(store)

    monkeypatch.setattr(RunStore, "commit", interrupted_commit)
    assert main(["sweep", str(config), "--output", str(output), "--no-progress"]) == 130
    assert "interrupted: 2 of 3 points stored" in capsys.readouterr().out
    assert sweep_status(output)["status"] == "partial 2 of 3"

    monkeypatch.undo()
    assert main(["sweep", str(config), "--output", str(output), "--no-progress"]) == 0
    assert "2 already stored" in capsys.readouterr().out
    assert_same_files(output, uninterrupted)


@pytest.mark.slow
def test_kill_interrupt_and_resume_in_subprocesses(tmp_path):
    """The command line for real: SIGKILL, then SIGINT (exit 130), then the rest."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (a shell's background job): the child inherits it")
    config = tmp_path / "resume.toml"
    config.write_text(SLOW_SWEEP)
    output = tmp_path / "resumed"
    kill_after_first_point(config, output)
    stored = sweep_status(output)["finished"]
    assert stored in (1, 2)

    interrupted = start(config, output)
    wait_for_point(interrupted, output, stored)
    interrupted.send_signal(signal.SIGINT)
    stdout, stderr = interrupted.communicate(timeout=300)
    assert interrupted.returncode == 130, stderr
    assert "jaxescape: interrupted" in stderr and "Traceback" not in stderr
    assert f"interrupted: {stored + 1} of 3 points stored" in stdout

    resumed = start(config, output)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert f"{stored + 1} already stored" in stdout
    uninterrupted = run_sweep(load_sweep(config), str(tmp_path / "reference"), progress=False,
                              stream=io.StringIO())
    assert_same_files(output, uninterrupted)
