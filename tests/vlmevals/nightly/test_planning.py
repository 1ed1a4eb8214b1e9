"""Enrolment resolution, the nightly plan (trigger / skip and why), regression verdicts and the notifier hook,
the seed file's enrolments and the CLI, on the test PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseNotifier
from sqlalchemy import select
from typer.testing import CliRunner
from vlmevals.airflow import notifiers
from vlmevals.catalogue.enrolments import enrol, list_enrolments, unenrol
from vlmevals.core.errors import NotFoundError
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model, Task
from vlmevals.nightly import planning as nightly
from vlmevals.nightly import schedule as nightly_schedule
from vlmevals.results import regression
from vlmevals.runs import lifecycle as runs

pytestmark = pytest.mark.integration
MCQ, DEMO, SERVED = "demo-shapes-mcq", "demo-tiny-idefics3", "served"


@pytest.fixture()
def cat(seeded, demo_assets):
    """The seeded catalogue plus a served model."""
    with session_scope(seeded) as s:
        s.add(
            Model(
                name=SERVED,
                display_name="served",
                vlmeval_model="served",
                gpus=0,
                endpoint_base_url="http://127.0.0.1:9/v1",
            )
        )
    return seeded


def _pairs(engine) -> set[tuple[str, str]]:
    with session_scope(engine) as s:
        return {(t.name, m.name) for t, m in nightly.resolve_pairs(s)}


def _completed(
    engine,
    task: str,
    model: str,
    score: float,
    *,
    fp_hash: str | None = None,
    triggered_by: str = "nightly",
    days_ago: float = 0,
) -> int:
    with session_scope(engine) as s:
        run = runs.create_run(s, task, model, triggered_by=triggered_by)
        run.status, run.primary_metric = "completed", score
        run.finished_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
        if fp_hash is not None:
            run.fingerprint_hash = fp_hash
            run.fingerprint = nightly.current_fingerprint(run.task, run.model, _settings())[0]
        s.flush()
        return run.id


def _settings():
    from vlmevals.core.settings import get_settings

    return get_settings()


def _digest(engine, task: str, model: str) -> str:
    with session_scope(engine) as s:
        t = s.scalar(select(Task).where(Task.name == task))
        m = s.scalar(select(Model).where(Model.name == model))
        return nightly.current_fingerprint(t, m, _settings())[1]


def test_resolution_pairs_tasks_models_and_exclusions(cat) -> None:
    assert _pairs(cat) == set()
    with session_scope(cat) as s:
        enrol(s, MCQ, None)
        enrol(s, None, SERVED)
    got = _pairs(cat)
    assert {(MCQ, m) for m in (DEMO, SERVED, "internvl2.5-2b", "qwen2-vl-7b-vllm")} <= got
    assert {(t, SERVED) for t in (MCQ, "demo-colors-vqa", "charxiv-reasoning", "mmbench-dev-en")} <= got
    with session_scope(cat) as s:
        n_tasks, n_models = len(s.scalars(select(Task)).all()), len(s.scalars(select(Model)).all())
    assert len(got) == n_tasks + n_models - 1, "the pair in both is counted once"
    with session_scope(cat) as s:
        assert "excluded" in unenrol(s, MCQ, "internvl2.5-2b")
        assert "unenrolled" in unenrol(s, None, SERVED)
    with session_scope(cat) as s:
        models = {m.name for m in s.scalars(select(Model))}
    assert _pairs(cat) == {(MCQ, m) for m in models - {"internvl2.5-2b"}}
    with session_scope(cat) as s, pytest.raises(NotFoundError, match="is not enrolled"):
        unenrol(s, "demo-colors-vqa", None)
    with session_scope(cat) as s:
        rows = list_enrolments(s)
    assert [(r.scope, r.enabled) for r in rows] == [("task", True), ("pair", False)]


def test_plan_triggers_new_skips_unchanged_forces_and_never_doubles(cat) -> None:
    with session_scope(cat) as s:
        enrol(s, MCQ, DEMO)
        enrol(s, MCQ, SERVED)
    with session_scope(cat) as s:
        first = {d.model: d for d in nightly.plan(s)}
    assert (first[DEMO].action, first[DEMO].reason) == ("trigger", "new")
    old = _completed(cat, MCQ, DEMO, 0.5, fp_hash=_digest(cat, MCQ, DEMO))
    _completed(cat, MCQ, SERVED, 0.5, fp_hash="0" * 64)  # recorded under another fingerprint
    with session_scope(cat) as s:
        second = {d.model: d for d in nightly.plan(s)}
    assert (second[DEMO].action, second[DEMO].reason, second[DEMO].last_run_id) == ("skip", "unchanged", old)
    assert f"unchanged since run {old}" in second[DEMO].detail
    assert (second[SERVED].action, second[SERVED].reason) == ("trigger", "changed")
    with session_scope(cat) as s:
        forced = {d.model: d for d in nightly.plan(s, force=True)}
    assert (forced[DEMO].action, forced[DEMO].reason) == ("trigger", "forced")
    with session_scope(cat) as s:
        created = nightly.create_runs(s, list(forced.values()), nightly_run_id="manual__2026-11-27T02:00:00+00:00")
    assert len(created) == 2
    with session_scope(cat) as s:
        for c in created:
            run = s.get(EvalRun, c["conf"]["eval_run_id"])
            assert run.status == "queued" and run.triggered_by == "nightly" and run.dag_id == "eval_run"
            assert run.dag_run_id == c["trigger_run_id"] == f"nightly__manual__2026-11-27T02:00:00+00:00__{run.id}"
        again = nightly.plan(s, force=True)
    assert {(d.action, d.reason) for d in again} == {("skip", "active")}, "queued runs are not doubled"
    summary = nightly.summarise(again)
    assert (summary["triggered"], summary["skipped"], summary["skipped_by_reason"]) == (0, 2, {"active": 2})
    assert (
        nightly.summary_text(nightly.summarise(list(forced.values())))
        == "2 enrolled pairs: 2 triggered (2 forced), 0 skipped"
    )


def test_changed_dataset_names_the_part(cat, tmp_path: Path) -> None:
    with session_scope(cat) as s:
        enrol(s, MCQ, DEMO)
    _completed(cat, MCQ, DEMO, 0.5, fp_hash=_digest(cat, MCQ, DEMO))
    with session_scope(cat) as s:
        run = s.scalar(select(EvalRun))
        run.fingerprint = {**run.fingerprint, "dataset": {"name": "DEMO_SHAPES_MCQ", "md5": "0" * 32}}
        run.fingerprint_hash = "f" * 64
    with session_scope(cat) as s:
        (d,) = nightly.plan(s)
    assert (d.action, d.reason) == ("trigger", "changed") and d.detail.startswith("dataset changed since run")


def test_schedule_from_environment(monkeypatch) -> None:
    monkeypatch.delenv(nightly_schedule.SCHEDULE_ENV, raising=False)
    assert nightly_schedule.schedule() == "0 2 * * *"
    monkeypatch.setenv(nightly_schedule.SCHEDULE_ENV, "30 3 * * 1-5")
    assert nightly_schedule.schedule() == "30 3 * * 1-5"
    monkeypatch.setenv(nightly_schedule.SCHEDULE_ENV, "off")
    assert nightly_schedule.schedule() is None


def test_regression_absolute_threshold_both_directions(cat) -> None:
    base = _completed(cat, MCQ, DEMO, 0.80, days_ago=1)
    same = _completed(cat, MCQ, DEMO, 0.795)
    with session_scope(cat) as s:
        v = regression.check_run(s, same)
    assert v is not None and not v.regression and v.baseline_run_id == base
    drop = _completed(cat, MCQ, DEMO, 0.60)
    with session_scope(cat) as s:
        v = regression.check_run(s, drop)
    assert v.regression and v.delta == pytest.approx(-0.195) and v.baseline_run_id == same
    with session_scope(cat) as s:
        run = s.get(EvalRun, drop)
        assert run.regression and run.baseline_run_id == same
        assert run.regression_detail["method"] == "absolute_threshold"
        assert run.regression_detail["tolerance"] == 0.01 and run.regression_detail["baseline_metric"] == 0.795
        t = s.scalar(select(Task).where(Task.name == MCQ))
        t.higher_is_better = False  # e.g. an error rate: a rise is the regression
    up = _completed(cat, MCQ, DEMO, 0.70)
    with session_scope(cat) as s:
        assert regression.check_run(s, up).regression
    manual = _completed(cat, MCQ, DEMO, 0.99, triggered_by="airflow_rest")
    with session_scope(cat) as s:
        assert regression.check_run(s, manual) is None, "only nightly runs are checked by default"
        assert regression.check_run(s, manual, force=True).regression


def test_first_run_has_no_baseline(cat) -> None:
    first = _completed(cat, MCQ, DEMO, 0.3)
    with session_scope(cat) as s:
        assert regression.check_run(s, first) is None
    with session_scope(cat) as s:
        assert s.get(EvalRun, first).regression is False


def test_a_method_can_be_plugged_in_front(cat, monkeypatch) -> None:
    monkeypatch.setattr(regression, "METHODS", list(regression.METHODS))
    calls: list[int] = []

    def paired(run, baseline, task, session):
        calls.append(run.id)
        if run.primary_metric > 0.5:  # pretend: only these runs have per-sample results
            return None
        return regression.Verdict(
            True,
            "paired_test",
            baseline.id,
            run.primary_metric,
            baseline.primary_metric,
            run.primary_metric - baseline.primary_metric,
            task.regression_tolerance,
            task.higher_is_better,
            {"p_value": 0.001},
        )

    regression.register_method("paired_test", paired)
    _completed(cat, MCQ, DEMO, 0.8, days_ago=1)
    a = _completed(cat, MCQ, DEMO, 0.79)
    with session_scope(cat) as s:
        assert regression.check_run(s, a).method == "absolute_threshold", "falls through when the method passes"
    b = _completed(cat, MCQ, DEMO, 0.40)
    with session_scope(cat) as s:
        v = regression.check_run(s, b)
    assert v.method == "paired_test" and calls == [a, b]
    with session_scope(cat) as s:
        assert s.get(EvalRun, b).regression_detail["p_value"] == 0.001


class RecordingNotifier(BaseNotifier):
    """An Airflow notifier that remembers what it was told."""

    template_fields = ("channel",)
    seen: list[dict[str, Any]] = []

    def __init__(self, channel: str = "none") -> None:
        super().__init__()
        self.channel = channel

    def notify(self, context: dict[str, Any]) -> None:
        RecordingNotifier.seen.append({"channel": self.channel, **context["regression"]})


def test_notifier_fires_only_on_regression(cat, monkeypatch) -> None:
    RecordingNotifier.seen.clear()
    monkeypatch.setenv(notifiers.NOTIFIER_ENV, f"{__name__}.RecordingNotifier")
    monkeypatch.setenv(notifiers.NOTIFIER_KWARGS_ENV, '{"channel": "#evals"}')
    _completed(cat, MCQ, DEMO, 0.8, days_ago=1)
    ok = _completed(cat, MCQ, DEMO, 0.8)
    with session_scope(cat) as s:
        regression.check_run(s, ok)
        assert regression.notify(s, ok, {}) is False and RecordingNotifier.seen == []
    bad = _completed(cat, MCQ, DEMO, 0.1)
    with session_scope(cat) as s:
        regression.check_run(s, bad)
        assert regression.notify(s, bad, {}) is True
    (seen,) = RecordingNotifier.seen
    assert seen["channel"] == "#evals" and seen["eval_run_id"] == bad and seen["task"] == MCQ
    assert seen["baseline_run_id"] == ok and seen["regression"] is True
    monkeypatch.setenv(notifiers.NOTIFIER_ENV, "no.such.module.Notifier")
    with session_scope(cat) as s:
        assert regression.notify(s, bad, {}) is False, "a broken notifier is logged, never raised"


def test_seed_file_enrolments(engine, tmp_path: Path) -> None:
    from vlmevals.catalogue.seed import SEED_FILE, seed

    text = SEED_FILE.read_text().replace(
        "enrolments: []",
        "enrolments:\n  - {task: demo-shapes-mcq, model: demo-tiny-idefics3}\n  - {model: internvl2.5-2b}\n",
    )
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    with session_scope(engine) as s:
        rep = seed(s, path)
    assert {"enrolment:demo-shapes-mcqxdemo-tiny-idefics3", "enrolment:*xinternvl2.5-2b"} <= set(rep.created)
    with session_scope(engine) as s:
        rep2 = seed(s, path)
        assert len(list_enrolments(s)) == 2
    assert not [c for c in rep2.created if c.startswith("enrolment:")], "idempotent"


def test_cli_enrol_list_unenrol_and_sync(cat, tmp_path: Path) -> None:
    from vlmevals.cli import app

    cli = CliRunner()
    r = cli.invoke(app, ["enrol", "--task", MCQ, "--model", DEMO])
    assert r.exit_code == 0 and "enrolled" in r.output, r.output
    r = cli.invoke(app, ["enrolments"])
    assert r.exit_code == 0 and f"1 pair(s) in the nightly run: {MCQ} x {DEMO}" in r.output, r.output
    r = cli.invoke(app, ["unenrol", "--task", "ghost"])
    assert r.exit_code == 1 and "unknown task 'ghost'" in r.output
    r = cli.invoke(app, ["unenrol", "--task", MCQ, "--model", DEMO])
    assert r.exit_code == 0 and "unenrolled" in r.output
    r = cli.invoke(app, ["sync-outputs", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "is not a folder" in r.output
    (tmp_path / "w" / "Some-Model").mkdir(parents=True)
    (tmp_path / "w" / "Some-Model" / "Some-Model_DEMO_SHAPES_MCQ.xlsx").write_bytes(b"x")
    r = cli.invoke(app, ["sync-outputs", str(tmp_path / "w")])
    assert r.exit_code == 0 and "1 unknown" in r.output and "vlmeval_model='Some-Model'" in r.output, r.output
