"""Sweep points that measure something other than an escape time (method "measure"), points
with their own method in one sweep, and a sweep's analysis step (the reproductions' mechanism):
stored, resumable, rebuilt by the report; bad input named before anything runs."""

import io
import json

import jax
import numpy as np
import pytest

import jaxescape as jxe
import jaxescape._experiments.sweep_run as sweep_run
from jaxescape._experiments.config import ConfigError
from jaxescape._experiments.sweep import load_sweep, make_sweep, sweep_to_toml


CALLS = []


def gaussian_moments(key, num_samples, scale=1.0):
    """A measurement: the sample mean and variance of scale·N(0, 1) draws (and the draws)."""
    CALLS.append(num_samples)
    draws = scale * np.asarray(jax.random.normal(key, (int(num_samples),)), np.float64)
    return {"sample_mean": float(draws.mean()), "sample_variance": float(draws.var(ddof=1)),
            "positive": bool(draws.mean() > 0), "draws": draws}


def summarise(run, digits=3):
    """An analysis: the measured variances against scale², and the escape point's MFPT."""
    frame = run.frame
    measured = frame[frame["method"] == "measure"]
    ratios = (measured["sample_variance"] / measured["measurement.scale"] ** 2).round(digits)
    escape = frame[frame["method"] == "direct"]
    draws = run.arrays(int(measured["index"].iloc[0]))["draws"]
    summary = {"variance_ratios": ratios.tolist(), "mfpt": escape["mfpt"].tolist(),
               "first_draw": float(draws[0]), "labels": frame["label"].tolist()}
    return {"results.json": json.dumps(summary), "notes/summary.md": "variance ratios\n"}


MODULE = __name__
SWEEP = {
    "name": "measure-and-escape",
    "parameters": {"seed": 3},
    "points": [
        {"method": "measure", "measurement": {"name": f"{MODULE}:gaussian_moments",
                                              "num_samples": 4000, "scale": 1.0},
         "label": "unit"},
        {"method": "measure", "measurement": {"name": f"{MODULE}:gaussian_moments",
                                              "num_samples": 4000, "scale": 3.0},
         "label": "three"},
        {"label": "escape",
         "landscape": {"name": "double-well", "barrier_height": 0.3, "curvature": 4.0},
         "dynamics": {"name": "langevin", "temperature": 0.3}, "particles": 64, "dt": 0.01},
    ],
    "analysis": {"name": f"{MODULE}:summarise", "digits": 2},
}


def _sweep(**changes):
    values = {**SWEEP, **changes}
    return make_sweep(values)


def test_measure_points_and_analysis_are_stored_and_rebuilt(tmp_path):
    CALLS.clear()
    directory = sweep_run.run_sweep(_sweep(), str(tmp_path / "run"), progress=False,
                                    stream=io.StringIO())
    frame = jxe.load_results(directory)
    assert frame["method"].tolist() == ["measure", "measure", "direct"]
    # The measured variance of scale·N(0,1) is within 4 SE of scale² (SE = scale²·√(2/(n−1))).
    for scale, variance in zip([1.0, 3.0], frame["sample_variance"][:2]):
        assert abs(variance - scale**2) <= 4 * scale**2 * np.sqrt(2 / 3999)
    assert frame["num_escaped"].iloc[2] == 64 and np.isnan(frame["num_escaped"].iloc[0])
    assert frame["positive"].tolist()[:2] in ([True, True], [True, False], [False, True],
                                              [False, False])
    draws = jxe.load_escape_times(directory, 1)["draws"]
    assert draws.shape == (4000,) and abs(draws.std() - 3.0) < 0.2
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["labels"] == ["unit", "three", "escape"]
    assert results["variance_ratios"] == [round(v / s**2, 2) for v, s in
                                          zip(frame["sample_variance"][:2], [1.0, 3.0])]
    assert (tmp_path / "run" / "notes" / "summary.md").read_text() == "variance ratios\n"
    assert "## Analysis" in (tmp_path / "run" / "report.md").read_text()
    # The report rebuilds the analysis from the store, without measuring again.
    calls = len(CALLS)
    (tmp_path / "run" / "results.json").unlink()
    jxe.write_report(directory)
    assert len(CALLS) == calls
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    # The canonical TOML reads back to the same sweep (the same analysis and methods).
    text = sweep_to_toml(_sweep())
    path = tmp_path / "copy.toml"
    path.write_text(text)
    assert sweep_to_toml(load_sweep(path)) == text


def test_a_rerun_measures_only_missing_points_with_the_same_numbers(tmp_path):
    quiet = io.StringIO()
    sweep_run.run_sweep(_sweep(), str(tmp_path / "whole"), progress=False, stream=quiet)
    # Shard 0/2 first (points 0 and 2), then the whole sweep resumes with point 1 only.
    part = str(tmp_path / "part")
    sweep_run.run_sweep(_sweep(), part, progress=False, stream=quiet, shard="0/2")
    assert not (tmp_path / "part" / "results.json").exists()  # the analysis waits
    assert "runs once all 3 points are stored (2 now)" in (tmp_path / "part" / "report.md") \
        .read_text()
    CALLS.clear()
    sweep_run.run_sweep(_sweep(), part, progress=False, stream=quiet)
    assert CALLS == [4000]
    for name in ("points/point-00001.npz", "results.json", "summary.csv"):
        assert (tmp_path / "part" / name).read_bytes() == (tmp_path / "whole" / name) \
            .read_bytes()


@pytest.mark.parametrize("changes, message", [
    ({"analysis": f"{MODULE}:missing"}, "analysis 'test_sweep_measure:missing' cannot be "
                                        "imported"),
    ({"analysis": {"name": f"{MODULE}:summarise", "digit": 2}}, "has no option 'digit'"),
    ({"analysis": "no_colon"}, "analysis must be an import path"),
    ({"parameters": {"method": "measure"}}, "method 'measure' needs a measurement"),
    ({"parameters": {"measurement": f"{MODULE}:gaussian_moments", "method": "measure",
                     "measurement.num_samples": 10}, "points": [{"label": "x"}],
      "method": "splitting"}, None),
    ({"parameters": {"measurement": f"{MODULE}:gaussian_moments", "method": "measure",
                     "measurement.num_sample": 10}}, "did you mean measurement.num_samples"),
    ({"parameters": {"measurement": f"{MODULE}:gaussian_moments", "method": "measure",
                     "measurement.num_samples": 10, "particles": 5}},
     "particles applies to method 'direct' only"),
    ({"parameters": {"measurement": f"{MODULE}:gaussian_moments", "method": "direct",
                     "measurement.num_samples": 10,
                     "landscape": {"name": "double-well", "barrier_height": 0.3},
                     "dynamics": {"name": "langevin", "temperature": 0.3}}},
     "a measurement belongs to method 'measure'"),
    ({"parameters": {"method": "wait"}}, "method must be one of"),
])
def test_bad_measure_sweeps_are_named(changes, message):
    values = {**SWEEP, "points": [{"label": "only", "dt": 0.01}], **changes}
    if "analysis" not in changes:
        values.pop("analysis")
    if message is None:  # a point's own method overrides the sweep's
        assert make_sweep(values).expand()[0]["method"] == "measure"
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sweep(values)


def test_an_analysis_may_not_overwrite_the_store(tmp_path):
    values = {**SWEEP, "points": SWEEP["points"][:1],
              "analysis": f"{MODULE}:overwrites_the_sweep"}
    with pytest.raises(ValueError, match="returned the file name 'sweep.toml'"):
        sweep_run.run_sweep(make_sweep(values), str(tmp_path / "run"), progress=False,
                            stream=io.StringIO())


def overwrites_the_sweep(run):
    return {"sweep.toml": "name = 'other'\n"}


def test_reference_false_skips_the_exact_reference(tmp_path):
    escape = dict(SWEEP["points"][2])
    values = {"name": "no-reference", "points": [escape, {**escape, "reference": False}]}
    directory = sweep_run.run_sweep(make_sweep(values), str(tmp_path / "run"), progress=False,
                                    stream=io.StringIO())
    frame = jxe.load_results(directory)
    assert frame["exact_mfpt"].notna()[0] and frame["exact_mfpt"].isna()[1]
