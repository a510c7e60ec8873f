"""Running a sweep into a result store: resumable, interruptible, one compilation per shape.

The run directory holds

- `sweep.toml` (the sweep, canonical), `environment.json` (library, JAX, jaxlib and device
  versions; how keys are derived),
- per point `points/point-NNNNN.json` (parameters, statistics, timing) and
  `points/point-NNNNN.npz` (raw escape steps or splitting run estimates),
- `summary.csv` (a row per finished point), the report (`report.md`, `figures/*.png`),
- `manifest.json` (SHA-256 of every file: the commit point; see `store.py`).

Point i of a sweep uses the key `fold_in(key(seed), i)`. A point is committed (files, CSV,
manifest) with Ctrl-C held back, so an interrupted sweep keeps every finished point; run the
same command again and only the missing points are computed, with the numbers an uninterrupted
run gives.
"""

import csv
import datetime
import io
import math
import os
import sys
import time
import warnings

import jax
import numpy as np
from tqdm.auto import tqdm

from .config import ConfigError
from .._criteria import past_saddle
from .components import build_point, exact_reference
from .measurements import run_measurement
from .results import measured_names
from .kramers import (
    CENSORED_MLE,
    analyse_level,
    escape_statistics,
    extrapolation_statistics,
    format_number,
    simulate_level,
    plan_levels,
    package_versions,
    build_landscape,
    landscape_geometry,
)
from .._dynamics.sde import AbstractDynamics
from .._engine.driver import simulate
from .._splitting import (
    mean_escape_time_by_splitting,
    mean_escape_time_by_splitting_extrapolated,
)
from .store import (
    ENVIRONMENT_FILE,
    SUMMARY_FILE,
    SWEEP_FILE,
    CorruptedFileError,
    RunStore,
    deferred_interrupt,
    json_bytes,
    npz_bytes,
    point_file,
)
from .sweep import Sweep, describe_point, load_sweep, make_sweep, point_config, sweep_to_toml
from .._trends import ratio_to_theory


CONFIDENCE = 0.95
DEFAULT_DT = 0.01  # an SDE point's time step when the sweep gives none
KEY = "jax.random.fold_in(jax.random.key(seed), index)"
RESULT_COLUMNS = (
    "method", "num_particles", "num_escaped", "num_censored", "num_diverged", "mfpt",
    "mfpt_standard_error", "mfpt_lower", "mfpt_upper", "mfpt_estimator", "exact_mfpt",
    "kramers_time", "ratio_to_exact", "ratio_lower", "ratio_upper",
    "deviation_in_standard_errors", "exponentiality_p_value", "splitting_probability",
    "cost_particle_steps",
)
EXTRAPOLATION_COLUMNS = (
    "coarse_mfpt", "coarse_mfpt_standard_error", "mfpt_extrapolated",
    "mfpt_extrapolated_standard_error", "extrapolated_deviation_in_standard_errors",
    "discretisation_bias", "discretisation_bias_standard_error",
)


def plan_points(sweep: Sweep, shard: tuple[int, int] = (0, 1)) -> list[dict]:
    """Landscape, dynamics and references of every point (of the shard), before anything is
    simulated."""
    plans = []
    swept = sweep.swept()
    for index, point in enumerate(sweep.expand()):
        if not in_shard(index, shard):
            continue
        if sweep.general:
            plans.append(_plan_general(index, point, swept, sweep.method))
            continue
        config = point_config(point)
        landscape = build_landscape(config)
        geometry = landscape_geometry(landscape)
        try:
            (level,) = plan_levels(config, landscape, geometry)
        except ConfigError as error:
            message = str(error).replace("temperatures[0]", "temperature")
            raise ConfigError(f"point {index} ({describe_point(point, swept)}): {message}") \
                from None
        plans.append({**level, "index": index, "point": point, "config": config,
                      "landscape": landscape, "geometry": geometry})
    for plan in plans:
        plan["extrapolate"] = sweep.extrapolate
        plan["method"] = plan["point"].get("method") or sweep.method
    return plans


def _plan_general(index: int, point: dict, swept, method: str) -> dict:
    """A point declared by components: its objects, checked (references: `add_references`)."""
    if (point.get("method") or method) == "measure":
        return {"index": index, "point": point, "exact_mfpt": None, "kramers_time": None}
    try:
        built = build_point(point)
    except ConfigError as error:
        raise ConfigError(f"point {index} ({describe_point(point, swept)}): {error}") from None
    return {**built, "index": index, "point": point, "criteria": built["criterion"],
            "describe": describe_point(point, swept)}


def add_references(plan: dict) -> dict:
    """The plan with its exact quadrature MFPT and Kramers' time (None where none), computed
    on first use: only for the points that run (a resumed sweep skips the stored ones)."""
    if "exact_mfpt" not in plan and plan["point"].get("reference") is False:
        plan["exact_mfpt"] = plan["kramers_time"] = None
    elif "exact_mfpt" not in plan:
        try:
            plan["exact_mfpt"], plan["kramers_time"] = exact_reference(plan, plan["point"])
        except ConfigError as error:
            raise ConfigError(f"point {plan['index']} ({plan['describe']}): {error}") from None
    return plan


def _run_options(plan: dict) -> dict:
    """dt and the crossing correction of a point (SGD has no path between its iterates)."""
    point, dynamics = plan["point"], plan["dynamics"]
    sde = isinstance(dynamics, AbstractDynamics)
    dt = point["dt"] if point["dt"] is not None else (dynamics.default_dt or DEFAULT_DT)
    return {"dt": dt, "crossing_correction": point["crossing_correction"] and sde}


def _environment() -> dict:
    device = jax.devices()[0]
    return {"versions": package_versions(), "platform": jax.default_backend(),
            "device_kind": device.device_kind, "num_devices": jax.device_count(),
            "key_derivation": f"point index: {KEY}"}


def _simulate_general(plan: dict, key, label) -> tuple[dict, dict, list]:
    point = plan["point"]
    result, coarse = _simulate(plan, plan["criteria"], plan["start"], key,
                               num_particles=point["particles"], max_steps=point["max_steps"],
                               progress=label, **_run_options(plan))
    statistics, notes, rate = escape_statistics(result)
    row = {key: statistics.get(key) for key in (
        "num_particles", "num_escaped", "num_censored", "num_diverged", "mfpt",
        "mfpt_standard_error", "mfpt_estimator", "exponentiality_p_value")}
    row["cost_particle_steps"] = int(np.sum(result.escape_step, dtype=np.int64))
    if rate is not None:
        row.update(_interval(rate, statistics, plan["exact_mfpt"]))
    arrays = _arrays(result)
    if coarse is not None:
        _add_extrapolation(row, arrays, statistics, coarse, plan["exact_mfpt"])
    return row, arrays, notes


def _simulate(plan: dict, criteria, start, key, **options):
    """The point's run, and its 2dt run (`simulate_level`) or None. A point stores no positions
    (`_arrays`), so none are kept (a network's are N × its parameters)."""
    if not plan["extrapolate"]:
        return simulate(plan["dynamics"], criteria, start, key, keep_positions=False,
                        **options), None
    return simulate_level(plan["dynamics"], criteria, start, key, extrapolate=True, **options)


def _arrays(result, prefix: str = "") -> dict:
    """The raw per-particle results stored with a point (`boundary`: the criterion each
    escaped particle crossed, -1 for the others)."""
    return {f"{prefix}escape_step": result.escape_step, f"{prefix}censored": result.censored,
            f"{prefix}diverged": result.diverged, f"{prefix}boundary": result.boundary,
            f"{prefix}dt": np.float64(result.dt)}


def _add_extrapolation(row: dict, arrays: dict, statistics: dict, coarse, exact) -> None:
    """The 2dt run's MFPT, the extrapolation to dt → 0 and the dt run's bias (in `row`), and
    the 2dt run's raw arrays (`coarse_*` in `arrays`)."""
    coarse_statistics, _, _ = escape_statistics(coarse)
    row.update(coarse_mfpt=coarse_statistics["mfpt"],
               coarse_mfpt_standard_error=coarse_statistics["mfpt_standard_error"],
               **extrapolation_statistics(statistics, coarse_statistics, exact))
    row["cost_particle_steps"] += int(np.sum(coarse.escape_step, dtype=np.int64))
    arrays.update(_arrays(coarse, "coarse_"))


def _interval(rate, statistics: dict, exact) -> dict:
    """The MFPT's 95% interval (the exponential fit's for censored runs, else mean ± 1.96 SE)
    and, where an exact value exists, the ratio to it."""
    mfpt, error = statistics["mfpt"], statistics["mfpt_standard_error"]
    if not (math.isfinite(mfpt) and math.isfinite(error) and error > 0):
        return {}  # e.g. nothing escaped before max_steps
    bounds = ({"lower": rate.mean_time_lower, "upper": rate.mean_time_upper}
              if statistics["mfpt_estimator"] == CENSORED_MLE else {})
    if exact is not None:
        return _ratio_columns(mfpt, error, exact, **bounds)
    ratio = ratio_to_theory(mfpt, error, mfpt, CONFIDENCE, **bounds)
    return {"mfpt_lower": ratio.lower * mfpt, "mfpt_upper": ratio.upper * mfpt}


def _simulate_direct(plan: dict, key, label) -> tuple[dict, dict, list]:
    point, config = plan["point"], plan["config"]
    result, coarse = _simulate(
        plan, past_saddle(plan["landscape"]), plan["landscape"].minimum(), key,
        num_particles=point["particles"], dt=point["dt"], max_steps=point["max_steps"],
        crossing_correction=point["crossing_correction"], progress=label,
    )
    level, _ = analyse_level(result, plan, config, plan["geometry"]["barrier"])
    row = {key: level.get(key) for key in ("num_particles", "num_escaped", "num_censored",
                                           "num_diverged", "mfpt", "mfpt_standard_error",
                                           "mfpt_estimator", "exponentiality_p_value")}
    row["cost_particle_steps"] = int(np.sum(result.escape_step, dtype=np.int64))
    if level["mfpt"] is not None:
        fit = level["exponential_fit"]
        bounds = ({"lower": fit["mean_time_lower"], "upper": fit["mean_time_upper"]}
                  if level["mfpt_estimator"] == CENSORED_MLE else {})
        row.update(_ratio_columns(level["mfpt"], level["mfpt_standard_error"],
                                  plan["exact_mfpt"], **bounds))
    arrays = _arrays(result)
    if coarse is not None:
        _add_extrapolation(row, arrays, level, coarse, plan["exact_mfpt"])
    return row, arrays, level["notes"]


def _simulate_splitting(plan: dict, key) -> tuple[dict, dict, list]:
    point = plan["point"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if "criteria" in plan:  # a point declared by components
            where = (plan["criteria"], plan["start"])
            options = _run_options(plan)
        else:
            where = (past_saddle(plan["landscape"]), plan["landscape"].minimum())
            options = {"dt": point["dt"], "crossing_correction": point["crossing_correction"]}
        estimate = extrapolated = (
            mean_escape_time_by_splitting_extrapolated if plan["extrapolate"]
            else mean_escape_time_by_splitting)(
            plan["dynamics"], *where, key, num_replicas=point["replicas"],
            num_runs=point["runs"], max_steps=point["max_steps"], confidence=CONFIDENCE,
            **options,
        )
        if plan["extrapolate"]:
            estimate = extrapolated.result
    row = {"mfpt": estimate.mean_escape_time, "mfpt_standard_error": estimate.standard_error,
           "mfpt_estimator": "adaptive multilevel splitting",
           "splitting_probability": estimate.probability, "cost_particle_steps": estimate.cost,
           "num_censored": estimate.num_censored}
    if math.isfinite(estimate.mean_escape_time) and plan["exact_mfpt"] is None:
        row.update(mfpt_lower=estimate.lower, mfpt_upper=estimate.upper)
    elif math.isfinite(estimate.mean_escape_time):
        row.update(_ratio_columns(estimate.mean_escape_time, estimate.standard_error,
                                  plan["exact_mfpt"], lower=estimate.lower,
                                  upper=estimate.upper))
    arrays = {"run_probabilities": estimate.run_probabilities,
              "num_iterations": np.asarray(estimate.num_iterations)}
    scalars = {name: value for name, value in estimate.flat().items()
               if name not in arrays and name != "seconds"}
    if plan["extrapolate"]:  # τ(dt)²/τ(2dt): Richardson on log τ (`_splitting/extrapolation.py`)
        coarse = extrapolated.coarse_result
        value, error = extrapolated.mean_escape_time, extrapolated.standard_error
        row.update(coarse_mfpt=coarse.mean_escape_time,
                   coarse_mfpt_standard_error=coarse.standard_error,
                   mfpt_extrapolated=value, mfpt_extrapolated_standard_error=error,
                   discretisation_bias=coarse.mean_escape_time - estimate.mean_escape_time,
                   discretisation_bias_standard_error=math.hypot(coarse.standard_error,
                                                                 estimate.standard_error))
        if plan["exact_mfpt"] is not None:
            row["extrapolated_deviation_in_standard_errors"] = (value - plan["exact_mfpt"]) / error
        row["cost_particle_steps"] += coarse.cost
        arrays.update(coarse_run_probabilities=coarse.run_probabilities,
                      coarse_num_iterations=np.asarray(coarse.num_iterations))
    return row | {"splitting": scalars}, arrays, [str(item.message) for item in caught]


def _ratio_columns(mfpt, standard_error, exact, **bounds) -> dict:
    ratio = ratio_to_theory(mfpt, standard_error, exact, CONFIDENCE, **bounds)
    return {"mfpt_lower": ratio.lower * exact, "mfpt_upper": ratio.upper * exact,
            "ratio_to_exact": ratio.ratio, "ratio_lower": ratio.lower,
            "ratio_upper": ratio.upper, "deviation_in_standard_errors": ratio.deviation}


def summary_csv(records: list[dict]) -> bytes:
    """The per-point table: index, the point's parameters, then `RESULT_COLUMNS` (and
    `EXTRAPOLATION_COLUMNS` when a point has them)."""
    if not records:
        return b""
    parameter_columns = list(records[0]["point"])
    result_columns = RESULT_COLUMNS + (EXTRAPOLATION_COLUMNS if any(
        "mfpt_extrapolated" in record["summary"] for record in records) else ())
    measured = measured_names(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", *parameter_columns, *result_columns, *measured])
    for record in records:
        values = [record["index"], *(record["point"][key] for key in parameter_columns),
                  *(record["summary"].get(key) for key in result_columns),
                  *(record["summary"].get("measured", {}).get(key) for key in measured)]
        writer.writerow(["" if value is None or (isinstance(value, float)
                                                 and not math.isfinite(value))
                         else repr(value) if isinstance(value, float) else value
                         for value in values])
    return buffer.getvalue().encode()


def check_shard(shard) -> tuple[int, int]:
    """`(index, count)` with 0 <= index < count; point i belongs to shard i mod count."""
    if isinstance(shard, str):
        index, _, count = shard.partition("/")
        try:
            shard = (int(index), int(count))
        except ValueError:
            raise ConfigError(f"shard must be I/N with integers 0 <= I < N, got {shard!r}") \
                from None
    if (not isinstance(shard, tuple | list) or len(shard) != 2
            or not all(isinstance(item, int) and not isinstance(item, bool) for item in shard)
            or not 0 <= shard[0] < shard[1]):
        raise ConfigError(f"shard must be (I, N) with integers 0 <= I < N, got {shard!r}")
    return tuple(shard)


def in_shard(index: int, shard: tuple[int, int]) -> bool:
    return index % shard[1] == shard[0]


def committed_records(store: RunStore, total: int, cache: dict | None = None) -> list[dict]:
    """The records of every committed point whose files verify, by index (any process's).

    `cache` (name -> (SHA-256, record)) spares re-reading records already read.
    """
    cache = {} if cache is None else cache
    records = []
    for index in range(total):
        names = (point_file(index, "json"), point_file(index, "npz"))
        digest = store.digest(names[0])
        if digest is None or store.digest(names[1]) is None:
            continue
        if cache.get(names[0], (None,))[0] != digest:
            try:
                cache[names[0]] = (digest, store.read_json(names[0]))
            except CorruptedFileError:
                continue
        records.append(cache[names[0]][1])
    return records


def open_sweep_store(sweep: Sweep, directory: str, say) -> tuple[RunStore, list[dict]]:
    """Creates the run directory, or reopens it when it holds the same sweep.

    Returns the store and the records of the points already finished and verified; committed
    point files that fail verification are reported by name and their points are recomputed.
    Other processes (the sweep's other shards) may create or write the directory at the same
    time: this runs under the directory's lock.
    """
    store = RunStore(directory, create=True)
    with store.locked(), deferred_interrupt():
        return store, _open_locked(store, sweep, directory, say)


def _open_locked(store: RunStore, sweep: Sweep, directory: str, say) -> list[dict]:
    text = sweep_to_toml(sweep).encode()
    environment = _environment()
    if store.exists():
        stored = store.read(SWEEP_FILE)
        if stored != text:
            raise ConfigError(f"{directory!r} holds a different sweep ({SWEEP_FILE} differs); "
                              "choose another output directory")
        before = store.read_json(ENVIRONMENT_FILE)
        for key in ("versions", "platform", "device_kind"):
            if before.get(key) != environment[key]:
                say(f"warning: {key} differ from the stored points' ({before.get(key)} now "
                    f"{environment[key]}): resumed numbers may differ from an uninterrupted run")
    else:
        store.write(SWEEP_FILE, text)
        created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        store.write(ENVIRONMENT_FILE, json_bytes({**environment, "created_at": created}))
        store.commit()
    records, changed = [], False
    for index in range(len(sweep.expand())):
        names = [point_file(index, "json"), point_file(index, "npz")]
        if not all(name in store.files for name in names):
            continue
        problems = {name: store.problem(name) for name in names}
        bad = {name: problem for name, problem in problems.items() if problem}
        if bad:
            for name, problem in bad.items():
                say(f"warning: {os.path.join(directory, name)} is corrupted ({problem}); "
                    f"point {index} will be recomputed")
                store.forget(name)
            changed = True
            continue
        records.append(store.read_json(names[0]))
    if records and store.problem(SUMMARY_FILE):
        say(f"warning: {os.path.join(directory, SUMMARY_FILE)} is corrupted "
            f"({store.problem(SUMMARY_FILE)}); rewritten from the stored points")
        store.write(SUMMARY_FILE, summary_csv(records))
        changed = True
    if changed:
        store.commit()
    return records


def default_directory(sweep: Sweep) -> str:
    return sweep.output or os.path.join("runs", sweep.name)


def run_sweep(sweep: Sweep, output: str | None = None, *, progress: bool = True,
              stream=None, shard: tuple[int, int] | str = (0, 1)) -> str:
    """Runs every unfinished point of `sweep` into `output` (default: sweep.output or
    runs/NAME), writes the report, and returns the run directory.

    Same command, same numbers: a rerun after an interruption computes only the missing points.

    **Arguments:**

    - `shard`: `(I, N)` (or `"I/N"`) runs only the points whose index is I mod N, so N
      processes (a job array on a shared file system) share the sweep with no coordinator; the
      union of their stores equals, bit for bit but for timings, the store of one process.
      Points another process has already committed are skipped.
    """
    from .report import write_report

    def say(text=""):
        print(text, file=sys.stdout if stream is None else stream, flush=True)

    if isinstance(sweep, dict):
        sweep = make_sweep(sweep)
    shard = check_shard(shard)
    plans = plan_points(sweep, shard)
    total = len(sweep.expand())
    directory = output or default_directory(sweep)
    store, records = open_sweep_store(sweep, directory, say)
    done = {record["index"] for record in records}
    swept = sweep.swept()
    share = f"shard {shard[0]}/{shard[1]}: {len(plans)} of {total}" if shard[1] > 1 else total
    say(f"jaxescape sweep {sweep.name!r} ({sweep.method}): {share} points over "
        f"{', '.join(swept) or 'nothing'}; "
        f"{sum(plan['index'] in done for plan in plans)} already stored; run directory "
        f"{directory}")
    cache = {}
    try:
        with tqdm(total=len(plans), initial=sum(plan["index"] in done for plan in plans),
                  desc="points", unit="point", disable=not progress) as bar:
            for plan in plans:
                index = plan["index"]
                store.refresh()  # points other processes committed meanwhile are skipped
                if index in done:
                    continue
                if _is_stored(store, index):  # committed meanwhile by another shard
                    bar.update(1)
                    continue
                add_references(plan)  # quadrature and Kramers, for the points that run
                record, ours = _run_point(plan, swept, total, store, progress, cache)
                bar.update(1)
                say(f"point {index + 1}/{total} ({describe_point(plan['point'], swept)}): "
                    f"{_outcome(record['summary'], plan['exact_mfpt'])} "
                    f"({record['timing']['wall_time_s']:.1f} s)"
                    + "".join(f"; {note}" for note in record["notes"])
                    + ("" if ours else "; stored meanwhile by another process, kept"))
    except KeyboardInterrupt:
        stored = sum(point_file(plan["index"], "json") in store.files for plan in plans)
        say(f"interrupted: {stored} of {len(plans)} points stored in {directory}; run "
            "the same command again to compute the rest")
        raise
    say(write_report(directory))
    return directory


def _outcome(summary: dict, exact) -> str:
    """A point's result in a line: MFPT ± SE and the exact value, or the measured scalars."""
    if summary["method"] == "measure":
        shown = list(summary["measured"].items())[:4]
        return ", ".join(f"{name} {format_number(value, '.5g')}" if isinstance(value, float)
                         else f"{name} {value}" for name, value in shown) or "measured"
    return (f"MFPT {format_number(summary.get('mfpt'), '.5g')} ± "
            f"{format_number(summary.get('mfpt_standard_error'), '.2g')}, exact "
            f"{format_number(exact, '.5g')}")


def _is_stored(store: RunStore, index: int) -> bool:
    return all(store.digest(point_file(index, extension)) is not None
               for extension in ("json", "npz"))


def _run_point(plan, swept, num_points, store, progress, cache) -> tuple[dict, bool]:
    """Simulates a point and commits it with the summary of every stored point; returns its
    record and False where another process committed the point first (its files are kept)."""
    index, point = plan["index"], plan["point"]
    started = time.perf_counter()
    add_references(plan)
    key = jax.random.fold_in(jax.random.key(point["seed"]), index)
    method = plan["method"]
    label = f"point {index + 1}/{num_points}" if progress else False
    if method == "measure":
        measured, arrays = run_measurement(point, key, label)
        summary, notes = {"measured": measured}, []
    elif method == "direct":
        simulate_point = _simulate_general if "criteria" in plan else _simulate_direct
        summary, arrays, notes = simulate_point(plan, key, label)
    else:
        summary, arrays, notes = _simulate_splitting(plan, key)
    summary = {"method": method, "exact_mfpt": plan["exact_mfpt"],
               "kramers_time": plan["kramers_time"], **summary}
    record = {"index": index, "point": point, "key": KEY,
              "summary": summary, "notes": notes,
              "timing": {"wall_time_s": time.perf_counter() - started}}
    with store.locked(), deferred_interrupt():
        names = (point_file(index, "json"), point_file(index, "npz"))
        if _is_stored(store, index) and not any(store.problem(name) for name in names):
            return store.read_json(names[0]), False
        store.write(names[1], npz_bytes(arrays))
        store.write(names[0], json_bytes(record))
        store.write(SUMMARY_FILE, summary_csv(committed_records(store, num_points, cache)))
        store.commit()
    return record, True


def sweep_status(directory) -> dict:
    """Status of a sweep run directory: complete, partial (k of n) or corrupted (names)."""
    try:
        store = RunStore(directory)
    except CorruptedFileError as error:
        return {"status": "corrupted", "problems": {"manifest.json": str(error)}}
    corrupted = store.corrupted()
    if SWEEP_FILE in corrupted or SWEEP_FILE not in store.files:
        return {"status": "corrupted", "problems": corrupted or {SWEEP_FILE: "missing"}}
    try:
        sweep = load_sweep(os.path.join(directory, SWEEP_FILE))
    except ConfigError as error:
        return {"status": "corrupted", "problems": {SWEEP_FILE: str(error)}}
    total = len(sweep.expand())
    finished = sum(
        all(name in store.files and name not in corrupted
            for name in (point_file(index, "json"), point_file(index, "npz")))
        for index in range(total)
    )
    if corrupted:
        status = "corrupted"
    elif finished == total:
        status = "complete"
    else:
        status = f"partial {finished} of {total}"
    return {"status": status, "problems": corrupted, "finished": finished, "total": total,
            "method": sweep.method, "name": sweep.name, "swept": sweep.swept()}
