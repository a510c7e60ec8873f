"""Reproductions of the source papers' escape experiments, each checked against exact quadrature.

`REPRODUCTIONS[name](output_dir, size, seed, progress)` runs one experiment and writes
`results.json`, `results.md` and `NAME.png` into `output_dir`; it returns the summary dict.
A declared reproduction (`declared.py`, `declared_sweep(name)`) is a sweep with an analysis step: its
run directory is a resumable result store that `jaxescape report DIR` rebuilds.
Sizes: "smoke" (seconds; lower barriers, for tests), "default" (a few minutes on a 2-core CPU),
"large" (10-50x the particles of "default" and higher barriers: meant for a GPU).
The experiments live in `xie.py`, `mori.py`, `meng.py`, `wu.py`, `sgd_vs_sde.py` and `levy.py`
(α-stable noise, checked on the exact discretised chain), the network experiments in
`wu_minima.py`, `mori_networks.py`, `meng_networks.py` and `wu_escape.py`; the measurement
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


def reproduce_wu(output_dir, size="default", seed=0, progress=True) -> dict:
    """Wu, Ma & E (NeurIPS 2018): real SGD particles leave the minima their stability test rejects.

    Runs `wu.reproduce_wu`, imported on first use.
    """
    from .wu import reproduce_wu as run

    return run(output_dir, size, seed, progress)


def reproduce_sgd_vs_sde(output_dir, size="default", seed=0, progress=True) -> dict:
    """Real SGD is compared with its exact-covariance SDE, the papers' models and Meng's noise.

    Runs `sgd_vs_sde.reproduce_sgd_vs_sde`, imported on first use.
    """
    from .sgd_vs_sde import reproduce_sgd_vs_sde as run

    return run(output_dir, size, seed, progress)


def reproduce_levy(output_dir, size="default", seed=0, progress=True) -> dict:
    """Escape under α-stable (α = 1.2, 1.5, 1.8) and Gaussian noise against ε, width and height.

    Runs `levy.reproduce_levy`, imported on first use.
    """
    from .levy import reproduce_levy as run

    return run(output_dir, size, seed, progress)


def reproduce_wu_minima(output_dir, size="default", seed=0, progress=True) -> dict:
    """Wu, Ma & E (NeurIPS 2018): the minima SGD finds on digits lie inside a ≤ 2/η, s ≤ √B/η.

    Runs `wu_minima.reproduce_wu_minima`, imported on first use.
    """
    from .wu_minima import reproduce_wu_minima as run

    return run(output_dir, size, seed, progress)


def reproduce_mori_networks(output_dir, size="default", seed=0, progress=True) -> dict:
    """Mori et al.: on an MLP trained on digits, SGD's gradient-noise trace is ∝ the loss late on.

    Runs `mori_networks.reproduce_mori_networks`, imported on first use.
    """
    from .mori_networks import reproduce_mori_networks as run

    return run(output_dir, size, seed, progress)


def reproduce_meng_networks(output_dir, size="default", seed=0, progress=True) -> dict:
    """Meng et al.: noisy large-batch SGD against plain large- and small-batch SGD on digits.

    Runs `meng_networks.reproduce_meng_networks`, imported on first use.
    """
    from .meng_networks import reproduce_meng_networks as run

    return run(output_dir, size, seed, progress)


def reproduce_wu_escape(output_dir, size="default", seed=0, progress=True) -> dict:
    """Wu, Ma & E (NeurIPS 2018): SGD restarted from a full-batch GD minimum leaves it at small B.

    Runs `wu_escape.reproduce_wu_escape`, imported on first use.
    """
    from .wu_escape import reproduce_wu_escape as run

    return run(output_dir, size, seed, progress)


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
}
