"""The package layering (CONTRIBUTING.md), read from the source: the pure core imports
nothing from the shell, and no two modules import each other, lazily or not."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "ackwatch"
SHELL_PACKAGES = ("ackwatch.mail", "ackwatch.store", "ackwatch.daemon", "ackwatch.reporting",
                  "ackwatch.web")
SHELL_MODULES = ("ackwatch.cli", "ackwatch.credentials", "ackwatch.logs", "ackwatch.private",
                 "ackwatch.demo", "ackwatch.oauth2")


def module_names() -> dict[str, Path]:
    names = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``: they never run."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for stmt in node.body
        for inner in ast.walk(stmt)
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every ackwatch module `name` imports when it runs, at the top or in a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_core_imports_nothing_from_the_shell():
    graph = import_graph()
    shell = SHELL_PACKAGES + SHELL_MODULES
    offending = {
        name: sorted(d for d in deps if d.startswith(shell))
        for name, deps in graph.items() if name.startswith("ackwatch.core")
    }
    assert {n: d for n, d in offending.items() if d} == {}


def test_the_config_imports_nothing_but_itself():
    graph = import_graph()
    outside = {
        name: sorted(d for d in deps if not d.startswith("ackwatch.config"))
        for name, deps in graph.items() if name.startswith("ackwatch.config")
    }
    assert {n: d for n, d in outside.items() if d} == {}


def test_no_import_cycles_anywhere():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
