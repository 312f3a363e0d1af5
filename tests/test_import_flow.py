"""The imports follow the flow: no evalkit module imports, directly or through others, one that imports it.

Two graphs: the imports that run when a module loads, which must have no cycle at all, and those
plus the imports deferred into functions, which are arrows of the design all the same (a deferred
import hides a cycle from Python, not from a reader). `if TYPE_CHECKING:` blocks are left out of
both. Importing `a.b.c` also runs `a/__init__.py`; that implicit arrow to a parent package is left
out, so a package's `__init__` may re-export its modules as long as none of them imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import evalkit

ROOT = Path(evalkit.__file__).parent

# Known deferred back-arrows, each (importer, imported); a test fails once one is gone, so the list
# only shrinks. None are left.
ALLOWED_DEFERRED: set[tuple[str, str]] = set()


def _module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: list[ast.stmt], *, deferred: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module loads (top level, and inside if/try/with/class bodies);
    with `deferred`, also those inside functions. Never those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                found += _imports(node.body, deferred=deferred)
            found += _imports(node.orelse, deferred=deferred)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _imports(block, deferred=deferred)
        elif (
            isinstance(node, ast.With | ast.ClassDef | ast.For | ast.While)
            or deferred
            and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ):
            found += _imports(node.body, deferred=deferred)
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in known:
            found.add(sub)  # `from pkg import module` loads that module
        elif base in known:
            found.add(base)
    return found


def import_graph(*, deferred: bool = False) -> dict[str, set[str]]:
    """Module → the evalkit modules it imports when it loads (with `deferred`: or when it runs)."""
    names = _module_names()
    known = set(names)
    graph = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in _imports(tree.body, deferred=deferred):
            edges |= _targets(node, name, is_package, known)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_when_modules_load() -> None:
    assert cycles(import_graph()) == []


def test_no_import_cycles_counting_deferred_imports_but_the_known_ones() -> None:
    graph = import_graph(deferred=True)
    for importer, imported in ALLOWED_DEFERRED:
        graph[importer].discard(imported)
    assert cycles(graph) == []


def test_every_allowed_back_arrow_still_exists() -> None:
    graph = import_graph(deferred=True)
    gone = sorted(edge for edge in ALLOWED_DEFERRED if edge[1] not in graph.get(edge[0], set()))
    assert gone == [], f"no longer imported, remove from ALLOWED_DEFERRED: {gone}"


def test_the_checker_sees_a_cycle_and_skips_type_checking_blocks() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import x\nelse:\n    import y\n"
        "import z\n"
        "def f():\n    import w\n"
    )
    body = ast.parse(source).body

    def names(nodes: list[ast.Import | ast.ImportFrom]) -> list[str]:
        return [a.name for node in nodes for a in node.names]

    assert names(_imports(body)) == ["TYPE_CHECKING", "y", "z"]
    assert names(_imports(body, deferred=True)) == ["TYPE_CHECKING", "y", "z", "w"]


def test_the_client_package_flows_one_way() -> None:
    """errors → dialect → endpoint → failures → sse → call → catalog, counting deferred imports:
    the dialect reads router answers and imports neither the call nor the catalog."""
    order = ["errors", "dialect", "endpoint", "failures", "sse", "call", "catalog"]
    rank = {f"evalkit.client.{name}": i for i, name in enumerate(order)}

    def rank_of(module: str) -> int | None:
        for prefix, i in rank.items():
            if module == prefix or module.startswith(prefix + "."):
                return i
        return None

    against = []
    for module, edges in import_graph(deferred=True).items():
        here = rank_of(module)
        for target in edges:
            there = rank_of(target)
            if here is not None and there is not None and there > here:
                against.append((module, target))
            if here is not None and target == "evalkit.client":
                against.append((module, target))
    assert against == []


def test_the_client_packages_names_resolve_and_load_only_what_is_asked() -> None:
    import subprocess
    import sys

    import evalkit.client

    for name in evalkit.client.__all__:
        assert getattr(evalkit.client, name) is not None, name
    probe = (
        "import sys, evalkit.client.errors, evalkit.client.tokens;"
        "print(sorted(m for m in ('evalkit.client.call', 'evalkit.client.catalog', 'openai') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


# The layers of DESIGN.md's "Flow" table, lowest first: a module imports only from its own layer or
# a lower one, deferred imports included. The longest matching prefix gives a module its layer.
LAYERS: dict[str, int] = {
    "evalkit.common": 1,
    "evalkit.client": 2,
    "evalkit.task.sample": 3,
    "evalkit.task.targets": 3,
    "evalkit.task.languages": 3,
    "evalkit.sources": 4,
    "evalkit.scorers": 4,
    "evalkit.sandbox": 4,
    "evalkit.visual": 4,
    "evalkit.task": 5,
    "evalkit.sim": 6,
    "evalkit.client.endpoints": 7,
    "evalkit.runner": 8,
    "evalkit.results": 9,
    "evalkit.stats": 9,
    "evalkit.audit": 9,
    "evalkit.plots": 9,
    "evalkit.report": 9,
    "evalkit.widgets": 9,
    "evalkit.runner.api": 10,
    "evalkit.runner.rescore": 10,
    "evalkit.runner.merge": 10,
    "evalkit.cli": 11,
    "evalkit.doctor": 11,
    "evalkit": 12,
}


def layer_of(module: str) -> int:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(prefixes, key=len)]


def imports_against_the_layers(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module) and not module.startswith(target + ".")
    )


def test_every_import_goes_down_the_layers_of_the_design() -> None:
    assert imports_against_the_layers(import_graph(deferred=True)) == []


def test_the_layer_check_sees_an_import_that_goes_up() -> None:
    graph = {
        "evalkit.client.tokens": {"evalkit.task.render"},
        "evalkit.task.render": {"evalkit.client.tokens"},
    }
    assert imports_against_the_layers(graph) == [("evalkit.client.tokens", "evalkit.task.render")]
    assert layer_of("evalkit.runner.api") > layer_of("evalkit.results") > layer_of("evalkit.runner.scheduler")
