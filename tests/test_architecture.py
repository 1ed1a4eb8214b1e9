"""The package's folders are its layers: imports only go down, nothing imports in a circle, long modules are listed.

A static scan (ast) of every module under include/vlmevals, function-level imports included; imports under
`if TYPE_CHECKING:` are left out of the layer graph because they never run, but not out of the circle check (two
modules that name each other's types belong together) nor out of the Airflow rule: only the Airflow adapter
(`vlmevals.airflow`) and the dev tooling import `airflow` (besides dags/ and plugins/).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "include" / "vlmevals"
# past this a module is listed in a warning, for a look: it is split where its meaning divides, not at a count
MODULE_LINES_WARNING = 400

# Rank of each top-level subpackage: a module may import its own subpackage or one of a lower rank.
LAYERS = {
    "core": 0,
    "db": 1,
    "airflow": 2,  # the Airflow adapter: Connections, REST client, DAG runs, notifier, API auth (uses core, db)
    "vlmevalkit": 2,  # the VLMEvalKit adapter: command lines, subprocess runner, output files, datasets
    "gpu": 3,
    "serving": 3.5,  # inference engines as managed servers; the catalogue validates serve specs against them
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


def _import_nodes(tree: ast.AST, type_checking: bool = False) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement; those under `if TYPE_CHECKING:` only when `type_checking`."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, type_checking: bool = False) -> set[str]:
    """The package modules `name` imports (a `from a.b import c` names module a.b.c when it is one)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(tree, type_checking):
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
TYPED_GRAPH = {m: imports_of(m, type_checking=True) for m in MODULES}  # with the imports made for type hints only


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
    """Imports for type hints count: a circle hidden under TYPE_CHECKING is still two modules that need each other."""
    assert _cycles(TYPED_GRAPH) == []


def test_the_scan_sees_circles_and_function_level_imports() -> None:
    """The checker itself: a circle through a function-level import is found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"]]
    tree = ast.parse("def f():\n    from vlmevals.db import engine\nif TYPE_CHECKING:\n    import vlmevals.api\n")
    names = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in _import_nodes(tree)]
    assert names == ["vlmevals.db"]
    typed = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in _import_nodes(tree, True)]
    assert sorted(typed) == ["vlmevals.api", "vlmevals.db"], "the circle check must see imports for type hints"


AIRFLOW_ADAPTER = "airflow"
MAY_IMPORT_AIRFLOW = {AIRFLOW_ADAPTER, "devtools"}


def imports_airflow(tree: ast.AST) -> list[int]:
    """Lines that import the top-level `airflow` package (function-level and TYPE_CHECKING imports included)."""
    lines = []
    for node in _import_nodes(tree, type_checking=True):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            names = [node.module or ""] if node.level == 0 else []  # relative imports stay in the package
        if any(n == "airflow" or n.startswith("airflow.") for n in names):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_airflow_adapter_imports_airflow() -> None:
    bad = [
        f"{name}:{line}"
        for name, path in MODULES.items()
        if layer_of(name) not in MAY_IMPORT_AIRFLOW
        for line in imports_airflow(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert not bad, f"import Airflow only in vlmevals.{AIRFLOW_ADAPTER} (or dags/, plugins/, devtools/): {bad}"
    users = {layer_of(m) for m, p in MODULES.items() if imports_airflow(ast.parse(p.read_text()))}
    assert AIRFLOW_ADAPTER in users, "the scan found no Airflow import at all: is it still looking?"


def test_the_airflow_scan_sees_every_form() -> None:
    """The checker itself: plain, from-, function-level and TYPE_CHECKING imports count; our own package does not."""
    src = (
        "import airflow\nfrom airflow.sdk import dag\nimport vlmevals.airflow\nfrom vlmevals.airflow import hooks\n"
        "from . import airflow\nimport airflowish\ndef f():\n    import airflow.models\n"
        "if TYPE_CHECKING:\n    from airflow.models import DagRun\n"
    )
    assert imports_airflow(ast.parse(src)) == [1, 2, 8, 10]


def test_workers_do_not_import_the_dev_tooling() -> None:
    users = sorted(m for m, deps in GRAPH.items() if any(layer_of(d) == "devtools" for d in deps))
    assert all(layer_of(m) in ("devtools", "cli") for m in users), users


def test_long_modules_are_reported() -> None:
    """A warning, never a failure: a split that follows the line count rather than the meaning hurts more."""
    sizes = {name: path.read_text().count("\n") for name, path in MODULES.items()}
    assert sizes, f"no module found under {PKG}"
    long = sorted((n, name) for name, n in sizes.items() if n > MODULE_LINES_WARNING)
    if long:
        listed = ", ".join(f"{name} ({n})" for n, name in reversed(long))
        warnings.warn(
            f"modules over {MODULE_LINES_WARNING} lines (split where the meaning divides): {listed}", stacklevel=1
        )


# What production runs never reaches dev-only code: the local stack (vlmevals.devtools) and the tests' package
# (tests/, whose doubles stand in for served models, the Hub and the dataset host). Production enters through the
# DAG files (workers, dag-processor), the plugin (api-server) and the CLI's production commands.
ROOT = PKG.parents[1]
DEV_ONLY = ("vlmevals.devtools", "tests")
DEV_CLI = {"vlmevals.cli", "vlmevals.cli.__main__", "vlmevals.cli.stack"}
"""The app's assembly and `vlmevals up/down/trigger/demo/demo-assets`; every other vlmevals.cli module is production."""


def _is_dev_only(module: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in DEV_ONLY)


def _absolute_imports(tree: ast.AST) -> set[str]:
    """The absolute module names a file imports (function-level included, TYPE_CHECKING left out: it never runs)."""
    names: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif node.level == 0 and node.module:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _package_module(name: str) -> str | None:
    """The vlmevals module an imported name resolves to (`vlmevals.db.engine.upgrade` -> vlmevals.db.engine)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def closure(roots: set[str]) -> set[str]:
    """Every package module reachable from `roots` through imports, function-level ones included."""
    seen: set[str] = set()
    todo = [r for r in roots if r in MODULES]
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo.extend(GRAPH[mod] - seen)
    return seen


def dev_imports(files: dict[str, Path]) -> list[str]:
    """`file imports name` for every dev-only import made by `files` (name -> path)."""
    return sorted(
        f"{name} imports {imp}"
        for name, path in files.items()
        for imp in _absolute_imports(ast.parse(path.read_text(), filename=str(path)))
        if _is_dev_only(imp)
    )


def _reach_from(entry_files: list[Path]) -> tuple[set[str], list[str]]:
    """(package modules reachable from the entry files, the dev-only imports found along the way)."""
    entries = {str(p.relative_to(ROOT)): p for p in entry_files}
    roots = {
        m
        for p in entries.values()
        for imp in _absolute_imports(ast.parse(p.read_text()))
        if (m := _package_module(imp)) is not None
    }
    reached = closure(roots)
    return reached, dev_imports(entries) + dev_imports({m: MODULES[m] for m in reached})


def test_workers_and_the_api_server_reach_no_dev_only_code() -> None:
    entry_files = sorted((ROOT / "dags").glob("*.py")) + sorted((ROOT / "plugins").glob("*.py"))
    reached, bad = _reach_from(entry_files)
    assert {"vlmevals.pipeline.steps", "vlmevals.api.app"} <= reached, "the scan missed the DAGs' steps or the API"
    assert not [m for m in reached if _is_dev_only(m)] and not bad, bad or sorted(filter(_is_dev_only, reached))


def _load_time(names: list[str]) -> set[str]:
    """Package modules imported when `names` are (their top level, outside any function)."""
    found: set[str] = set()
    for name in names:
        tree = ast.parse(MODULES[name].read_text())
        top = ast.Module([n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)], [])
        found |= {m for imp in _absolute_imports(top) if (m := _package_module(imp)) is not None}
    return found


def test_the_production_commands_reach_no_dev_only_code() -> None:
    """A command loads the app (every group module, at load time) and runs its own function-level imports."""
    production = {m for m in MODULES if layer_of(m) == "cli"} - DEV_CLI
    assert {"vlmevals.cli.db", "vlmevals.cli.datasets", "vlmevals.cli.enrolments", "vlmevals.cli.exports"} <= production
    at_load = _load_time(sorted(DEV_CLI))
    assert "vlmevals.cli.stack" in at_load and not [m for m in at_load if _is_dev_only(m)], at_load
    reached = closure(production | (at_load - DEV_CLI))
    bad = dev_imports({m: MODULES[m] for m in reached})
    assert not [m for m in reached if _is_dev_only(m)] and not bad, bad or sorted(filter(_is_dev_only, reached))


def test_the_package_never_imports_the_tests() -> None:
    bad = [
        f"{name} imports {imp}"
        for name, path in MODULES.items()
        for node in _import_nodes(ast.parse(path.read_text()), type_checking=True)  # not even for type hints
        for imp in _absolute_imports(ast.Module([node], []))
        if imp == "tests" or imp.startswith("tests.")
    ]
    assert not bad, f"test code (tests/, tests/doubles) is dev-only: {bad}"


def test_the_reach_scan_follows_function_level_imports() -> None:
    """The checker itself: the local-stack commands import vlmevals.devtools only inside functions, and are seen."""
    reached = closure({"vlmevals.cli.stack"})
    assert "vlmevals.devtools.stack" in reached and "vlmevals.devtools.stack" not in _load_time(["vlmevals.cli.stack"])
    tree = ast.parse("def f():\n    from tests.doubles.fake_hub import fake_hub\n    import vlmevals.devtools.stack\n")
    assert sorted(filter(_is_dev_only, _absolute_imports(tree))) == [
        "tests.doubles.fake_hub.fake_hub",
        "vlmevals.devtools.stack",
    ]
