"""SDE particles: Itô SDEs dy = f dt + g dW, their Euler–Maruyama step, and the papers' noise
models.

`sde` holds the abstract SDE and the white-noise and user SDEs; `euler_maruyama` the pure
single-particle step with its escape tests and Brownian-bridge crossing probabilities (the SDE
side of the particle protocol); `noise_models` the SGD noise models of Xie, Mori and Meng as
SDEs, with the quadratic and piecewise test landscapes they are checked on; `levy` gradient
descent driven by α-stable Lévy noise (its Euler chain, tested on the iterates).

May import: the core modules (`_landscapes`, `_criteria`, `_noise`, `_fused`, `_particle`).
"""

from .euler_maruyama import euler_maruyama_step as euler_maruyama_step
from .levy import LevyLangevin as LevyLangevin
from .noise_models import (
    LossOffset as LossOffset,
    MengPowerLawNoise as MengPowerLawNoise,
    MoriLossNoise as MoriLossNoise,
    PiecewiseQuadraticValley as PiecewiseQuadraticValley,
    QuadraticLandscape as QuadraticLandscape,
    XieSGDNoise as XieSGDNoise,
    matched_white_noise as matched_white_noise,
)
from .sde import (
    AbstractDynamics as AbstractDynamics,
    GeneralSDE as GeneralSDE,
    OverdampedLangevin as OverdampedLangevin,
)
