"""Configuration of the Kramers-validation experiment: defaults, TOML files and validation.

A config file is TOML with the field names of `ExperimentConfig` as **top-level keys** (no
table), for example::

    landscape = "double-well"
    barrier = 1.0
    curvature = 4.0
    temperatures = [0.5, 0.4]
    particles = 100_000
    output = "runs/my-run"

Every key is optional (missing keys take the defaults). Everything is checked before any
simulation starts: an unknown key, a wrong type or an out-of-range value raises `ConfigError` (a
`ValueError`) that names the field and the allowed range.
"""

import dataclasses
import difflib
import json
import math
import numbers
import os
import tomllib
from collections.abc import Mapping

from .. import _defaults
from .._engine.validation import MAX_PARTICLE_INDEX, MAX_STEPS_LIMIT


LANDSCAPES = ("double-well", "styblinski-tang")


class ConfigError(ValueError):
    """An invalid experiment configuration (raised before anything is simulated)."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """The Kramers-validation experiment: overdamped Langevin escape from a 1-D minimum.

    **Arguments:**

    - `landscape`: "double-well" (`TiltedDoubleWell`) or "styblinski-tang" (1-D
      `StyblinskiTang`).
    - `barrier`: ΔL of the double well (> 0).
    - `curvature`: L'' at the double well's minimum (> 0).
    - `asymmetry`: the double well's r (> 1; 2 is symmetric).
    - `sharpness`: Styblinski–Tang's k (> 0).
    - `loss_scale`: factor multiplying the Styblinski–Tang loss (> 0); its barrier is
      25.2 · loss_scale, so choose temperatures accordingly.
    - `temperatures`: one simulation per temperature T (each > 0); the default gives
      ΔL/T = 2, 2.5, 3, 3.5 for the default double well.
    - `particles`: particles per temperature (>= 1).
    - `dt`: Euler–Maruyama time step (> 0).
    - `max_steps`: steps after which a particle still inside is censored.
    - `seed`: key of level i is `fold_in(key(seed), i)`.
    - `crossing_correction`: Brownian-bridge crossing correction in `simulate`.
    - `extrapolate`: also run every level at 2·dt (key `fold_in(key, 1)`) and report
      Richardson's extrapolation 2τ(dt) − τ(2dt) to dt → 0 with its standard error and
      the dt run's estimated bias τ(2dt) − τ(dt) (`simulate_extrapolated`; cost ≈ 1.5×).
      The dt run is the same with or without it.
    - `output`: the run directory; None means runs/kramers-YYYYmmdd-HHMMSS under the current
      directory.
    - `progress`: show progress bars.
    """

    landscape: str = "double-well"
    barrier: float = 1.0
    curvature: float = 4.0
    asymmetry: float = 2.0
    sharpness: float = 1.0
    loss_scale: float = 1.0
    temperatures: tuple[float, ...] = (0.5, 0.4, 1 / 3, 2 / 7)
    particles: int = 1_000_000
    dt: float = 0.01
    max_steps: int = _defaults.MAX_STEPS
    seed: int = 0
    crossing_correction: bool = True
    extrapolate: bool = True
    output: str | None = None
    progress: bool = True

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = CHECKS[field.name](field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)


FIELD_NAMES = tuple(field.name for field in dataclasses.fields(ExperimentConfig))


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _number(name: str, value, *, above: float, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number {allowed}, got {_describe(value)}")
    number = float(value)
    if not math.isfinite(number) or number <= above:
        raise ConfigError(f"{name} must be a finite number {allowed}, got {value!r}")
    return number


def check_integer(name: str, value, *, lower: int, upper: int) -> int:
    """An integer in [lower, upper]; an integral float (as TOML writes 1e6) is accepted."""
    allowed = f"an integer between {lower} and {upper}"
    integral_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral) or integral_float):
        raise ConfigError(f"{name} must be {allowed}, got {_describe(value)}")
    if not lower <= value <= upper:
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {_describe(value)}")
    return value


def _landscape(name: str, value) -> str:
    if value not in LANDSCAPES:
        raise ConfigError(
            f"{name} must be one of {', '.join(map(repr, LANDSCAPES))}, got {_describe(value)}"
        )
    return value


def _temperatures(name: str, value) -> tuple[float, ...]:
    allowed = "a non-empty list of numbers, each > 0"
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ConfigError(f"{name} must be {allowed}, got {_describe(value)}")
    if not value:
        raise ConfigError(f"{name} must be {allowed}, got an empty list")
    return tuple(
        _number(f"{name}[{index}]", item, above=0.0, allowed="> 0 (each temperature)")
        for index, item in enumerate(value)
    )


def _output(name: str, value) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty directory path, got {_describe(value)}")
    return value


def check_positive(name, value):
    return _number(name, value, above=0.0, allowed="> 0")


CHECKS = {
    "landscape": _landscape,
    "barrier": check_positive,
    "curvature": check_positive,
    "asymmetry": lambda name, value: _number(name, value, above=1.0, allowed="> 1"),
    "sharpness": check_positive,
    "loss_scale": check_positive,
    "temperatures": _temperatures,
    "particles": lambda name, value: check_integer(
        name, value, lower=1, upper=MAX_PARTICLE_INDEX
    ),
    "dt": check_positive,
    "max_steps": lambda name, value: check_integer(name, value, lower=1, upper=MAX_STEPS_LIMIT),
    "seed": lambda name, value: check_integer(name, value, lower=0, upper=2**32 - 1),
    "crossing_correction": _flag,
    "extrapolate": _flag,
    "output": _output,
    "progress": _flag,
}


def check_keys(keys, source: str = "config", valid: tuple[str, ...] = FIELD_NAMES) -> None:
    """Raises `ConfigError` for the first key not in `valid`, naming the closest valid key."""
    for key in keys:
        if key in valid:
            continue
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown key {key!r} in {source}; {hint}valid keys: {', '.join(valid)}"
        )


def make_config(values: Mapping, source: str = "config") -> ExperimentConfig:
    """An `ExperimentConfig` from a mapping of field names (missing ones take the defaults)."""
    check_keys(values, source)
    return ExperimentConfig(**values)


def read_toml(path, kind: str = "config file") -> dict:
    """A TOML file's contents; a missing, unreadable or invalid file raises `ConfigError`."""
    source = f"{kind} {os.fspath(path)!r}"
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read {source}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid TOML: {error}") from None


def read_config_file(path) -> dict:
    """The key/value pairs of a TOML config file, keys checked (values are checked later)."""
    values = read_toml(path)
    check_keys(values, f"config file {os.fspath(path)!r}")
    return values


def load_config(path, **overrides) -> ExperimentConfig:
    """Reads a TOML config file (top-level keys = field names) and validates it.

    Keyword `overrides` (e.g. from the command line) replace the file's values; None means "not
    given" and keeps the file's value.
    """
    values = read_config_file(path)
    check_keys(overrides, "overrides")
    values.update({key: value for key, value in overrides.items() if value is not None})
    return make_config(values, f"config file {os.fspath(path)!r}")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form, valid TOML for finite floats
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML escapes
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def config_to_toml(config: ExperimentConfig) -> str:
    """The config as a TOML document that `load_config` reads back to an equal config."""
    lines = ["# jaxescape Kramers-validation experiment (read back with --config)"]
    for name in FIELD_NAMES:
        value = getattr(config, name)
        if value is None:
            lines.append(f"# {name} is unset (default)")
        else:
            lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"
