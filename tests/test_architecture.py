"""The import rules of docs/ARCHITECTURE.md, checked on the source with `ast` (nothing imported).

1. Imports go one way: a module imports only from its own layer or the layers below it, and
   a family only from the layers its `__init__` names.
2. No import cycle between modules (imports inside functions count too).
3. No module imports another module's `_private` names (private modules, `from .. import _noise`,
   are fine: their public names are the module's surface).
There are no exceptions.
"""

import ast
import collections
import pathlib

import pytest


ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxescape"

# The layers, low to high. Modules at the top of jaxescape/ whose names start with "_" are the
# core (layer 0); each family folder is one layer; cli, theories, __init__ and __main__ are the
# top. A module may import from its own layer and from lower ones.
FAMILIES = ["_dynamics", "_theory", "_sgd", "_engine", "_splitting", "_experiments",
            "_reproductions"]
TOP = len(FAMILIES) + 1
# Within that order, what each family's `__init__` says it may import (besides itself); the
# families not named here may import every lower layer.
MAY_IMPORT = {
    "core": set(),
    "_dynamics": {"core"},
    "_theory": {"core", "_dynamics"},
    "_sgd": {"core", "_dynamics"},
    "_engine": {"core"},
    "_splitting": {"core", "_engine"},
}

# Known exceptions (none left; an entry may only be added with a reason): import cycles, as the
# set of modules of each cycle, and (importing module, imported module, private name).
ALLOWED_CYCLES: set[frozenset] = set()
ALLOWED_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module):
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in {"cli", "theories", "__main__"}:
        return TOP
    if parts[1] in FAMILIES:
        return 1 + FAMILIES.index(parts[1])
    if len(parts) == 2 and parts[1].startswith("_") and module in MODULES:
        return 0
    raise AssertionError(f"{module} belongs to no layer: add its folder to FAMILIES")


def _family(module):
    layer = _layer(module)
    return "core" if layer == 0 else "top" if layer == TOP else FAMILIES[layer - 1]


def _imports():
    """(importing module, imported module, name or None, line) for every jaxescape import."""
    found = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(module, alias.name, None, node.lineno) for alias in node.names
                          if alias.name.split(".")[0] == "jaxescape"]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "jaxescape":
                    continue
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    if submodule in MODULES:
                        found.append((module, submodule, None, node.lineno))
                    else:
                        found.append((module, target, alias.name, node.lineno))
    return found


IMPORTS = _imports()


def test_every_module_has_a_layer_and_the_families_exist():
    for module in MODULES:
        _layer(module)
    assert all((PACKAGE / family / "__init__.py").is_file() for family in FAMILIES)


def test_imports_go_one_way():
    wrong = [f"{module}:{line} imports {target} (layer {_layer(target)} > {_layer(module)})"
             for module, target, _, line in IMPORTS if _layer(target) > _layer(module)]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_families_import_only_what_their_init_allows():
    wrong = [f"{module}:{line} imports {target}" for module, target, _, line in IMPORTS
             if _family(module) in MAY_IMPORT and _family(target) != _family(module)
             and _family(target) not in MAY_IMPORT[_family(module)]]
    assert not wrong, "imports a family's __init__ does not allow:\n" + "\n".join(wrong)


def _cycles(edges):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in edges[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                components.append(frozenset(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycle():
    edges = collections.defaultdict(set)
    for module, target, _, _ in IMPORTS:
        if target in MODULES and target != module:
            edges[module].add(target)
    for module in MODULES:
        edges[module]
    cycles = set(_cycles(edges))
    new = [sorted(cycle) for cycle in cycles - ALLOWED_CYCLES]
    assert not new, f"import cycles: {new}"


def test_no_private_names_imported_across_modules():
    private = {(module, target, name) for module, target, name, _ in IMPORTS
               if name and name.startswith("_") and not name.startswith("__")}
    new = sorted(private - ALLOWED_PRIVATE_IMPORTS)
    assert not new, "private names imported from another module:\n" + "\n".join(map(str, new))


@pytest.mark.parametrize("source, expected", [
    ("from .._engine import simulate", ("jaxescape._engine", "simulate")),
    ("from . import kernel", ("jaxescape._splitting.kernel", None)),
    ("from .kernel import _advance", ("jaxescape._splitting.kernel", "_advance")),
])
def test_relative_imports_are_resolved(tmp_path, monkeypatch, source, expected):
    path = PACKAGE / "_splitting" / "estimator.py"
    monkeypatch.setitem(MODULES, "jaxescape._splitting.estimator", tmp_path / "estimator.py")
    (tmp_path / "estimator.py").write_text(source)
    module = "jaxescape._splitting.estimator"
    found = [(target, name) for importer, target, name, _ in _imports() if importer == module]
    assert path.is_file() and found == [expected]
