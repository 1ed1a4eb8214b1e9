"""Every DAG's trigger form opens valid: each param passes its own schema with its default, and a param whose
default is empty is nullable (Airflow's form marks a non-nullable field required and disables Trigger while it
is empty). Task and model are offered from the catalogue's choices file, read without a database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Param

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))


def _params(path: Path) -> dict[str, Param]:
    bag = DagBag(dag_folder=str(path), safe_mode=False)
    assert bag.import_errors == {}
    dag = bag.dags[path.stem]
    return {name: dag.params.get_param(name) for name in dag.params}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_every_param_is_valid_with_its_default(path: Path) -> None:
    for name, param in _params(path).items():
        assert param.resolve(suppress_exception=False) == param.value, name  # jsonschema check, raises if invalid
        types = param.schema.get("type")
        allowed = set(types) if isinstance(types, list) else {types}
        if param.value in (None, ""):
            assert "null" in allowed, f"{path.stem}.{name}: empty default but not nullable: the form opens invalid"
        assert param.schema.get("title") and param.description, f"{path.stem}.{name} needs a title and description"


def test_judge_and_folder_are_optional() -> None:
    judge = _params(ROOT / "dags" / "eval_run.py")["judge"]
    folder = _params(ROOT / "dags" / "sync_outputs.py")["folder"]
    for p in (judge, folder):
        assert p.value is None and "null" in p.schema["type"]


def test_task_and_model_offer_the_seed_catalogue_without_a_choices_file(tmp_path: Path) -> None:
    params = _load_in_subprocess(tmp_path / "absent.json")
    assert "demo-shapes-mcq" in params["task"]["examples"]
    assert "demo-tiny-idefics3" in params["model"]["examples"]
    assert params["task"]["default"] in params["task"]["examples"]
    assert params["model"]["default"] in params["model"]["examples"]


def test_task_and_model_offer_what_the_choices_file_lists(tmp_path: Path) -> None:
    f = tmp_path / "choices.json"
    f.write_text(json.dumps({"tasks": [{"name": "mmbench-dev"}], "models": [{"name": "qwen2-vl-2b"}]}))
    params = _load_in_subprocess(f)
    assert params["task"]["examples"] == ["mmbench-dev"]
    assert params["model"]["examples"] == ["qwen2-vl-2b"]


def _load_in_subprocess(choices: Path) -> dict[str, dict]:
    """A fresh interpreter: the choices are read when the DAG file is parsed."""
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag\n"
        "dag = DagBag(dag_folder=sys.argv[1], safe_mode=False).dags['eval_run']\n"
        "print(json.dumps({n: {'default': dag.params.get_param(n).value, **dag.params.get_param(n).schema}"
        " for n in ('task', 'model')}))"
    )
    env = {**os.environ, "EVALS_CATALOGUE_CHOICES": str(choices)}
    res = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "eval_run.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])
