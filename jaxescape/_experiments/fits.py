"""Declared fits: a sweep's analysis step, stated in the sweep file and rebuilt by its report.

A sweep may declare fits of a transformed escape time against a transformed parameter, each
with the slope a theory predicts::

    [[fits]]
    name = "power_law"                              # figures/fit_power_law.png
    where = {"dynamics.kappa" = 2.5}                # the points of this series (default: all)
    x = "log1p(2 * `dynamics.kappa` * `landscape.barrier_height` / `dynamics.sigma`)"
    y = "log(mfpt)"                                 # default
    predicted_slope = "1 / (`dynamics.learning_rate` * `dynamics.kappa`) + 0.5"
    tolerance = 0.05                                # |slope / predicted − 1| allowed

`x`, `y` and `predicted_slope` (a number, or an expression that must be equal on every selected
point) are `pandas.DataFrame.eval` expressions over the columns of `load_results` (point keys
with a dot in backticks; `log`, `log1p`, `exp`, `sqrt`, ...). The fit is the weighted straight
line of `_trends.weighted_linear_fit` with the standard error of log τ, SE/τ, as σ of y. Every
expression is evaluated on the declared points (results set to 1) when the sweep is made, so a
misspelt column is named before anything is simulated.
"""

import io
import math
from collections.abc import Mapping

import numpy as np

from .config import ConfigError, check_keys
from .store import RESULT_NAMES
from .._trends import weighted_linear_fit


FIT_KEYS = ("name", "where", "x", "y", "predicted_slope", "tolerance")


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def _evaluate(frame, expression: str, source: str):
    try:
        return np.asarray(frame.eval(expression, engine="python"), np.float64)
    except Exception as error:  # pandas raises many kinds (UndefinedVariableError, SyntaxError)
        raise ConfigError(f"{source} = {expression!r} cannot be evaluated: {error}") from None


def _select(frame, where: Mapping):
    mask = np.ones(len(frame), bool)
    for key, value in where.items():
        mask &= np.asarray(frame[key] == value)
    return frame[mask]


def check_fits(fits, points: list[dict]) -> tuple[dict, ...]:
    """The declared fits, checked against the sweep's points (results taken as 1)."""
    if isinstance(fits, Mapping) or not isinstance(fits, list | tuple):
        raise ConfigError(f"fits must be a list of tables ([[fits]]), got {fits!r}")
    checked, names = [], set()
    frame = _frame([{**point, **dict.fromkeys(RESULT_NAMES, 1.0)} for point in points])
    for index, fit in enumerate(fits):
        source = f"fits[{index}]"
        if not isinstance(fit, Mapping):
            raise ConfigError(f"{source} must be a table, got {fit!r}")
        check_keys(fit, source, FIT_KEYS)
        fit = {"where": {}, "y": "log(mfpt)", **fit}
        name = fit.get("name")
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum() \
                or name in names:
            raise ConfigError(f"{source}.name must be a new name of letters, digits, - and _, "
                              f"got {name!r}")
        names.add(name)
        for key in ("x", "y"):
            if not isinstance(fit.get(key), str):
                raise ConfigError(f"{source}.{key} must be an expression (a string), got "
                                  f"{fit.get(key)!r}")
        where = fit["where"]
        if not isinstance(where, Mapping) or any(key not in frame for key in where):
            raise ConfigError(f"{source}.where must be a table of point keys and values, got "
                              f"{where!r}")
        selected = _select(frame, where)
        if len(selected) < 2:
            raise ConfigError(f"{source}.where selects {len(selected)} points; a fit needs 2")
        for key in ("x", "y"):
            _evaluate(selected, fit[key], f"{source}.{key}")
        predicted = fit.get("predicted_slope")
        if isinstance(predicted, str):
            _evaluate(selected, predicted, f"{source}.predicted_slope")
        elif predicted is not None and (isinstance(predicted, bool)
                                        or not isinstance(predicted, int | float)):
            raise ConfigError(f"{source}.predicted_slope must be a number or an expression, "
                              f"got {predicted!r}")
        tolerance = fit.get("tolerance")
        if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(
                tolerance, int | float) or not tolerance > 0):
            raise ConfigError(f"{source}.tolerance must be a number > 0, got {tolerance!r}")
        checked.append({key: fit[key] for key in FIT_KEYS if key in fit})
    return tuple(checked)


def run_fits(frame, fits) -> list[dict]:
    """Each declared fit on the stored points: slope [95%], predicted slope, verdict."""
    outcomes = []
    for fit in fits:
        selected = _select(frame, fit["where"])
        selected = selected[np.isfinite(selected["mfpt"].to_numpy(np.float64))
                            & (selected["mfpt_standard_error"].to_numpy(np.float64) > 0)]
        outcome = {"fit": fit, "num_points": len(selected), "result": None, "predicted": None,
                   "passed": None}
        if len(selected) >= 2:
            x = _evaluate(selected, fit["x"], f"fit {fit['name']}: x")
            y = _evaluate(selected, fit["y"], f"fit {fit['name']}: y")
            error = (selected["mfpt_standard_error"] / selected["mfpt"]).to_numpy(np.float64)
            if np.unique(x).size >= 2:
                outcome.update(x=x, y=y, error=error,
                               result=weighted_linear_fit(x, y, error))
        predicted = fit.get("predicted_slope")
        if isinstance(predicted, str) and len(selected):
            values = _evaluate(selected, predicted, f"fit {fit['name']}: predicted_slope")
            predicted = float(values[0]) if np.allclose(values, values[0]) else math.nan
        outcome["predicted"] = predicted
        if outcome["result"] is not None and predicted and fit.get("tolerance") is not None:
            outcome["passed"] = bool(abs(outcome["result"].slope / predicted - 1)
                                     <= fit["tolerance"])
        outcomes.append(outcome)
    return outcomes


def fits_markdown(outcomes: list[dict]) -> list[str]:
    """The report's section of declared fits."""
    if not outcomes:
        return []
    lines = ["", "## Declared fits", "",
             "| fit | points | y against x | slope [95%] | predicted | verdict |",
             "|---|---|---|---|---|---|"]
    for outcome in outcomes:
        fit, result = outcome["fit"], outcome["result"]
        slope = ("n/a" if result is None else
                 f"{result.slope:.5g} [{result.slope_lower:.5g}, {result.slope_upper:.5g}]")
        predicted = outcome["predicted"]
        verdict = "n/a" if outcome["passed"] is None else (
            f"{'pass (within' if outcome['passed'] else 'FAIL (beyond'} {fit['tolerance']:.0%})")
        lines.append(f"| {fit['name']} | {outcome['num_points']} | "
                     f"`{fit['y'].replace('`', '')}` against `{fit['x'].replace('`', '')}` | "
                     f"{slope} | "
                     f"{'n/a' if predicted is None else format(predicted, '.5g')} | {verdict} |")
    return lines


def fit_figure(outcome: dict) -> bytes:
    """log τ (or the declared y) against x with 95% bars, the fit and the predicted slope."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    fit, result = outcome["fit"], outcome["result"]
    order = np.argsort(outcome["x"])
    x, y = outcome["x"][order], outcome["y"][order]
    axes.errorbar(x, y, yerr=1.96 * outcome["error"][order], fmt="o", ms=4, capsize=2,
                  label="simulated (95%)")
    axes.plot(x, result.intercept + result.slope * x, lw=1.0,
              label=f"fit: slope {result.slope:.4g} [{result.slope_lower:.4g}, "
                    f"{result.slope_upper:.4g}]")
    predicted = outcome["predicted"]
    if predicted is not None and math.isfinite(predicted):
        centre = np.average(y - predicted * x, weights=outcome["error"][order] ** -2.0)
        axes.plot(x, centre + predicted * x, ls="--", lw=1.0,
                  label=f"predicted slope {predicted:.4g}")
    axes.set_xlabel(fit["x"].replace("`", ""))
    axes.set_ylabel(fit["y"].replace("`", ""))
    axes.set_title(f"fit {fit['name']}")
    axes.legend(fontsize="x-small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
