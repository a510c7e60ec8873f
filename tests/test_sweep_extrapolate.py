"""Sweeps with `extrapolate = true`: the 2dt run, the extrapolated columns in points, CSV,
`load_results` and the report, against the exact quadrature."""

import csv
import io
import json
import math
import pathlib

import jax
import numpy as np
import pytest

import jaxescape as jxe
# Internal machinery under test (not exported): the sweep's definition and canonical TOML.
from jaxescape._experiments.config import ConfigError
from jaxescape._experiments.sweep import Sweep, sweep_to_toml


PARTICLES = 4000


@pytest.fixture(scope="module")
def extrapolated_sweep(tmp_path_factory):
    sweep = Sweep(parameters={"particles": PARTICLES, "dt": 0.02, "barrier": 0.8},
                  grid={"temperature": [0.5, 0.4]}, extrapolate=True, name="extrapolated")
    directory = str(tmp_path_factory.mktemp("sweep") / "extrapolated")
    jxe.run_sweep(sweep, directory, progress=False, stream=io.StringIO())
    return sweep, directory


def test_extrapolated_sweep_stores_both_runs_and_the_columns(extrapolated_sweep):
    sweep, directory = extrapolated_sweep
    frame = jxe.load_results(directory)
    for index, row in frame.iterrows():
        arrays = jxe.load_escape_times(directory, index)
        assert float(arrays["coarse_dt"]) == pytest.approx(2 * float(arrays["dt"]), rel=1e-6)
        fine = arrays["escape_step"] * arrays["dt"]
        coarse = arrays["coarse_escape_step"] * arrays["coarse_dt"]
        errors = [np.std(times, ddof=1) / math.sqrt(times.size) for times in (fine, coarse)]
        assert row["mfpt"] == pytest.approx(np.mean(fine), rel=1e-12)
        assert row["mfpt_extrapolated"] == pytest.approx(2 * np.mean(fine) - np.mean(coarse),
                                                         rel=1e-9)
        assert row["mfpt_extrapolated_standard_error"] == pytest.approx(
            math.hypot(2 * errors[0], errors[1]))
        assert row["discretisation_bias"] == pytest.approx(np.mean(coarse) - np.mean(fine),
                                                           abs=1e-9)
        assert row["extrapolated_deviation_in_standard_errors"] == pytest.approx(
            (row["mfpt_extrapolated"] - row["exact_mfpt"]) / row["mfpt_extrapolated_standard_error"])
        assert abs(row["extrapolated_deviation_in_standard_errors"]) <= 4
        assert row["cost_particle_steps"] == arrays["escape_step"].sum() \
            + arrays["coarse_escape_step"].sum()
    # The dt run is the run without extrapolation: `simulate` with the point's key.
    plain = jxe.simulate(
        jxe.OverdampedLangevin(jxe.TiltedDoubleWell(0.8, 4.0), 0.5),
        jxe.past_saddle(jxe.TiltedDoubleWell(0.8, 4.0)), jxe.TiltedDoubleWell(0.8, 4.0).minimum(),
        jax.random.fold_in(jax.random.key(0), 0), num_particles=PARTICLES, dt=0.02)
    np.testing.assert_array_equal(jxe.load_escape_times(directory, 0)["escape_step"],
                                  plain.escape_step)
    with open(f"{directory}/summary.csv") as file:
        header = next(csv.reader(file))
    assert {"mfpt_extrapolated", "discretisation_bias"} <= set(header)
    report = pathlib.Path(directory, "report.md").read_text()
    assert "MFPT extrap ± SE" in report and "(extrap−exact)/SE" in report
    assert "extrapolate = true" in sweep_to_toml(sweep)


def test_extrapolate_is_checked():
    assert "extrapolate" not in sweep_to_toml(Sweep(parameters={"temperature": 0.5}))
    with pytest.raises(ConfigError, match="extrapolate must be true or false"):
        Sweep(parameters={"temperature": 0.5}, extrapolate="yes")


@pytest.mark.slow  # splitting compiles its kernel: 10 s idle, ~25 s loaded
def test_extrapolated_splitting_sweep(tmp_path):
    sweep = Sweep(parameters={"temperature": 0.2, "dt": 0.02, "replicas": 50, "runs": 8},
                  method="splitting", extrapolate=True, name="splitting")
    jxe.run_sweep(sweep, str(tmp_path / "run"), progress=False, stream=io.StringIO())
    (_, row), = jxe.load_results(str(tmp_path / "run")).iterrows()
    record = json.loads((tmp_path / "run" / "points" / "point-00000.json").read_text())
    coarse = record["summary"]["coarse_mfpt"]
    assert row["mfpt_extrapolated"] == pytest.approx(row["mfpt"] ** 2 / coarse, rel=1e-9)
    assert row["discretisation_bias"] == pytest.approx(coarse - row["mfpt"], rel=1e-9)
    assert abs(row["extrapolated_deviation_in_standard_errors"]) <= 4
    assert "coarse_run_probabilities" in jxe.load_escape_times(str(tmp_path / "run"), 0)
