"""Backfill on work dirs VLMEvalKit itself wrote (flat and upstream T-folder layouts), the legacy layout built
from them, malformed variants, idempotence and the unknown-model report."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select
from vlmevals.api.represent import links
from vlmevals.backfill import sync_outputs
from vlmevals.backfill.scanner import FolderListing, datasets_in
from vlmevals.core.constants import WORKER_STDERR_LOG
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import BoardEntry, EvalRun, EvalSample, ExportOutbox, Model, Task
from vlmevals.results.compare import compare_runs
from vlmevals.runs.board_entries import differences

from tests.vlmevals.backfill import trees

pytestmark = pytest.mark.integration

TASKS = [
    ("demo-shapes-mcq", "DEMO_SHAPES_MCQ", "_acc.csv", 1.0),
    ("demo-colors-vqa", "DEMO_COLORS_VQA", "_acc.csv", 100.0),
    ("demo-shapes-yorn", "DEMO_SHAPES_YORN", "_score.csv", 100.0),
    ("demo-broken", "DEMO_BROKEN_MCQ", "_acc.csv", 1.0),
    ("demo-missing", "DEMO_MISSING_MCQ", "_acc.csv", 1.0),
]


@pytest.fixture()
def catalogue(engine):
    with session_scope(engine) as s:
        for name, data, suffix, scale in TASKS:
            s.add(
                Task(
                    name=name,
                    display_name=name,
                    vlmeval_data=data,
                    primary_metric_suffix=suffix,
                    primary_metric_key="Overall",
                    metric_scale=scale,
                )
            )
        s.add(Model(name="demo-tiny", display_name="demo", vlmeval_model="demo_tiny"))
    return engine


def _runs(engine) -> list[EvalRun]:
    with session_scope(engine) as s:
        rows = s.scalars(select(EvalRun).order_by(EvalRun.id)).all()
        for r in rows:
            _ = r.task, r.model, r.events
        return list(rows)


def _by_data(runs: list[EvalRun]) -> dict[str, EvalRun]:
    return {r.task.vlmeval_data: r for r in runs}


def test_flat_layout_from_real_vlmevalkit(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path)
    work = real["cases"]["ok"]["work_dir"]
    rep = sync_outputs(work, engine=catalogue)
    assert rep.counts() == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "unknown": 0,
        "malformed": 0,
        "incomplete": 0,
        "not_scored": 0,
    }
    assert any(p.endswith("/logs") for p in rep.ignored), "VLMEvalKit's logs folder is not a model"
    runs = _by_data(_runs(catalogue))
    status = json.loads(real["cases"]["ok"]["status_json"].read_text())["datasets"]
    for data, run in runs.items():
        assert run.status == "completed" and run.triggered_by == "backfill" and run.dag_id is None
        assert run.primary_metric == pytest.approx(
            status[data]["metrics"].get("split=none|Overall", status[data]["metrics"].get("Overall"))
        )
        assert run.source_path == f"{work}/demo_tiny/demo_tiny_{data}"
        assert run.artifacts_dir == f"{work}/demo_tiny", "points at the source; nothing copied"
        assert run.finished_at is not None and run.source_mtime_ns
        assert run.fingerprint["source"]["layout"] == "flat"
        assert [e.status for e in run.events] == ["completed"] and "backfilled from" in run.events[0].message
    mcq = runs["DEMO_SHAPES_MCQ"]
    assert mcq.metrics["table"]["split=none|colour"] == pytest.approx(0.3), "every metric cell kept"
    assert mcq.metrics["judge_model"] == "exact_matching"
    assert mcq.vlmeval_version and mcq.vlmeval_version.startswith("git:")
    # idempotent: nothing new, no file parsed
    again = sync_outputs(work, engine=catalogue)
    assert again.counts()["created"] == 0 and again.counts()["unchanged"] == 3
    assert again.files_parsed == 0
    assert len(_runs(catalogue)) == 3


def test_failures_recorded_only_in_status_json(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path)
    rep = sync_outputs(real["cases"]["failed"]["work_dir"], engine=catalogue)
    assert rep.counts()["created"] == 2 and rep.counts()["failed"] == 2
    runs = _by_data(_runs(catalogue))
    assert runs["DEMO_BROKEN_MCQ"].status == "failed" and "'image_path'" in runs["DEMO_BROKEN_MCQ"].error
    assert "No such file or directory" in runs["DEMO_MISSING_MCQ"].error
    assert runs["DEMO_MISSING_MCQ"].primary_metric is None
    assert sync_outputs(real["cases"]["failed"]["work_dir"], engine=catalogue).counts()["created"] == 0
    # a model folder whose run crashed before any dataset (status.json with no datasets) yields nothing
    assert sync_outputs(real["cases"]["bad_model"]["work_dir"], engine=catalogue).results_seen == 0


def _outbox(engine) -> list[tuple[int, str, str]]:
    with session_scope(engine) as s:
        rows = s.scalars(select(ExportOutbox).order_by(ExportOutbox.run_id, ExportOutbox.exporter))
        return [(r.run_id, r.exporter, r.state) for r in rows]


def test_backfilled_runs_are_queued_for_the_configured_exporters(catalogue, tmp_path: Path, monkeypatch) -> None:
    real, copy = trees.flat_tree(tmp_path / "a"), trees.flat_tree(tmp_path / "b")
    try:
        monkeypatch.setenv("EVALS_EXPORTERS", "")
        get_settings.cache_clear()
        assert sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue).counts()["created"] == 3
        assert _outbox(catalogue) == [], "no exporter configured, no rows"
        monkeypatch.setenv("EVALS_EXPORTERS", "mlflow,tensorboard")
        get_settings.cache_clear()
        assert sync_outputs(real["cases"]["failed"]["work_dir"], engine=catalogue).counts()["created"] == 2
        assert sync_outputs(copy["cases"]["ok"]["work_dir"], engine=catalogue).counts()["created"] == 3
    finally:
        get_settings.cache_clear()
    copied = str(tmp_path / "b")
    queued = [r for r in _runs(catalogue) if r.status == "failed" or (r.source_path or "").startswith(copied)]
    assert sorted(r.status for r in queued) == ["completed"] * 3 + ["failed"] * 2
    assert _outbox(catalogue) == [(r.id, n, "pending") for r in queued for n in ("mlflow", "tensorboard")]


def test_upstream_tfolders_symlinks_are_not_extra_runs(catalogue, tmp_path: Path) -> None:
    tree = trees.api_mode_tree(tmp_path)
    links = [p for p in tree["model_dir"].iterdir() if p.is_symlink()]
    assert links and all(not os.readlink(p).startswith("/") for p in links), "relative links, as upstream writes"
    with session_scope(catalogue) as s:
        s.add(Model(name="served", display_name="served", vlmeval_model="served"))
    rep = sync_outputs(tree["work_dir"], engine=catalogue)
    assert rep.counts()["created"] == 2 and rep.counts()["failed"] == 1, rep.as_dict()
    runs = _by_data(_runs(catalogue))
    mcq, yorn = runs["DEMO_SHAPES_MCQ"], runs["DEMO_SHAPES_YORN"]
    tdir = tree["tdir"]
    assert mcq.status == "completed" and mcq.source_path == f"{tdir}/served_DEMO_SHAPES_MCQ"
    assert mcq.primary_metric == pytest.approx(
        json.loads((tdir / "status.json").read_text())["datasets"]["DEMO_SHAPES_MCQ"]["metrics"]["split=none|Overall"]
    )
    assert mcq.fingerprint["source"] == {
        "layout": "upstream",
        "folder": str(tdir),
        "eval_id": tdir.name,
        "metric_file": "served_DEMO_SHAPES_MCQ_acc.csv",
    }
    assert yorn.status == "failed" and "NotImplementedError" in yorn.error
    # a newer T folder for the same pairs: new runs; the old ones stay
    newer = trees.newer_tfolder(tree["model_dir"], tdir, "T29991231-235959")
    rep2 = sync_outputs(tree["work_dir"], engine=catalogue)
    assert (rep2.counts()["created"], rep2.counts()["unchanged"]) == (2, 2)
    all_runs = _runs(catalogue)
    assert len(all_runs) == 4
    assert {r.source_path.rsplit("/", 2)[1] for r in all_runs} == {tdir.name, newer.name}
    assert sync_outputs(tree["work_dir"], engine=catalogue).counts()["created"] == 0


def test_legacy_tfolder_layout(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path / "real")
    work = tmp_path / "legacy"
    tdir = trees.legacy_from_flat(real["cases"]["ok"]["model_dir"], work, "demo_tiny")
    rep = sync_outputs(work, engine=catalogue)
    assert rep.counts()["created"] == 3, rep.as_dict()
    for run in _runs(catalogue):
        assert run.status == "completed" and run.source_path.startswith(f"{tdir}/demo_tiny_")
        assert run.vlmeval_version == "git:1a2b3c4d" and run.fingerprint["source"]["layout"] == "legacy"
        assert run.finished_at.date().isoformat() == "2025-03-01", "the folder's date, without status.json"
    yorn = _by_data(_runs(catalogue))["DEMO_SHAPES_YORN"]
    assert yorn.metrics["file"] == "demo_tiny_DEMO_SHAPES_YORN_score.csv" and yorn.primary_metric == 10.0


def test_malformed_results_reported_scan_goes_on(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path)
    work = real["cases"]["ok"]["work_dir"]
    mdir = real["cases"]["ok"]["model_dir"]
    trees.legacy_from_flat(mdir, work, "demo_tiny")  # healthy results beside the broken ones
    mcq_csv = mdir / "demo_tiny_DEMO_SHAPES_MCQ_acc.csv"
    mcq_csv.write_text(mcq_csv.read_text()[:18])  # truncated mid-header
    (mdir / "demo_tiny_DEMO_SHAPES_YORN.xlsx").unlink()  # missing prediction file
    status: dict[str, Any] = json.loads((mdir / "status.json").read_text())
    del status["datasets"]["DEMO_COLORS_VQA"]["metrics"]  # scoring never finished ...
    (mdir / "status.json").write_text(json.dumps(status))
    (mdir / "demo_tiny_DEMO_COLORS_VQA_acc.csv").unlink()  # ... so no metric file either
    rep = sync_outputs(work, engine=catalogue)
    assert rep.counts()["created"] == 3 and rep.counts()["malformed"] == 2, rep.as_dict()
    assert rep.counts()["not_scored"] == 1, "predictions without a score are not scored, not malformed"
    assert "predictions but no score" in rep.not_scored[0].reason and rep.not_scored[0].data == "DEMO_COLORS_VQA"
    why = {Path(p.path).name: p.reason for p in rep.malformed}
    assert (
        "unreadable" in why["demo_tiny_DEMO_SHAPES_MCQ_acc.csv"]
        or "no numeric" in why["demo_tiny_DEMO_SHAPES_MCQ_acc.csv"]
    )
    assert "missing prediction file demo_tiny_DEMO_SHAPES_YORN.xlsx" in why["demo_tiny_DEMO_SHAPES_YORN.xlsx"]
    assert "without metrics" in rep.not_scored[0].reason
    assert all(r.source_path.split("/")[-2].startswith("T2025") for r in _runs(catalogue))
    # repaired later: the next scan records it
    shutil.copy2(
        tmp_path / "ok" / "outputs" / "demo_tiny" / "T20250301_G1a2b3c4d" / "demo_tiny_DEMO_SHAPES_MCQ_acc.csv", mcq_csv
    )
    rep2 = sync_outputs(work, engine=catalogue)
    assert rep2.counts()["created"] == 1 and rep2.counts()["malformed"] == 1 and rep2.counts()["not_scored"] == 1


def test_half_written_status_json_is_malformed(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path)
    status = real["cases"]["ok"]["status_json"]
    status.write_text(status.read_text()[:200])
    rep = sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue)
    assert rep.counts()["malformed"] == 3 and rep.counts()["created"] == 0
    assert all(p.path == str(status) and "not valid JSON" in p.reason for p in rep.malformed)


def test_unknown_models_reported_then_created(catalogue, tmp_path: Path) -> None:
    tree = trees.api_mode_tree(tmp_path)
    with session_scope(catalogue) as s:
        s.execute(Task.__table__.delete().where(Task.vlmeval_data == "DEMO_SHAPES_YORN"))
    rep = sync_outputs(tree["work_dir"], engine=catalogue)
    assert rep.counts()["created"] == 0 and rep.counts()["unknown"] == 2
    assert all("no model with vlmeval_model='served'" in p.reason for p in rep.unknown)
    assert {p.data for p in rep.unknown} == {"DEMO_SHAPES_MCQ", "DEMO_SHAPES_YORN"}
    assert _runs(catalogue) == []
    rep2 = sync_outputs(tree["work_dir"], engine=catalogue, create_unknown=True)
    assert rep2.created_models == ["served"] and rep2.created_tasks == ["demo_shapes_yorn"]
    assert rep2.counts()["created"] == 2 and rep2.counts()["unknown"] == 0
    with session_scope(catalogue) as s:
        task = s.scalar(select(Task).where(Task.name == "demo_shapes_yorn"))
        assert task.vlmeval_data == "DEMO_SHAPES_YORN" and "backfill" in task.description


def test_rerun_in_flat_folder_updates_in_place(catalogue, tmp_path: Path, monkeypatch) -> None:
    real = trees.flat_tree(tmp_path)
    work = real["cases"]["ok"]["work_dir"]
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow")
    get_settings.cache_clear()
    try:
        sync_outputs(work, engine=catalogue)
        with session_scope(catalogue) as s:  # as if the tracker had them all
            s.execute(ExportOutbox.__table__.update().values(state="delivered"))
        _rewrite_vqa_result(real)
        rep = sync_outputs(work, engine=catalogue)
    finally:
        get_settings.cache_clear()
    assert (rep.counts()["updated"], rep.counts()["unchanged"], rep.counts()["created"]) == (1, 2, 0)
    assert rep.files_parsed == 1, "only the changed result is read again"
    assert rep.samples_ingested == 1, "the re-synced run's samples are read again"
    vqa = _by_data(_runs(catalogue))["DEMO_COLORS_VQA"]
    assert vqa.primary_metric == 60.0
    with session_scope(catalogue) as s:
        rows = s.scalar(select(func.count()).select_from(EvalSample).where(EvalSample.run_id == vqa.id))
    assert rows == vqa.samples_total == 20, "replaced, not doubled"
    assert "was completed (primary metric 20.0)" in vqa.events[-1].message, "the old score stays in the history"
    states = {run_id: state for run_id, _, state in _outbox(catalogue)}
    assert states.pop(vqa.id) == "pending", "the new outcome goes to the tracker again"
    assert set(states.values()) == {"delivered"}


def _rewrite_vqa_result(real: dict[str, Any]) -> None:
    csv = real["benchmarks"]["DEMO_COLORS_VQA"]["acc_csv"]
    csv.write_text('"Overall","colour","shape"\n"60.0","70.0","50.0"\n')
    st = csv.stat()
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_not_a_folder_is_a_clear_error(catalogue, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="is not a folder"):
        sync_outputs(tmp_path / "nope", engine=catalogue)


def test_dataset_grouping_prefers_longest_name() -> None:
    files = {
        f"m_{n}": 1
        for n in (
            "A_B.xlsx",
            "A_B_acc.csv",
            "A_B_exact_matching_result.xlsx",
            "A_B_V11.xlsx",
            "A_B_V11_acc.csv",
            "X.tsv",
            "X_checkpoint.pkl",
            "Y_acc.csv",
        )
    }
    lst = FolderListing("m", "/w/m", "flat", None, None, files, None)
    groups = datasets_in(lst, known={"A_B_V11", "Y"})
    assert set(groups) == {"A_B", "A_B_V11", "X", "Y"}
    assert set(groups["A_B"]) == {"m_A_B.xlsx", "m_A_B_acc.csv", "m_A_B_exact_matching_result.xlsx"}
    assert set(groups["A_B_V11"]) == {"m_A_B_V11.xlsx", "m_A_B_V11_acc.csv"}
    assert set(groups["X"]) == {"m_X.tsv"}, "temporary pickles are no result"
    assert set(groups["Y"]) == {"m_Y_acc.csv"}, "a catalogue dataset without prediction file is still found"


def test_backfilled_runs_carry_their_samples(catalogue, tmp_path: Path) -> None:
    """The per-sample files VLMEvalKit wrote are ingested by the pipeline's own ingest: CIs, failed counts, rows."""
    real = trees.flat_tree(tmp_path)
    rep = sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue)
    assert rep.samples_ingested == 3, rep.as_dict()
    runs = _by_data(_runs(catalogue))
    with session_scope(catalogue) as s:
        counts = dict(s.execute(select(EvalSample.run_id, func.count()).group_by(EvalSample.run_id)).all())
    for data, run in runs.items():
        rows = len(pd.read_csv(real["benchmarks"][data]["tsv"], sep="\t", usecols=["index"]))
        assert run.samples_total == rows == counts[run.id], data
        assert run.samples_failed == 0 and run.ci_low is not None and run.ci_high is not None
        assert run.ci_low <= run.metrics["samples"]["valid_only"] <= run.ci_high
        assert run.metrics["table"], "the official metrics are kept beside the samples"
    mcq = runs["DEMO_SHAPES_MCQ"]
    assert mcq.metrics["samples"]["source_file"] == "demo_tiny_DEMO_SHAPES_MCQ_exact_matching_result.xlsx"
    assert mcq.metrics["samples"]["official"] == pytest.approx(mcq.primary_metric)
    assert sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue).samples_ingested == 0, "idempotent"


def test_unreadable_per_sample_file_keeps_the_score(catalogue, tmp_path: Path) -> None:
    """A per-sample file that cannot be read costs the run its samples, never its official score."""
    real = trees.flat_tree(tmp_path)
    mdir = real["cases"]["ok"]["model_dir"]
    (mdir / "demo_tiny_DEMO_SHAPES_MCQ_exact_matching_result.xlsx").write_bytes(b"not a workbook")
    rep = sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue)
    assert rep.counts()["created"] == 3 and rep.samples_ingested == 2, rep.as_dict()
    mcq = _by_data(_runs(catalogue))["DEMO_SHAPES_MCQ"]
    assert mcq.status == "completed" and mcq.primary_metric == pytest.approx(0.25)
    assert "samples_error" in mcq.metrics and mcq.samples_total is None
    with session_scope(catalogue) as s:
        assert s.scalar(select(func.count()).select_from(EvalSample).where(EvalSample.run_id == mcq.id)) == 0


def test_compare_works_on_backfilled_runs(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path / "a")
    trees.legacy_from_flat(real["cases"]["ok"]["model_dir"], real["cases"]["ok"]["work_dir"], "demo_tiny")
    sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue)
    mcq = [r for r in _runs(catalogue) if r.task.vlmeval_data == "DEMO_SHAPES_MCQ"]
    assert len(mcq) == 2 and all(r.samples_total for r in mcq)
    with session_scope(catalogue) as s:
        got = compare_runs(s, mcq[0].id, mcq[1].id)
    assert got.samples.paired == mcq[0].samples_total and got.difference.estimate == 0.0, "same files: no change"
    assert got.flips.right_to_wrong_count == 0 and got.flips.wrong_to_right_count == 0


def test_killed_inference_is_incomplete_with_samples_reached(catalogue, tmp_path: Path) -> None:
    """status.json says `infer`, only the partial pickle VLMEvalKit saves every 10 items: incomplete, not malformed."""
    real = trees.flat_tree(tmp_path)
    mdir = real["cases"]["ok"]["model_dir"]
    for f in mdir.glob("demo_tiny_DEMO_SHAPES_MCQ*"):
        f.unlink()
    with (mdir / "01_DEMO_SHAPES_MCQ.pkl").open("wb") as fh:
        pickle.dump({i: "A" for i in range(20)}, fh)
    status = json.loads((mdir / "status.json").read_text())
    status["datasets"]["DEMO_SHAPES_MCQ"] = {"status": "infer", "prediction_file": "x.xlsx"}
    (mdir / "status.json").write_text(json.dumps(status))
    rep = sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue)
    assert rep.counts()["incomplete"] == 1 and rep.counts()["malformed"] == 0, rep.as_dict()
    stopped = rep.incomplete[0]
    assert stopped.data == "DEMO_SHAPES_MCQ" and stopped.samples == 20 and "after 20 samples" in stopped.reason
    assert "DEMO_SHAPES_MCQ" not in _by_data(_runs(catalogue)), "no run for an unfinished inference"
    assert rep.as_dict()["incomplete_results"][0]["samples"] == 20


def test_links_of_a_backfilled_run_point_at_files_that_exist(catalogue, tmp_path: Path) -> None:
    real = trees.flat_tree(tmp_path)
    sync_outputs(real["cases"]["ok"]["work_dir"], engine=catalogue)
    app = FastAPI()
    with session_scope(catalogue) as s:
        run = s.scalars(select(EvalRun)).first()
        assert run is not None
        _ = run.model
        request = Request({"type": "http", "app": app, "root_path": "/api/evals", "headers": []})
        got = links(request, run)
    assert got.worker_log is None and got.airflow_run is None, "no worker log, no DAG run: no link"
    (Path(run.artifacts_dir) / WORKER_STDERR_LOG).write_text("x")
    with session_scope(catalogue) as s:
        run2 = s.get(EvalRun, run.id)
        assert run2 is not None
        _ = run2.model
        assert links(request, run2).worker_log == f"/api/evals/runs/{run.id}/artifacts/{WORKER_STDERR_LOG}"


def test_second_pass_fills_the_samples_of_runs_stored_first(catalogue, tmp_path: Path, monkeypatch) -> None:
    """The first pass stores the runs and scores (the boards need nothing more) and names each per-sample file
    as pending; the second pass (here a later sync, as after one interrupted between the passes) stores the
    samples, the summary and CI on the runs and their board entries, and only then queues them for trackers."""
    real = trees.flat_tree(tmp_path)
    work = real["cases"]["ok"]["work_dir"]
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow")
    get_settings.cache_clear()
    try:
        first = sync_outputs(work, engine=catalogue, samples=False)
        assert first.counts()["created"] == 3 and first.samples_ingested == 0 and first.sample_files_parsed == 0
        stored = _by_data(_runs(catalogue))
        for data, run in stored.items():
            assert run.metrics["samples_pending"].startswith(f"demo_tiny_{data}_"), run.metrics
            assert run.primary_metric is not None and run.samples_total is None and run.ci_low is None
        assert _outbox(catalogue) == [], "no tracker gets a run before its samples"
        with session_scope(catalogue) as s:
            assert s.scalar(select(func.count()).select_from(EvalSample)) == 0
            on_board = s.scalars(select(BoardEntry).where(BoardEntry.pick == "best")).all()
            assert {e.run_id for e in on_board} == {r.id for r in stored.values()}, "on the boards already"
            assert all(e.ci_low is None for e in on_board)

        second = sync_outputs(work, engine=catalogue)
    finally:
        get_settings.cache_clear()
    assert (second.counts()["created"], second.counts()["unchanged"], second.files_parsed) == (0, 3, 0)
    assert second.sample_files_parsed == 3 and second.samples_ingested == 3, second.as_dict()
    runs = _by_data(_runs(catalogue))
    with session_scope(catalogue) as s:
        counts = dict(s.execute(select(EvalSample.run_id, func.count()).group_by(EvalSample.run_id)).all())
        entries = {e.run_id: e for e in s.scalars(select(BoardEntry).where(BoardEntry.pick == "best"))}
        assert differences(s.connection()) == [], "the entries agree with a recomputation (verify-boards)"
    for data, run in runs.items():
        assert "samples_pending" not in run.metrics and run.metrics["samples"]["source_file"], data
        assert run.samples_total == counts[run.id] and run.ci_low is not None and run.ci_high is not None
        assert (entries[run.id].ci_low, entries[run.id].samples_total) == (run.ci_low, run.samples_total)
    assert _outbox(catalogue) == [(r.id, "mlflow", "pending") for r in sorted(runs.values(), key=lambda r: r.id)]
    assert sync_outputs(work, engine=catalogue).sample_files_parsed == 0, "nothing left to read"
