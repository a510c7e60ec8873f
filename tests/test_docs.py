"""Every file, section and module that the code and the docs cite exists in the repository.

Also: docstrings use Markdown sections (**Arguments:**), not Google-style ones (`Args:`).

Scanned: the package's modules, docs/, benchmarks/*.md, tests/, README.md and the notebooks'
cells. A citation is
- a path under one of the repository's top-level folders (`docs/THEORY.md`, `tests/x.py::name`,
  `benchmarks/README.md`), or a relative path (`../tests/MEASURED_BIAS.md`);
- a bare Markdown file name with a capital (`THEORY.md`), resolved next to the citing file or at the root;
- a bare Python file name (`peers.py`, `_reproduce_*.py`), which must name a file somewhere in
  the repository;
- a section `NAME.md §N` (also `§N–M`, `§N, §M`, `§§N–M`), whose number must head a section of
  that file (`## N.` or `### N.M`);
- a dotted name `jaxescape.a.b` or `jxe.name` in backquotes, which must import.
"""

import ast
import importlib
import json
import pathlib
import re

import pytest


ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxescape"
TOP_LEVEL = {path.name for path in ROOT.iterdir() if not path.name.startswith(".git")}

PATH = re.compile(r"(?<![\w./*-])((?:\.\./)*(?:[\w.*-]+/)*[\w*-][\w.*-]*\.(?:py|md|ipynb|toml))(?![\w/])")
SECTION = re.compile(
    r"((?:\.\./)*(?:[\w.-]+/)*[\w-]+\.md)`?\)?,?\s+§§?\s*"
    r"(\d+(?:\.\d+)*(?:\s*(?:[–/-]|,|and)\s*§?\s*\d+(?:\.\d+)*)*)")
HEADING = re.compile(r"^#{1,6}\s+(?:§\s*)?(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
MODULE = re.compile(r"`(jaxescape(?:\.\w+)+)(?![\w*])")
PUBLIC = re.compile(r"`jxe\.(\w+)")  # import jaxescape as jxe


def _documents():
    """(relative path, text) of every scanned file; notebooks contribute their cells' sources."""
    paths = [*sorted((ROOT / "jaxescape").rglob("*.py")), *sorted((ROOT / "docs").rglob("*.md")),
             *sorted((ROOT / "benchmarks").glob("*.md")), *sorted((ROOT / "tests").glob("*.py")),
             *sorted((ROOT / "tests").glob("*.md")), ROOT / "README.md"]
    documents = [(path, path.read_text()) for path in paths if path.name != "test_docs.py"]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        documents.append((notebook, "\n".join("".join(cell["source"]) for cell in cells)))
    return documents


DOCUMENTS = _documents()
ALL_FILES = [path for path in ROOT.rglob("*") if path.is_file() and ".git" not in path.parts]


def _resolve(citation, citing):
    """The cited file, or None."""
    first = citation.split("/")[0]
    candidates = [citing.parent / citation]
    if first in TOP_LEVEL or "/" not in citation:
        candidates.append(ROOT / citation)
    for candidate in candidates:
        if "*" in citation:
            if list(candidate.parent.glob(candidate.name)):
                return candidate
        elif candidate.resolve().is_file():
            return candidate.resolve()
    return None


def _is_repository_path(citation):
    if citation.startswith("../"):
        return True
    if "/" in citation:
        return citation.split("/")[0] in TOP_LEVEL
    # Bare names: Python modules, and the repository's Markdown documents (upper-case names;
    # lower-case ones like results.md are files a run writes).
    return citation.endswith(".py") or (citation.endswith(".md") and citation[0].isupper())


def _missing_path(citation, citing):
    if "/" not in citation and citation.endswith(".py"):
        # A bare module file name: any file of that name (pattern) in the repository.
        if any(path.match(citation) for path in ALL_FILES):
            return False
        return _resolve(citation, citing) is None
    return _resolve(citation, citing) is None


def _cited_paths():
    for path, text in DOCUMENTS:
        for match in PATH.finditer(text):
            citation = match.group(1)
            if _is_repository_path(citation):
                yield path, citation


def _section_numbers(text):
    return set(HEADING.findall(text))


def _cited_sections():
    for path, text in DOCUMENTS:
        for match in SECTION.finditer(text):
            target = _resolve(match.group(1), path)
            numbers = re.findall(r"\d+(?:\.\d+)*", match.group(2))
            yield path, match.group(1), target, numbers


def test_every_cited_file_exists():
    missing = sorted({f"{path.relative_to(ROOT)}: {citation}" for path, citation in _cited_paths()
                      if _missing_path(citation, path)})
    assert not missing, "citations of files that are not in the repository:\n" + "\n".join(missing)


def test_every_cited_section_exists():
    missing = []
    for path, citation, target, numbers in _cited_sections():
        if target is None:
            missing.append(f"{path.relative_to(ROOT)}: {citation} (no such file)")
            continue
        sections = _section_numbers(target.read_text())
        missing += [f"{path.relative_to(ROOT)}: {citation} §{number}" for number in numbers
                    if number.rstrip(".") not in sections]
    assert not missing, "citations of sections that do not exist:\n" + "\n".join(sorted(missing))


def test_theory_notes_are_cited_by_section():
    sections = _section_numbers((ROOT / "docs" / "THEORY.md").read_text())
    assert {"1.4", "1.5", "3.4", "4.4", "5.3", "7.1", "9.2", "11"} <= sections
    cited = {number for _, citation, _, numbers in _cited_sections()
             if citation.endswith("THEORY.md") for number in numbers}
    assert len(cited) >= 20


def _resolves(dotted):
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                value = getattr(value, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_cited_module_imports():
    cited = [(path, dotted) for path, text in DOCUMENTS for dotted in MODULE.findall(text)]
    cited += [(path, f"jaxescape.{name}") for path, text in DOCUMENTS
              for name in PUBLIC.findall(text)]
    missing = sorted({f"{path.relative_to(ROOT)}: {dotted}" for path, dotted in cited
                      if not _resolves(dotted)})
    assert not missing, "cited modules or names that do not import:\n" + "\n".join(missing)


@pytest.mark.parametrize("text, expected", [
    ("see docs/THEORY.md §1.1–1.2, §7.1 and", ["1.1", "1.2", "7.1"]),
    ("(`docs/THEORY.md` §§1–4, 6)", ["1", "4", "6"]),
    ("THEORIES.md §4 item 5", ["4"]),
])
def test_section_citations_are_parsed(text, expected):
    match = SECTION.search(text)
    assert re.findall(r"\d+(?:\.\d+)*", match.group(2)) == expected



GOOGLE_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns|Raises|Attributes|Yields|Examples?):\s*$", re.M)


def test_docstrings_use_markdown_sections():
    # One style, as equinox and diffrax write it: **Arguments:**, **Returns:**, **Raises:**.
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                match = GOOGLE_SECTION.search(ast.get_docstring(node) or "")
                if match:
                    name = getattr(node, "name", "module docstring")
                    wrong.append(f"{path.relative_to(ROOT)}: {name}: {match.group(1)}:")
    assert not wrong, "Google-style sections (use **Arguments:** etc.):\n" + "\n".join(wrong)
