"""A stored sweep for analysis: one table row per point (pandas) and each point's raw arrays.

Nothing is simulated: everything is read from the run directory's committed, verified files
(see `store.py`), so a partial run (interrupted, or shards still running) gives the points
finished so far.
"""

import math
import os
from collections.abc import Mapping

import numpy as np

from .store import (
    ENVIRONMENT_FILE,
    RESULT_NAMES,
    SUMMARY_FILE,
    SWEEP_FILE,
    CorruptedFileError,
    RunStore,
    point_file,
)
from .sweep import load_sweep


_INPUTS = (SWEEP_FILE, ENVIRONMENT_FILE, SUMMARY_FILE)


def load_records(directory) -> tuple[RunStore, object, list[dict]]:
    """The store, the sweep and the records of the finished points, every input verified.

    Reads under the directory's lock, so a shard committing at the same time is seen whole or
    not at all.

    **Raises:**

    - `CorruptedFileError`: naming every stored input that is missing, truncated or altered.
    """
    store = RunStore(directory)
    with store.locked():
        return (store, *read_records(store))


def read_records(store: RunStore) -> tuple[object, list[dict]]:
    """The sweep and the verified records of a store (the caller holds its lock)."""
    directory = store.directory
    if SWEEP_FILE not in store.files:
        raise CorruptedFileError(f"{directory!r} is not a sweep run directory (its manifest "
                                 f"names no {SWEEP_FILE})")
    problems = {name: problem for name, problem in store.corrupted().items()
                if name in _INPUTS or name.startswith("points/")}
    if problems:
        raise CorruptedFileError("corrupted files: " + "; ".join(
            f"{os.path.join(directory, name)} ({problem})" for name, problem in problems.items()))
    sweep = load_sweep(os.path.join(directory, SWEEP_FILE))
    records = [store.read_json(point_file(index, "json"))
               for index in range(len(sweep.expand()))
               if point_file(index, "json") in store.files
               and point_file(index, "npz") in store.files]
    return sweep, records


def _rate_columns(summary: Mapping) -> dict:
    """The escape rate 1/τ: its SE by the delta method (SE_τ/τ²), its interval [1/τ_up, 1/τ_lo]."""
    def inverse(value):
        return 1.0 / value if value is not None and value > 0 and math.isfinite(value) \
            else None

    mfpt, error = summary.get("mfpt"), summary.get("mfpt_standard_error")
    rate = inverse(mfpt)
    return {"rate": rate,
            "rate_standard_error": None if rate is None or error is None else error * rate**2,
            "rate_lower": inverse(summary.get("mfpt_upper")),
            "rate_upper": inverse(summary.get("mfpt_lower"))}


def load_results(directory):
    """The finished points of a stored sweep as a `pandas.DataFrame`, one row per point.

    Columns: `index` (the point's index in the sweep), every parameter of the point (the swept
    ones first), then `method`, the counts `num_particles`, `num_escaped`, `num_censored`,
    `num_diverged`, the mean first-passage time `mfpt` ± `mfpt_standard_error` with its 95%
    interval [`mfpt_lower`, `mfpt_upper`] and `mfpt_estimator`, the rate `rate` = 1/τ ±
    `rate_standard_error` (delta method) with its interval [1/`mfpt_upper`, 1/`mfpt_lower`], the
    references `exact_mfpt` (quadrature) and `kramers_time` (theory), the ratio to the exact value
    with its interval and its deviation in standard errors, the exponentiality test's p-value,
    `splitting_probability`, `cost_particle_steps` and `wall_time_s`, and for a sweep with
    `extrapolate = true` `mfpt_extrapolated` = 2τ(dt) − τ(2dt) ±
    `mfpt_extrapolated_standard_error`, its deviation from the exact value in standard errors and
    the dt run's estimated bias `discretisation_bias` ± its SE, and last the scalars of
    measure points (method "measure", `measurements.py`). Missing values are NaN
    (e.g. the counts of splitting points). `DataFrame.attrs` holds `name`, `method`, `swept` (the
    swept parameters) and `total_points`.

    **Arguments:**

    - `directory`: a sweep's run directory (complete, partial, or written by several shards).

    **Returns:** the `pandas.DataFrame`, sorted by `index`.

    **Raises:**

    - `CorruptedFileError`: naming every stored file that is missing, truncated or altered.
    """
    _, sweep, records = load_records(directory)
    return results_frame(sweep, records)


def measured_names(records: list[dict]) -> list[str]:
    """The names of the scalars that measure points stored, in first-seen order."""
    return list(dict.fromkeys(name for record in records
                              for name in record["summary"].get("measured", {})))


def results_frame(sweep, records: list[dict]):
    """The `load_results` table of a sweep's records."""
    import pandas as pd

    swept = sweep.swept()
    # A point's own `method` is the result column `method`.
    parameters = [key for key in dict.fromkeys([*swept, *sweep.expand()[0]])
                  if key not in RESULT_NAMES]
    measured = [name for name in measured_names(records)
                if name not in parameters and name not in RESULT_NAMES and name != "index"]
    rows = []
    for record in records:
        summary = record["summary"]
        values = {**summary, **_rate_columns(summary),
                  "wall_time_s": record.get("timing", {}).get("wall_time_s")}
        rows.append({"index": record["index"],
                     **{key: record["point"].get(key) for key in parameters},
                     **{name: values.get(name) for name in RESULT_NAMES},
                     **{name: summary.get("measured", {}).get(name) for name in measured}})
    columns = ["index", *parameters, *RESULT_NAMES, *measured]
    frame = pd.DataFrame(rows, columns=columns)
    numeric = [name for name in RESULT_NAMES if name not in ("method", "mfpt_estimator")]
    frame[numeric] = frame[numeric].astype(np.float64)
    frame.attrs.update({"name": sweep.name, "method": sweep.method, "swept": swept,
                        "total_points": len(sweep.expand())})
    return frame


def load_escape_times(directory, point) -> dict[str, np.ndarray]:
    """The raw arrays of one stored point, verified against the manifest.

    A direct point gives `escape_time` (= `escape_step` · `dt`; the censoring time for censored
    particles), `escape_step`, `censored`, `diverged` (boolean per particle), `boundary` (the
    index of the criterion a particle crossed, −1 if none; points declared by components) and
    `dt`; a
    splitting point gives its runs' `run_probabilities` and `num_iterations`; a measure point
    gives the arrays its measurement returned.

    **Arguments:**

    - `directory`: a sweep's run directory.
    - `point`: the point's index, or a mapping of parameter values that selects exactly one
      stored point (e.g. `{"barrier": 1.2, "temperature": 0.4}`).

    **Returns:** a dict of NumPy arrays.

    **Raises:**

    - `KeyError`: no stored point (or more than one) matches `point`.
    - `CorruptedFileError`: the point's file is missing, truncated or altered.
    """
    store, sweep, records = load_records(directory)
    if isinstance(point, Mapping):
        matches = [record["index"] for record in records
                   if all(record["point"].get(key) == value for key, value in point.items())]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} stored points match {dict(point)!r} (need exactly 1)")
        index = matches[0]
    else:
        index = int(point)
        if index not in {record["index"] for record in records}:
            raise KeyError(f"point {index} is not stored in {os.fspath(directory)!r} (the sweep "
                           f"has {len(sweep.expand())} points, {len(records)} stored)")
    return point_arrays(store, index)


def point_arrays(store: RunStore, index: int) -> dict[str, np.ndarray]:
    """A stored point's arrays, verified, with `escape_time` = `escape_step` · `dt` where it has
    escape steps."""
    arrays = store.read_arrays(point_file(index, "npz"))
    if "escape_step" in arrays:
        arrays["escape_time"] = arrays["escape_step"] * arrays["dt"]
    return arrays
