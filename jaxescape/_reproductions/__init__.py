"""Reproductions of the source papers' escape experiments, each checked against exact references.

One module per paper (`xie`, `mori`, `meng`, `wu`) and one for real SGD against its SDEs
(`sgd_vs_sde`) and one for α-stable noise (`levy`); `tools` holds the measurement they share
(dt and 2·dt, exact quadrature, slope fits, output files); `declared` makes a reproduction a
sweep with an analysis step (a resumable result store); `registry` maps the command-line names
to them.

May import: everything below it. Only `cli`, `theories` and the package's `__init__` import it.
"""

from .registry import (
    REPRODUCTIONS as REPRODUCTIONS,
    SIZES as SIZES,
    declared_sweep as declared_sweep,
    discrete_monitoring_threshold as discrete_monitoring_threshold,
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
