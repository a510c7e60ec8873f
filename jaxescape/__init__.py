"""jaxescape: JAX Monte Carlo simulation of SGD and its SDEs escaping loss minima."""

import importlib.metadata

from ._particle import (
    AbstractParticleProcess as AbstractParticleProcess,
    StepOptions as StepOptions,
)
from ._criteria import (
    AbstractEscapeCriterion as AbstractEscapeCriterion,
    AbstractLevelCriterion as AbstractLevelCriterion,
    HalfSpace as HalfSpace,
    LossAbove as LossAbove,
    NeverEscape as NeverEscape,
    OutsideBall as OutsideBall,
    Predicate as Predicate,
    past_saddle as past_saddle,
)
from ._sgd import (
    Dataset as Dataset,
    gaussian_regression_data as gaussian_regression_data,
    interpolation_data as interpolation_data,
    meng_data as meng_data,
)
from ._sgd import (
    GradientNoiseTailIndex as GradientNoiseTailIndex,
    TraceEstimate as TraceEstimate,
    gradient_noise_tail_index as gradient_noise_tail_index,
    gradient_noise_trace as gradient_noise_trace,
    hessian_top_eigenpairs as hessian_top_eigenpairs,
    hessian_top_eigenvalues as hessian_top_eigenvalues,
    hessian_trace as hessian_trace,
    network_non_uniformity as network_non_uniformity,
)
from ._sgd import (
    SplitDataset as SplitDataset,
    load_mnist as load_mnist,
    load_sklearn_dataset as load_sklearn_dataset,
    minibatch_gradient_noise as minibatch_gradient_noise,
)
from ._engine import (
    process_share as process_share,
    simulate_distributed as simulate_distributed,
    use_cpu_cores as use_cpu_cores,
)
from ._dynamics import (
    AbstractDynamics as AbstractDynamics,
    GeneralSDE as GeneralSDE,
    LevyLangevin as LevyLangevin,
    OverdampedLangevin as OverdampedLangevin,
)
from ._landscapes import (
    AbstractLandscape as AbstractLandscape,
    AnisotropicWell as AnisotropicWell,
    DoubleWellProduct as DoubleWellProduct,
    FunctionLandscape as FunctionLandscape,
    StyblinskiTang as StyblinskiTang,
    TiltedDoubleWell as TiltedDoubleWell,
)
from ._sgd import MinibatchNoiseSDE as MinibatchNoiseSDE
from ._sgd import (
    AbstractModel as AbstractModel,
    LinearRegression as LinearRegression,
    MengDoubleWell as MengDoubleWell,
    MinimumOfQuadratics as MinimumOfQuadratics,
    MLPRegression as MLPRegression,
    TrainingLoss as TrainingLoss,
    meng_shift_for_barrier as meng_shift_for_barrier,
)
from ._sgd import (
    NetworkModel as NetworkModel,
    ParticleMetrics as ParticleMetrics,
    accuracy_below as accuracy_below,
    evaluate_particles as evaluate_particles,
)
from ._sgd import loss_dependent_noise as loss_dependent_noise, noisy_sgd as noisy_sgd
from ._theory import (
    exact_log_mfpt as exact_log_mfpt,
    exact_mfpt as exact_mfpt,
    exact_mfpt_interval as exact_mfpt_interval,
)
from ._sgd import MinibatchSGD as MinibatchSGD, particle_start as particle_start
from ._engine import (
    EscapeResult as EscapeResult,
    ExtrapolatedEscape as ExtrapolatedEscape,
    concatenate_results as concatenate_results,
    simulate as simulate,
    simulate_chunks as simulate_chunks,
    simulate_extrapolated as simulate_extrapolated,
    choose_dt as choose_dt,
    DtChoice as DtChoice,
)
from ._splitting import (
    Cost as Cost,
    CrossingProbability as CrossingProbability,
    Levels as Levels,
    LoopPhase as LoopPhase,
    SplittingResult as SplittingResult,
    estimate_escape_time as estimate_escape_time,
    mean_escape_time_by_splitting as mean_escape_time_by_splitting,
    ExtrapolatedSplitting as ExtrapolatedSplitting,
    mean_escape_time_by_splitting_extrapolated as mean_escape_time_by_splitting_extrapolated,
)
from ._sgd import (
    batch_factor as batch_factor,
    mean_square_growth as mean_square_growth,
    non_uniformity as non_uniformity,
    sharpness as sharpness,
    stability_bounds as stability_bounds,
)
from ._tail_index import (
    TailIndexEstimate as TailIndexEstimate,
    hill_tail_index as hill_tail_index,
    tail_index as tail_index,
)
from ._statistics import (
    ExponentialityTest as ExponentialityTest,
    MeanEstimate as MeanEstimate,
    RichardsonEstimate as RichardsonEstimate,
    RateEstimate as RateEstimate,
    SurvivalCurve as SurvivalCurve,
    escape_time_histogram as escape_time_histogram,
    exponential_rate_mle as exponential_rate_mle,
    exponentiality_test as exponentiality_test,
    kaplan_meier as kaplan_meier,
    mean_escape_time as mean_escape_time,
    richardson_extrapolation as richardson_extrapolation,
)
from ._dynamics import euler_maruyama_step as euler_maruyama_step
from ._experiments.sweep import Sweep as Sweep, load_sweep as load_sweep
from ._theory import (
    eyring_kramers_time as eyring_kramers_time,
    kramers_rate as kramers_rate,
    kramers_time as kramers_time,
    log_mfpt_quadrature as log_mfpt_quadrature,
    mfpt_quadrature as mfpt_quadrature,
)
from ._trends import (
    LinearFit as LinearFit,
    TheoryRatio as TheoryRatio,
    ratio_to_theory as ratio_to_theory,
    weighted_linear_fit as weighted_linear_fit,
)


def __getattr__(name: str):
    """`run_sweep` and `write_report` (matplotlib), `load_results` and `load_escape_times`
    (pandas) are loaded on first use."""
    if name in ("load_results", "load_escape_times"):
        from ._experiments import results

        return getattr(results, name)
    if name == "run_sweep":
        from ._experiments.sweep_run import run_sweep

        return run_sweep
    if name == "write_report":
        from ._experiments.report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    __version__ = importlib.metadata.version("jaxescape")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
