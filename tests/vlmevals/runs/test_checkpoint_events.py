"""Asset events' extras as checkpoints: every bad event is named with its field and the fix, Airflow's own
keys are ignored, and nothing is registered when any event is bad."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from vlmevals.core.errors import InvalidRequestError
from vlmevals.pipeline.checkpoint_events import event_extras
from vlmevals.runs.checkpoint_runs import parse_events

GOOD = {"model": "demo-tiny-idefics3", "step": 100, "weights_path": "/w/100", "from_rest_api": True}


def test_good_events_parse_and_airflow_keys_are_ignored() -> None:
    got = parse_events([GOOD, {"model": "m", "label": "final", "hub_revision": "v1", "suite": "demo"}])
    assert (got[0].model, got[0].step, got[0].weights_path, got[0].suite) == ("demo-tiny-idefics3", 100, "/w/100", None)
    assert (got[1].label, got[1].hub_revision, got[1].suite) == ("final", "v1", "demo")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"step": 1, "weights_path": "/w"}, ["event 2", "model", "Field required"]),
        ({"model": "m", "weights_path": "/w"}, ["event 2", "step", "label"]),
        ({"model": "m", "step": 1}, ["event 2", "weights_path", "hub_revision"]),
        ({"model": "m", "step": "x", "weights_path": "/w"}, ["event 2", "step"]),
        ({"model": "m", "step": 1, "weights_path": "/w", "steps": 2}, ["event 2", "steps"]),
        (None, ["event 2", "not an object"]),
    ],
)
def test_a_bad_event_refuses_the_batch_naming_the_field(extra, words) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_events([GOOD, extra])
    text = str(err.value)
    assert all(w in text for w in words), text
    assert "nothing registered" in text and "README" in text and "1 of 2" in text


def test_event_extras_reads_the_checkpoints_asset_only() -> None:
    from airflow.sdk import Asset

    ours, other = Asset(name="model_checkpoints", uri="vlmevals://checkpoints"), Asset(name="o", uri="s3://b/x")
    events = {
        ours: [SimpleNamespace(extra={"b": 2}, timestamp=2), SimpleNamespace(extra={"a": 1}, timestamp=1)],
        other: [SimpleNamespace(extra={"c": 3}, timestamp=0)],
    }
    assert event_extras(events) == [{"a": 1}, {"b": 2}]
    assert event_extras(None) == []


def test_a_run_without_asset_events_fails_saying_how_to_register() -> None:
    from vlmevals.pipeline.checkpoint_events import register_asset_events

    with pytest.raises(ValueError, match="POST /api/v2/assets/events"):
        register_asset_events({}, dag_run=None)
