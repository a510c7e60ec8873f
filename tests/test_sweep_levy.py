"""Sweeps of α-stable driven points (`dynamics = {name = "levy", ...}`), α swept like any
other option, against the exact discretised chain (jaxescape/_experiments/components.py)."""

import io

import jaxescape as jxe
from jaxescape._experiments.sweep import sweep_to_toml
from test_sweep_run import run_counting_compilations

LEVY = """
name = "levy-alpha"
[parameters]
landscape = {name = "double-well", barrier_height = 1.0, curvature = 4.0}
dynamics = {name = "levy", epsilon = 0.5}
criterion = {name = "outside-ball", radius = 0.4}
particles = 400
dt = 0.01
max_steps = 20_000
[grid]
"dynamics.alpha" = [1.2, 1.8]
"""


def test_levy_points_with_alpha_swept_match_the_exact_chain(tmp_path):
    path = tmp_path / "levy.toml"
    path.write_text(LEVY)
    sweep = jxe.load_sweep(path)
    in_python = jxe.Sweep(
        parameters={"landscape": {"name": "double-well", "barrier_height": 1.0,
                                  "curvature": 4.0},
                    "dynamics": {"name": "levy", "epsilon": 0.5},
                    "criterion": {"name": "outside-ball", "radius": 0.4},
                    "particles": 400, "dt": 0.01, "max_steps": 20_000},
        grid={"dynamics.alpha": [1.2, 1.8]}, name="levy-alpha")
    assert sweep_to_toml(in_python) == sweep_to_toml(sweep)
    directory = str(tmp_path / "run")
    per_point = run_counting_compilations(sweep, directory, io.StringIO())
    assert per_point[0].count("jit(advance)") == 1 and per_point[1] == []  # α is an array
    frame = jxe.load_results(directory)
    assert list(frame["dynamics.alpha"]) == [1.2, 1.8]
    assert (frame["num_escaped"] == 400).all()
    # The exact mean exit time of the chain (Nyström) for the interval minimum ± 0.4 in 1-D;
    # 400 particles: within 4 SE (measured -0.10 and +1.41 SE).
    assert frame["exact_mfpt"].notna().all() and frame["kramers_time"].isna().all()
    assert (frame["deviation_in_standard_errors"].abs() < 4).all(), frame
    # Heavier tails leave sooner here, and the exact chain says by how much.
    assert frame["exact_mfpt"][0] != frame["exact_mfpt"][1]


def test_levy_without_an_interval_has_no_exact_reference(tmp_path):
    """A half-space exit or a Gaussian part: no exact chain (None), the run still goes."""
    sweep = jxe.Sweep(parameters={
        "landscape": {"name": "double-well", "barrier_height": 1.0, "curvature": 4.0},
        "dynamics": {"name": "levy", "alpha": 1.5, "epsilon": 0.5, "temperature": 0.1},
        "criterion": {"name": "outside-ball", "radius": 0.4}, "particles": 50, "dt": 0.01,
        "max_steps": 20_000}, name="levy-gaussian-part")
    frame = jxe.load_results(jxe.run_sweep(sweep, str(tmp_path / "run"), progress=False,
                                           stream=io.StringIO()))
    assert frame["exact_mfpt"].isna().all() and frame["num_escaped"][0] == 50
