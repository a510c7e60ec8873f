"""The `xie-networks` reproduction: the exit-exponent scales against their closed forms, the
normalised exit time against an independent quadrature, the minimum's curvature (Lanczos and
Hutchinson against the dense Hessian) and a reduced run of its declared sweep (escape points
built from components) with its analysis files."""

import json
import math

import numpy as np
import pytest
import scipy.integrate

from jaxescape.theories import declared_sweep

# Internal machinery under test (not exported): the reproduction's helpers and runner.
from jaxescape._reproductions.declared import reproduction_sweep, run_reproduction
from jaxescape._reproductions.xie_networks import (
    _fit,
    chain_exponent_scale,
    gaussian_chain_grid,
    normalised_exit_time,
    problem_point,
)

pytest.importorskip("sklearn")


def _spd(dim, seed):
    generator = np.random.default_rng(seed)
    root = generator.normal(size=(dim, dim))
    return root @ root.T / dim + 0.1 * np.eye(dim)


@pytest.mark.parametrize("learning_rate", [None, 0.01, 0.1])
def test_exponent_scale_is_xies_when_the_noise_equals_the_hessian(learning_rate):
    # C₁ = H: the SDE's S = I/2 (μ_max = λ_max/2, Xie's exponent 2BΔL/(ηλ_max)); the chain's
    # S = η(2 − ηH)^{-1}, μ_max = ηλ_max/(2 − ηλ_max).
    hessian = _spd(6, 0)
    top = np.linalg.eigvalsh(hessian)[-1]
    expected = top / 2 if learning_rate is None else \
        learning_rate * top / (2 - learning_rate * top)
    assert chain_exponent_scale(hessian, hessian, learning_rate) == pytest.approx(expected,
                                                                                  rel=1e-9)


def test_exponent_scale_of_an_anisotropic_noise_is_the_top_of_s_h():
    # Diagonal H and C₁: S = C₁/(2H) per direction (SDE), so μ_j = c_j/2.
    hessian, noise = np.diag([4.0, 1.0, 0.5]), np.diag([1.0, 3.0, 0.2])
    assert chain_exponent_scale(hessian, noise, None) == pytest.approx(1.5, rel=1e-9)


@pytest.mark.parametrize("exponent", [1.0, 4.0])
def test_normalised_exit_time_against_a_direct_double_integral(exponent):
    # dz = −z dt + √(2D) dW, D = 1/(2E), from 0 to |z| = 1 (symmetric: reflect at 0):
    # T(0) = ∫_0^1 e^{E y²} ∫_0^y e^{−E u²} du dy / D.
    inner = lambda y: scipy.integrate.quad(lambda u: math.exp(-exponent * u * u), 0, y)[0]  # noqa: E731
    value = scipy.integrate.quad(lambda y: math.exp(exponent * y * y) * inner(y), 0, 1)[0]
    assert normalised_exit_time(exponent) == pytest.approx(2 * exponent * value, rel=1e-6)


def test_declared_sweep_points_are_built_from_components():
    points = declared_sweep("xie-networks", "default").expand()
    labels = [point["label"] for point in points]
    assert labels[0] == "minimum/0" and labels.count("minimum/0") == 1
    escape = [point for point in points if point["label"] != "minimum/0"]
    assert {point["model"] for point in escape} == {"mlp"}
    assert {point["start"] for point in escape} == {"minimum"}
    assert all(point["dynamics.replacement"] is True for point in escape)
    assert [point["dynamics.batch_size"] for point in escape if point["label"].startswith(
        "batch")] == [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    """minimum/0, B ∈ {1, 2} at η = 0.01, 1/η ∈ {50, 100} at B = 1 (128 particles)."""
    common = dict(particles=128, max_steps=50_000)
    rates = [0.01, 1 / 50, 1 / 100]
    points = [{"label": "minimum/0", "method": "measure",
               "measurement": {"name": "jaxescape._reproductions.xie_networks:minimum_facts",
                               "data_seed": 0, "learning_rates": rates}}]
    points += [problem_point(0, batch, 0.01, label=f"batch/{index}", **common)
               for index, batch in enumerate((1, 2))]
    points += [problem_point(0, 1, 1 / inverse, label=f"rate/{index}", **common)
               for index, inverse in enumerate((50, 100))]
    directory = tmp_path_factory.mktemp("xie-networks") / "run"
    sweep = reproduction_sweep("xie-networks", "smoke", 0, points, extrapolate=False)
    return directory, run_reproduction(sweep, directory, progress=False)


@pytest.mark.slow  # ~20 s; notebook 08's smoke run covers the reproduction end to end
def test_minimum_curvature_against_the_dense_hessian(reduced_run):
    _, results = reduced_run
    minimum = results["minimum"]
    assert minimum["gradient_norm"] < 1e-3  # BFGS converged to a stationary point
    assert minimum["sharpness"] == pytest.approx(minimum["sharpness_dense"], rel=1e-4)
    # Hutchinson is unbiased: within 4 of its standard errors of the dense trace.
    assert abs(minimum["hessian_trace"] - minimum["hessian_trace_dense"]) <= \
        4 * minimum["hessian_trace_se"]
    assert minimum["noise_along_top"] > 0 and minimum["sde_exponent_scale"] > 0


@pytest.mark.slow
def test_reduced_run_files_and_fits(reduced_run):
    directory, results = reduced_run
    for name in ("results.json", "results.md", "xie-networks.png"):
        assert (directory / name).stat().st_size > 0
    assert json.loads((directory / "results.json").read_text())["name"] == "xie-networks"
    batch, rate = results["sweeps"]
    assert [row["batch_size"] for row in batch["points"]] == [1, 2]
    assert [row["inverse_rate"] for row in rate["points"]] == pytest.approx([50, 100])
    for item in (batch, rate):
        assert item["censored"] == 0 and item["diverged"] == 0
        # Larger B, smaller η: longer stays (Xie's direction), each fit from the stored means.
        taus = [row["tau"] for row in item["points"]]
        assert taus[1] > taus[0]
        slope = (math.log(taus[1]) - math.log(taus[0])) / (
            (item["points"][1]["batch_size"] - item["points"][0]["batch_size"])
            if item["x_name"] == "B" else 50)
        assert item["fit"]["slope"] == pytest.approx(slope, rel=1e-9)
        # The chain's exponent is B·ΔL/μ_max: proportional to B at fixed η.
        exponents = [row["chain_exponent"] / row["batch_size"] for row in batch["points"]]
        assert exponents[0] == pytest.approx(exponents[1], rel=1e-12)


@pytest.mark.slow  # ~35 s each: ten points of the Gaussian chain with 16 particles each
@pytest.mark.parametrize("covariance", ["state", "frozen", "linearised"])
def test_gaussian_chain_grid_rows_and_fits(covariance):
    """The Gaussian chain's grid: every particle escapes or is censored (none diverges), the
    means rise with B and with 1/η, and the returned fits and κ ratio are those of its rows."""
    grid = gaussian_chain_grid(particles=16, covariance=covariance)
    rows = grid["rows"]
    assert [row["kind"] for row in rows] == ["batch"] * 5 + ["rate"] * 5
    assert all(row["diverged"] == 0 and math.isfinite(row["tau_iterations"]) for row in rows)
    batch = [row for row in rows if row["kind"] == "batch"]
    assert batch[-1]["tau_iterations"] > 10 * batch[0]["tau_iterations"]
    refit = _fit([row["batch_size"] for row in batch], [row["tau_iterations"] for row in batch],
                 [row["tau_iterations_se"] for row in batch])
    assert refit["slope"] == pytest.approx(grid["fit_batch"]["slope"])
    rate = [row for row in rows if row["kind"] == "rate"]
    expected = (0.01 * refit["slope"]) / (grid["fit_rate"]["slope"] / rate[0]["batch_size"])
    assert grid["kappa_ratio"] == pytest.approx(expected)
    assert grid["kappa_ratio_se"] > 0


def test_gaussian_chain_grid_refuses_an_unknown_covariance():
    with pytest.raises(ValueError, match="covariance must be 'state', 'frozen' or 'linearised'"):
        gaussian_chain_grid(covariance="constant")
