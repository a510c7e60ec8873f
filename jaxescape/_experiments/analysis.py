"""A sweep's analysis step: a function of the stored points that returns files for the report.

A sweep names it by import path (`analysis = "package.module:function"`, or a table with `name`
and the function's options). Once every point of the sweep is stored, the report calls

    function(run: StoredRun, **options) -> dict[str, bytes | str]

and writes the returned files (name -> content, e.g. `results.json`, `results.md`, a figure)
into the run directory under the store's manifest, so `jaxescape report DIR` rebuilds them from
the stored points without simulating. The reproductions (`jaxescape reproduce NAME`) are sweeps
with an analysis: their fits, exact and theory comparisons, tables and figures.
"""

import functools
import os
from collections.abc import Callable
from typing import NamedTuple

from .components import import_callable
from .results import point_arrays, results_frame
from .store import ENVIRONMENT_FILE, LOCK_FILE, MANIFEST, SUMMARY_FILE, SWEEP_FILE


# Files an analysis may not replace: the store's own, and the report's (report.md).
_RESERVED = (SWEEP_FILE, ENVIRONMENT_FILE, SUMMARY_FILE, MANIFEST, LOCK_FILE, "report.md")


class StoredRun(NamedTuple):
    """What an analysis sees of a finished sweep.

    - `sweep`: the `Sweep`; `records`: each point's JSON record (`index`, `point`, `summary`,
      `notes`, `timing`), by index; `frame`: the `load_results` table; `arrays(index)`: the
      point's raw arrays (`load_escape_times`); `environment`: library and device versions.
    """

    sweep: object
    records: list
    frame: object
    arrays: Callable
    environment: dict


def run_analysis(store, sweep, records: list[dict], environment: dict) -> dict[str, bytes]:
    """Calls the sweep's analysis on its stored points; returns the files to write.

    **Raises:**

    - `ValueError`: a returned file name that is not a relative path inside the run directory,
      or that names one of the store's own files.
    """
    options = dict(sweep.analysis)
    function = import_callable("analysis", options.pop("name"))

    run = StoredRun(sweep, sorted(records, key=lambda record: record["index"]),
                    results_frame(sweep, records), functools.partial(point_arrays, store),
                    environment)
    files = function(run, **options)
    checked = {}
    for name, content in files.items():
        normal = os.path.normpath(name) if isinstance(name, str) else ""
        if (not normal or os.path.isabs(normal) or normal.startswith("..")
                or normal in _RESERVED or normal.startswith("points" + os.sep)):
            raise ValueError(f"analysis {sweep.analysis['name']!r} returned the file name "
                             f"{name!r}; allowed: a relative path in the run directory other "
                             f"than {', '.join(_RESERVED)} and points/")
        checked[normal.replace(os.sep, "/")] = content.encode() if isinstance(content, str) \
            else bytes(content)
    return checked
