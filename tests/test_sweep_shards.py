"""A stored sweep for analysis (`load_results`, `load_escape_times`) and sweeps in shards: the
shards' union is the store of one process, bit for bit, and concurrent writers never corrupt it."""

import csv
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jaxescape as jxe
from jaxescape.cli import main
from test_sweep_resume import assert_same_files

# Internal machinery under test (not exported): the store and the runner's point files.
from jaxescape._experiments.store import RunStore
from jaxescape._experiments.sweep_run import point_file, sweep_status


# Four points of one shape (one compilation); shard 1/2 holds points 1 and 3.
SWEEP = """
name = "shards"
[parameters]
dt = 0.02
particles = 300
max_steps = 20_000
[grid]
barrier = [0.4, 0.6]
temperature = [0.5, 0.4]
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep file and a run of it by one process."""
    directory = tmp_path_factory.mktemp("shards")
    config = directory / "shards.toml"
    config.write_text(SWEEP)
    return config, jxe.run_sweep(jxe.load_sweep(config), str(directory / "one"),
                                 progress=False, stream=io.StringIO())


def test_load_results_has_a_row_per_point_with_intervals_and_references(reference):
    _, directory = reference
    frame = jxe.load_results(directory)
    assert list(frame["index"]) == [0, 1, 2, 3]
    assert list(frame.columns[1:3]) == ["barrier", "temperature"]  # the swept parameters first
    assert frame.attrs["swept"] == ("barrier", "temperature") and frame.attrs["total_points"] == 4
    rows = list(csv.DictReader(io.StringIO(RunStore(directory).read("summary.csv").decode())))
    for column in ("mfpt", "mfpt_standard_error", "mfpt_lower", "mfpt_upper", "exact_mfpt",
                   "kramers_time", "num_censored", "num_diverged", "ratio_to_exact"):
        np.testing.assert_array_equal(frame[column], [float(row[column]) for row in rows])
    assert (frame["rate"] == 1 / frame["mfpt"]).all()
    assert (frame["rate_lower"] < frame["rate"]).all() and (frame["rate"] < frame["rate_upper"]).all()
    np.testing.assert_allclose(frame["rate_standard_error"],
                               frame["mfpt_standard_error"] / frame["mfpt"] ** 2, rtol=1e-12)
    assert (frame["method"] == "direct").all() and (frame["num_particles"] == 300).all()
    # The raw times, by index or by parameters: their mean is the stored MFPT (no censoring).
    assert (frame["num_censored"] == 0).all()
    times = jxe.load_escape_times(directory, 3)
    assert times["escape_time"].shape == (300,) and times["censored"].dtype == bool
    assert times["escape_time"].mean() == pytest.approx(frame["mfpt"][3], rel=1e-12)
    same = jxe.load_escape_times(directory, {"barrier": 0.6, "temperature": 0.4})
    np.testing.assert_array_equal(same["escape_step"], times["escape_step"])
    with pytest.raises(KeyError, match="2 stored points match"):
        jxe.load_escape_times(directory, {"barrier": 0.6})
    with pytest.raises(KeyError, match="point 4 is not stored"):
        jxe.load_escape_times(directory, 4)


def test_two_shards_give_the_store_of_one_process(reference, tmp_path, capsys):
    config, one = reference
    output = tmp_path / "sharded"
    jxe.run_sweep(jxe.load_sweep(config), str(output), progress=False, stream=io.StringIO(),
                  shard=(1, 2))
    assert sweep_status(output)["status"] == "partial 2 of 4"
    partial = jxe.load_results(output)
    assert list(partial["index"]) == [1, 3]
    assert "partial: 2 of 4" in RunStore(output).read("report.md").decode()
    assert main(["sweep", str(config), "--output", str(output), "--shard", "0/2",
                 "--no-progress"]) == 0
    assert "shard 0/2: 2 of 4 points over barrier, temperature; 0 already stored" in \
        capsys.readouterr().out
    assert_same_files(output, one)  # summary, report and figures included
    assert main(["sweep", str(config), "--output", str(output), "--shard", "2/2"]) == 2
    assert "shard must be" in capsys.readouterr().err


WRITER = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("store", sys.argv[1])
    store_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(store_module)
    store = store_module.RunStore(sys.argv[2], create=True)
    writer = sys.argv[3]
    for number in range(40):
        with store.locked():
            store.write(f"points/{writer}-{number}.json", f"{writer} {number}".encode())
            store.write("shared.csv", f"last: {writer} {number}".encode())
            store.commit()
""")


def test_concurrent_writers_never_corrupt_the_store(tmp_path):
    """Four processes each commit 40 files and rewrite one shared file, at the same time: the
    manifest names all 160 files and every committed file matches its hash."""
    path = os.path.join(os.path.dirname(jxe.__file__), "_experiments", "store.py")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, path, str(tmp_path), name])
               for name in "abcd"]
    assert [writer.wait(timeout=120) for writer in writers] == [0] * 4
    store = RunStore(tmp_path)
    assert store.corrupted() == {}
    assert len(store.files) == 161
    assert store.read("shared.csv").decode().endswith(" 39")


@pytest.mark.slow
def test_two_concurrent_shard_processes(reference, tmp_path):
    """Two `jaxescape sweep --shard` processes at once on one run directory (~20 s)."""
    config, one = reference
    output = tmp_path / "concurrent"
    command = [sys.executable, "-m", "jaxescape", "sweep", str(config), "--output", str(output),
               "--no-progress", "--shard"]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shards = [subprocess.Popen([*command, f"{index}/2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment)
              for index in range(2)]
    for shard in shards:
        _, error = shard.communicate(timeout=600)
        assert shard.returncode == 0, error
    assert_same_files(output, one)
    assert point_file(3, "npz") in RunStore(output).files
