"""The import graph of ``evaluator`` and ``leaderboards`` has no cycles.

Every import counts as an arrow, wherever it is written: at module level, under
``if TYPE_CHECKING:``, or inside a function. A function-level import breaks a cycle at run time
only (the module loads), not in the design: the two modules still need each other, and the
circles this test was written against (``metrics._voronoi`` ↔ ``lesion`` ↔ ``surface``,
``simulate.toy`` ↔ ``simulate.plots``) were all held together by deferred imports. A failure
names each cycle with the file, line and kind (module / type-checking / function) of every
import on it.

The graph comes from grimp (the engine of import-linter); the kind of each import from the
module's syntax tree.
"""

from __future__ import annotations

import ast
import importlib.util
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path

import grimp
import pytest

ROOTS = ("evaluator", "leaderboards")
#: Packages whose own modules must not import each other in a circle (the package module
#: ``__init__`` included).
PACKAGES = (
    "evaluator.metrics",
    "evaluator.simulate",
    "evaluator.datasets",
    "evaluator.runner",
    "leaderboards",
)
#: Cycles tolerated for now, as sorted tuples of their modules, each with a comment naming the
#: issue that removes it. Empty: add a cycle here only with a plan to remove it.
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()

Edge = tuple[str, str]


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOTS, cache_dir=None)


@cache
def _import_kinds(module: str) -> dict[int, str]:
    """Line number -> ``"module"``, ``"type-checking"`` or ``"function"`` for each import."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    kinds: dict[int, str] = {}

    def visit(node: ast.AST, kind: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kinds[node.lineno] = kind
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            kind = "function"
        elif isinstance(node, ast.If) and kind == "module" and _is_type_checking(node.test):
            for stmt in node.body:
                visit(stmt, "type-checking")
            for stmt in node.orelse:
                visit(stmt, kind)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, kind)

    visit(ast.parse(Path(spec.origin).read_text(encoding="utf-8")), "module")
    return kinds


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _describe(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    where = []
    for detail in graph.get_import_details(importer=importer, imported=imported):
        line = detail["line_number"]
        kind = _import_kinds(importer).get(line, "?")
        where.append(f"line {line} ({kind}): {detail['line_contents']}")
    return f"{importer} -> {imported}  [{'; '.join(where) or 'no details'}]"


def _edges(graph: grimp.ImportGraph, modules: set[str]) -> set[Edge]:
    return {
        (a, b)
        for a in modules
        for b in graph.find_modules_directly_imported_by(a)
        if b in modules and b != a
    }


def _strongly_connected(modules: set[str], edges: set[Edge]) -> list[list[str]]:
    """Components of two or more modules (Tarjan, iterative)."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(succ[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _one_cycle(component: list[str], edges: set[Edge]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    members = set(component)
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        if a in members and b in members:
            succ[a].append(b)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in succ[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    return [start]


def _cycle_report(graph: grimp.ImportGraph, modules: set[str]) -> str:
    edges = _edges(graph, modules)
    lines = []
    for component in _strongly_connected(modules, edges):
        if tuple(component) in KNOWN_CYCLES:
            continue
        cycle = _one_cycle(component, edges)
        lines.append(
            f"modules in a circle: {', '.join(component)}; one cycle: {' -> '.join(cycle)}"
        )
        lines += [f"    {_describe(graph, a, b)}" for a, b in pairwise(cycle)]
    return "\n".join(lines)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_package(package: str) -> None:
    graph = _graph()
    modules = {package, *graph.find_descendants(package)}
    report = _cycle_report(graph, modules)
    assert not report, f"import cycles in {package}:\n{report}"


def test_no_import_cycle_anywhere() -> None:
    """No cycle among all modules of evaluator and leaderboards, across packages too."""
    graph = _graph()
    report = _cycle_report(graph, set(graph.modules))
    assert not report, f"import cycles:\n{report}"


def test_no_import_cycle_between_packages() -> None:
    """Squashed to the top-level modules and subpackages (``evaluator.metrics``,
    ``evaluator.evaluate``, ``leaderboards.site``...), the graph has no cycle either."""

    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph = _graph()
    by_unit: dict[Edge, list[Edge]] = defaultdict(list)
    for a, b in _edges(graph, set(graph.modules)):
        if top(a) != top(b):
            by_unit[(top(a), top(b))].append((a, b))
    units = {top(m) for m in graph.modules}
    lines = []
    for component in _strongly_connected(units, set(by_unit)):
        cycle = _one_cycle(component, set(by_unit))
        lines.append(f"cycle between {' -> '.join(cycle)}")
        for a, b in pairwise(cycle):
            lines += [f"    {_describe(graph, x, y)}" for x, y in sorted(by_unit[(a, b)])[:3]]
    assert not lines, "import cycles between packages:\n" + "\n".join(lines)


def _probe_graph(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, files: dict[str, str]
) -> grimp.ImportGraph:
    """The import graph of a throw-away package ``name`` holding ``files`` (module -> source)."""
    package = root / name
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for module, source in files.items():
        (package / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(root))
    return grimp.build_graph(name, cache_dir=None)


def test_the_checker_finds_a_cycle_closed_by_a_deferred_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oracle: a throw-away package whose only cycle runs through a function-level import."""
    b = (
        "from typing import TYPE_CHECKING\n"
        "\n"
        "if TYPE_CHECKING:\n"
        "    from ccbench_cycle_probe import c\n"
        "\n"
        "\n"
        "def late():\n"
        "    from ccbench_cycle_probe import a\n"
        "\n"
        "    return a\n"
    )
    files = {"a": "from ccbench_cycle_probe import b\n", "b": b, "c": "X = 1\n"}
    graph = _probe_graph(tmp_path, monkeypatch, "ccbench_cycle_probe", files)
    modules = set(graph.modules)
    report = _cycle_report(graph, modules)
    assert "ccbench_cycle_probe.a -> ccbench_cycle_probe.b -> ccbench_cycle_probe.a" in report
    assert "line 8 (function): from ccbench_cycle_probe import a" in report
    assert _import_kinds("ccbench_cycle_probe.b") == {
        1: "module",
        4: "type-checking",
        8: "function",
    }
    edges = {("m.a", "m.b"), ("m.b", "m.c"), ("m.c", "m.a"), ("m.c", "m.d")}
    (component,) = _strongly_connected({"m.a", "m.b", "m.c", "m.d"}, edges)
    assert component == ["m.a", "m.b", "m.c"]
    assert _one_cycle(component, edges) == ["m.a", "m.b", "m.c", "m.a"]


#: The layers, high to low: a module may import from its own unit and from lower layers only;
#: units that share a layer do not import each other. docs/architecture.md draws this picture.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("evaluator.cli",),
    ("evaluator.demo",),
    ("evaluator.console", "evaluator.server", "leaderboards"),
    ("evaluator.runner", "evaluator.simulate"),
    ("evaluator.learn", "evaluator.prompts"),
    ("evaluator.evaluate",),
    ("evaluator.scoring",),
    ("evaluator.metrics",),
    ("evaluator.datasets", "evaluator.executor", "evaluator.ingest", "evaluator.store"),
    (
        "evaluator.choices",
        "evaluator.processes",
        "evaluator.textsafe",
        "evaluator.typing",
        "evaluator.workspace",
    ),
    ("evaluator.errors",),
)


def _illegal_layer_imports(graph: grimp.ImportGraph, layers: Sequence[Sequence[str]]) -> str:
    found = graph.find_illegal_dependencies_for_layers(
        layers=[grimp.Layer(*layer, independent=True) for layer in layers]
    )
    lines = []
    for dependency in sorted(found, key=lambda d: (d.importer, d.imported)):
        lines.append(f"{dependency.importer} must not import {dependency.imported}:")
        for route in sorted(dependency.routes, key=lambda r: (r.heads, r.tails))[:3]:
            for head in sorted(route.heads):
                for tail in sorted(route.tails):
                    if tail in graph.find_modules_directly_imported_by(head):
                        lines.append(f"    {_describe(graph, head, tail)}")
                    else:
                        lines.append(f"    {head} -> ... -> {tail} (through {route.middle})")
    return "\n".join(lines)


def test_every_module_has_a_layer() -> None:
    def unit(module: str) -> str:
        return (
            "leaderboards" if module.startswith("leaderboards") else ".".join(module.split(".")[:2])
        )

    units = {unit(m) for m in _graph().modules} - {"evaluator"}  # the package module itself
    placed = {u for layer in LAYERS for u in layer}
    assert units == placed, (
        f"without a layer: {sorted(units - placed)}; gone: {sorted(placed - units)}"
    )


def test_imports_point_down_the_layers() -> None:
    report = _illegal_layer_imports(_graph(), LAYERS)
    assert not report, f"imports against the layers (high to low: {LAYERS}):\n{report}"


def test_the_layer_checker_finds_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oracle: ``low`` imports ``high`` inside a function; so do two siblings."""
    files = {
        "high": "from ccbench_layer_probe import low\n",
        "low": "def late():\n    from ccbench_layer_probe import high\n",
        "left": "from ccbench_layer_probe import right\n",
        "right": "X = 1\n",
    }
    graph = _probe_graph(tmp_path, monkeypatch, "ccbench_layer_probe", files)
    layers = (
        ("ccbench_layer_probe.high",),
        ("ccbench_layer_probe.left", "ccbench_layer_probe.right"),
        ("ccbench_layer_probe.low",),
    )
    report = _illegal_layer_imports(graph, layers)
    assert "ccbench_layer_probe.low must not import ccbench_layer_probe.high" in report
    assert "line 2 (function)" in report
    assert "ccbench_layer_probe.left must not import ccbench_layer_probe.right" in report
    fixed = (layers[0], ("ccbench_layer_probe.left",), ("ccbench_layer_probe.right",), layers[2])
    graph = _probe_graph(tmp_path, monkeypatch, "ccbench_layer_probe", {**files, "low": "X = 2\n"})
    assert _illegal_layer_imports(graph, fixed) == ""
