"""Reproductions as declared experiments: a sweep of the paper's points plus an analysis step.

`jaxescape reproduce NAME` builds the reproduction's sweep (`SWEEPS[NAME](size, seed)`, printed
by `jaxescape reproduce NAME --spec`), runs it into a run directory with the store's guarantees
(`_experiments/sweep_run.py`: resumable after a kill, shards, verified files), and its analysis
(`analysis = {name = "jaxescape._reproductions.NAME:analyse", size = ...}`) writes
`results.json`, `results.md` and `NAME.png` from the stored points; `jaxescape report DIR`
rebuilds them. Point i of a reproduction uses the key `fold_in(key(seed), i)` and its 2·dt run
`fold_in(that, 1)` (the sweep's `extrapolate`).
"""

import io
import json
import math
import os

from .._experiments.sweep import Sweep, make_sweep
from .._experiments.sweep_run import run_sweep
from .tools import STEP_LIMIT, Timing, escape_row


def escape_point(label: str, landscape: dict, dynamics: dict, dt: float, particles: int,
                 exact_log: float, criterion="past-saddle") -> dict:
    """A sweep point of a 1-D escape: the components' tables, dt, N and a step budget of 40
    exact mean escape times (at least 1000 steps; the 2·dt run has twice the time)."""
    max_steps = int(min(40 * math.exp(min(exact_log, 690.0)) / dt + 1000, STEP_LIMIT))
    return {"label": label, "landscape": dict(landscape), "dynamics": dict(dynamics),
            "criterion": criterion, "dt": float(dt), "particles": int(particles),
            "max_steps": max_steps}


def reproduction_sweep(name: str, size: str, seed: int, points: list[dict],
                       extrapolate: bool = True) -> Sweep:
    """The sweep of reproduction `name` at `size`, with its analysis step."""
    module = name.replace("-", "_")
    return make_sweep({
        "name": f"reproduce-{name}-{size}", "extrapolate": extrapolate,
        "parameters": {"seed": int(seed)}, "points": points,
        "analysis": {"name": f"jaxescape._reproductions.{module}:analyse", "size": size},
    }, f"reproduction {name!r}")


def run_reproduction(sweep: Sweep, output_dir, progress: bool) -> dict:
    """Runs (or resumes) the sweep into `output_dir`; returns the analysis's `results.json`."""
    run_sweep(sweep, os.fspath(output_dir), progress=progress,
              stream=None if progress else io.StringIO())
    with open(os.path.join(output_dir, "results.json")) as file:
        return json.load(file)


def record_row(record: dict, x: float, *, learning_rate=None, laplace_log=None,
               predicted_bias=None, order: float = 1.0) -> dict:
    """A stored escape point (with its 2·dt run) as the reproductions' row (`escape_row`)."""
    summary, point = record["summary"], record["point"]
    row = escape_row(
        x, point["dt"], point["particles"], (summary["mfpt"], summary["mfpt_standard_error"]),
        (summary["coarse_mfpt"], summary["coarse_mfpt_standard_error"]), summary["exact_mfpt"],
        laplace_log=laplace_log, learning_rate=learning_rate, predicted_bias=predicted_bias,
        order=order)
    return {"label": point.get("label"), "index": record["index"], **row,
            "censored": summary["num_censored"], "diverged": summary["num_diverged"],
            "particle_steps": summary["cost_particle_steps"],
            "wall_seconds": record["timing"]["wall_time_s"]}


def grouped(run) -> dict[str, list[dict]]:
    """The stored records by label prefix (`power_law/3` → `power_law`), in index order."""
    groups = {}
    for record in run.records:
        groups.setdefault((record["point"].get("label") or "").split("/")[0], []).append(record)
    return groups


def timing(run) -> Timing:
    """The seconds spent on the stored points."""
    return Timing(sum(record["timing"]["wall_time_s"] for record in run.records))


def seed_of(run) -> int:
    return int(run.records[0]["point"]["seed"])
