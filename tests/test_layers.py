"""The layers, read from the source: no import cycle between the parts of `huying` (its
packages and top-level modules), and no router importing a repository.

Imports under `if TYPE_CHECKING:` are left out: they name types and never run. Imports
inside functions count: a cycle hidden in a function is still a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "huying"

# The imports between parts that still close a cycle, each owned by another part of issue 10
# (items 1, 2 and 4). The list may only shrink: an edge on a cycle that is not listed fails,
# and so does a listed one that no longer closes one (delete its line then).
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}

# Routers (and the console's routes) that still import a repository, owned by others.
KNOWN_ROUTER_REPOSITORIES: dict[str, str] = {}


def _part(module: str) -> str | None:
    """`huying.requests.service` -> `requests`; None for modules outside huying."""
    names = module.split(".")
    if names[0] != "huying" or len(names) < 2:
        return None
    return names[1]


def _module_name(path: Path) -> str:
    relative = path.relative_to(SRC.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The modules a file imports at run time (absolute names)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (
                name for child in node.orelse for name in _imports(child, module, is_package)
            )
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)
        yield from _imports(node, module, is_package)


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(imports between parts, modules each module imports)."""
    parts: dict[str, set[str]] = {}
    modules: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported = set(_imports(tree, module, path.name == "__init__.py"))
        modules[module] = imported
        source = _part(module)
        if source is None:
            continue
        for name in imported:
            target = _part(name)
            if target is not None and target != source:
                parts.setdefault(source, set()).add(target)
    return parts, modules


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _cycle_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Every import a -> b between parts where b also reaches a: the edges of all cycles."""
    return {(a, b) for a in graph for b in graph[a] if a in _reach(graph, b)}


def test_the_walk_sees_the_tree() -> None:
    parts, modules = _graph()
    assert "huying.requests.service" in modules
    assert "deadlines" in parts.get("requests", set())


def test_no_import_cycle_between_parts_except_the_known_ones() -> None:
    parts, _ = _graph()
    edges = _cycle_edges(parts)
    assert sorted(edges - KNOWN_CYCLE_EDGES.keys()) == [], "new import cycle(s)"
    assert sorted(KNOWN_CYCLE_EDGES.keys() - edges) == [], "gone: remove from KNOWN_CYCLE_EDGES"


def _repositories_in(source: str) -> set[str]:
    """The repositories a router written as `source` would be caught importing."""
    tree = ast.parse(source)
    return {
        name for name in _imports(tree, "huying.web.routes", False) if name.endswith(".repository")
    }


def test_the_router_check_sees_every_way_of_importing_a_repository() -> None:
    for source in (
        "from huying.directory import repository as directory",
        "from huying.directory import repository",
        "import huying.directory.repository",
        "import huying.directory.repository as directory",
        "from huying.directory.repository import category",
        "def f():\n    from huying.directory import repository as directory",
        "from ..directory import repository",
    ):
        assert _repositories_in(source) == {"huying.directory.repository"}, source
    assert _repositories_in("from huying.directory import service as directory") == set()


def test_routers_do_not_import_repositories() -> None:
    _, modules = _graph()
    offenders = {
        f"{module} imports {name}"
        for module, imported in modules.items()
        if module.endswith(".router") or module.startswith("huying.web.routes")
        for name in imported
        if name.endswith(".repository")
    }
    assert sorted(offenders - KNOWN_ROUTER_REPOSITORIES.keys()) == []
    assert sorted(KNOWN_ROUTER_REPOSITORIES.keys() - offenders) == [], "gone: remove it"
