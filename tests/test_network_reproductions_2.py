"""The network reproductions `meng-networks` and `wu-escape` as declared experiments: their files,
their numbers recomputed from the stored arrays, closed-form targets (the interval formulas,
noisy SGD with κ = 0 equal to plain SGD, GD leaving a minimum iff its sharpness exceeds 2/η),
and `jaxescape report DIR` rebuilding results.json. The runs are reduced below smoke size."""

import json
import math

import jax
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape.cli import main
from jaxescape.theories import declared_sweep

from helpers import assert_declared_at_every_size

# Internal machinery under test (not exported): the reproductions' sweep builder and runner.
from jaxescape._reproductions.declared import reproduction_sweep, run_reproduction
from jaxescape._reproductions.meng_networks import (
    difference_interval,
    mean_interval,
    train_and_evaluate,
)
from jaxescape._experiments.components import start_sharpness
from jaxescape._reproductions.wu_escape import built_problem, survival, sweep_points, verdict
from jaxescape._reproductions.wu_minima import wilson_interval

MENG = "jaxescape._reproductions.meng_networks:train_and_evaluate"
WU = "jaxescape._reproductions.wu_escape:minimum_facts"
MENG_OPTIONS = dict(networks=6, num_train=100, hidden=8, steps=60, learning_rate=0.1,
                    data_seed=0)
MENG_SETTINGS = ((8, 0.0), (50, 0.0), (50, 5e-4), (50, 2e-3))  # (B, κ)
WU_PROBLEM = dict(num_train=60, hidden=8, gd_learning_rate=0.05, gd_steps=3000,
                  accuracy_threshold=0.9, loss_factor=10.0)
# SGD at B = 1 and 30 from the GD minimum; GD at 0.5·2/a (stable) and 1.5·2/a (unstable); SGD at
# B = 1 with the accuracy criterion alone.
WU_SIZE = dict(particles=32, max_steps=80, batches=(1, 30), gd_factors=(0.5, 1.5),
               gd_particles=2, gd_max_steps=200, accuracy_batches=(1,))


def run_points(name, points, directory):
    sweep = reproduction_sweep(name, "smoke", 0, points, extrapolate=False)
    return directory, run_reproduction(sweep, directory, progress=False)


@pytest.fixture(scope="module")
def meng_run(tmp_path_factory):
    points = [{"label": f"settings/{index}", "method": "measure",
               "measurement": {"name": MENG, "batch_size": batch, "kappa": kappa,
                               "added_noise": kappa > 0, **MENG_OPTIONS}}
              for index, (batch, kappa) in enumerate(MENG_SETTINGS)]
    return run_points("meng-networks", points, tmp_path_factory.mktemp("meng") / "run")


@pytest.fixture(scope="module")
def wu_run(tmp_path_factory):
    return run_points("wu-escape", sweep_points(WU_SIZE, WU_PROBLEM, 0),
                      tmp_path_factory.mktemp("wu-escape") / "run")


def test_both_are_registered_and_declared_at_every_size():
    assert_declared_at_every_size("meng-networks", MENG)
    meng = declared_sweep("meng-networks", "default").expand()
    assert len(meng) == 4 and min(point["measurement.networks"] for point in meng) >= 100
    assert len({point["measurement.steps"] for point in meng}) == 1  # equal iterations
    for size in ("smoke", "default"):
        points = declared_sweep("wu-escape", size, 3).expand()
        assert {point["seed"] for point in points} == {3}
        assert [point["measurement"] for point in points if point["method"] == "measure"] == [WU]
        escapes = [point for point in points if point["method"] != "measure"]
        assert {point["start"] for point in escapes} == {"gd-minimum"}
        assert {point["criterion"] for point in escapes} == {"accuracy-below"}
    wu = [point for point in declared_sweep("wu-escape", "default").expand()
          if point["label"].startswith("sgd/")]
    assert len(wu) >= 3 and {point["particles"] for point in wu} == {10_000}


def test_spec_prints_a_sweep(capsys):
    assert main(["reproduce", "wu-escape", "--size", "smoke", "--spec"]) == 0
    out = capsys.readouterr().out
    assert "wu_escape:minimum_facts" in out and "gd-minimum" in out


def test_interval_closed_forms():
    """mean ± 1.96·s/√N; a difference of independent means has SE √(SE₁² + SE₂²)."""
    values = np.array([0.9, 0.92, 0.94, 0.96, np.nan])
    row = mean_interval(values)
    error = np.std(values[:4], ddof=1) / 2
    assert row["count"] == 4 and row["mean"] == pytest.approx(0.93)
    assert row["standard_error"] == pytest.approx(error)
    assert (row["low"], row["high"]) == pytest.approx((0.93 - 1.959964 * error,
                                                       0.93 + 1.959964 * error))
    other = {"mean": 0.9, "standard_error": 0.03}
    difference = difference_interval(row, other)
    assert difference["difference"] == pytest.approx(0.03)
    assert difference["standard_error"] == pytest.approx(math.hypot(error, 0.03))


def test_noise_with_kappa_zero_is_plain_sgd():
    """`noisy_sgd` with σ = κ = 0 adds η·0·ζ: the same key gives plain SGD's networks (the
    minibatches and starts come from stream 0 in both), up to float32 rounding of the two
    compiled programs (measured: 2.5·10⁻⁷ relative in the loss after 60 iterations)."""
    key = jax.random.key(7)
    plain = train_and_evaluate(key, batch_size=20, **MENG_OPTIONS)
    zero = train_and_evaluate(key, batch_size=20, kappa=0.0, added_noise=True, **MENG_OPTIONS)
    noisy = train_and_evaluate(key, batch_size=20, kappa=1e-2, added_noise=True, **MENG_OPTIONS)
    for name in ("train_loss", "test_loss", "noise_trace"):
        np.testing.assert_allclose(zero[name], plain[name], rtol=1e-5)
    for name in ("train_accuracy", "test_accuracy"):
        np.testing.assert_array_equal(zero[name], plain[name])
    assert np.max(np.abs(noisy["train_loss"] / plain["train_loss"] - 1)) > 1e-3


def test_meng_files_and_intervals_from_the_stored_points(meng_run):
    directory, summary = meng_run
    for name in ("results.json", "results.md", "meng-networks.png"):
        assert (directory / name).stat().st_size > 0
    means = []
    for index, (batch, kappa) in enumerate(MENG_SETTINGS):
        arrays = jxe.load_escape_times(directory, index)
        row = summary["settings"][index]
        assert (row["batch_size"], row["kappa"]) == (batch, kappa)
        finite = ~arrays["diverged"]
        assert row["test_accuracy"] == pytest.approx(
            mean_interval(arrays["test_accuracy"][finite]))
        assert np.all((arrays["test_accuracy"][finite] >= 0)
                      & (arrays["test_accuracy"][finite] <= 1))
        means.append(row["test_accuracy"])
    assert summary["differences"]["small − large"] == pytest.approx(
        difference_interval(means[0], means[1]))
    check = "small batch generalises better than large batch (95% interval of the difference > 0)"
    assert summary["checks"][check] == (summary["differences"]["small − large"]["low"] > 0)


def test_survival_on_given_arrays():
    steps = np.array([3, 5, 5, 10])
    escaped = np.array([True, True, False, True])  # the third was censored at step 5
    np.testing.assert_allclose(survival(steps, escaped, [0, 3, 4, 5, 10]),
                               [1, 0.75, 0.75, 0.5, 0.25])


def test_verdict_uses_the_bounds_as_necessary_conditions():
    """A failed bound predicts leaving; where both hold only ρ ≤ 1 predicts staying."""
    assert verdict(True, 0.5) == "unstable" and verdict(True, 2.0) == "unstable"
    assert verdict(False, 0.64) == "stable" and verdict(False, 1.0) == "stable"
    assert verdict(False, 1.07) == "undecided"


def test_wu_escape_fractions_and_linear_stability_from_the_stored_points(wu_run):
    directory, summary = wu_run
    for name in ("results.json", "results.md", "wu-escape.png"):
        assert (directory / name).stat().st_size > 0
    built = built_problem(WU_PROBLEM, 0)
    sharpness = start_sharpness(built["landscape"], built["start"])
    assert summary["minimum"]["sharpness"] == pytest.approx(sharpness)
    # GD converged where it is stable: a ≤ 2/η at the minimum.
    assert sharpness < 2 / WU_PROBLEM["gd_learning_rate"]
    escape_points = [("sgd", batch, None, WU_SIZE["particles"], WU_SIZE["max_steps"])
                     for batch in WU_SIZE["batches"]]
    escape_points += [("gd", WU_PROBLEM["num_train"], factor, WU_SIZE["gd_particles"],
                       WU_SIZE["gd_max_steps"]) for factor in WU_SIZE["gd_factors"]]
    escape_points += [("accuracy", batch, None, WU_SIZE["particles"], WU_SIZE["max_steps"])
                      for batch in WU_SIZE["accuracy_batches"]]
    for index, (kind, batch, factor, particles, steps) in enumerate(escape_points):
        arrays = jxe.load_escape_times(directory, index + 1)  # point 0: the minimum
        row = summary["points"][index]
        escaped = ~arrays["censored"]
        assert (row["batch_size"], row["runs"], row["escaped"]) == (
            batch, particles, int(escaped.sum()))
        assert (row["wilson_low"], row["wilson_high"]) == pytest.approx(
            wilson_interval(int(escaped.sum()), particles))
        assert np.all(arrays["escape_step"][arrays["censored"]] == steps)
        assert row["by_accuracy"] + row["by_loss"] + row["diverged"] == row["escaped"]
        if kind == "accuracy":  # one criterion: every escape is by accuracy
            assert np.all(arrays["boundary"][escaped] == 0)
        if factor:
            assert row["learning_rate"] == pytest.approx(factor * 2 / sharpness)
    # Linear stability of GD: at 0.5·2/a it stays, at 1.5·2/a (|1 − ηa| = 2) it leaves.
    stable, unstable = summary["points"][2], summary["points"][3]
    assert stable["verdict"] == "stable" and stable["escaped"] == 0
    assert unstable["verdict"] == "unstable" and unstable["escaped"] == unstable["runs"]


def test_report_rebuilds_results_json(meng_run, wu_run):
    for (directory, _), figure in ((meng_run, "meng-networks.png"), (wu_run, "wu-escape.png")):
        before = (directory / "results.json").read_bytes()
        for name in ("results.json", "results.md", figure):
            (directory / name).unlink()
        assert main(["report", str(directory)]) == 0
        assert (directory / "results.json").read_bytes() == before
        assert json.loads(before)["name"] in figure
        assert (directory / figure).stat().st_size > 0
