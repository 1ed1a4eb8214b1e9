"""Who owns a transaction: the domain layers work in the caller's Session; the few functions that must commit
on their own take an explicit Engine and are named here; nothing picks "the default database" by itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "include" / "vlmevals"
DOMAIN = ("runs", "results", "catalogue", "nightly", "backfill", "gpu", "exports")

# (module, function): they own their transactions, and their docstrings (or their module's) say why
ENGINE_OWNERS = {
    ("runs/triggering.py", "trigger"),  # the row commits before Airflow is asked for the DAG run
    ("runs/triggering.py", "cancel"),
    ("runs/triggering.py", "start_dag_run"),  # a refusal is recorded in a transaction of its own
    ("runs/suite_runs.py", "trigger_suite"),  # one `trigger` per task
    ("runs/suite_runs.py", "_status"),
    ("runs/checkpoint_runs.py", "register_and_trigger"),
    ("runs/concurrency.py", "claim"),  # the endpoint's advisory lock, held per try only
    ("runs/concurrency.py", "claim_judge"),  # the same, for a judge endpoint
    ("runs/rejudge.py", "trigger_rejudge"),  # the row commits before Airflow is asked, as in `trigger`
    ("backfill/importer.py", "sync_outputs"),  # batched commits of BATCH results
    ("backfill/importer.py", "_write"),
    ("backfill/writes.py", "insert_new"),
    ("backfill/writes.py", "update_known"),
    ("backfill/writes.py", "fill_samples"),  # the second pass: batched commits while the pool reads on
    ("backfill/writes.py", "_store_samples"),
    ("exports/delivery.py", "deliver_pending"),  # one outbox row per short transaction (FOR UPDATE SKIP LOCKED)
}
GPU_OWNERS = "gpu/"  # leases: SKIP LOCKED takes, heartbeats and NOTIFY releases commit on their own


def _functions(path: Path) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)]


def _params(fn: ast.FunctionDef) -> list[ast.arg]:
    a = fn.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs]


def _modules(*layers: str) -> list[Path]:
    return [p for layer in layers for p in sorted((PKG / layer).rglob("*.py"))]


@pytest.mark.parametrize("path", _modules(*DOMAIN, "pipeline", "db"), ids=lambda p: str(p.relative_to(PKG)))
def test_no_optional_engine_means_the_default_database(path: Path) -> None:
    bad = [
        f"{fn.name}({p.arg}: {ast.unparse(p.annotation)})"
        for fn in _functions(path)
        for p in _params(fn)
        if p.annotation is not None
        and "Engine" in ast.unparse(p.annotation)
        and ("None" in ast.unparse(p.annotation) or "Optional" in ast.unparse(p.annotation))
    ]
    assert not bad, f"{path.name}: {bad}; take a Session (or an explicit Engine where the function must commit)"


@pytest.mark.parametrize("path", _modules(*DOMAIN, "pipeline"), ids=lambda p: str(p.relative_to(PKG)))
def test_domain_and_pipeline_never_pick_the_database(path: Path) -> None:
    calls = [
        n.lineno
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name | ast.Attribute)
        and (n.func.id if isinstance(n.func, ast.Name) else n.func.attr) == "get_engine"
    ]
    assert not calls, f"{path.name} calls get_engine() at lines {calls}: the caller passes the engine or session"


@pytest.mark.parametrize("path", _modules(*DOMAIN), ids=lambda p: str(p.relative_to(PKG)))
def test_only_named_owners_take_an_engine(path: Path) -> None:
    rel = str(path.relative_to(PKG))
    if rel.startswith(GPU_OWNERS):
        return
    takers = [
        fn.name
        for fn in _functions(path)
        if any(p.annotation is not None and ast.unparse(p.annotation) == "Engine" for p in _params(fn))
    ]
    unexpected = [name for name in takers if (rel, name) not in ENGINE_OWNERS]
    assert not unexpected, (
        f"{rel}: {unexpected} take an Engine; domain functions take the caller's Session, unless they must commit "
        "on their own (then say why in the docstring and add them to ENGINE_OWNERS)"
    )
