"""Theory and exact references: what the simulations are compared with.

`quadrature` (the exact 1-D mean first-passage time by nested quadrature in log space; Kramers
and Eyring–Kramers), `reference` (the exact MFPT of a given 1-D dynamics, from its own drift and
diffusion) and `closed_forms` (the papers' predictions: Xie's exponent, Mori's rates and
exponents, Meng's power law, the general 1-D Laplace form) and `levy` (α-stable noise: the exact
mean exit time of the discretised chain, the small-noise law). NumPy and SciPy, no simulation.

May import: the core modules and `_dynamics` (to read an SDE's drift and diffusion).
"""

from .closed_forms import (
    laplace_escape_time as laplace_escape_time,
    laplace_exponent as laplace_exponent,
    laplace_log_escape_time as laplace_log_escape_time,
    meng_escape_time as meng_escape_time,
    meng_log_escape_time as meng_log_escape_time,
    meng_power_law_slope as meng_power_law_slope,
    meng_stationary_exponent as meng_stationary_exponent,
    mori_escape_rate as mori_escape_rate,
    mori_escape_rate_multidim as mori_escape_rate_multidim,
    mori_loss_threshold_time as mori_loss_threshold_time,
    mori_passage_exponent as mori_passage_exponent,
    mori_stationary_exponent as mori_stationary_exponent,
    piecewise_quadratic_path_fraction as piecewise_quadratic_path_fraction,
    xie_sgd_escape_time as xie_sgd_escape_time,
    xie_sgd_exponent as xie_sgd_exponent,
    xie_white_noise_escape_time as xie_white_noise_escape_time,
)
from .levy import (
    kesten_tail_index as kesten_tail_index,
    levy_chain_mean_exit_time as levy_chain_mean_exit_time,
    levy_escape_time as levy_escape_time,
    stable_levy_constant as stable_levy_constant,
)
from .quadrature import (
    eyring_kramers_time as eyring_kramers_time,
    kramers_rate as kramers_rate,
    kramers_time as kramers_time,
    log_mfpt_quadrature as log_mfpt_quadrature,
    mfpt_quadrature as mfpt_quadrature,
)
from .reference import (
    exact_log_mfpt as exact_log_mfpt,
    exact_mfpt as exact_mfpt,
    exact_mfpt_interval as exact_mfpt_interval,
)
