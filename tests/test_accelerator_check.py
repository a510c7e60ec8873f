"""benchmarks/accelerator_check.py at its --smoke sizes on the CPU: every section runs and is
recorded with finite figures, the agreement with the stored CPU reference is computed, and one
failing section does not lose the others."""

import importlib
import json
import math
import pathlib
import subprocess
import sys

import pytest


BENCHMARKS = pathlib.Path(__file__).parent.parent / "benchmarks"
SECTIONS = ("noise_bits", "engine_1d", "engine_10d", "escape_times", "noise_models", "sgd",
            "network_sgd", "splitting", "default_experiment", "pool_sizes", "network_breakdown",
            "pool_loop", "step_blocks", "fixed_costs", "pool_invariance", "small_runs",
            "host_copies", "memory_traffic", "compiled_programs")


def finite_numbers(value):
    """Every number in a nested record (booleans left out)."""
    if isinstance(value, dict):
        return [x for item in value.values() for x in finite_numbers(item)]
    if isinstance(value, list):
        return [x for item in value for x in finite_numbers(item)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def test_smoke_run_records_every_section_with_finite_figures(tmp_path):
    subprocess.run([sys.executable, str(BENCHMARKS / "accelerator_check.py"), "--smoke",
                    "--output", str(tmp_path)], check=True, capture_output=True, timeout=900)
    record = json.loads((tmp_path / "accelerator_check-smoke-cpu.json").read_text())
    table = (tmp_path / "accelerator_check-smoke-cpu.md").read_text()
    assert record["environment"]["platform"] == "cpu" and record["environment"]["jax"]
    assert list(record["sections"]) == list(SECTIONS)
    for name, section in record["sections"].items():
        assert section["status"] == "ok", (name, section.get("traceback"))
        assert section["figures"], name
        assert all(math.isfinite(x) for x in finite_numbers(section["figures"])), name
        assert f"| {name} | ok |" in table
    # The Threefry words and the uniforms made from them are integer and exact operations:
    # identical to the stored CPU reference on any backend.
    identical = record["sections"]["noise_bits"]["agreement"]["identical"]
    assert identical["threefry_words"] and identical["uniforms"]
    # The smoke sizes have a stored CPU reference: every estimate is compared with it.
    compared = [row for section in record["sections"].values()
                for row in section.get("agreement", {}).values()
                if isinstance(row, dict) and "z" in row]
    assert len(compared) == 1 + 3 + 1 + 1 + 4  # escapes, noise models, sgd, splitting, levels
    assert all(abs(row["z"]) <= 1 for row in compared)
    engine = record["sections"]["engine_1d"]
    assert all(row["jaxescape"]["particle_steps"] == row["particles"] * record["sizes"]["steps"]
               for row in engine["rows"])


def test_a_failing_section_is_recorded_and_the_others_kept(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    check = importlib.import_module("accelerator_check")

    def broken(sizes, clock):
        raise FloatingPointError("planted")

    monkeypatch.setitem(check.SECTIONS, "engine_10d", broken)
    check.main(["--smoke", "--only", "engine_10d,noise_bits", "--output", str(tmp_path)])
    record = json.loads((tmp_path / "accelerator_check-smoke-cpu.json").read_text())
    assert record["sections"]["engine_10d"]["status"] == "error"
    assert "FloatingPointError: planted" in record["sections"]["engine_10d"]["error"]
    assert record["sections"]["noise_bits"]["status"] == "ok"
    assert "| engine_10d | error: FloatingPointError: planted |" in (
        tmp_path / "accelerator_check-smoke-cpu.md").read_text()
    with pytest.raises(SystemExit):
        check.main(["--smoke", "--only", "no_such_section", "--output", str(tmp_path)])
