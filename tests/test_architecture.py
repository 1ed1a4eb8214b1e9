"""The package's folders are its layers: imports only go down, nothing imports in a circle, modules stay small.

A static scan (ast) of every module under include/vlmevals, function-level imports included; imports under
`if TYPE_CHECKING:` are left out because they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "include" / "vlmevals"
MAX_MODULE_LINES = 300

# Rank of each top-level subpackage: a module may import its own subpackage or one of a lower rank.
LAYERS = {
    "core": 0,
    "db": 1,
    "toolkit": 2,
    "gpu": 3,
    "catalogue": 4,
    "runs": 5,
    "results": 6,
    "nightly": 7,
    "backfill": 7,
    "exports": 7,
    "pipeline": 8,
    "api": 8,
    "devtools": 9,
    "cli": 10,
    "cli_datasets": 9,  # the `vlmevals datasets` sub-commands, hooked into cli
    "cli_enrolments": 9,  # `vlmevals enrol / unenrol / enrolments`, hooked into cli
    "cli_exports": 9,  # `vlmevals exports list / retry / deliver`, hooked into cli
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str) -> set[str]:
    """The package modules `name` imports (a `from a.b import c` names module a.b.c when it is one)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t.startswith("vlmevals") and t != name:
                found.add(t)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_subpackage_has_a_layer() -> None:
    assert {layer_of(m) for m in MODULES} - {None} <= set(LAYERS)


def test_imports_only_go_down_the_layers() -> None:
    bad = []
    for mod, deps in GRAPH.items():
        src = layer_of(mod)
        for dep in deps:
            dst = layer_of(dep)
            if src and dst and src != dst and LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{mod} imports {dep} ({src} may not import {dst})")
    assert not bad, "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle found by a depth-first walk, each as the path that closes it."""
    done: set[str] = set()
    found: list[list[str]] = []

    def walk(v: str, path: list[str]) -> None:
        for w in sorted(graph.get(v, ())):
            if w in path:
                found.append([*path[path.index(w) :], w])
            elif w not in done:
                walk(w, [*path, w])
        done.add(v)

    for v in sorted(graph):
        if v not in done:
            walk(v, [v])
    return found


def test_no_import_circles() -> None:
    assert _cycles(GRAPH) == []


def test_the_scan_sees_circles_and_function_level_imports() -> None:
    """The checker itself: a circle through a function-level import is found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"]]
    tree = ast.parse("def f():\n    from vlmevals.db import engine\nif TYPE_CHECKING:\n    import vlmevals.api\n")
    names = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in _import_nodes(tree)]
    assert names == ["vlmevals.db"]


def test_workers_do_not_import_the_dev_tooling() -> None:
    users = sorted(m for m, deps in GRAPH.items() if any(layer_of(d) == "devtools" for d in deps))
    assert all(layer_of(m) in ("devtools", "cli") for m in users), users


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name: str) -> None:
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines (limit {MAX_MODULE_LINES}): split it"
