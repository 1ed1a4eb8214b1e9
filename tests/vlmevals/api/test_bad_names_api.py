"""Bad input at the edges of every create route: names too long, with control characters, unicode look-alikes
(a Cyrillic a, a zero-width space), NUL, bidi overrides in display names. Each is a 422 naming the field, and
nothing is created."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

BAD_NAMES = {
    "too long": "a" * 129,
    "cyrillic a": "demo-sh\u0430pes",  # Cyrillic a, looks like a Latin a
    "zero-width space": "demo\u200bshapes",
    "nul": "demo\x00shapes",
    "newline": "demo\nshapes",
    "upper case": "Demo",
}
BAD_DISPLAY = {
    "too long": "x" * 257,
    "nul": "A\x00B",
    "control": "A\x1bB",
    "zero-width space": "A\u200bB",
    "bidi override": "A\u202eB",
    "newline": "A\nB",
}


def _bodies(name: str = "ok-name", display: str = "OK") -> dict[str, dict[str, Any]]:
    return {
        "/api/evals/tasks": {"name": name, "display_name": display, "vlmeval_data": "DEMO_SHAPES_MCQ"},
        "/api/evals/models": {
            "name": name,
            "display_name": display,
            "vlmeval_model": "m",
            "endpoint_base_url": "http://127.0.0.1:9/v1",
        },
        "/api/evals/suites": {"name": name, "display_name": display, "tasks": ["demo-shapes-mcq"]},
    }


def _field_of(r: Any) -> list[str]:
    detail = r.json()["detail"]
    return [str(e["loc"][-1]) for e in detail] if isinstance(detail, list) else [detail]


@pytest.mark.parametrize("case", list(BAD_NAMES))
@pytest.mark.parametrize("route", list(_bodies()))
def test_bad_names_are_422_naming_the_field(clients: Any, route: str, case: str) -> None:
    r = clients.op.post(route, json=_bodies(name=BAD_NAMES[case])[route])
    assert r.status_code == 422, r.text
    assert "name" in _field_of(r), r.text
    listed = clients.op.get(route).json()["data"]
    assert all(x["name"] != BAD_NAMES[case] for x in listed), "nothing half-created"


@pytest.mark.parametrize("case", list(BAD_DISPLAY))
@pytest.mark.parametrize("route", list(_bodies()))
def test_bad_display_names_are_422_naming_the_field(clients: Any, route: str, case: str) -> None:
    r = clients.op.post(route, json=_bodies(name="fresh-one", display=BAD_DISPLAY[case])[route])
    assert r.status_code == 422 and "display_name" in _field_of(r), r.text
    assert clients.op.get(f"{route}/fresh-one").status_code == 404


@pytest.mark.parametrize("case", ["cyrillic a", "zero-width space", "nul", "too long"])
@pytest.mark.parametrize("field", ["task", "model"])
def test_bad_enrolment_names_are_422_naming_the_field(clients: Any, field: str, case: str) -> None:
    r = clients.op.post("/api/evals/enrolments", json={field: BAD_NAMES[case]})
    assert r.status_code == 422 and field in _field_of(r), r.text


def test_descriptions_keep_line_breaks_but_refuse_controls(clients: Any) -> None:
    body = _bodies(name="described")["/api/evals/suites"]
    r = clients.op.post("/api/evals/suites", json={**body, "description": "two\nlines\tok"})
    assert r.status_code == 201, r.text
    r = clients.op.post("/api/evals/suites", json={**body, "name": "d2", "description": "bell\x07"})
    assert r.status_code == 422 and "description" in _field_of(r), r.text
    r = clients.op.post("/api/evals/suites", json={**body, "name": "d3", "description": "x" * 4001})
    assert r.status_code == 422 and "description" in _field_of(r), r.text
