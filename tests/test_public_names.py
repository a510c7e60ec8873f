"""Old public names keep working: the compatibility contract.

The lists below are the names that `jaxescape` and `jaxescape.theories` exported at commit
bf81e3c, before the layout refactor (issue 16), including the lazily loaded `run_sweep` and
`write_report`. They are hard-coded on purpose: a name may gain a new spelling, but the old one
must keep importing (as an alias) so that users' code does not break. Add names here; never remove.
"""

import pytest

import jaxescape
import jaxescape.theories

JAXESCAPE_NAMES = (
    "AbstractDynamics", "AbstractEscapeCriterion", "AbstractLandscape", "AbstractModel",
    "AnisotropicWell", "Dataset", "DoubleWellProduct", "EscapeResult", "ExponentialityTest",
    "FunctionLandscape", "GeneralSDE", "HalfSpace", "LinearFit", "LinearRegression", "LossAbove",
    "MLPRegression", "MengDoubleWell", "MinibatchNoiseSDE", "MinibatchSGD", "MinimumOfQuadratics",
    "NeverEscape", "OutsideBall", "OverdampedLangevin", "Predicate", "RateEstimate",
    "SplittingResult", "StyblinskiTang", "SurvivalCurve", "Sweep", "TheoryRatio",
    "TiltedDoubleWell", "TrainingLoss", "batch_factor", "concatenate_results",
    "escape_time_histogram", "estimate_escape_time", "euler_maruyama_step", "exact_log_mfpt",
    "exact_mfpt", "exact_mfpt_interval", "exponential_rate_mle", "exponentiality_test",
    "eyring_kramers_time", "gaussian_regression_data", "interpolation_data", "kaplan_meier",
    "kramers_rate", "kramers_time", "load_sweep", "log_mfpt_quadrature", "loss_dependent_noise",
    "mean_escape_time", "mean_square_growth", "meng_data", "meng_shift_for_barrier",
    "mfpt_quadrature", "noisy_sgd", "non_uniformity", "past_saddle", "process_share",
    "ratio_to_theory", "sharpness", "simulate", "simulate_chunks", "simulate_distributed",
    "stability_bounds", "weighted_linear_fit",
    # Loaded on first use (they import matplotlib).
    "run_sweep", "write_report",
    "__version__",
)

THEORIES_NAMES = (
    "LossOffset", "MengPowerLawNoise", "MoriLossNoise", "PiecewiseQuadraticValley",
    "QuadraticLandscape", "REPRODUCTIONS", "XieSGDNoise", "fit_stationary_exponent",
    "laplace_escape_time", "laplace_exponent", "laplace_log_escape_time",
    "linear_regression_problem", "matched_white_noise", "measure_escape_time",
    "meng_escape_time", "meng_log_escape_time", "meng_power_law_slope",
    "meng_stationary_exponent", "mori_escape_rate", "mori_escape_rate_multidim",
    "mori_loss_threshold_time", "mori_passage_exponent", "mori_stationary_exponent",
    "piecewise_quadratic_path_fraction", "reproduce_meng", "reproduce_mori",
    "reproduce_sgd_vs_sde", "reproduce_wu", "reproduce_xie", "xie_sgd_escape_time",
    "xie_sgd_exponent", "xie_white_noise_escape_time",
)


@pytest.mark.parametrize(("module", "names"), [
    (jaxescape, JAXESCAPE_NAMES), (jaxescape.theories, THEORIES_NAMES),
], ids=["jaxescape", "jaxescape.theories"])
def test_every_name_exported_before_the_refactor_still_imports(module, names):
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{module.__name__} no longer exports {missing}"
    for name in names:
        value = getattr(module, name)
        assert value is not None, f"{module.__name__}.{name} is None"
        if not name.startswith("_") and not name.isupper():
            assert callable(value), f"{module.__name__}.{name} is not callable: {value!r}"


def test_the_reproductions_registry_keeps_its_names():
    assert {"xie", "mori", "meng", "wu", "sgd-vs-sde"} <= set(jaxescape.theories.REPRODUCTIONS)


def test_an_unknown_name_still_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        jaxescape.no_such_name  # noqa: B018
