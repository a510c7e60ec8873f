"""mori-stationary: the estimator of Mori's stationary exponent φ against exact 1-D laws, and the
smoke reproduction end to end (docs/THEORY.md §3.4)."""

import json
import math

import jax
import numpy as np
import pytest

import jaxescape as jxe
import jaxescape.theories as jxt
from jaxescape._reproductions.mori_stationary import (
    network_minimum,
    reproduce_mori_stationary,
    sample_times,
    stationary_exponent,
)


def _exact_draws(key, phi, flatness, minimum_loss, shape):
    """z with P(z) ∝ (L* + h z²/2)^−φ: w = h z²/(2L* + h z²) ~ Beta(1/2, φ − 1/2), random sign."""
    beta_key, sign_key = jax.random.split(key)
    w = np.asarray(jax.random.beta(beta_key, 0.5, phi - 0.5, shape), np.float64)
    sign = np.where(np.asarray(jax.random.bernoulli(sign_key, 0.5, shape)), 1.0, -1.0)
    return sign * np.sqrt(2 * minimum_loss * w / (flatness * (1 - w)))


@pytest.mark.parametrize("phi", [2.5, 6.0])
def test_estimator_on_exact_draws(phi):
    z = _exact_draws(jax.random.key(11), phi, 3.0, 0.2, (20_000,))
    fit = stationary_exponent(z, 3.0, 0.2)
    assert abs(fit["phi"] - phi) <= 4 * fit["phi_se"]
    # Independent samples: the particle-clustered SE is the Fisher SE up to sampling noise.
    assert fit["phi_se"] == pytest.approx(fit["phi_se_iid"], rel=0.1)


def test_clustered_standard_error_counts_particles_not_samples():
    # Four identical samples per particle carry the information of one: the clustered SE is
    # that of the particles alone (an identity), the i.i.d. one half of it.
    z = _exact_draws(jax.random.key(12), 4.0, 2.0, 0.1, (5000,))
    single = stationary_exponent(z, 2.0, 0.1)
    repeated = stationary_exponent(np.tile(z, (4, 1)), 2.0, 0.1)
    assert repeated["phi"] == pytest.approx(single["phi"], rel=1e-9)
    assert repeated["phi_se"] == pytest.approx(single["phi_se"], rel=1e-9)
    assert repeated["phi_se_iid"] == pytest.approx(single["phi_se_iid"] / 2, rel=1e-9)


def test_estimator_on_mori_sde():
    # Mori's 1-D SDE (13) at a small step: φ = 1 + B/(ηh*) = 3 exactly (eq. 18); the step's
    # linearised bias −B·dt/(2η) = −0.02 is a fraction of the SE.
    flatness, minimum_loss, eta, batch = 2.0, 0.1, 0.25, 1.0
    dynamics = jxt.MoriLossNoise(jxt.QuadraticLandscape([[flatness]], [0.0], minimum_loss),
                                 eta, batch)

    def fit_at(dt):
        samples = []
        for time in (5.0, 6.5, 8.0):  # the relaxation time 1/h* is 0.5
            result = jxe.simulate(dynamics, jxe.NeverEscape(), np.zeros(1), jax.random.key(5),
                                  num_particles=4000, dt=dt, max_steps=int(round(time / dt)))
            samples.append(np.asarray(result.position)[:, 0])
        return stationary_exponent(np.array(samples), flatness, minimum_loss)

    exact = float(jxt.mori_stationary_exponent(eta, batch, flatness))
    assert exact == 3.0
    fine = fit_at(eta / 25)
    assert abs(fine["phi"] - exact) <= 4 * fine["phi_se"]
    assert fine["phi_se"] < 0.1
    # At SGD's own step dt = η the law is heavier-tailed (linearised: φ − B/2 = 2.5 [D]): the
    # finite-learning-rate shift that the reproduction's 1-D references carry.
    coarse = fit_at(eta)
    assert exact - coarse["phi"] > 4 * math.hypot(fine["phi_se"], coarse["phi_se"])
    assert abs(coarse["phi"] - (exact - batch / 2)) < 0.3


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="flatness"):
        stationary_exponent(np.ones(10), 0.0, 0.1)
    with pytest.raises(ValueError, match="particles"):
        stationary_exponent(np.full((2, 3), np.nan), 1.0, 0.1)
    with pytest.raises(ValueError, match="spacing"):
        sample_times(100, 2, 0)
    assert sample_times(101, 3, 50).tolist() == [100, 150, 200]


@pytest.mark.slow  # ~10 s; notebook 08's smoke run covers the reproduction end to end
def test_smoke_reproduction(tmp_path):
    results = reproduce_mori_stationary(tmp_path, size="smoke", progress=False)
    for name in ("results.json", "results.md", "mori-stationary.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["checks"] == results["checks"]
    minimum = results["minimum"]
    # h* (Lanczos) is the top eigenvalue of the full Hessian at a true minimum with L* > 0.
    model, train, theta, top, _ = network_minimum(4, 455, 0.3, 0)
    hessian = np.asarray(jax.hessian(lambda t: model.loss(t, train))(theta), np.float64)
    eigenvalues = np.linalg.eigvalsh((hessian + hessian.T) / 2)[::-1]
    assert minimum["flatness"] == pytest.approx(eigenvalues[0], rel=1e-3)
    assert minimum["eigenvalues"] == pytest.approx(eigenvalues[:6], rel=1e-2, abs=1e-3)
    assert eigenvalues[-1] > -1e-3 * eigenvalues[0]
    assert minimum["minimum_loss"] > 0.05 and minimum["gradient_norm"] < 1e-3
    assert np.linalg.norm(top) == pytest.approx(1.0, rel=1e-5)
    rows = results["settings"]
    assert [(row["learning_rate"], row["batch_size"]) for row in rows] == [(0.2, 1), (0.2, 4)]
    for row in rows:
        assert row["phi_mori"] == pytest.approx(1 + row["batch_size"] / (
            row["learning_rate"] * minimum["flatness"]))
        assert np.isfinite(row["phi"]) and row["phi_se"] > 0 and row["diverged"] == 0
    slope = results["slope"]
    assert slope["predicted_slope"] == pytest.approx(1 / (0.2 * minimum["flatness"]))
    assert results["all_passed"] == all(results["checks"].values())
