"""Sweep declarations: TOML and Python, expansion, and every bad-input error (with hypothesis)."""

import contextlib
import io
import math
import string

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from jaxescape import Sweep, load_sweep

# Internal machinery under test (not exported): the TOML schema, sweep builders and planner.
from jaxescape._experiments.config import ConfigError, ExperimentConfig
from jaxescape._experiments.sweep import (
    POINT_KEYS,
    TOP_KEYS,
    make_sweep,
    splitting_sweep,
    sweep_to_toml,
)
from jaxescape._experiments.sweep_run import plan_points
from jaxescape.cli import main


EXAMPLE = """
name = "example"
[parameters]
temperature = 0.4
particles = 1e3
[grid]
barrier = [0.8, 1]
dt = [0.01, 0.02, 0.04]
"""


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_expands_to_every_combination_first_key_slowest(tmp_path):
    sweep = load_sweep(write(tmp_path, EXAMPLE))
    points = sweep.expand()
    assert [(point["barrier"], point["dt"]) for point in points] == [
        (0.8, 0.01), (0.8, 0.02), (0.8, 0.04), (1.0, 0.01), (1.0, 0.02), (1.0, 0.04)]
    assert all(point["particles"] == 1000 and point["temperature"] == 0.4 for point in points)
    assert points[0]["curvature"] == ExperimentConfig.curvature  # defaults filled in
    assert sweep.swept() == ("barrier", "dt")
    assert sweep.name == "example"


def test_python_and_toml_declarations_agree_and_round_trip(tmp_path):
    in_python = Sweep(parameters={"temperature": 0.4, "particles": 1000},
                      grid={"barrier": [0.8, 1.0], "dt": [0.01, 0.02, 0.04]}, name="example")
    from_file = load_sweep(write(tmp_path, EXAMPLE))
    assert sweep_to_toml(in_python) == sweep_to_toml(from_file)
    again = load_sweep(write(tmp_path, sweep_to_toml(from_file), "again.toml"))
    assert again == from_file


def test_points_list_and_splitting_sweep():
    sweep = make_sweep({"method": "splitting", "parameters": {"replicas": 50, "runs": 4},
                        "points": [{"temperature": 0.2}, {"temperature": 0.1, "dt": 0.02}]})
    assert [point["temperature"] for point in sweep.expand()] == [0.2, 0.1]
    assert sweep.expand()[1]["dt"] == 0.02 and "particles" not in sweep.expand()[0]
    converted = splitting_sweep(ExperimentConfig(temperatures=(0.5, 0.25)), replicas=40)
    assert [point["temperature"] for point in converted.expand()] == [0.5, 0.25]
    assert converted.expand()[0]["replicas"] == 40 and converted.method == "splitting"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"grid": {"barier": [1.0]}}, "unknown key 'barier' in grid; did you mean 'barrier'?"),
        ({"parameters": {"temperatures": 0.5}}, "did you mean 'temperature'?"),
        ({"methd": "direct"}, "unknown key 'methd' in sweep; did you mean 'method'?"),
        ({"grid": {"barrier": 1.0}}, "grid.barrier must be a non-empty list"),
        ({"grid": {"barrier": []}}, "grid.barrier must be a non-empty list"),
        ({"grid": {"barrier": [1.0, -2.0]}}, "grid.barrier[1] must be a finite number > 0"),
        ({"grid": {"dt": [0.01, "fast"]}}, "grid.dt[1] must be a number > 0, got 'fast' (str)"),
        ({"parameters": {"particles": 0.5}}, "parameters.particles must be an integer"),
        ({"parameters": {"seed": -1}}, "parameters.seed must be an integer between 0"),
        ({"parameters": {"max_steps": True}}, "parameters.max_steps must be an integer"),
        ({"parameters": {"landscape": "bowl"}}, "parameters.landscape must be one of"),
        ({"parameters": {"asymmetry": 1.0}}, "parameters.asymmetry must be a finite number > 1"),
        ({"parameters": "temperature"}, "parameters must be a table"),
        ({"points": {"temperature": 1}}, "points must be a list of tables"),
        ({"points": [{"temperatur": 1.0}]}, "in points[0]; did you mean 'temperature'?"),
        ({"grid": {"dt": [0.1]}, "points": [{"dt": 0.1}]}, "either grid or points"),
        ({"method": "fast"}, "method must be one of 'direct', 'splitting'"),
        ({"parameters": {"particles": 10}}, "temperature is required"),
        ({"parameters": {"temperature": 0.5, "sharpness": 2.0}},
         "sharpness applies to landscape 'styblinski-tang' only"),
        ({"parameters": {"temperature": 0.5, "replicas": 20}},
         "replicas applies to method 'splitting' only"),
        ({"method": "splitting", "parameters": {"temperature": 0.5, "particles": 20}},
         "particles applies to method 'direct' only"),
        ({"parameters": {"temperature": 0.5}, "grid": {"seed": list(range(101))},
          "points": []}, None),
        ({"parameters": {"temperature": 0.5},
          "grid": {"seed": list(range(101)), "dt": [0.01] * 100}}, "at most 10000 points"),
    ],
)
def test_bad_sweeps_name_the_field(values, message):
    if message is None:
        assert len(make_sweep(values).expand()) == 101
        return
    with pytest.raises(ConfigError) as error:
        make_sweep(values)
    assert message in str(error.value)


def test_a_hopeless_point_is_rejected_before_simulating():
    sweep = make_sweep({"parameters": {"particles": 10}, "grid": {"temperature": [0.5, 1e-4]}})
    with pytest.raises(ConfigError, match=r"point 1 \(temperature=0.0001\): temperature = "
                                          r"0.0001 is too low"):
        plan_points(sweep)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_sweep(write(tmp_path, "grid = [\n"))


# Property-based: random configs give a Sweep or a ConfigError (a ValueError) naming a key,
# and the CLI answers with exit 0 or `jaxescape: error:` and exit 2, never a traceback.

_KEYS = st.sampled_from([*POINT_KEYS, "temperatures", "barier", "particle", "Temperature"])
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**7), st.floats(allow_nan=True),
    st.text(string.ascii_letters, max_size=6), st.sampled_from(["double-well", "styblinski-tang"]),
    st.lists(st.floats(-1.0, 3.0), max_size=3), st.dictionaries(st.just("x"), st.integers()),
)
_TABLES = st.dictionaries(_KEYS, _VALUES, max_size=4)
_NUMBERS = st.one_of(st.floats(0.05, 3.0), st.integers(1, 5000))
_MOSTLY_VALID = st.fixed_dictionaries(
    {"parameters": st.fixed_dictionaries(
        {"temperature": st.floats(0.05, 2.0)},
        optional={key: st.one_of(_NUMBERS, _VALUES) for key in POINT_KEYS
                  if key != "temperature"},
    )},
    optional={"grid": st.dictionaries(st.sampled_from(POINT_KEYS),
                                      st.lists(_NUMBERS, min_size=1, max_size=3), max_size=2),
              "method": st.sampled_from(["direct", "splitting"])},
)
_RANDOM = st.fixed_dictionaries(
    {}, optional={
        "method": st.sampled_from(["direct", "splitting", "other", 3]),
        "parameters": st.one_of(_TABLES, _VALUES),
        "grid": st.one_of(st.dictionaries(_KEYS, st.lists(_VALUES, max_size=3), max_size=3),
                          _VALUES),
        "points": st.one_of(st.lists(_TABLES, max_size=3), _VALUES),
        "name": st.one_of(st.text(string.ascii_letters, max_size=5), _VALUES),
        "extra": _VALUES,
    },
)
_CONFIGS = st.one_of(_RANDOM, _MOSTLY_VALID)
_FAST = settings(max_examples=60, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(_CONFIGS)
def test_random_configs_give_a_sweep_or_a_clear_error(values):
    try:
        sweep = make_sweep(values)
    except ConfigError as error:
        text = str(error)
        assert any(key in text for key in (*POINT_KEYS, *TOP_KEYS)), text
        return
    assert isinstance(sweep, Sweep) and sweep.expand()


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"


@settings(max_examples=15, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(_TABLES, st.fixed_dictionaries({"temperature": st.floats(0.05, 2.0)},
                                                 optional={"particles": _NUMBERS,
                                                           "barrier": _NUMBERS})),
       st.dictionaries(_KEYS, st.lists(_NUMBERS, min_size=1, max_size=3), max_size=2))
def test_cli_dry_run_answers_exit_0_or_a_clear_error(tmp_path, parameters, grid):
    parameters = {key: value for key, value in parameters.items() if value is not None}
    lines = ["[parameters]", *(f"{key} = {_toml(value)}" for key, value in parameters.items()),
             "[grid]", *(f"{key} = {_toml(value)}" for key, value in grid.items())]
    path = write(tmp_path, "\n".join(lines) + "\n", "random.toml")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["sweep", str(path), "--dry-run"])
    if status == 0:
        assert "dry run: nothing simulated" in stdout.getvalue()
    else:
        assert status == 2
        assert stderr.getvalue().startswith("jaxescape: error: "), stderr.getvalue()
        assert stderr.getvalue().count("\n") == 1
