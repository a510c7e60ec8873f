"""The `jaxescape` command line and the experiment config: one smoke-size run, then validation."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

# The CLI's experiment layer is internal (not exported): its config and Kramers experiment.
import jaxescape._experiments.kramers as experiment
from jaxescape._experiments.config import (
    ConfigError,
    ExperimentConfig,
    config_to_toml,
    load_config,
)
from jaxescape.cli import main


SMOKE_TEMPERATURES = (0.5, 0.4)
SMOKE_PARTICLES = 2000
RUN_FILES = ("summary.json", "escape_times.npz", "escape_times.png", "config.toml")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One CLI run at smoke size; its exit status, output and run directory."""
    output = tmp_path_factory.mktemp("smoke") / "run"
    capture = pytest.MonkeyPatch()
    stdout_path = output.parent / "stdout.txt"
    with open(stdout_path, "w") as stdout:
        capture.setattr(sys, "stdout", stdout)
        try:
            status = main([
                "run", "--particles", str(SMOKE_PARTICLES),
                "--temperatures", ",".join(map(str, SMOKE_TEMPERATURES)),
                "--output", str(output), "--no-progress",
            ])
        finally:
            capture.undo()
    return status, stdout_path.read_text(), output


def test_smoke_run_exits_0_prints_table_and_writes_files(smoke_run):
    status, stdout, output = smoke_run
    assert status == 0
    for column in ("T", "ΔL/T", "MFPT sim ± SE", "exact", "Kramers", "sim/exact",
                   "(sim−exact)/SE", "exp. p-value", "MFPT extrap ± SE", "(extrap−exact)/SE"):
        assert column in stdout
    table = stdout[stdout.index("MFPT sim ± SE") - 40:].splitlines()
    assert any(line.split()[0] == "0.5" for line in table if line.strip())
    for name in RUN_FILES:
        assert (output / name).is_file(), name
    assert (output / "escape_times.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [name for name in os.listdir(output) if name.endswith(".tmp")]


def test_summary_is_consistent(smoke_run):
    _, _, output = smoke_run
    summary = json.loads((output / "summary.json").read_text())
    assert summary["complete"] is True
    assert summary["config"]["particles"] == SMOKE_PARTICLES
    assert summary["device"]["device_kind"]
    assert summary["versions"]["jax"] and summary["versions"]["jaxescape"]
    arrays = np.load(output / "escape_times.npz")
    barrier = summary["landscape"]["barrier"]
    assert [level["temperature"] for level in summary["levels"]] == list(SMOKE_TEMPERATURES)
    for index, level in enumerate(summary["levels"]):
        mfpt, error, exact = level["mfpt"], level["mfpt_standard_error"], level["exact_mfpt"]
        assert level["mfpt_estimator"] == "sample mean"
        assert level["num_censored"] == level["num_diverged"] == 0
        assert level["num_escaped"] == level["num_particles"] == SMOKE_PARTICLES
        # The stored numbers agree with each other and with the stored escape steps.
        dt = float(arrays[f"level{index}_dt"])
        assert dt == pytest.approx(summary["config"]["dt"], rel=1e-6)  # as simulated (float32)
        times = arrays[f"level{index}_escape_step"] * dt
        assert mfpt == pytest.approx(np.mean(times), rel=1e-12)
        assert error == pytest.approx(np.std(times, ddof=1) / math.sqrt(times.size), rel=1e-9)
        assert level["ratio_simulated_to_exact"] == pytest.approx(mfpt / exact, rel=1e-12)
        assert level["deviation_in_standard_errors"] == pytest.approx((mfpt - exact) / error)
        assert level["ratio_exact_to_kramers"] == pytest.approx(exact / level["kramers_time"])
        assert level["barrier_over_temperature"] == pytest.approx(barrier / level["temperature"])
        assert not arrays[f"level{index}_censored"].any()
        # The simulation agrees with the exact quadrature within 5 standard errors.
        assert abs(level["ratio_simulated_to_exact"] - 1) <= 5 * error / exact
        fit = level["exponential_fit"]
        assert fit["rate_lower"] < fit["rate"] < fit["rate_upper"]
        assert 0 <= level["exponentiality_p_value"] <= 1
        assert level["wall_time_s"] > 0
        # Extrapolation (on by default): the 2dt run's stored steps give the stored numbers.
        coarse_dt = float(arrays[f"level{index}_coarse_dt"])
        assert coarse_dt == pytest.approx(2 * dt, rel=1e-6)
        coarse = arrays[f"level{index}_coarse_escape_step"] * coarse_dt
        coarse_error = np.std(coarse, ddof=1) / math.sqrt(coarse.size)
        assert level["coarse_mfpt"] == pytest.approx(np.mean(coarse), rel=1e-12)
        extrapolated = level["mfpt_extrapolated"]
        extrapolated_error = level["mfpt_extrapolated_standard_error"]
        assert extrapolated == pytest.approx(2 * mfpt - np.mean(coarse), rel=1e-9)
        assert extrapolated_error == pytest.approx(math.sqrt(4 * error**2 + coarse_error**2))
        assert level["discretisation_bias"] == pytest.approx(np.mean(coarse) - mfpt, abs=1e-9)
        assert level["extrapolated_deviation_in_standard_errors"] == pytest.approx(
            (extrapolated - exact) / extrapolated_error)
        assert abs(extrapolated - exact) <= 5 * extrapolated_error


def test_written_config_reads_back(smoke_run):
    _, _, output = smoke_run
    config = load_config(output / "config.toml")
    assert config == ExperimentConfig(
        temperatures=SMOKE_TEMPERATURES, particles=SMOKE_PARTICLES, output=str(output),
        progress=False,
    )


@pytest.mark.parametrize(
    "config",
    [
        ExperimentConfig(),
        ExperimentConfig(
            landscape="styblinski-tang", sharpness=2.5, loss_scale=0.125,
            temperatures=(7.0, 1 / 3, 1e-5), particles=123, dt=1e-3, max_steps=77, seed=2**32 - 1,
            crossing_correction=False, extrapolate=False, output='dir with "quotes" \\ and ünïcode', progress=False,
        ),
    ],
)
def test_toml_round_trip(tmp_path, config):
    path = tmp_path / "config.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    assert load_config(path) == config


def test_config_accepts_integers_for_floats_and_integral_floats(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("barrier = 2\ntemperatures = [1, 0.5]\nparticles = 1e3\n")
    config = load_config(path)
    assert config.barrier == 2.0 and isinstance(config.barrier, float)
    assert config.temperatures == (1.0, 0.5)
    assert config.particles == 1000 and isinstance(config.particles, int)


def test_unknown_key_names_the_closest_key(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("particle = 10\n")
    with pytest.raises(ValueError, match="'particle'.*did you mean 'particles'"):
        load_config(path)
    assert main(["run", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("jaxescape: error: ") and "'particles'" in error


@pytest.mark.parametrize(
    "text, field",
    [
        ('particles = "many"\n', "particles"),
        ("particles = 2.5\n", "particles"),
        ("dt = true\n", "dt"),
        ("temperatures = 0.5\n", "temperatures"),
        ("temperatures = []\n", "temperatures"),
        ('temperatures = [0.5, "hot"]\n', "temperatures[1]"),
        ("max_steps = 0\n", "max_steps"),
        ("max_steps = 3_000_000_000\n", "max_steps"),
        ("asymmetry = 1.0\n", "asymmetry"),
        ("barrier = nan\n", "barrier"),
        ("crossing_correction = 1\n", "crossing_correction"),
        ("seed = -1\n", "seed"),
        ('landscape = "foo"\n', "landscape"),
        ("[run]\nparticles = 10\n", "run"),
        ("particles = \n", "not valid TOML"),
    ],
)
def test_bad_config_file_values(tmp_path, text, field):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_config(path)
    assert isinstance(error.value, ConfigError)
    assert field in str(error.value)


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, field, allowed",
    [
        (["--particles", "0"], "particles", "between 1 and"),
        (["--dt", "-1"], "dt", "> 0"),
        (["--temperatures", "0.5,0"], "temperatures[1]", "> 0"),
        (["--landscape", "foo"], "landscape", "'double-well', 'styblinski-tang'"),
    ],
)
def test_bad_command_line_values_exit_2(tmp_path, capsys, options, field, allowed):
    output = tmp_path / "run"
    assert main(["run", *options, "--output", str(output), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("jaxescape: error: ")
    assert field in captured.err and allowed in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not output.exists()  # nothing was started


@pytest.mark.parametrize("command", [["run"], ["reproduce", "mori"], ["sweep", "any.toml"]])
def test_cpu_devices_below_one_exits_2(capsys, command):
    assert main([*command, "--cpu-devices", "0"]) == 2
    assert "cpu-devices must be an integer >= 1, got 0" in capsys.readouterr().err


def test_cpu_devices_after_jax_started_in_this_process_exits_2(capsys):
    import jax

    other = jax.device_count() + 1  # JAX has started: this process's count is fixed
    assert main(["run", "--cpu-devices", str(other), "--no-progress"]) == 2
    assert "JAX has already started its devices" in capsys.readouterr().err


def test_unparsable_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--particles", "many"])
    assert exit_info.value.code == 2
    assert "--particles" in capsys.readouterr().err


def test_python_dash_m_reports_errors_without_traceback():
    process = subprocess.run(
        [sys.executable, "-m", "jaxescape", "run", "--particles", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 2
    assert "jaxescape: error: particles" in process.stderr
    assert "Traceback" not in process.stderr


@pytest.fixture
def captured_config(monkeypatch):
    """Replaces the experiment by a recorder of the config it is given."""
    seen = []
    monkeypatch.setattr(experiment, "run_kramers_experiment", lambda config: seen.append(config))
    return seen


def test_command_line_overrides_config_file(tmp_path, captured_config):
    path = tmp_path / "config.toml"
    path.write_text(
        "particles = 100\ndt = 0.02\ntemperatures = [0.3]\nseed = 5\ncrossing_correction = true\n"
    )
    assert main(["run", "--config", str(path), "--particles", "1e4", "--temperatures",
                 "0.9,0.8", "--no-crossing-correction", "--no-extrapolate", "--no-progress"]) == 0
    (config,) = captured_config
    assert config == ExperimentConfig(particles=10_000, dt=0.02, temperatures=(0.9, 0.8), seed=5,
                                      crossing_correction=False, extrapolate=False,
                                      progress=False)


def test_no_arguments_is_the_default_experiment(captured_config):
    assert main(["run"]) == 0
    assert captured_config == [ExperimentConfig()]
    assert ExperimentConfig().temperatures == (0.5, 0.4, 1 / 3, 2 / 7)


def test_invalid_file_value_overridden_by_command_line(tmp_path, captured_config):
    path = tmp_path / "config.toml"
    path.write_text("particles = 0\n")
    assert main(["run", "--config", str(path), "--particles", "7"]) == 0
    assert captured_config[0].particles == 7


def test_reproduce_dispatches_through_the_registry(monkeypatch, capsys, tmp_path):
    calls = []

    def demo(output_dir, size, seed, progress):
        """A demo reproduction."""
        calls.append((output_dir, size, seed, progress))
        return {}

    from jaxescape import _reproductions

    monkeypatch.setattr(_reproductions, "REPRODUCTIONS", {"demo": demo})
    monkeypatch.setattr(_reproductions, "SIZES", ("smoke", "default"))
    monkeypatch.setattr(_reproductions, "declared_sweep", lambda name, size, seed: None)
    output = str(tmp_path / "demo")
    assert main(["reproduce", "demo", "--size", "smoke", "--seed", "3", "--output", output,
                 "--no-progress"]) == 0
    assert calls == [(output, "smoke", 3, False)]
    assert os.path.isdir(output) and output in capsys.readouterr().out
    assert main(["reproduce", "--list"]) == 0
    assert "demo  A demo reproduction." in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "reproductions:\n  demo  A demo reproduction.\n" in capsys.readouterr().out
    assert main(["reproduce", "dmeo"]) == 2
    assert "did you mean 'demo'" in capsys.readouterr().err
    assert main(["reproduce", "demo", "--size", "huge"]) == 2
    assert "size must be one of smoke, default" in capsys.readouterr().err
    assert len(calls) == 1


def test_reproduce_help_and_list_give_each_reproduction_one_sentence(capsys):
    from jaxescape.theories import REPRODUCTIONS

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == sorted(REPRODUCTIONS)
    for name, line in zip(sorted(REPRODUCTIONS), listing):
        sentence = line[len(name):].strip()
        assert sentence[0].isupper() and sentence.endswith(".") and len(sentence.split()) >= 8
        assert f"{name} {sentence}" in help_text
