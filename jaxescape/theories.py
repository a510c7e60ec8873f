"""The source papers' escape theories: SGD noise models, closed-form predictions, reproductions.

- Noise models (Itô SDEs, time t = η·iterations): `XieSGDNoise`, `MoriLossNoise`,
  `MengPowerLawNoise`, and the white-noise control `matched_white_noise`.
- Test landscapes for them: `QuadraticLandscape` (linear regression), `LossOffset` (L* > 0),
  `PiecewiseQuadraticValley` (Xie's path-parameter geometry).
- Closed forms (NumPy): the general 1-D Laplace law `laplace_escape_time`, Xie's
  `xie_sgd_escape_time` / `xie_white_noise_escape_time`, Mori's `mori_escape_rate` (eq. 16),
  `mori_escape_rate_multidim` (eq. 17), `mori_stationary_exponent` (eq. 18) and the exact
  `mori_loss_threshold_time`, Meng's `meng_escape_time`.
- Heavy-tailed noise: `LevyLangevin` (gradient descent driven by α-stable Lévy noise), the
  exact `levy_chain_mean_exit_time` of its chain and the small-noise law `levy_escape_time`
  (Imkeller & Pavlyukevich 2006) with the Lévy-measure constant `stable_levy_constant`; the
  tail-index estimators `tail_index` (Mohammadi, Mohammadpour & Ogata 2015) and `hill_tail_index`
  (Hill 1975), and the exact index of 1-D SGD's stationary law `kesten_tail_index`.
- Reproductions: `REPRODUCTIONS = {"xie", "mori", "meng", "wu", "sgd-vs-sde", "levy",
  "wu-minima", "mori-networks", "meng-networks", "wu-escape", "xie-networks",
  "mori-stationary"}`, each
  `f(output_dir, size, seed, progress) -> dict`, each a declared experiment:
  `declared_sweep(name, size, seed)` is the sweep it runs (its analysis step writes the tables
  and figures; the run directory is a resumable result store).
  `measure_escape_time` measures one 1-D point as they do (dt and 2·dt, exact quadrature).

See docs/THEORIES.md for the formulas' sources, regimes and the measured results.
"""

from ._theory import (
    laplace_escape_time as laplace_escape_time,
    kesten_tail_index as kesten_tail_index,
    laplace_exponent as laplace_exponent,
    laplace_log_escape_time as laplace_log_escape_time,
    levy_chain_mean_exit_time as levy_chain_mean_exit_time,
    levy_escape_time as levy_escape_time,
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
    stable_levy_constant as stable_levy_constant,
    xie_white_noise_escape_time as xie_white_noise_escape_time,
)
from ._dynamics import (
    LevyLangevin as LevyLangevin,
    LossOffset as LossOffset,
    MengPowerLawNoise as MengPowerLawNoise,
    MoriLossNoise as MoriLossNoise,
    PiecewiseQuadraticValley as PiecewiseQuadraticValley,
    QuadraticLandscape as QuadraticLandscape,
    XieSGDNoise as XieSGDNoise,
    matched_white_noise as matched_white_noise,
)
from ._tail_index import (
    TailIndexEstimate as TailIndexEstimate,
    hill_tail_index as hill_tail_index,
    tail_index as tail_index,
)
from ._reproductions import (
    REPRODUCTIONS as REPRODUCTIONS,
    declared_sweep as declared_sweep,
    fit_stationary_exponent as fit_stationary_exponent,
    linear_regression_problem as linear_regression_problem,
    measure_escape_time as measure_escape_time,
    reproduce_levy as reproduce_levy,
    reproduce_meng as reproduce_meng,
    reproduce_meng_networks as reproduce_meng_networks,
    reproduce_mori_networks as reproduce_mori_networks,
    reproduce_mori as reproduce_mori,
    reproduce_mori_stationary as reproduce_mori_stationary,
    reproduce_sgd_vs_sde as reproduce_sgd_vs_sde,
    reproduce_wu as reproduce_wu,
    reproduce_wu_escape as reproduce_wu_escape,
    reproduce_wu_minima as reproduce_wu_minima,
    reproduce_xie as reproduce_xie,
    reproduce_xie_networks as reproduce_xie_networks,
)
