"""The layout keeps data flowing one way: each package imports only the packages below it.

Every import counts, also those inside functions (imported late for speed) and those for
type checking only: a late import is still a dependency, and a cycle in either kind is a
sign that a piece of code sits in the wrong package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HPO = Path(__file__).resolve().parent.parent / "hpo"

# Bottom first: a package may import those before it, never one after it. The base modules
# (errors, types, the options base) are below all of them.
LAYERS = [
    "hpo._base",  # hpo/errors.py, hpo/types.py, hpo/_options.py, hpo/_registry.py
    "hpo.pareto",  # objectives, constraints and the Pareto front: plain Python and numpy
    "hpo.store",  # the results store: knows no other part of hpo
    "hpo.resuming",  # the continuation marker and checkpoint history (also in the workers)
    "hpo.trainable",  # what one trial runs; knows nothing of the search around it
    "hpo.search",  # the space, the searchers, the schedulers
    "hpo.spec",  # the spec: the trainable's sections plus the search's
    "hpo.events",  # the driver's consumers of trial events
    "hpo.results",  # analysis of the store
    "hpo.runner",  # runs a search: the entry points and Ray Tune's Tuner
    "hpo.cli",  # the command line, on top of everything
]
_BASE = {"hpo", "hpo.errors", "hpo.types", "hpo._options", "hpo._registry"}


def _package(module: str) -> str:
    if module in _BASE or module == "hpo.__main__":
        return "hpo._base"
    return ".".join(module.split(".")[:2])


def _module_name(path: Path) -> str:
    parts = path.relative_to(HPO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported hpo module, line) for every import under hpo/."""
    found = []
    for path in sorted(HPO.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found += [(module, t, node.lineno) for t in targets if t.split(".")[0] == "hpo"]
    return found


def test_no_module_imports_the_public_api_or_relatively():
    """`from hpo import run` inside a package would reach every layer through the public API's
    lazy names, and a relative import would hide from the checks above."""
    found = []
    for path in sorted(HPO.rglob("*.py")):
        module = _module_name(path)
        if module in ("hpo", "hpo.__main__"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            relative_or_api = isinstance(node, ast.ImportFrom) and (
                node.level > 0 or node.module == "hpo"
            )
            bare = isinstance(node, ast.Import) and any(a.name == "hpo" for a in node.names)
            if relative_or_api or bare:
                found.append(f"{module} (line {node.lineno})")
    assert not found, "imports of `hpo` itself or relative imports:\n" + "\n".join(found)


def test_every_package_is_in_a_layer():
    packages = {_package(_module_name(p)) for p in HPO.rglob("*.py")}
    assert packages <= set(LAYERS), f"packages missing from LAYERS: {packages - set(LAYERS)}"


def test_packages_import_only_those_below_them():
    rank = {package: n for n, package in enumerate(LAYERS)}
    upward = [
        f"{importer} (line {line}) imports {imported}"
        for importer, imported, line in imports()
        if importer not in ("hpo", "hpo.__main__")  # the public API and `python -m hpo`
        and rank[_package(imported)] > rank[_package(importer)]
    ]
    assert not upward, "imports against the flow:\n" + "\n".join(upward)


def test_no_import_cycles_between_modules():
    """No module reaches itself through imports at module level (eager ones): Python would
    hand one of them a half-initialised module."""
    graph: dict[str, set[str]] = {}
    for path in sorted(HPO.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: late imports cannot form such a cycle
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hpo"):
                graph.setdefault(module, set()).add(node.module)
            elif isinstance(node, ast.Import):
                graph.setdefault(module, set()).update(
                    a.name for a in node.names if a.name.startswith("hpo")
                )
    # A package's __init__ is imported with any of its modules: `hpo.x.y` depends on `hpo.x`.
    for module in list(graph):
        parent = module.rpartition(".")[0]
        if parent.startswith("hpo."):
            graph[module].add(parent)
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in stack:
                cycle = [*stack[stack.index(imported) :], imported]
                # A package importing its own modules, which import it back, is how Python
                # packages work (the package's names are defined by then).
                package = _package(cycle[0])
                if not (package in cycle and all(_package(m) == package for m in cycle)):
                    cycles.append(" -> ".join(cycle))
            elif imported not in done:
                visit(imported, [*stack, imported])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


@pytest.mark.parametrize("package", [p for p in LAYERS if p != "hpo._base"])
def test_each_package_says_what_it_holds(package):
    init = HPO / package.split(".")[1] / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"
