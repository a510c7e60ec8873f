"""Figures of the Kramers-validation experiment (matplotlib, Agg canvas, no pyplot state)."""

import math
from typing import NamedTuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._statistics import escape_time_histogram, kaplan_meier


class LevelData(NamedTuple):
    """What one panel needs: a level's escape times and its fitted and exact references."""

    temperature: float
    times: np.ndarray  # escape times of the non-diverged particles
    censored: np.ndarray  # bool, same shape
    censoring_time: float  # max_steps · dt
    rate: float  # exponential MLE rate
    exact_mfpt: float | None  # None: no exact reference (no line drawn)
    label: str = ""  # panel title and legend entry; default "T = <temperature>"

    @property
    def title(self) -> str:
        return self.label or f"T = {self.temperature:.4g}"


_MAX_CURVE_POINTS = 4000


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """At most _MAX_CURVE_POINTS evenly spaced entries (a 10^6-step curve draws no better)."""
    size = arrays[0].size
    if size <= _MAX_CURVE_POINTS:
        return arrays
    keep = np.unique(np.linspace(0, size - 1, _MAX_CURVE_POINTS).astype(np.int64))
    return tuple(array[keep] for array in arrays)


def _histogram_panel(axes, level: LevelData, color) -> None:
    if np.all(level.censored):
        axes.text(0.5, 0.5, "all particles censored", ha="center", transform=axes.transAxes)
        return
    density, edges = escape_time_histogram(level.times, bins=60, censored=level.censored)
    axes.stairs(density, edges, fill=True, color=color, alpha=0.5, label="simulated")
    # The histogram is normalised over the escaped particles, i.e. conditional on t < t_max.
    t = np.linspace(0.0, edges[-1], 400)
    escaped_fraction = -math.expm1(-level.rate * level.censoring_time)
    fitted = level.rate * np.exp(-level.rate * t) / escaped_fraction
    axes.plot(t, fitted, color="black", lw=1.2, label=f"exponential fit, mean {1 / level.rate:.4g}")
    if level.exact_mfpt is not None:
        axes.axvline(level.exact_mfpt, color="C3", ls="--", lw=1.2,
                     label=f"exact MFPT {level.exact_mfpt:.4g}")
    axes.set_yscale("log")
    positive = density[density > 0]
    if positive.size:
        axes.set_ylim(0.5 * positive.min(), 2.0 * max(positive.max(), fitted.max()))
    axes.set_xlim(0.0, edges[-1])
    axes.set_xlabel("escape time")
    axes.set_ylabel("density")
    axes.set_title(level.title)
    axes.legend(fontsize="small")


def _survival_panel(axes, levels: list[LevelData]) -> None:
    for index, level in enumerate(levels):
        color = f"C{index}"
        curve = kaplan_meier(level.times, level.censored)
        times, survival = _thin(curve.times, curve.survival)
        alive = survival > 0
        axes.step(times[alive], survival[alive], where="post", color=color,
                  label=level.title)
        t = np.linspace(0.0, times[-1] if times.size else 1.0, 200)
        if level.exact_mfpt is not None:
            axes.plot(t, np.exp(-t / level.exact_mfpt), color=color, ls=":", lw=1.0)
    axes.set_yscale("log")
    axes.set_xlabel("time")
    axes.set_ylabel("fraction not yet escaped")
    axes.set_title("Kaplan–Meier survival (dotted: exp(−t / exact MFPT))")
    axes.legend(fontsize="small")


def plot_escape_times(levels: list[LevelData], file, title: str = "") -> None:
    """One histogram panel per level plus a Kaplan–Meier panel, saved as PNG to `file`."""
    num_panels = len(levels) + 1
    columns = min(3, num_panels)
    rows = -(-num_panels // columns)
    figure = Figure(figsize=(5.0 * columns, 3.8 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for index, level in enumerate(levels):
        _histogram_panel(grid[index], level, f"C{index}")
    _survival_panel(grid[len(levels)], levels)
    for axes in grid[num_panels:]:
        axes.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.savefig(file, format="png", dpi=110)
