"""Running a sweep: one compilation for all points, the stored run, `runs`, `report`, and
`run --method splitting`."""

import contextlib
import csv
import io
import pathlib

import jax
import numpy as np
import pytest

import jaxescape._experiments.sweep_run as sweep_run
from jaxescape._experiments.report import REPORT_FILE
from jaxescape._splitting.estimator import FLAT_NAMES, splitting_result_from_flat
from jaxescape._experiments.store import RunStore
from jaxescape._experiments.sweep import Sweep
from jaxescape.cli import main


PARTICLES = 173  # a pool/chunk shape no other test uses: the first point must compile


class CompileEvents:
    """Backend compilations by function name, from `jax.monitoring` (see
    tests/test_simulate_compilation.py)."""

    def __init__(self):
        self.names = []

    def __call__(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.names.append(str(kwargs.get("fun_name", "")))


@pytest.fixture(scope="module")
def stored_sweep(tmp_path_factory):
    """Four points: a base point, then barrier, temperature and dt changed one at a time;
    compilations counted per point."""
    base = {"barrier": 0.8, "temperature": 0.5, "dt": 0.01}
    points = [base, base | {"barrier": 1.2}, base | {"temperature": 0.4}, base | {"dt": 0.02}]
    sweep = Sweep(parameters={"particles": PARTICLES, "max_steps": 50_000}, points=points,
                  name="grid")
    directory = str(tmp_path_factory.mktemp("sweep") / "grid")
    stdout = io.StringIO()
    per_point = run_counting_compilations(sweep, directory, stdout)
    return directory, per_point, stdout.getvalue()


def run_counting_compilations(sweep, directory, stdout) -> list[list[str]]:
    """Runs the sweep; returns the names of the functions compiled while each point ran."""
    events, per_point = CompileEvents(), []
    original = sweep_run._run_point

    def counting(*args, **kwargs):
        before = len(events.names)
        record = original(*args, **kwargs)
        per_point.append(events.names[before:])
        return record

    patch = pytest.MonkeyPatch()
    patch.setattr(sweep_run, "_run_point", counting)
    jax.monitoring.register_event_duration_secs_listener(events)
    try:
        sweep_run.run_sweep(sweep, directory, progress=False, stream=stdout)
    finally:
        jax.monitoring.unregister_event_duration_listener(events)
        patch.undo()
    return per_point


def test_points_sharing_shapes_share_one_compilation(stored_sweep):
    _, per_point, _ = stored_sweep
    assert len(per_point) == 4
    assert per_point[0].count("jit(advance)") == 1  # the new shape compiles once ...
    assert per_point[1:] == [[]] * 3  # ... and no other point compiles anything


def test_the_run_directory_holds_every_record(stored_sweep):
    directory, _, stdout = stored_sweep
    store = RunStore(directory)
    assert store.corrupted() == {}
    assert {"sweep.toml", "environment.json", "summary.csv", REPORT_FILE,
            "figures/escape_times.png", "figures/log_tau_vs_barrier.png",
            "figures/log_tau_vs_temperature.png", "figures/log_tau_vs_dt.png"} <= set(store.files)
    environment = store.read_json("environment.json")
    assert environment["versions"]["jax"] == jax.__version__
    assert environment["versions"]["jaxlib"] and environment["device_kind"]
    rows = list(csv.DictReader(io.StringIO(store.read("summary.csv").decode())))
    assert [int(row["index"]) for row in rows] == list(range(4))
    for row in rows:
        index = int(row["index"])
        arrays = store.read_arrays(sweep_run.point_file(index, "npz"))
        times = arrays["escape_step"] * float(arrays["dt"])
        assert times.size == int(row["num_particles"]) == PARTICLES
        assert float(row["mfpt"]) == pytest.approx(times.mean(), rel=1e-12)
        # The interval holds the estimate; the exact reference is from the quadrature.
        assert float(row["mfpt_lower"]) < float(row["mfpt"]) < float(row["mfpt_upper"])
        assert float(row["ratio_to_exact"]) == pytest.approx(
            float(row["mfpt"]) / float(row["exact_mfpt"]), rel=1e-12)
        record = store.read_json(sweep_run.point_file(index, "json"))
        assert record["key"] == "jax.random.fold_in(jax.random.key(seed), index)"
    # 173 particles: simulated means within 5 standard errors of the exact MFPT (dt bias < 1%).
    deviations = [float(row["deviation_in_standard_errors"]) for row in rows]
    assert max(map(abs, deviations)) < 5, deviations
    assert "point 4/4" in stdout and "| point | barrier | temperature | dt |" in stdout


def test_report_rebuilds_without_simulating(stored_sweep, monkeypatch, capsys):
    directory, _, _ = stored_sweep
    store = RunStore(directory)
    before = {name: store.read(name) for name in store.files}
    monkeypatch.setattr(sweep_run, "simulate", None)  # any simulation would fail
    assert main(["report", directory]) == 0
    assert "## Weighted fits of log τ" in capsys.readouterr().out
    after = RunStore(directory)
    assert {name: after.read(name) for name in after.files} == before  # same report, same files
    text = after.read(REPORT_FILE).decode()
    assert "| log τ vs barrier | temperature=0.5, dt=0.01 |" in text
    assert "| log τ vs 1 / temperature |" in text


def test_runs_lists_status_and_report_names_corrupted_files(stored_sweep, tmp_path, capsys):
    directory, _, _ = stored_sweep
    assert main(["runs", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "no runs found\n"
    assert main(["runs", directory]) == 0
    assert " complete " in capsys.readouterr().out
    # A copy with a truncated point file: `runs` and `report` name it.
    copy = tmp_path / "copy"
    store = RunStore(directory)
    for name in store.files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(store.read(name))
    (copy / "manifest.json").write_bytes((pathlib.Path(directory) / "manifest.json").read_bytes())
    damaged = copy / sweep_run.point_file(3, "npz")
    damaged.write_bytes(damaged.read_bytes()[:50])
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "corrupted" in out and "points/point-00003.npz: truncated" in out
    assert main(["report", str(copy)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("jaxescape: error: corrupted files: ")
    assert "point-00003.npz (truncated or altered (50 bytes" in error


def test_report_and_runs_reject_what_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "absent")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_different_sweep_in_the_same_directory_is_refused(stored_sweep, capsys, tmp_path):
    directory, _, _ = stored_sweep
    config = tmp_path / "other.toml"
    config.write_text('name = "grid"\n[parameters]\ntemperature = 0.3\nparticles = 10\n')
    assert main(["sweep", str(config), "--output", directory, "--no-progress"]) == 2
    assert "holds a different sweep" in capsys.readouterr().err


def fake_splitting(calls):
    """Stands in for `mean_escape_time_by_splitting` (which compiles for ~15 s): known numbers."""

    def estimate(dynamics, criterion, start, key, *, dt, num_replicas, num_runs, **options):
        calls.append({"temperature": float(dynamics.temperature), "dt": dt,
                      "replicas": num_replicas, "runs": num_runs, **options})
        fields = dict.fromkeys(FLAT_NAMES, 0)
        return splitting_result_from_flat(fields | {
            "mean_escape_time": 30.0, "lower": 27.0, "upper": 33.5, "standard_error": 1.6,
            "probability": 0.01, "cost": 12345, "run_probabilities": np.full(num_runs, 0.01),
            "num_iterations": np.arange(num_runs)})

    return estimate


def test_run_method_splitting_extrapolates_as_the_direct_method_does():
    from jaxescape._experiments.config import ExperimentConfig
    from jaxescape._experiments.sweep import splitting_sweep

    assert splitting_sweep(ExperimentConfig()).extrapolate
    assert not splitting_sweep(ExperimentConfig(extrapolate=False)).extrapolate


def test_run_method_splitting_writes_a_sweep_run(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep_run, "mean_escape_time_by_splitting", fake_splitting(calls))
    output = tmp_path / "splitting"
    assert main(["run", "--method", "splitting", "--temperatures", "0.4,0.25", "--dt", "0.02",
                 "--replicas", "40", "--runs", "4", "--output", str(output),
                 "--no-progress", "--no-extrapolate"]) == 0
    assert "'splitting' (splitting): 2 points over temperature" in capsys.readouterr().out
    assert [(call["temperature"], call["dt"], call["replicas"], call["runs"])
            for call in calls] == [(pytest.approx(0.4), 0.02, 40, 4),
                                   (pytest.approx(0.25), 0.02, 40, 4)]
    store = RunStore(output)
    rows = list(csv.DictReader(io.StringIO(store.read("summary.csv").decode())))
    exact = float(rows[0]["exact_mfpt"])
    assert rows[0]["method"] == "splitting" and rows[0]["replicas"] == "40"
    assert "particles" not in rows[0]
    assert float(rows[0]["ratio_lower"]) == pytest.approx(27.0 / exact, rel=1e-12)
    assert float(rows[0]["ratio_upper"]) == pytest.approx(33.5 / exact, rel=1e-12)
    assert rows[0]["cost_particle_steps"] == "12345"
    np.testing.assert_array_equal(
        store.read_arrays(sweep_run.point_file(1, "npz"))["num_iterations"], np.arange(4))
    assert main(["report", str(output)]) == 0
    report = capsys.readouterr().out
    assert "| log τ vs 1 / temperature | all |" in report
    assert "escape_times.png" not in report  # no raw escape times with splitting
    assert main(["runs", str(tmp_path)]) == 0
    assert "complete  splitting over temperature" in capsys.readouterr().out


@pytest.mark.slow
def test_run_method_splitting_for_real(tmp_path, capsys):
    output = tmp_path / "splitting"
    assert main(["run", "--method", "splitting", "--temperatures", "0.25", "--replicas", "100",
                 "--runs", "8", "--output", str(output), "--no-progress"]) == 0
    summary = RunStore(output).read_json(sweep_run.point_file(0, "json"))["summary"]
    assert summary["mfpt_estimator"] == "adaptive multilevel splitting"
    assert summary["ratio_lower"] < 1.0 < summary["ratio_upper"], summary  # exact inside


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--method", "splitting", "--particles", "10"],
         "--particles applies to --method direct only"),
        (["run", "--replicas", "10"], "--replicas applies to --method splitting only"),
        (["run", "--method", "splitting", "--replicas", "1"],
         "replicas must be an integer between 2 and 65536"),
    ],
)
def test_run_method_errors(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("jaxescape: error: ") and message in error


def test_example_sweep_file_is_valid():
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert main(["sweep", str(example), "--dry-run"]) == 0
    assert "12 points into runs/barrier-temperature (dry run" in stdout.getvalue()
