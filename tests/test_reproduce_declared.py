"""A reproduction is a declared experiment (meng, smoke size): its sweep file is printed by
`--spec` and reads back as the same sweep; killed with SIGKILL and rerun with the same command
it computes only the missing points and ends with the files of an uninterrupted run, bit for bit
but for timings; `jaxescape report DIR` rebuilds its analysis from the store."""

import json
import os
import signal
import subprocess
import sys

import pytest

from jaxescape.cli import main
from jaxescape.theories import REPRODUCTIONS, declared_sweep
from test_sweep_resume import wait_for_point

# Internal machinery under test (not exported): the store and the sweep file's canonical form.
from jaxescape._experiments.store import RunStore
from jaxescape._experiments.sweep import load_sweep, sweep_to_toml
from jaxescape._experiments.sweep_run import point_file, sweep_status


TIMING_KEYS = ("wall_seconds", "cpu_seconds", "wall_time_s", "timing")


def without_timings(value):
    """A JSON value with every timing entry removed (they differ between two runs)."""
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items()
                if key not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


def comparable(store: RunStore, name: str):
    if name.endswith(".json"):
        return without_timings(store.read_json(name))
    if name.endswith(".md"):  # the run line states the wall time
        return [line for line in store.read(name).decode().splitlines()
                if "wall" not in line.lower() and "(" not in line[:3]]
    return store.read(name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("meng") / "run"
    summary = REPRODUCTIONS["meng"](directory, size="smoke", seed=0, progress=False)
    return directory, summary


def test_spec_prints_the_sweep_that_runs(tmp_path, capsys):
    assert main(["reproduce", "meng", "--size", "smoke", "--seed", "2", "--spec"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "copy.toml"
    path.write_text(text)
    sweep = load_sweep(path)
    assert sweep_to_toml(sweep) == text == sweep_to_toml(declared_sweep("meng", "smoke", 2))
    assert sweep.analysis == {"name": "jaxescape._reproductions.meng:analyse", "size": "smoke"}
    assert {point["seed"] for point in sweep.expand()} == {2}
    assert main(["reproduce", "meng", "--size", "smoke", "--shard", "2/2"]) == 2
    assert "shard must be (I, N) with integers 0 <= I < N" in capsys.readouterr().err


def test_report_rebuilds_the_analysis(uninterrupted):
    directory, summary = uninterrupted
    assert summary["reproduction"] == "meng" and summary["size"] == "smoke"
    before = (directory / "results.json").read_bytes()
    for name in ("results.json", "results.md", "meng.png"):
        (directory / name).unlink()
    assert main(["report", str(directory)]) == 0
    assert (directory / "results.json").read_bytes() == before
    assert (directory / "meng.png").stat().st_size > 0
    assert RunStore(directory).corrupted() == {}


def test_sigkill_then_the_same_command_computes_only_the_missing_points(uninterrupted,
                                                                        tmp_path):
    reference, _ = uninterrupted
    output = tmp_path / "resumed"
    command = [sys.executable, "-m", "jaxescape", "reproduce", "meng", "--size", "smoke",
               "--output", str(output), "--no-progress"]
    killed = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    wait_for_point(killed, output, 0)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    status = sweep_status(output)
    total = status["total"]
    assert status["finished"] < total, status  # killed before the last point
    assert not (output / "results.json").exists()
    first_point = os.stat(output / point_file(0, "npz")).st_mtime_ns

    assert main(["reproduce", "meng", "--size", "smoke", "--output", str(output),
                 "--no-progress"]) == 0
    assert os.stat(output / point_file(0, "npz")).st_mtime_ns == first_point  # kept
    store, reference_store = RunStore(output), RunStore(reference)
    assert store.corrupted() == {} and store.files == reference_store.files
    for name in store.files:
        if name not in ("environment.json", "report.md"):
            assert comparable(store, name) == comparable(reference_store, name), name
    results = json.loads((output / "results.json").read_text())
    assert results["all_checks_passed"] == json.loads(
        (reference / "results.json").read_text())["all_checks_passed"]
