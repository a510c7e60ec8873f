"""Reproductions of the source papers' escape experiments, each checked against exact quadrature.

`REPRODUCTIONS[name](output_dir, size, seed, progress)` runs one experiment and writes
`results.json`, `results.md` and `NAME.png` into `output_dir`; it returns the summary dict.
A declared reproduction (`declared.py`, `declared_sweep(name)`) is a sweep with an analysis step: its
run directory is a resumable result store that `jaxescape report DIR` rebuilds.
Sizes: "smoke" (seconds; lower barriers, for tests), "default" (a few minutes on a 2-core CPU),
"large" (10-50x the particles of "default" and higher barriers: meant for a GPU).
The experiments live in `xie.py`, `mori.py`, `meng.py`, `wu.py`, `sgd_vs_sde.py` and `levy.py`
(α-stable noise, checked on the exact discretised chain), the network experiments in
`wu_minima.py`, `mori_networks.py`, `mori_stationary.py`, `meng_networks.py`, `wu_escape.py`
and `xie_networks.py`; the measurement
they share (dt and 2·dt, exact quadrature, slope fits, output files) in `tools.py`.
"""

import importlib

from .meng import reproduce_meng as reproduce_meng
from .mori import (
    discrete_monitoring_threshold as discrete_monitoring_threshold,
    fit_stationary_exponent as fit_stationary_exponent,
    linear_regression_problem as linear_regression_problem,
    reproduce_mori as reproduce_mori,
)
from .xie import reproduce_xie as reproduce_xie
from .tools import SIZES as SIZES, measure_escape_time as measure_escape_time


def _imported_on_first_use(name: str, summary: str):
    """`reproduce_NAME` of module `NAME` (the modules that import networks and matplotlib-heavy
    code are imported when the reproduction runs); `summary` is its one-sentence docstring."""
    module = name.replace("-", "_")

    def reproduce(output_dir, size="default", seed=0, progress=True) -> dict:
        function = getattr(importlib.import_module(f"{__package__}.{module}"),
                           f"reproduce_{module}")
        return function(output_dir, size, seed, progress)

    reproduce.__name__ = reproduce.__qualname__ = f"reproduce_{module}"
    reproduce.__doc__ = f"{summary}\n\nRuns `{module}.reproduce_{module}`, imported on first use."
    return reproduce


reproduce_wu = _imported_on_first_use(
    "wu", "Wu, Ma & E (NeurIPS 2018): real SGD particles leave the minima their stability test "
    "rejects.")
reproduce_sgd_vs_sde = _imported_on_first_use(
    "sgd-vs-sde", "Real SGD is compared with its exact-covariance SDE, the papers' models and "
    "Meng's noise.")
reproduce_levy = _imported_on_first_use(
    "levy", "Escape under α-stable (α = 1.2, 1.5, 1.8) and Gaussian noise against ε, width and "
    "height.")
reproduce_wu_minima = _imported_on_first_use(
    "wu-minima", "Wu, Ma & E (NeurIPS 2018): the minima SGD finds on digits lie inside "
    "a ≤ 2/η, s ≤ √B/η.")
reproduce_mori_networks = _imported_on_first_use(
    "mori-networks", "Mori et al.: on an MLP trained on digits, SGD's gradient-noise trace is ∝ "
    "the loss late on.")
reproduce_meng_networks = _imported_on_first_use(
    "meng-networks", "Meng et al.: noisy large-batch SGD against plain large- and small-batch "
    "SGD on digits.")
reproduce_wu_escape = _imported_on_first_use(
    "wu-escape", "Wu, Ma & E (NeurIPS 2018): SGD restarted from a full-batch GD minimum leaves "
    "it at small B.")

reproduce_mori_stationary = _imported_on_first_use(
    "mori-stationary", "Mori et al.: the stationary law P ∝ L^−φ of real SGD near a network's "
    "MSE minimum, φ against 1 + B/(ηh*).")
reproduce_xie_networks = _imported_on_first_use(
    "xie-networks", "Xie et al. (ICLR 2021): log τ from a network minimum is linear in B and in "
    "1/η.")


def declared_sweep(name: str, size: str = "default", seed: int = 0):
    """The `Sweep` that reproduction `name` runs (a module's `sweep(size, seed)`; `jaxescape
    reproduce NAME --spec` prints it), or None for a reproduction not declared as a sweep."""
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown reproduction {name!r}; available: {', '.join(REPRODUCTIONS)}")
    module = importlib.import_module(f"{__package__}.{name.replace('-', '_')}")
    build = getattr(module, "sweep", None)
    return None if build is None else build(size, seed)


REPRODUCTIONS = {
    "xie": reproduce_xie, "mori": reproduce_mori, "meng": reproduce_meng, "wu": reproduce_wu,
    "sgd-vs-sde": reproduce_sgd_vs_sde, "levy": reproduce_levy,
    "wu-minima": reproduce_wu_minima, "mori-networks": reproduce_mori_networks,
    "meng-networks": reproduce_meng_networks, "wu-escape": reproduce_wu_escape,
    "xie-networks": reproduce_xie_networks, "mori-stationary": reproduce_mori_stationary,
}
