"""Wu, Ma & E's sharpness, non-uniformity and stability condition (docs/THEORY.md §5)."""

import itertools

import jax
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape import (
    batch_factor,
    mean_square_growth,
    non_uniformity,
    sharpness,
    stability_bounds,
)
from jaxescape.theories import REPRODUCTIONS


def test_sharpness_and_non_uniformity_by_hessian_vector_products_match_dense_algebra():
    data = jxe.interpolation_data(jax.random.key(0), 20, 30)
    model = jxe.LinearRegression(30)
    inputs = np.asarray(data.inputs, np.float64)
    per_sample = np.einsum("ni,nj->nij", inputs, inputs)  # H_μ = x xᵀ
    hessian = per_sample.mean(0)
    covariance = np.einsum("nij,njk->ik", per_sample, per_sample) / 20 - hessian @ hessian
    parameters = jax.numpy.zeros(30)
    np.testing.assert_allclose(sharpness(model, data, parameters),
                               np.linalg.eigvalsh(hessian)[-1], rtol=1e-4)
    np.testing.assert_allclose(non_uniformity(model, data, parameters),
                               np.sqrt(np.linalg.eigvalsh(covariance)[-1]), rtol=1e-4)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
def test_one_dimensional_condition_equals_enumeration_over_all_batches(batch_size):
    """E[(1 − η h̄_B)²] over every size-B subset equals (1 − ηa)² + η² p s² (§5.3, [V-num])."""
    curvatures = np.array([0.3, 1.1, 2.0, 0.7, 4.2, 1.6])
    learning_rate = 0.45
    subsets = itertools.combinations(range(curvatures.size), batch_size)
    exact = np.mean([(1 - learning_rate * curvatures[list(s)].mean()) ** 2 for s in subsets])
    formula = mean_square_growth(learning_rate, batch_size, curvatures.size, curvatures.mean(),
                                 curvatures.std())
    np.testing.assert_allclose(formula, exact, rtol=1e-12)


def test_bounds_reduce_to_gradient_descent_at_full_batch():
    a_max, s_max = stability_bounds(0.5, 100, 100)
    assert a_max == 4.0 and np.isinf(s_max)
    assert batch_factor(1, 10) == 1.0
    np.testing.assert_allclose(stability_bounds(0.1, 4, 1000)[1], np.sqrt(4 * 999 / 996) / 0.1)


@pytest.mark.slow
def test_reproduce_wu_smoke(tmp_path):
    summary = REPRODUCTIONS["wu"](str(tmp_path), "smoke", 0, False)
    assert summary["all_passed"], summary["checks"]
    assert (tmp_path / "wu.png").exists() and (tmp_path / "results.md").exists()


def test_wu_stability_cell_at_full_batch_is_gradient_descent():
    """B = n without replacement is GD: θ_T − θ* = (1 − ηa)^T exactly (a = mean x², θ_0 − θ* = 1),
    so every particle has log θ_T² = 2T log|1 − ηa|, SE 0, and none leaves when |1 − ηa| < 1."""
    from jaxescape._reproductions import wu

    curvature = float(np.mean(wu._diagram_problem(0)[3]))
    for learning_rate, leaves in ((0.5 / curvature, 0.0), (2.2 / curvature, 1.0)):
        cell = wu.stability_cell(jax.random.key(0), data_seed=0, batch_size=20,
                                 learning_rate=learning_rate, replacement=False, particles=64,
                                 leaving_particles=16)
        expected = 2 * 10 * np.log(abs(1 - learning_rate * curvature))
        assert cell["log_mean_square"] == pytest.approx(expected, rel=1e-4, abs=1e-4)
        assert cell["log_mean_square_se"] < 1e-6 and cell["lyapunov_exponent"] is None
        assert cell["fraction_leaving"] == leaves and cell["diverged"] == 0
