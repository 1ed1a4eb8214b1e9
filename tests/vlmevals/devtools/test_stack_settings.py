"""Which value the local stack uses: yours from the environment, else the one `Settings` derives; a value a
sourced `.local/env.sh` left behind unchanged is the stack's own earlier derivation and is derived afresh."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from vlmevals.devtools.stack import Stack
from vlmevals.devtools.stack_settings import DERIVED_VAR, StackSettings, get_stack_settings, user_environ

ROOT = Path(__file__).resolve().parents[3]
YOURS = ("VLMEVAL_ROOT", "VLMEVAL_OUTPUTS", "LMUData", "EVALS_MODELS_DIR", "DATABASE_URL", DERIVED_VAR)


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stack variables from the test session's environment; the stack's home in tmp_path."""
    for name in (*YOURS, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVALS_HOME", str(tmp_path / "home"))
    get_stack_settings.cache_clear()
    yield tmp_path
    get_stack_settings.cache_clear()


def test_outputs_follow_vlmeval_root_as_the_readme_says(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Stack().env()["VLMEVAL_OUTPUTS"] == str(ROOT / ".local" / "outputs")
    monkeypatch.setenv("VLMEVAL_ROOT", str(clean_env / "VLMEvalKit"))
    get_stack_settings.cache_clear()
    env = Stack().env()
    assert env["VLMEVAL_OUTPUTS"] == str(clean_env / "VLMEvalKit" / "outputs")
    assert env["VLMEVAL_ROOT"] == str(clean_env / "VLMEvalKit")


def test_your_vlmeval_outputs_wins_over_vlmeval_root(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLMEVAL_ROOT", str(clean_env / "VLMEvalKit"))
    monkeypatch.setenv("VLMEVAL_OUTPUTS", str(clean_env / "mine"))
    assert Stack().env()["VLMEVAL_OUTPUTS"] == str(clean_env / "mine")


def _env_after_sourcing(env_sh: Path, then: str) -> dict[str, str]:
    """A bash that sources env.sh, runs `then`, and asks a fresh Python what the stack would use."""
    probe = (
        "import json; from vlmevals.devtools.stack import Stack; s = Stack(); "
        "print(json.dumps({**s.env(), 'own_postgres': str(s.own_postgres), 'home': str(s.home)}))"
    )
    script = f"source {env_sh}; {then}; {sys.executable} -c {json.dumps(probe)}"
    env = {k: v for k, v in os.environ.items() if k not in (*YOURS, "EVALS_HOME")}
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_sourced_env_sh_from_an_earlier_start_does_not_win(clean_env: Path) -> None:
    env_sh = Stack().write_env_file()  # an earlier start without VLMEVAL_ROOT
    text = env_sh.read_text()
    assert f"export VLMEVAL_OUTPUTS='{ROOT / '.local' / 'outputs'}'" in text
    marked = json.loads(text.split(f"export {DERIVED_VAR}='", 1)[1].split("'\n", 1)[0])
    assert {"VLMEVAL_OUTPUTS", "LMUData", "EVALS_MODELS_DIR", "DATABASE_URL"} <= set(marked)

    root = clean_env / "VLMEvalKit"
    got = _env_after_sourcing(env_sh, f"export VLMEVAL_ROOT={root}")
    assert got["VLMEVAL_OUTPUTS"] == str(root / "outputs")
    assert got["own_postgres"] == "True", "DATABASE_URL from env.sh must not turn off the stack's own PostgreSQL"
    assert got["home"] == str(clean_env / "home"), "a sourced env.sh addresses its own stack, not the default one"

    got = _env_after_sourcing(env_sh, f"export VLMEVAL_ROOT={root} VLMEVAL_OUTPUTS={clean_env / 'mine'}")
    assert got["VLMEVAL_OUTPUTS"] == str(clean_env / "mine"), "a value you changed after sourcing is yours"


def test_user_environ_keeps_changed_values_and_drops_unchanged_derivations() -> None:
    env = {DERIVED_VAR: json.dumps({"A": "1", "B": "2"}), "A": "1", "B": "changed", "C": "3"}
    assert user_environ(env) == {"B": "changed", "C": "3"}
    assert user_environ({DERIVED_VAR: "not json", "A": "1"}) == {"A": "1"}


def test_stack_settings_are_read_once(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_stack_settings()
    monkeypatch.setenv("EVALS_AIRFLOW_PORT", "18080")
    assert get_stack_settings() is first and first.api_port == 8080
    get_stack_settings.cache_clear()
    assert get_stack_settings().api_port == 18080
    assert Stack().settings is get_stack_settings()
    assert isinstance(first, StackSettings)


def test_a_component_started_with_another_environment_is_restarted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clean_env / "bin" / "python"  # stands in for `python -m airflow …`: a process that stays up
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 120\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    stack = Stack()
    try:
        first = stack.start_component("scheduler")
        assert stack.start_component("scheduler") == first, "same environment: keep the running process"
        monkeypatch.setenv("VLMEVAL_ROOT", str(clean_env / "VLMEvalKit"))
        second = stack.start_component("scheduler")
        assert second != first, "a new VLMEVAL_ROOT must reach the running stack"
        assert stack.pid("scheduler") == second
    finally:
        stack.stop(("scheduler",), database=False, grace_s=5)
    assert stack.pid("scheduler") is None


def test_evals_auth_manager_selects_fab_and_the_default_stays_simple(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVALS_AUTH_MANAGER", raising=False)
    simple = Stack().env()
    assert simple["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert simple["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,op:op,viewer:viewer"

    monkeypatch.setenv("EVALS_AUTH_MANAGER", "fab")
    get_stack_settings.cache_clear()
    fab = Stack().env()
    assert fab["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert not any(k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER") for k in fab)
    assert fab["AIRFLOW__API__SECRET_KEY"] == Stack().env()["AIRFLOW__API__SECRET_KEY"], "one key per stack home"
    assert fab["AIRFLOW__API_AUTH__JWT_SECRET"] == simple["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert Stack().shell_env()["EVALS_AUTH_MANAGER"] == "fab"  # a shell that sourced env.sh addresses this stack

    for path in (simple["AIRFLOW__CORE__AUTH_MANAGER"], fab["AIRFLOW__CORE__AUTH_MANAGER"]):
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path

    monkeypatch.setenv("EVALS_AUTH_MANAGER", "ldap")
    get_stack_settings.cache_clear()
    with pytest.raises(ValidationError, match="EVALS_AUTH_MANAGER"):
        Stack()
