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
from jaxescape._reproductions.wu_escape import gd_minimum, survival
from jaxescape._reproductions.wu_minima import wilson_interval

MENG = "jaxescape._reproductions.meng_networks:train_and_evaluate"
WU = "jaxescape._reproductions.wu_escape:restart_from_minimum"
MENG_OPTIONS = dict(networks=6, num_train=100, hidden=8, steps=60, learning_rate=0.1,
                    data_seed=0)
MENG_SETTINGS = ((8, 0.0), (50, 0.0), (50, 5e-4), (50, 2e-3))  # (B, κ)
MINIMUM = dict(num_train=60, hidden=8, learning_rate=0.05, gd_steps=3000, data_seed=0,
               accuracy_threshold=0.9, loss_factor=10.0)
# SGD at B = 1 and 30 from the GD minimum; GD at 0.5·2/a (stable) and 1.5·2/a (unstable).
WU_POINTS = (("sgd/0", 1, 0.0, 32, 80), ("sgd/1", 30, 0.0, 32, 80), ("gd/0", 60, 0.5, 2, 200),
             ("gd/1", 60, 1.5, 2, 200))


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
    points = [{"label": label, "method": "measure",
               "measurement": {"name": WU, "batch_size": batch, "rate_factor": factor,
                               "particles": particles, "max_steps": steps, **MINIMUM}}
              for label, batch, factor, particles, steps in WU_POINTS]
    return run_points("wu-escape", points, tmp_path_factory.mktemp("wu-escape") / "run")


def test_both_are_registered_and_declared_at_every_size():
    for name, function in (("meng-networks", MENG), ("wu-escape", WU)):
        assert_declared_at_every_size(name, function)
    meng = declared_sweep("meng-networks", "default").expand()
    assert len(meng) == 4 and min(point["measurement.networks"] for point in meng) >= 100
    assert len({point["measurement.steps"] for point in meng}) == 1  # equal iterations
    wu = [point for point in declared_sweep("wu-escape", "default").expand()
          if point["label"].startswith("sgd/")]
    assert len(wu) >= 3 and {point["measurement.particles"] for point in wu} == {10_000}


def test_spec_prints_a_sweep(capsys):
    assert main(["reproduce", "wu-escape", "--size", "smoke", "--spec"]) == 0
    assert "wu_escape:restart_from_minimum" in capsys.readouterr().out


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


def test_wu_escape_fractions_and_linear_stability_from_the_stored_points(wu_run):
    directory, summary = wu_run
    for name in ("results.json", "results.md", "wu-escape.png"):
        assert (directory / name).stat().st_size > 0
    _, _, _, facts = gd_minimum(MINIMUM["num_train"], MINIMUM["hidden"], MINIMUM["data_seed"],
                                MINIMUM["learning_rate"], MINIMUM["gd_steps"])
    assert summary["minimum"]["sharpness"] == pytest.approx(facts["sharpness"])
    # GD converged where it is stable: a ≤ 2/η at the minimum.
    assert facts["sharpness"] < 2 / MINIMUM["learning_rate"]
    for index, (_, batch, factor, particles, steps) in enumerate(WU_POINTS):
        arrays = jxe.load_escape_times(directory, index)
        row = summary["points"][index]
        escaped = ~arrays["censored"]
        assert (row["runs"], row["escaped"]) == (particles, int(escaped.sum()))
        assert (row["wilson_low"], row["wilson_high"]) == pytest.approx(
            wilson_interval(int(escaped.sum()), particles))
        assert np.all(arrays["exit_step"][arrays["censored"]] == steps)
        if factor:
            assert row["learning_rate"] == pytest.approx(factor * 2 / facts["sharpness"])
    # Linear stability of GD: at 0.5·2/a it stays, at 1.5·2/a (|1 − ηa| = 2) it leaves.
    stable, unstable = summary["points"][2], summary["points"][3]
    assert not stable["predicted_unstable"] and stable["escaped"] == 0
    assert unstable["predicted_unstable"] and unstable["escaped"] == unstable["runs"]


def test_report_rebuilds_results_json(meng_run, wu_run):
    for (directory, _), figure in ((meng_run, "meng-networks.png"), (wu_run, "wu-escape.png")):
        before = (directory / "results.json").read_bytes()
        for name in ("results.json", "results.md", figure):
            (directory / name).unlink()
        assert main(["report", str(directory)]) == 0
        assert (directory / "results.json").read_bytes() == before
        assert json.loads(before)["name"] in figure
        assert (directory / figure).stat().st_size > 0
