"""Sweep points declared by components: any landscape (built-in or by import path), dynamics
(noise models, a user SDE, real SGD), criterion and start; TOML and Python mirror each other;
bad input names the field before anything compiles."""

import contextlib
import io
import pathlib
import textwrap

import pytest

import jaxescape as jxe
from jaxescape.cli import main
from test_sweep_run import run_counting_compilations

# Internal machinery under test (not exported): the sweep schema, planner and runner.
import jaxescape._experiments.sweep_run as sweep_run
from jaxescape._experiments.config import ConfigError
from jaxescape._experiments.sweep import make_sweep, sweep_to_toml


MENG = """
name = "meng-kappa"
[parameters]
landscape = {name = "double-well", barrier_height = 0.6, curvature = 4.0}
dynamics = {name = "meng", learning_rate = 0.5, sigma = 1.0}
particles = 211
dt = 0.02
max_steps = 20_000
[grid.dynamics]
kappa = [0.0, 0.5]
[[fits]]
name = "kappa"
x = "`dynamics.kappa`"
predicted_slope = "-1 / `dynamics.learning_rate`"
"""
USER_MODULE = '''
import jax.numpy as jnp
import jaxescape as jxe


def quartic(depth, width):
    """A user landscape by import path: depth (x^2/w^2 - 1)^2 shifted, minimum at -w."""
    def loss(y, parameters):
        x = y[0] / parameters["width"]
        return parameters["depth"] * (x**2 - 1.0) ** 2
    return jxe.FunctionLandscape(loss, 1, {"depth": jnp.asarray(depth), "width": jnp.asarray(width)},
                                 known_minimum=-jnp.asarray(width), known_saddle=jnp.zeros(1))


def _drift(t, y, parameters):
    return -parameters["landscape"].gradient(y)


def _diffusion(t, y, parameters):
    return jnp.full_like(y, jnp.sqrt(2 * parameters["temperature"]))


def white_noise(landscape, temperature):
    """A user GeneralSDE by import path: white noise written by hand."""
    return jxe.GeneralSDE(_drift, _diffusion, {"landscape": landscape,
                                               "temperature": jnp.asarray(temperature)},
                          landscape=landscape)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_components").with_suffix(".py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_components"


def test_toml_and_python_declare_the_same_sweep(tmp_path):
    path = tmp_path / "meng.toml"
    path.write_text(MENG)
    from_file = jxe.load_sweep(path)
    in_python = jxe.Sweep(
        parameters={"landscape": {"name": "double-well", "barrier_height": 0.6, "curvature": 4.0},
                    "dynamics": {"name": "meng", "learning_rate": 0.5, "sigma": 1.0},
                    "particles": 211, "dt": 0.02, "max_steps": 20_000},
        grid={"dynamics.kappa": [0.0, 0.5]}, name="meng-kappa",
        fits=[{"name": "kappa", "x": "`dynamics.kappa`",
               "predicted_slope": "-1 / `dynamics.learning_rate`"}])
    assert sweep_to_toml(in_python) == sweep_to_toml(from_file)
    again = tmp_path / "again.toml"
    again.write_text(sweep_to_toml(from_file))
    assert jxe.load_sweep(again) == from_file
    assert from_file.general and from_file.swept() == ("dynamics.kappa",)
    point = from_file.expand()[1]
    assert point["dynamics.kappa"] == 0.5 and point["criterion"] == "past-saddle"
    assert point["start"] == "minimum"


def test_meng_points_share_a_compilation_and_match_the_exact_mfpt(tmp_path):
    path = tmp_path / "meng.toml"
    path.write_text(MENG)
    directory = str(tmp_path / "run")
    per_point = run_counting_compilations(jxe.load_sweep(path), directory, io.StringIO())
    assert per_point[0].count("jit(advance)") == 1 and per_point[1] == []
    frame = jxe.load_results(directory)
    # Exact quadrature for Meng's D(θ); 211 particles: within 5 SE (dt bias < 1%).
    assert frame["exact_mfpt"].notna().all() and frame["kramers_time"].isna().all()
    assert (frame["deviation_in_standard_errors"].abs() < 5).all(), frame
    assert frame["mfpt"][1] < frame["mfpt"][0]  # κ > 0: more noise above the minimum
    report = (tmp_path / "run" / "report.md").read_text()  # the declared fit, no verdict
    assert "| kappa | 2 | `log(mfpt)` against `dynamics.kappa` | " in report
    assert "| -2 | n/a |" in report and "figures/fit_kappa.png" in report


@pytest.mark.parametrize(
    "fit, message",
    [
        ({"x": "`dynamics.kappa`"}, "fits[0].name must be a new name"),
        ({"name": "a", "x": "`dynamics.kapa`"}, "fits[0].x = '`dynamics.kapa`' cannot be"),
        ({"name": "a", "x": 3}, "fits[0].x must be an expression"),
        ({"name": "a", "x": "`dt`", "where": {"dynamics.kappa": 0.5}},
         "fits[0].where selects 1 points"),
        ({"name": "a", "x": "`dt`", "tolerance": -1}, "fits[0].tolerance must be a number > 0"),
        ({"name": "a", "x": "`dt`", "slope": 1}, "unknown key 'slope' in fits[0]"),
    ],
)
def test_bad_fits_name_the_field(tmp_path, fit, message):
    path = tmp_path / "meng.toml"
    path.write_text(MENG.split("[[fits]]")[0])
    sweep = jxe.load_sweep(path)
    with pytest.raises(ConfigError) as error:
        jxe.Sweep(parameters=sweep.parameters, grid=sweep.grid, fits=[fit])
    assert message in str(error.value)


@pytest.mark.slow
def test_meng_reproduction_as_a_declared_experiment(tmp_path, capsys):
    """examples/meng_reproduction.toml (the default size of `reproduce meng`, ~30 s): the three
    declared fits pass, and `jaxescape report` rebuilds the same report."""
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / "meng_reproduction.toml"
    output = tmp_path / "meng"
    assert main(["sweep", str(example), "--output", str(output), "--no-progress"]) == 0
    report = (output / "report.md").read_text()
    assert report.count("| pass (within") == 3, report
    assert main(["report", str(output)]) == 0
    assert (output / "report.md").read_text() == report


@pytest.mark.slow
def test_mixed_points_user_sde_and_real_sgd(tmp_path, user_module):
    """One sweep of two kinds of points: a user landscape with a user GeneralSDE (exact
    reference from the quadrature), and real SGD on linear regression leaving a loss level
    (~20 s: two compilations)."""
    sgd = {"model": {"name": "linear-regression", "dim": 2},
           "data": {"name": "gaussian-regression", "num_samples": 64, "dim": 2, "seed": 1},
           "dynamics": {"name": "sgd", "batch_size": 8, "learning_rate": 0.4},
           "optimizer": {"name": "sgd", "momentum": 0.5},
           "criterion": {"name": "loss-above", "factor": 1.3}}
    user = {"landscape": {"name": f"{user_module}:quartic", "depth": 0.5, "width": 1.0},
            "dynamics": {"name": f"{user_module}:white_noise", "temperature": 0.25},
            "dt": 0.01}
    sweep = jxe.Sweep(parameters={"particles": 150, "max_steps": 20_000},
                      points=[user, sgd], name="mixed")
    directory = jxe.run_sweep(sweep, str(tmp_path / "run"), progress=False,
                              stream=io.StringIO())
    frame = jxe.load_results(directory)
    assert frame["landscape"][0] == f"{user_module}:quartic" and frame["landscape"].isna()[1]
    assert abs(frame["deviation_in_standard_errors"][0]) < 5, frame.iloc[0]
    assert frame["num_escaped"][1] == 150 and frame["exact_mfpt"].isna()[1]
    times = jxe.load_escape_times(directory, 1)
    assert times["dt"] == 1.0  # SGD: times in iterations
    assert times["escape_time"].mean() == pytest.approx(frame["mfpt"][1], rel=1e-12)


LANGEVIN = {"landscape": {"name": "double-well", "barrier_height": 1.0, "curvature": 4.0},
            "dynamics": {"name": "langevin", "temperature": 0.5}, "particles": 10}


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"dynamics": "mengg"}, "unknown dynamics 'mengg'; did you mean 'meng'?"),
        ({"dynamics": {"name": "meng", "learning_rate": 0.1, "sigma": 1.0, "kapa": 1.0}},
         "unknown option dynamics.kapa of 'meng'; did you mean dynamics.kappa?"),
        ({"dynamics": {"name": "meng", "learning_rate": 0.1, "sigma": 1.0}},
         "dynamics 'meng' needs the option dynamics.kappa"),
        ({"dynamics": "no_such_module:f"}, "dynamics 'no_such_module:f' cannot be imported"),
        ({"temperature": 0.5}, "temperature belongs to the Kramers sweep"),
        ({"landscape": None}, "landscape is required"),
        ({"start": "origin"}, "start must be one of 'minimum', 'initial', 'gd-minimum'"),
        ({"criterion": {"name": "loss-above", "factor": 2.0, "level": 1}},
         "unknown option criterion.level"),
        ({"optimizer": "adamm", "dynamics": "sgd"}, "optimizer must be the name of an optax"),
    ],
)
def test_bad_components_name_the_field(parameters, message):
    values = {key: value for key, value in {**LANGEVIN, **parameters}.items()
              if value is not None}
    with pytest.raises(ConfigError) as error:
        make_sweep({"parameters": values})
    assert message in str(error.value)


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"start": [3.0]}, "start is outside the escape criterion 'past-saddle'"),
        ({"start": [0.0, 1.0]}, "start must have 1 coordinates"),
        ({"dynamics": {"name": "langevin", "temperature": -0.5}}, "temperature"),
        ({"landscape": None, "dynamics": {"name": "sgd", "batch_size": 4, "learning_rate": 0.1},
          "model": {"name": "linear-regression", "dim": 3},
          "data": {"name": "gaussian-regression", "num_samples": 16, "dim": 2}},
         "model 'linear-regression' does not fit data 'gaussian-regression'"),
    ],
)
def test_bad_points_are_named_before_anything_is_simulated(parameters, message, monkeypatch):
    monkeypatch.setattr(sweep_run, "simulate", None)  # any simulation would fail
    values = {key: value for key, value in {**LANGEVIN, **parameters}.items()
              if value is not None}
    with pytest.raises(ConfigError) as error:
        sweep_run.plan_points(make_sweep({"parameters": values}))
    assert str(error.value).startswith("point 0 (single point): ") and message in str(error.value)


def test_cli_dry_run_of_a_component_sweep(tmp_path, user_module):
    path = tmp_path / "user.toml"
    path.write_text(textwrap.dedent(f"""
        [parameters]
        landscape = {{name = "{user_module}:quartic", depth = 0.5, width = 1.0}}
        dynamics = {{name = "xie", learning_rate = 0.1, batch_size = 4}}
        criterion = {{name = "outside-ball", radius = 0.5}}
        particles = 100
        [grid]
        "dynamics.batch_size" = [4, 8]
    """))
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert main(["sweep", str(path), "--dry-run"]) == 0
    text = stdout.getvalue()
    assert "point 1: dynamics.batch_size=8; exact MFPT none" in text
    assert "direct sweep of 2 points" in text


@pytest.mark.parametrize("name, size", [
    pytest.param("meng_barrier", 5, marks=pytest.mark.slow),  # five quadratures: ~10 s
    ("sgd_eta_batch", 6),
])
def test_example_component_sweeps_are_valid(name, size):
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / f"{name}.toml"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert main(["sweep", str(example), "--dry-run"]) == 0
    assert f"{size} points into runs/{name.replace('_', '-')} (dry run" in stdout.getvalue()
