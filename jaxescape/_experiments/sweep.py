"""Sweeps: a grid or a list of points over the numeric parameters of landscape, dynamics and run.

A sweep file is TOML::

    name = "barrier-sweep"       # optional; default: the file's name without .toml
    method = "direct"            # or "splitting" (adaptive multilevel splitting)
    extrapolate = true           # optional (default false): also run each point at 2·dt and
                                 # report 2τ(dt) − τ(2dt), its SE and the dt run's bias (the
                                 # same columns for splitting, from its estimates at dt, 2dt)
    output = "runs/barrier"      # optional; default: runs/NAME

    [parameters]                 # the values every point shares
    temperature = 0.4
    particles = 20_000

    [grid]                       # every combination of these lists (or: [[points]] tables)
    barrier = [0.8, 1.0, 1.2]
    dt = [0.01, 0.02]

Point keys are the fields of `ExperimentConfig` (one `temperature` instead of `temperatures`)
plus, for splitting, `replicas` and `runs`. Everything is checked when the sweep is made, before
anything is compiled: an unknown key names the closest valid one, and a wrong type or an
out-of-range value names the field (`ConfigError`, a `ValueError`).

A point can also be any run the library can do, declared by components (`components.py`):
`landscape`, `dynamics` (default "langevin"), `model`, `data` and `optimizer` (real SGD),
`criterion` (default "past-saddle") and `start` (default "minimum"; "initial", "gd-minimum"
with `start.learning_rate` and `start.steps`, or coordinates), each a name or a table
`{name = ..., option = ...}` flattened into the keys `component` and `component.option`, with
`dt`, `max_steps`, `seed`, `crossing_correction`, `particles` (or `replicas`, `runs`), a free
`label`, the point's own `method`, and `reference = false` to skip the exact reference (e.g.
when a measure point of the sweep computes it another way). Such a sweep (one that names a component other than a
Kramers landscape, an option, a label or a method) is *general*: the Kramers keys
(`temperature`, `barrier`, ...) are then options of the components.

A point with method "measure" calls a `measurement` function (`measurements.py`) instead of
simulating escapes; `analysis = "package.module:function"` names the sweep's analysis step, run
by the report once every point is stored (`analysis.py`). A reproduction is such a sweep:
`jaxescape reproduce NAME --spec` prints it.
"""

import dataclasses
import itertools
import os
from collections.abc import Mapping

from .. import _defaults
from . import components
from .fits import check_fits
from .config import (
    CHECKS,
    LANDSCAPES,
    ConfigError,
    ExperimentConfig,
    check_integer,
    check_positive,
    toml_value,
    check_keys,
    read_toml,
)


METHODS = ("direct", "splitting", "measure")
MAX_POINTS = 10_000
_DEFAULTS = {field.name: field.default for field in dataclasses.fields(ExperimentConfig)}
_SHARED = ("landscape", "temperature", "dt", "max_steps", "seed", "crossing_correction")
_ONLY_FOR_LANDSCAPE = {"barrier": "double-well", "curvature": "double-well",
                       "asymmetry": "double-well", "sharpness": "styblinski-tang",
                       "loss_scale": "styblinski-tang"}
_ONLY_FOR_METHOD = {"particles": "direct", "replicas": "splitting", "runs": "splitting"}
# Keys of points declared by components only: a point's own method, and a free label.
_GENERAL_ONLY = ("method", "label", "reference")
POINT_KEYS = (*_SHARED, *_ONLY_FOR_LANDSCAPE, *_ONLY_FOR_METHOD, *_GENERAL_ONLY)
TOP_KEYS = ("name", "method", "extrapolate", "output", "parameters", "grid", "points", "fits",
            "analysis")
_POINT_CHECKS = {
    **{key: CHECKS[key] for key in POINT_KEYS if key in CHECKS},
    "temperature": check_positive,
    "replicas": lambda name, value: check_integer(name, value, lower=2, upper=2**16),
    "runs": lambda name, value: check_integer(name, value, lower=2, upper=4096),
    "method": lambda name, value: _check_method(name, value),
    "label": lambda name, value: _check_label(name, value),
    "reference": lambda name, value: CHECKS["crossing_correction"](name, value),
}
_POINT_DEFAULTS = {**{key: _DEFAULTS[key] for key in POINT_KEYS if key in _DEFAULTS},
                   "replicas": _defaults.NUM_REPLICAS, "runs": _defaults.NUM_RUNS}


_GENERAL_SHARED = ("dt", "max_steps", "seed", "crossing_correction")
# The order of a general point's non-component keys.
_GENERAL_ORDER = (*_GENERAL_SHARED, "particles", "replicas", "runs", *_GENERAL_ONLY)


def _check_method(name: str, value) -> str:
    if value not in METHODS:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, METHODS))}, got {value!r}")
    return value


def _check_label(name: str, value) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def _check_analysis(value) -> Mapping | None:
    """`analysis`: None, an import path, or a table `{name = path, option = value, ...}`
    whose options are keywords of the function (checked against its signature)."""
    if value is None:
        return None
    table = dict(value) if isinstance(value, Mapping) else {"name": value}
    path = table.pop("name", None)
    function = components.import_callable("analysis", path)
    parameters = components.signature_parameters(function)
    for option, item in table.items():
        if parameters and option not in list(parameters)[1:]:
            raise ConfigError(f"analysis {path!r} has no option {option!r}; options: "
                              f"{', '.join(list(parameters)[1:]) or 'none'}")
        components.check_value(f"analysis.{option}", item)
    return {"name": path, **table}
_KRAMERS_ONLY = ("temperature", *_ONLY_FOR_LANDSCAPE)


def _is_component_key(key) -> bool:
    """A component (`dynamics`) or a component's option (`dynamics.learning_rate`)."""
    return key in components.COMPONENTS or (
        isinstance(key, str) and key.split(".", 1)[0] in components.COMPONENTS)


def _flatten(values: Mapping, grid: bool = False) -> dict:
    """Component tables `{name = ..., option = ...}` as keys `component`, `component.option`.

    In a grid a component's table holds lists of options (`[grid.dynamics] learning_rate = [...]`).
    """
    flat = {}
    for key, value in values.items():
        if key in components.COMPONENTS and isinstance(value, Mapping) \
                and (grid or key not in ("landscape", "start") or "name" in value):
            for option, item in value.items():
                flat[key if option == "name" else f"{key}.{option}"] = item
        else:
            flat[key] = value
    return flat


def _check_value(key, value, source: str):
    if _is_component_key(key) and not (key == "landscape" and value in LANDSCAPES):
        if key == "landscape" and isinstance(value, str) and ":" not in value \
                and value not in components.LANDSCAPES:
            raise ConfigError(f"{source} must be one of "
                              f"{', '.join(map(repr, (*LANDSCAPES, *components.LANDSCAPES)))} "
                              f"or an import path 'package.module:function', got {value!r}")
        value = components.check_value(source, value)
        if key == "start" and not (isinstance(value, tuple) or value in components.STARTS):
            raise ConfigError(f"{source} must be one of "
                              f"{', '.join(map(repr, components.STARTS))} or a list of "
                              f"coordinates, got {value!r}")
        if key in components.REGISTRIES or key == "optimizer":
            components.resolve(key, value)
        return value
    check_keys([key], source.rsplit(".", 1)[0], POINT_KEYS)
    return _POINT_CHECKS[key](source, value)


def _check_values(values, source: str) -> dict:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source} must be a table of parameter values, got {values!r}")
    return {key: _check_value(key, value, f"{source}.{key}")
            for key, value in _flatten(values).items()}


def _check_grid(grid, source: str) -> dict:
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{source} must be a table of lists, got {grid!r}")
    checked = {}
    for key, values in _flatten(grid, grid=True).items():
        if not _is_component_key(key):
            check_keys([key], source, POINT_KEYS)
        if isinstance(values, str | bytes) or not isinstance(values, list | tuple) or not values:
            raise ConfigError(f"{source}.{key} must be a non-empty list of values, got {values!r}")
        checked[key] = tuple(
            _check_value(key, value, f"{source}.{key}[{index}]")
            for index, value in enumerate(values)
        )
    return checked


def _check_start(point: dict, index: int) -> None:
    """The start's options (`start.option`): only those of its kind, and for "gd-minimum" a
    learning rate > 0 and a number of steps ≥ 1."""
    name = point["start"] if isinstance(point["start"], str) else "coordinates"
    allowed = components.STARTS.get(name, ())
    for key in point:
        if key.startswith("start.") and point[key] is not None \
                and key[len("start."):] not in allowed:
            takes = ", ".join(f"start.{option}" for option in allowed) or "no options"
            raise ConfigError(f"point {index}: unknown key {key}; start {name!r} takes {takes}")
    if name == "gd-minimum":
        rate, steps = point.get("start.learning_rate"), point.get("start.steps")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ConfigError(f"point {index}: start 'gd-minimum' needs start.learning_rate, a "
                              f"number > 0, got {rate!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"point {index}: start 'gd-minimum' needs start.steps, an "
                              f"integer ≥ 1, got {steps!r}")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A set of simulation points: `parameters` shared by all, crossed with `grid` or listed.

    **Arguments:**

    - `parameters`: values every point shares (point keys, see the module docstring).
    - `grid`: point key -> tuple of values; the points are every combination (first key
      slowest).
    - `points`: an explicit list of point tables instead of a grid (each crossed with nothing).
    - `method`: "direct" (`simulate`), "splitting" (`mean_escape_time_by_splitting`) or
      "measure" (each point calls its `measurement` function, `measurements.py`). A point
      declared by components may set its own `method`.
    - `name`: the sweep's name (default run directory runs/NAME).
    - `output`: the run directory (None: runs/NAME).
    - `fits`: declared fits with predicted slopes, the sweep's analysis step (`fits.py`).
    - `analysis`: an import path `package.module:function` (or a table with `name` and the
      function's options) run by the report once every point is stored; it returns files
      (`analysis.py`). The reproductions are sweeps with an analysis.
    - `extrapolate`: also run every point at 2·dt (key `fold_in(key, 1)`; the dt run is
      unchanged) and store Richardson's extrapolation 2τ(dt) − τ(2dt) to dt → 0 with its
      standard error and the dt run's estimated bias τ(2dt) − τ(dt) (cost ≈ 1.5×).
    """

    parameters: Mapping = dataclasses.field(default_factory=dict)
    grid: Mapping = dataclasses.field(default_factory=dict)
    points: tuple = ()
    method: str = "direct"
    name: str = "sweep"
    output: str | None = None
    extrapolate: bool = False
    fits: tuple = ()
    analysis: Mapping | str | None = None

    def __post_init__(self):
        object.__setattr__(self, "analysis", _check_analysis(self.analysis))
        object.__setattr__(self, "extrapolate", CHECKS["extrapolate"]("extrapolate",
                                                                      self.extrapolate))
        object.__setattr__(self, "parameters", _check_values(self.parameters, "parameters"))
        object.__setattr__(self, "grid", _check_grid(self.grid, "grid"))
        if isinstance(self.points, Mapping) or not isinstance(self.points, list | tuple):
            raise ConfigError(f"points must be a list of tables, got {self.points!r}")
        points = tuple(_check_values(point, f"points[{index}]")
                       for index, point in enumerate(self.points))
        object.__setattr__(self, "points", points)
        if self.grid and self.points:
            raise ConfigError("give either grid or points, not both")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(map(repr, METHODS))}, "
                              f"got {self.method!r}")
        if not isinstance(self.name, str) or not self.name or os.sep in self.name:
            raise ConfigError(f"name must be a non-empty string without {os.sep!r}, "
                              f"got {self.name!r}")
        object.__setattr__(self, "output", CHECKS["output"]("output", self.output))
        size = len(self.points) or _product_size(self.grid)
        if size > MAX_POINTS:
            raise ConfigError(f"a sweep may hold at most {MAX_POINTS} points, got {size}")
        if self.general:
            self._check_general()
        elif any("temperature" not in self._given(index)
                 for index in range(len(self.points) or 1)):
            raise ConfigError("temperature is required: set it in [parameters], [grid] or every "
                              "[[points]] table")
        else:
            for index, point in enumerate(self.expand()):
                _check_point(point, self._given(index), index, self.method)
        if self.fits:
            object.__setattr__(self, "fits", check_fits(self.fits, self.expand()))

    @property
    def general(self) -> bool:
        """Whether the points are declared by components (see the module docstring)."""
        keys = {*self.parameters, *self.grid, *(key for point in self.points for key in point)}
        values = [self.parameters.get("landscape"), *self.grid.get("landscape", ()),
                  *(point.get("landscape") for point in self.points)]
        return self.method == "measure" or any(
            (_is_component_key(key) and key != "landscape") or key in _GENERAL_ONLY
            for key in keys) or any(value is not None and value not in LANDSCAPES
                                    for value in values)

    def _check_general(self) -> None:
        for index, varying in enumerate(self._varying()):
            given = {*self.parameters, *varying}
            method = {**self.parameters, **varying}.get("method", self.method)
            for key in given:
                if key in _KRAMERS_ONLY:
                    raise ConfigError(
                        f"{key} belongs to the Kramers sweep (landscape 'double-well' or "
                        "'styblinski-tang' with white noise); a sweep with components sets it "
                        f"as an option, e.g. dynamics.temperature or landscape.barrier_height")
                wanted = _ONLY_FOR_METHOD.get(key)
                if wanted is not None and wanted != method:
                    raise ConfigError(f"point {index}: {key} applies to method {wanted!r} "
                                      f"only, but the point's method is {method!r}")
            if (method == "measure") != ("measurement" in given):
                raise ConfigError(f"point {index}: " + (
                    "method 'measure' needs a measurement = 'package.module:function'"
                    if method == "measure" else
                    f"a measurement belongs to method 'measure', not {method!r}"))
        for index, point in enumerate(self.expand()):
            for component in components.COMPONENTS:
                name = point.get(component)
                if component == "start" or name is None or (component == "optimizer"
                                                             and point["dynamics"] != "sgd"):
                    continue
                components.check_options(component, name, components.options_of(
                    point, component), f"point {index}")
            if (point.get("method") or self.method) == "measure":
                continue
            if point.get("landscape") is None and point.get("model") is None:
                raise ConfigError(f"point {index}: landscape is required (or model and data "
                                  "for dynamics 'sgd' and 'minibatch-noise')")
            _check_start(point, index)

    def _given(self, index: int) -> set:
        varying = self.points[index] if self.points else self.grid
        return set(self.parameters) | set(varying)

    def _varying(self) -> list[dict]:
        """Each point's own values: a `points` table, or a combination of the grid."""
        if self.points:
            return [dict(point) for point in self.points]
        keys = list(self.grid)
        return [dict(zip(keys, values))
                for values in itertools.product(*(self.grid[key] for key in keys))]

    def expand(self) -> list[dict]:
        """Every point with every key resolved (defaults filled in), in a fixed order."""
        varying = self._varying()
        if self.general:
            return self._expand_general(varying)
        keys = _SHARED + tuple(_ONLY_FOR_LANDSCAPE)
        keys += ("particles",) if self.method == "direct" else ("replicas", "runs")
        return [{key: {**_POINT_DEFAULTS, **self.parameters, **point}[key] for key in keys}
                for point in varying]

    def _expand_general(self, varying: list[dict]) -> list[dict]:
        """Points with the union of keys (None where a point lacks one): components first, in
        the order of `components.COMPONENTS`, each followed by its options."""
        shared = {**{key: _POINT_DEFAULTS[key] for key in _GENERAL_SHARED},
                  **components.DEFAULTS, "dt": None}
        by_method = {"direct": {**shared, "particles": _POINT_DEFAULTS["particles"]},
                     "splitting": {**shared, **{key: _POINT_DEFAULTS[key]
                                                for key in ("replicas", "runs")}},
                     "measure": {"seed": _POINT_DEFAULTS["seed"]}}
        points = []
        for point in varying:
            method = {**self.parameters, **point}.get("method", self.method)
            points.append({**by_method[method], **self.parameters, **point})
        given = dict.fromkeys(key for point in points for key in point)

        def order(key):
            head = key.split(".", 1)[0]
            if head in components.COMPONENTS:
                return (0, components.COMPONENTS.index(head), key != head)
            return (1, _GENERAL_ORDER.index(key) if key in _GENERAL_ORDER
                    else len(_GENERAL_ORDER), False)

        keys = sorted(given, key=order)
        return [{key: point.get(key) for key in keys} for point in points]

    def swept(self) -> tuple[str, ...]:
        """The keys whose value differs between points, in the order they were declared."""
        points = self.expand()
        order = dict.fromkeys([*self.grid, *(key for point in self.points for key in point),
                               *points[0]])
        return tuple(key for key in order
                     if key in points[0] and len({point[key] for point in points}) > 1)


def _product_size(grid: Mapping) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def _check_point(point: dict, given: set, index: int, method: str) -> None:
    for key in given:
        landscape = _ONLY_FOR_LANDSCAPE.get(key)
        if landscape is not None and point["landscape"] != landscape:
            raise ConfigError(f"point {index}: {key} applies to landscape {landscape!r} only, "
                              f"but this point's landscape is {point['landscape']!r}")
        wanted = _ONLY_FOR_METHOD.get(key)
        if wanted is not None and wanted != method:
            raise ConfigError(f"{key} applies to method {wanted!r} only, but the sweep's method "
                              f"is {method!r}")


def point_config(point: Mapping) -> ExperimentConfig:
    """The one-temperature `ExperimentConfig` of a resolved point (no output, no progress)."""
    fields = {key: value for key, value in point.items()
              if key in _DEFAULTS and key not in ("temperature",)}
    return ExperimentConfig(**fields, temperatures=(point["temperature"],), progress=False)


def make_sweep(values: Mapping, source: str = "sweep", *, name: str = "sweep") -> Sweep:
    """A `Sweep` from a mapping with the sweep file's top-level keys (see module docstring)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source} must be a table, got {values!r}")
    check_keys(values, source, TOP_KEYS)
    values = {"name": name, **values}
    try:
        return Sweep(**values)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_sweep(path, **overrides) -> Sweep:
    """Reads a sweep TOML file; `overrides` (None: not given) replace its top-level values."""
    values = read_toml(path, "sweep file")
    values.update({key: value for key, value in overrides.items() if value is not None})
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0] or "sweep"
    return make_sweep(values, f"sweep file {os.fspath(path)!r}", name=stem)


def _toml_key(key: str) -> str:
    """A bare TOML key, or a quoted one (`"dynamics.learning_rate"`: one key with a dot)."""
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() \
        else toml_value(key)


def _inline(value) -> str:
    """A TOML value; a mapping as an inline table."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(key)} = {_inline(item)}"
                               for key, item in value.items()) + "}"
    return toml_value(value)


def sweep_to_toml(sweep: Sweep) -> str:
    """The sweep as canonical TOML (no output): equal sweeps give equal text."""
    lines = ["# jaxescape sweep (read back with jaxescape sweep FILE)",
             f"name = {toml_value(sweep.name)}", f"method = {toml_value(sweep.method)}"]
    if sweep.extrapolate:  # written only when set: other sweeps' files keep their bytes
        lines.append("extrapolate = true")
    if sweep.analysis is not None:
        lines.append(f"analysis = {_inline(sweep.analysis)}")
    lines += ["", "[parameters]"] + [f"{_toml_key(key)} = {toml_value(value)}"
                                     for key, value in sweep.parameters.items()]
    if sweep.grid:
        lines += ["", "[grid]"] + [f"{_toml_key(key)} = {toml_value(values)}"
                                   for key, values in sweep.grid.items()]
    for point in sweep.points:
        lines += ["", "[[points]]"] + [f"{_toml_key(key)} = {toml_value(value)}"
                                       for key, value in point.items()]
    for fit in sweep.fits:
        lines += ["", "[[fits]]"] + [f"{_toml_key(key)} = {_inline(value)}"
                                     for key, value in fit.items()]
    return "\n".join(lines) + "\n"


def splitting_sweep(config: ExperimentConfig, *, replicas: int | None = None,
                    runs: int | None = None) -> Sweep:
    """The sweep of `jaxescape run --method splitting`: one point per temperature of `config`,
    extrapolated to dt → 0 when the config says so (as the direct method is)."""
    keys = [key for key in _SHARED if key != "temperature"]
    keys += [key for key, landscape in _ONLY_FOR_LANDSCAPE.items()
             if landscape == config.landscape]
    parameters = {key: getattr(config, key) for key in keys}
    parameters.update({key: value for key, value in (("replicas", replicas), ("runs", runs))
                       if value is not None})
    points = [{"temperature": temperature} for temperature in config.temperatures]
    return Sweep(parameters=parameters, points=points, method="splitting", name="splitting",
                 extrapolate=config.extrapolate)


def describe_point(point: dict, swept) -> str:
    """The swept parameters of a point, as `name=value, …`."""
    return ", ".join(f"{key}={point[key]:g}" if isinstance(point[key], float)
                     else f"{key}={point[key]}" for key in swept) or "single point"
