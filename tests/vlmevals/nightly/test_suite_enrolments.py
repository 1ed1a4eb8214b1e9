"""Suite enrolments: the expansion into (task, model) pairs, duplicates merged, exclusions, the seed file, the
CLI and the refusals, on the test PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from vlmevals.catalogue.enrolments import enrol, list_enrolments, unenrol
from vlmevals.catalogue.seed import seed
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.engine import session_scope
from vlmevals.nightly import planning as nightly

from tests.vlmevals.nightly.test_planning import DEMO, MCQ, SERVED, _completed, _pairs, cat  # noqa: F401

pytestmark = pytest.mark.integration
DEMO_SUITE = ("demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn")


def test_suite_with_a_model_is_the_model_on_every_task_of_the_suite(cat) -> None:  # noqa: F811
    with session_scope(cat) as s:
        row, changed = enrol(s, None, DEMO, suite="demo")
        assert changed and row.suite_id is not None
        enrol(s, MCQ, DEMO)  # the same pair twice: planned once
    assert _pairs(cat) == {(t, DEMO) for t in DEMO_SUITE}
    with session_scope(cat) as s:
        assert [(r.scope, r.suite, r.model) for r in list_enrolments(s)] == [
            ("suite-model", "demo", DEMO),
            ("pair", None, DEMO),
        ]
        decisions = nightly.plan(s)
    assert sorted((d.task, d.model, d.reason) for d in decisions) == sorted((t, DEMO, "new") for t in DEMO_SUITE)
    with session_scope(cat) as s:  # one pair out of the enrolled suite: an exclusion
        assert "excluded" in unenrol(s, "demo-colors-vqa", DEMO)
    assert _pairs(cat) == {(t, DEMO) for t in DEMO_SUITE if t != "demo-colors-vqa"}


def test_suite_alone_is_every_model_already_on_its_tasks(cat) -> None:  # noqa: F811
    with session_scope(cat) as s:
        enrol(s, None, None, suite="demo")
    assert _pairs(cat) == set(), "no model is on the suite's tasks yet"
    _completed(cat, "demo-shapes-yorn", SERVED, 0.5)  # a completed run puts SERVED on the suite
    with session_scope(cat) as s:
        enrol(s, MCQ, DEMO)  # an enrolment on one of its tasks puts DEMO on it
        enrol(s, "charxiv-reasoning", "internvl2.5-2b")  # not a suite task: stays a pair, adds nothing
    assert _pairs(cat) == {(t, m) for t in DEMO_SUITE for m in (DEMO, SERVED)} | {
        ("charxiv-reasoning", "internvl2.5-2b")
    }
    with session_scope(cat) as s:
        assert unenrol(s, None, None, suite="demo") == "suite demo unenrolled"
    assert _pairs(cat) == {(MCQ, DEMO), ("charxiv-reasoning", "internvl2.5-2b")}


def test_refusals_name_the_fields(cat) -> None:  # noqa: F811
    with session_scope(cat) as s, pytest.raises(InvalidRequestError, match="task, suite: give a task or a suite"):
        enrol(s, MCQ, None, suite="demo")
    with session_scope(cat) as s, pytest.raises(NotFoundError, match="unknown suite 'ghost'"):
        enrol(s, None, DEMO, suite="ghost")
    with session_scope(cat) as s:
        assert list_enrolments(s) == []


def test_seed_file_and_cli(cat, tmp_path: Path) -> None:  # noqa: F811
    from vlmevals.cli import app

    seed_file = tmp_path / "seed.yaml"
    seed_file.write_text(f"enrolments:\n  - {{suite: demo, model: {DEMO}}}\n")
    with session_scope(cat) as s:
        assert seed(s, seed_file).created == [f"enrolment:suite:demox{DEMO}"]
    with session_scope(cat) as s:
        assert seed(s, seed_file).unchanged == [f"enrolment:suite:demox{DEMO}"]
    cli = CliRunner()
    r = cli.invoke(app, ["enrolments"])
    assert r.exit_code == 0 and f"suite-model suite=demo model={DEMO}" in r.output
    r = cli.invoke(app, ["enrol", "--suite", "demo"])
    assert r.exit_code == 0 and '"scope":"suite"' in r.output, r.output
    r = cli.invoke(app, ["enrol", "--suite", "demo", "--task", MCQ])
    assert r.exit_code == 1 and "give a task or a suite, not both" in r.output
    r = cli.invoke(app, ["unenrol", "--suite", "demo", "--model", DEMO])
    assert r.exit_code == 0 and "unenrolled" in r.output
