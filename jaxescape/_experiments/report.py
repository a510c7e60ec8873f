"""Reports rebuilt from a stored sweep, without simulating: figures and a Markdown summary.

- `figures/escape_times.png`: histograms with the fitted exponential and Kaplan–Meier survival
  curves on a log scale (direct points; at most `MAX_HISTOGRAMS` histogram panels).
- `figures/log_tau_vs_<parameter>.png`: log τ against each swept numeric parameter but the
  seed (against 1/T for the temperature), with 95% intervals, the exact quadrature MFPT of each
  point (the theory curve) and a weighted straight-line fit per series of points that share the
  other parameters.
- `report.md`: the environment, a table of points and the fitted slopes with their intervals.
"""

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots import LevelData, plot_escape_times
from .._statistics import exponential_rate_mle
from .analysis import run_analysis
from .fits import fit_figure, fits_markdown, run_fits
from .results import read_records, results_frame
from .store import ENVIRONMENT_FILE, RunStore, point_file
from .sweep import describe_point
from .._trends import weighted_linear_fit


REPORT_FILE = "report.md"
MAX_HISTOGRAMS = 12
MAX_TITLE = 60


def _axis(parameter: str) -> tuple[str, callable]:
    """The fit's x for a parameter: 1/T for the temperature (log τ ≈ ΔL/T), else itself."""
    if parameter == "temperature":
        return "1 / temperature", lambda values: 1.0 / np.asarray(values, np.float64)
    return parameter, lambda values: np.asarray(values, np.float64)


def _series(records: list[dict], parameter: str, swept) -> dict[tuple, list[dict]]:
    """Points grouped by the values of the other swept parameters."""
    groups = {}
    for record in records:
        summary = record["summary"]
        if summary.get("mfpt") is None or not summary.get("mfpt_standard_error"):
            continue
        others = tuple((key, record["point"][key]) for key in swept if key != parameter)
        groups.setdefault(others, []).append(record)
    return groups


def fit_trends(records: list[dict], swept) -> list[dict]:
    """A weighted fit of log τ against each swept numeric parameter, per series."""
    fits = []
    for parameter in swept:
        if parameter == "seed" or not all(_is_number(record["point"][parameter])
                                          for record in records):
            continue
        label, transform = _axis(parameter)
        for others, group in _series(records, parameter, swept).items():
            x = transform([record["point"][parameter] for record in group])
            if np.unique(x).size < 2:
                continue
            mfpt = np.array([record["summary"]["mfpt"] for record in group])
            error = np.array([record["summary"]["mfpt_standard_error"] for record in group])
            fit = weighted_linear_fit(x, np.log(mfpt), error / mfpt)
            log_exact, theory_slope = None, None
            if all(record["summary"]["exact_mfpt"] is not None for record in group):
                log_exact = np.log([record["summary"]["exact_mfpt"] for record in group])
                theory_slope = float(np.polyfit(x, log_exact, 1, w=mfpt / error)[0])
            fits.append({"parameter": parameter, "axis": label, "series": dict(others),
                         "x": x, "log_mfpt": np.log(mfpt), "log_error": error / mfpt,
                         "log_exact": log_exact, "fit": fit, "theory_slope": theory_slope})
    return fits


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _trend_figure(fits: list[dict], parameter: str) -> bytes:
    figure = Figure(figsize=(6.4, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for number, item in enumerate(fits):
        color, fit = f"C{number % 10}", item["fit"]
        order = np.argsort(item["x"])
        x = item["x"][order]
        name = describe_point(item["series"], item["series"]) if item["series"] else ""
        axes.errorbar(x, item["log_mfpt"][order], yerr=1.96 * item["log_error"][order],
                      fmt="o", color=color, ms=4, capsize=2,
                      label=f"simulated {name}".strip())
        if item["log_exact"] is not None:
            axes.plot(x, item["log_exact"][order], color=color, ls="--", lw=1.0,
                      label="exact quadrature" if number == 0 else None)
        theory = ("" if item["theory_slope"] is None
                  else f" (theory {item['theory_slope']:.4g})")
        axes.plot(x, fit.intercept + fit.slope * x, color=color, lw=1.0,
                  label=f"fit: slope {fit.slope:.4g} [{fit.slope_lower:.4g}, "
                        f"{fit.slope_upper:.4g}]{theory}")
    axes.set_xlabel(fits[0]["axis"])
    axes.set_ylabel("log mean escape time")
    axes.set_title(f"log τ against {parameter} (95% intervals)")
    axes.legend(fontsize="x-small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _histogram_figure(store: RunStore, records: list[dict], swept) -> bytes | None:
    direct = [record for record in records if record["summary"]["method"] == "direct"
              and record["summary"].get("mfpt") is not None]
    if not direct:
        return None
    keep = np.unique(np.linspace(0, len(direct) - 1, min(len(direct), MAX_HISTOGRAMS))
                     .astype(int))
    panels = []
    for record in (direct[index] for index in keep):
        arrays = store.read_arrays(point_file(record["index"], "npz"))
        kept = ~arrays["diverged"]
        times = arrays["escape_step"][kept] * float(arrays["dt"])
        censored = arrays["censored"][kept]
        point = record["point"]
        temperature = point.get("temperature")
        title = (describe_point(point, swept) if swept or temperature is None
                 else f"T = {temperature:.4g}")
        if len(title) > MAX_TITLE:  # points of different components: too much to list
            title = f"point {record['index']}"
        panels.append(LevelData(
            temperature, times, censored, point["max_steps"] * float(arrays["dt"]),
            exponential_rate_mle(times, censored).rate, record["summary"]["exact_mfpt"], title,
        ))
    buffer = io.BytesIO()
    plot_escape_times(panels, buffer, "escape times (dotted: exp(−t / exact MFPT))")
    return buffer.getvalue()


def _number(value, spec=".5g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def _markdown(sweep, records, fits, environment, figures, swept) -> str:
    total = len(sweep.expand())
    status = "complete" if len(records) == total else f"partial: {len(records)} of {total}"
    extrapolated = any("mfpt_extrapolated" in record["summary"] for record in records)
    extra = ["MFPT extrap ± SE", "(extrap−exact)/SE", "dt bias ± SE"] if extrapolated else []
    versions = environment["versions"]
    lines = [
        f"# Sweep {sweep.name!r}", "",
        f"- method: {sweep.method}; points: {total} ({status}); swept: "
        f"{', '.join(swept) or 'nothing'}",
        f"- device: {environment['device_kind']} ({environment['platform']}); "
        + ", ".join(f"{name} {version}" for name, version in versions.items()),
        f"- keys: {environment['key_derivation']}",
        "- intervals: 95%; exact = quadrature MFPT of the simulated SDE",
        *(["- extrap = 2·MFPT(dt) − MFPT(2·dt) (Richardson's extrapolation to dt → 0); dt bias "
           "= MFPT(2·dt) − MFPT(dt), the dt run's estimated bias"] if extrapolated else []), "",
        "| " + " | ".join(["point", *swept, "MFPT ± SE", "95% interval", "exact", "Kramers",
                          "sim/exact [95%]", "exp. p", *extra]) + " |",
        "|" + "---|" * (7 + len(swept) + len(extra)),
    ]
    for record in records:
        summary, point = record["summary"], record["point"]
        lines.append("| " + " | ".join([
            str(record["index"]), *(_number(point[key], "g") if _is_number(point[key])
                                    else str(point[key]) for key in swept),
            f"{_number(summary.get('mfpt'))} ± "
            f"{_number(summary.get('mfpt_standard_error'), '.2g')}",
            f"[{_number(summary.get('mfpt_lower'))}, {_number(summary.get('mfpt_upper'))}]",
            _number(summary["exact_mfpt"]), _number(summary["kramers_time"]),
            f"{_number(summary.get('ratio_to_exact'), '.4f')} "
            f"[{_number(summary.get('ratio_lower'), '.4f')}, "
            f"{_number(summary.get('ratio_upper'), '.4f')}]",
            _number(summary.get("exponentiality_p_value"), ".3g"),
            *([f"{_number(summary.get('mfpt_extrapolated'))} ± "
               f"{_number(summary.get('mfpt_extrapolated_standard_error'), '.2g')}",
               _number(summary.get("extrapolated_deviation_in_standard_errors"), "+.2f"),
               f"{_number(summary.get('discretisation_bias'), '.3g')} ± "
               f"{_number(summary.get('discretisation_bias_standard_error'), '.2g')}"]
              if extrapolated else []),
        ]) + " |")
    if fits:
        lines += ["", "## Weighted fits of log τ", "",
                  "| parameter | series | slope [95%] | exact-curve slope | χ² / dof (p) |",
                  "|---|---|---|---|---|"]
        for item in fits:
            fit = item["fit"]
            chi = (f"{fit.chi_square:.3g} / {fit.degrees_of_freedom} ({fit.p_value:.3g})"
                   if fit.degrees_of_freedom else "n/a (2 points)")
            series = describe_point(item["series"], item["series"]) if item["series"] else "all"
            lines.append(f"| log τ vs {item['axis']} | {series} | "
                         f"{fit.slope:.5g} [{fit.slope_lower:.5g}, {fit.slope_upper:.5g}] | "
                         f"{_number(item['theory_slope'])} | {chi} |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def _analysis(store, sweep, records, environment) -> tuple[dict, list[str]]:
    """The analysis step's files once every point is stored, and the report's lines on it."""
    name = sweep.analysis["name"]
    total = len(sweep.expand())
    if len(records) < total:
        return {}, ["", "## Analysis", "", f"`{name}` runs once all {total} points are stored "
                    f"({len(records)} now)."]
    files = run_analysis(store, sweep, records, environment)
    return files, ["", "## Analysis", "", f"`{name}` wrote: "
                   + ", ".join(f"[{file}]({file})" for file in files) + "."]


def write_report(directory) -> str:
    """Rebuilds the figures and `report.md` of a sweep run directory; returns the Markdown.

    Runs under the directory's lock: of several shards finishing at once, the last report
    written is built from every stored point.
    """
    with RunStore(directory).locked() as store:
        return _write_report(store)


def _write_report(store: RunStore) -> str:
    sweep, records = read_records(store)
    environment = store.read_json(ENVIRONMENT_FILE)
    swept = sweep.swept()
    figures = {}
    histograms = _histogram_figure(store, records, swept)
    if histograms is not None:
        figures["figures/escape_times.png"] = histograms
    fits = fit_trends(records, swept)
    for parameter in dict.fromkeys(item["parameter"] for item in fits):
        figures[f"figures/log_tau_vs_{parameter}.png"] = _trend_figure(
            [item for item in fits if item["parameter"] == parameter], parameter)
    declared = []
    if sweep.fits:  # the sweep's analysis step: declared fits with predicted slopes
        declared = run_fits(results_frame(sweep, records), sweep.fits)
        figures.update({f"figures/fit_{outcome['fit']['name']}.png": fit_figure(outcome)
                        for outcome in declared if outcome["result"] is not None})
    text = _markdown(sweep, records, fits, environment, list(figures), swept)
    extra = fits_markdown(declared) if declared else []
    analysed = {}
    if sweep.analysis is not None:
        analysed, lines = _analysis(store, sweep, records, environment)
        extra += lines
    if extra:
        head, _, tail = text.partition("\n## Figures\n")
        text = head.rstrip("\n") + "\n" + "\n".join(extra) + "\n" \
            + (f"\n## Figures\n{tail}" if tail else "")
    for name in store.files:
        if name.startswith("figures/") and name not in figures:
            store.forget(name)  # a figure of a partial report that the whole one lacks
    for name, data in {**figures, **analysed}.items():
        store.write(name, data)
    store.write(REPORT_FILE, text.encode())
    store.commit()
    return text
