"""Each reproduction at smoke size: its files, and its slopes against quadrature and theory.

Smoke runs use ~100 particles per point and low barriers, so the bounds are in units of the fitted
slope's standard error (SE): the simulated slope must match the slope of the exact quadrature
(§1.4, same D(θ), same points) within 4 SE, and the paper's asymptotic slope within 4 SE plus the
finite-barrier gap |exact − asymptotic| that the quadrature itself shows. Runs are deterministic
(fixed seed, counter-based noise).
"""

import json
import math

import pytest

from jaxescape.theories import REPRODUCTIONS


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    cache = {}

    def run(name):
        if name not in cache:
            directory = tmp_path_factory.mktemp(name)
            cache[name] = (directory, REPRODUCTIONS[name](directory, size="smoke", seed=0,
                                                          progress=False))
        return cache[name]

    return run


@pytest.mark.parametrize("name", ["xie", "mori", "meng"])
def test_smoke_reproduction(smoke_runs, name):
    directory, summary = smoke_runs(name)
    for filename in ("results.json", "results.md", f"{name}.png"):
        assert (directory / filename).stat().st_size > 0
    stored = json.loads((directory / "results.json").read_text())
    assert stored["reproduction"] == name and stored["size"] == "smoke"
    assert set(stored["sweeps"]) == set(summary["sweeps"])
    assert "## Summary" in (directory / "results.md").read_text()

    for sweep in summary["sweeps"].values():
        fit, exact, predicted = sweep["fit"], sweep["exact_fit"], sweep["predicted_slope"]
        label = f"{name}/{sweep['name']}"
        assert math.isfinite(fit["slope"]) and fit["slope_se"] > 0, label
        assert abs(fit["slope"] - exact["slope"]) <= 4 * fit["slope_se"], label
        assert abs(fit["slope"] - predicted) <= (
            4 * fit["slope_se"] + abs(exact["slope"] - predicted)), label
        for point in sweep["points"]:
            assert point["censored"] == 0 and point["diverged"] == 0, label
            assert point["agrees_with_exact"], (label, point["x"], point["deviation_in_se"])


def test_mori_smoke_stationary_exponent(smoke_runs):
    _, summary = smoke_runs("mori")
    rows = summary["stationary_exponent"]["rows"]
    assert {row["dimension"] for row in rows} == {1, 3}
    for row in rows:
        # φ within 4 SE plus the measured dt bias plus 2% (anisotropic H for d > 1).
        allowed = 4 * row["phi_se"] + abs(row["bias"]) + 0.02 * row["phi_predicted"]
        assert abs(row["phi"] - row["phi_predicted"]) <= allowed, row


def test_registry_and_size_validation(tmp_path):
    assert set(REPRODUCTIONS) == {"xie", "mori", "meng", "wu", "sgd-vs-sde"}
    for function in REPRODUCTIONS.values():
        with pytest.raises(ValueError, match="size"):
            function(tmp_path, size="huge", progress=False)
