"""SGD particles: real minibatch training runs as particles, and the SGD-specific theory.

`curvature` (Hessian spectra, traces and gradient noise of parameter pytrees), `data` (data
sets), `datasets` (real classification sets, offline), `gradient_noise` (minibatch gradient
noise draws and their tail index), `models` (per-sample losses), `networks`
(any network as a model, per-particle metrics), `permutation` (counter-based per-epoch
shuffles), `minibatch_sgd` (`MinibatchSGD`: one optax training run per particle, the SGD side
of the particle protocol), `minibatch_noise` (the SDE with SGD's exact minibatch covariance),
`optax_noise` (Meng's loss-dependent noise as an optax transformation) and `stability` (Wu, Ma
& E's sharpness, non-uniformity and stability condition).

May import: the core modules and `_dynamics` (the minibatch-noise SDE is an SDE).
"""

from .data import (
    Dataset as Dataset,
    gaussian_regression_data as gaussian_regression_data,
    interpolation_data as interpolation_data,
    meng_data as meng_data,
)
from .curvature import (
    TraceEstimate as TraceEstimate,
    gradient_noise_trace as gradient_noise_trace,
    hessian_top_eigenpairs as hessian_top_eigenpairs,
    hessian_top_eigenvalues as hessian_top_eigenvalues,
    hessian_trace as hessian_trace,
    lanczos as lanczos,
    network_non_uniformity as network_non_uniformity,
)
from .datasets import (
    SplitDataset as SplitDataset,
    load_mnist as load_mnist,
    load_sklearn_dataset as load_sklearn_dataset,
)
from .gradient_noise import (
    GradientNoiseTailIndex as GradientNoiseTailIndex,
    gradient_noise_tail_index as gradient_noise_tail_index,
    minibatch_gradient_noise as minibatch_gradient_noise,
)
from .minibatch_noise import MinibatchNoiseSDE as MinibatchNoiseSDE
from .minibatch_sgd import MinibatchSGD as MinibatchSGD, particle_start as particle_start
from .models import (
    AbstractModel as AbstractModel,
    LinearRegression as LinearRegression,
    MengDoubleWell as MengDoubleWell,
    MinimumOfQuadratics as MinimumOfQuadratics,
    MLPRegression as MLPRegression,
    TrainingLoss as TrainingLoss,
    meng_shift_for_barrier as meng_shift_for_barrier,
)
from .networks import (
    NetworkModel as NetworkModel,
    ParticleMetrics as ParticleMetrics,
    accuracy_below as accuracy_below,
    evaluate_particles as evaluate_particles,
)
from .optax_noise import loss_dependent_noise as loss_dependent_noise, noisy_sgd as noisy_sgd
from .stability import (
    batch_factor as batch_factor,
    mean_square_growth as mean_square_growth,
    non_uniformity as non_uniformity,
    sharpness as sharpness,
    stability_bounds as stability_bounds,
)
