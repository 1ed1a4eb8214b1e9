"""A completed run to re-judge, shared by the re-judge tests (pipeline, e2e form): judged by exact matching, its
predictions written where VLMEvalKit left them, none naming an option (only an LLM judge maps them to a letter)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from vlmevals.catalogue.specs import model_spec
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs

TASK, MODEL, DATA = "demo-shapes-mcq", "demo-tiny-idefics3", "DEMO_SHAPES_MCQ"


def completed_source(engine: Any, tsv: Path) -> int:
    """The id of a completed run of TASK x MODEL over the whole TSV, with predictions that need extraction."""
    import pandas as pd

    csv.field_size_limit(sys.maxsize)
    with tsv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    with session_scope(engine) as s:
        run = runs.create_run(s, TASK, MODEL, triggered_by="api")
        runs.mark_completed(s, run.id, primary_metric=0.0, metrics={})
        run.fingerprint = {"judge": {"name": "exact_matching", "base_url": None}}
        model = model_spec(run.model).vlmeval_model
        pred_root = Path(str(run.artifacts_dir)) / model
        run_id = run.id
    pred_root.mkdir(parents=True)
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "image"} for r in rows])
    table["index"] = table["index"].astype(int)
    table["prediction"] = [f"hard to say, maybe the first one ({i})" for i in range(len(rows))]
    table.to_excel(pred_root / f"{model}_{DATA}.xlsx", index=False)
    return run_id
