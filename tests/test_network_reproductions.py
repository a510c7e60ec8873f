"""The papers' network experiments as declared reproductions (`wu-minima`, `mori-networks`): their
files, their checks computed from the stored points, closed-form targets (the stability bounds,
Wilson's interval, η → 0, exact power laws), and `jaxescape report DIR` rebuilding results.json.
The runs are reduced below smoke size (few, small networks, few iterations) to stay cheap."""

import json
import math

import numpy as np
import pytest

import jaxescape as jxe
from jaxescape.cli import main
from jaxescape.theories import declared_sweep

from helpers import assert_declared_at_every_size

# Internal machinery under test (not exported): the reproductions' sweep builder and runner.
from jaxescape._reproductions.declared import reproduction_sweep, run_reproduction
from jaxescape._reproductions.mori_networks import checkpoint_steps, late_slopes
from jaxescape._reproductions.wu_minima import setting_summary, wilson_interval

WU = "jaxescape._reproductions.wu_minima:train_and_measure"
MORI = "jaxescape._reproductions.mori_networks:noise_along_training"
WU_SETTINGS = ((0.1, 16), (1e-3, 16))  # the second: η tiny, so a ≤ 2/η holds for every network
WU_OPTIONS = dict(networks=12, num_train=100, hidden=8, steps=300, data_seed=0,
                  sharpness_iterations=12, non_uniformity_iterations=8)
MORI_OPTIONS = dict(networks=3, num_train=100, hidden=8, steps=400, checkpoints=6, data_seed=0)


def reduced_run(name, function, settings, options, directory):
    points = [{"label": f"settings/{index}", "method": "measure",
               "measurement": {"name": function, "learning_rate": eta, "batch_size": batch,
                               **options}}
              for index, (eta, batch) in enumerate(settings)]
    sweep = reproduction_sweep(name, "smoke", 0, points, extrapolate=False)
    return directory, run_reproduction(sweep, directory, progress=False)


@pytest.fixture(scope="module")
def wu_run(tmp_path_factory):
    return reduced_run("wu-minima", WU, WU_SETTINGS, WU_OPTIONS,
                       tmp_path_factory.mktemp("wu-minima") / "run")


@pytest.fixture(scope="module")
def mori_run(tmp_path_factory):
    return reduced_run("mori-networks", MORI, ((0.1, 16),), MORI_OPTIONS,
                       tmp_path_factory.mktemp("mori-networks") / "run")


def test_both_are_registered_and_declared_at_every_size():
    for name, function in (("wu-minima", WU), ("mori-networks", MORI)):
        assert_declared_at_every_size(name, function)
    assert len(declared_sweep("wu-minima", "default").expand()) == 4
    assert declared_sweep("wu-minima", "default").expand()[0]["measurement.networks"] >= 1000


def test_spec_prints_a_sweep(capsys):
    assert main(["reproduce", "wu-minima", "--size", "smoke", "--spec"]) == 0
    assert "wu_minima:train_and_measure" in capsys.readouterr().out


def test_wilson_interval_closed_forms():
    """0 of n: (0, z²/(n + z²)); n of n: (n/(n + z²), 1); 5 of 10 symmetric about 1/2 with
    half-width z√(n/4 + z²/4)/(n + z²)."""
    z = 1.959964
    assert wilson_interval(0, 10) == pytest.approx((0.0, z**2 / (10 + z**2)), abs=1e-12)
    assert wilson_interval(64, 64) == pytest.approx((64 / (64 + z**2), 1.0), abs=1e-12)
    low, high = wilson_interval(5, 10)
    half = z * math.sqrt(10 / 4 + z**2 / 4) / (10 + z**2)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-12)


def test_setting_summary_bounds_and_fractions_on_given_arrays():
    """a ≤ 2/η and s ≤ √(B(n−1)/(n−B))/η; diverged networks are counted and left out of the
    fractions."""
    arrays = {"sharpness": np.array([1.0, 4.0, 30.0, np.nan]),
              "non_uniformity": np.array([1.0, 80.0, 1.0, np.nan]),
              "train_accuracy": np.array([1.0, 0.95, 0.5, np.nan]),
              "test_accuracy": np.array([0.9, 0.9, 0.4, np.nan]),
              "train_loss": np.array([0.01, 0.02, 0.5, np.nan]),
              "diverged": np.array([False, False, False, True])}
    row = setting_summary({"learning_rate": 0.1, "batch_size": 32, "num_train": 1000}, arrays)
    assert row["sharpness_bound"] == pytest.approx(20.0)
    assert row["non_uniformity_bound"] == pytest.approx(math.sqrt(32 * 999 / 968) / 0.1)
    assert (row["diverged"], row["not_trained"], row["trained"]) == (1, 1, 2)
    assert (row["inside_sharpness"]["inside"], row["inside_sharpness"]["of"]) == (2, 3)
    assert (row["inside_non_uniformity"]["inside"], row["inside_both"]["inside"]) == (2, 1)
    assert (row["inside_both_trained"]["inside"], row["inside_both_trained"]["of"]) == (1, 2)


def test_wu_minima_files_and_checks_from_the_stored_points(wu_run):
    directory, summary = wu_run
    for name in ("results.json", "results.md", "wu-minima.png"):
        assert (directory / name).stat().st_size > 0
    assert json.loads((directory / "results.json").read_text())["name"] == "wu-minima"
    for index, (eta, batch) in enumerate(WU_SETTINGS):
        arrays = jxe.load_escape_times(directory, index)
        row = summary["settings"][index]
        n = WU_OPTIONS["num_train"]
        assert row["sharpness_bound"] == pytest.approx(2 / eta)
        assert row["non_uniformity_bound"] == pytest.approx(
            math.sqrt(batch * (n - 1) / (n - batch)) / eta)
        finite = ~arrays["diverged"]
        assert row["diverged"] == int(arrays["diverged"].sum())
        assert np.all(np.isnan(arrays["sharpness"][~finite]))
        inside = (arrays["sharpness"] <= 2 / eta) & (arrays["non_uniformity"]
                                                    <= row["non_uniformity_bound"])
        assert row["inside_both"]["inside"] == int(inside[finite].sum())
        assert row["inside_both"]["of"] == int(finite.sum())
        name = f"η = {eta:g}, B = {batch}: every network that did not diverge has "
        assert summary["checks"][name + "a ≤ 2/η"] == bool(
            finite.any() and (arrays["sharpness"][finite] <= 2 / eta).all())
        assert summary["checks"][name + "s ≤ √(B(n−1)/(n−B))/η"] == bool(
            finite.any() and (arrays["non_uniformity"][finite]
                              <= row["non_uniformity_bound"]).all())
        assert np.all(arrays["sharpness"][finite] > 0) and np.all(
            arrays["non_uniformity"][finite] > 0)
    tiny = summary["settings"][1]  # η = 1e-3: no network diverges and every a is far below 2/η
    assert tiny["diverged"] == 0 and tiny["inside_sharpness"]["fraction"] == 1.0
    assert tiny["largest_sharpness_over_bound"] < 0.1


def test_mori_networks_slopes_from_the_stored_points(mori_run):
    directory, summary = mori_run
    for name in ("results.json", "results.md", "mori-networks.png"):
        assert (directory / name).stat().st_size > 0
    arrays = jxe.load_escape_times(directory, 0)
    steps = checkpoint_steps(MORI_OPTIONS["steps"], MORI_OPTIONS["checkpoints"])
    np.testing.assert_array_equal(arrays["steps"], steps)
    assert arrays["loss"].shape == arrays["noise_trace"].shape == (steps.size, 3)
    row = summary["settings"][0]
    for key, value in late_slopes(steps, arrays["loss"], arrays["noise_trace"]).items():
        assert row[key] == pytest.approx(value), key  # approx of a number or a flat list
    # The loss falls along training (the first checkpoint is near the random start).
    assert np.all(arrays["loss"][-1] < arrays["loss"][0])


def test_late_slopes_recover_exact_power_laws():
    """𝒩 = c·L^k exactly gives slope k for every network; diverged (NaN) networks are left out
    and counted."""
    steps = checkpoint_steps(1000, 10)
    loss = np.exp(-np.linspace(0, 3, steps.size))[:, None] * np.array([1.0, 2.0, 0.5, 1.0])
    noise = np.stack([3 * loss[:, 0], 0.2 * loss[:, 1] ** 0.5, loss[:, 2] ** 2,
                      np.full(steps.size, np.nan)], 1)
    fit = late_slopes(steps, loss, noise)
    assert fit["slopes"] == pytest.approx([1.0, 0.5, 2.0], abs=1e-9)
    assert (fit["networks"], fit["left_out"]) == (3, 1)
    assert fit["mean"] == pytest.approx(3.5 / 3)


def test_report_rebuilds_results_json(wu_run, mori_run):
    for (directory, _), figure in ((wu_run, "wu-minima.png"), (mori_run, "mori-networks.png")):
        before = (directory / "results.json").read_bytes()
        for name in ("results.json", "results.md", figure):
            (directory / name).unlink()
        assert main(["report", str(directory)]) == 0
        assert (directory / "results.json").read_bytes() == before
        assert (directory / figure).stat().st_size > 0
