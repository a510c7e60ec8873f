"""The README's Quickstart and CI's script must not drift apart."""

import pathlib
import re


ROOT = pathlib.Path(__file__).resolve().parents[1]


def quickstart_lines():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_has_exactly_two_command_lines():
    lines = quickstart_lines()
    assert len(lines) == 2, lines
    assert "jaxescape run" in lines[0]
    assert "pytest" in lines[1]


def test_ci_runs_the_readme_test_line():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quickstart_lines()[1] in ci

