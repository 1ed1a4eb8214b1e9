"""The run-samples page and the run-comparison page (iframe pages like the leaderboard, same sign-in, same
stylesheet). They only call the samples and compare endpoints; nothing is computed in the browser."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from vlmevals.api.deps import UserDep
from vlmevals.api.errors import responses
from vlmevals.api.routers.ui import STATIC

router = APIRouter(prefix="/ui", tags=["ui"])
HEADERS = {"Content-Security-Policy": "frame-ancestors 'self'", "Cache-Control": "no-cache"}


@router.get("/samples", response_class=HTMLResponse, responses=responses(401, 403))
def samples_page(user: UserDep) -> HTMLResponse:
    """A run's samples: image, question, prediction, answer; filter wrong/failed (`?run=<id>&outcome=wrong`)."""
    return HTMLResponse((STATIC / "samples.html").read_text(), headers=HEADERS)


@router.get("/compare", response_class=HTMLResponse, responses=responses(401, 403))
def compare_page(user: UserDep) -> HTMLResponse:
    """Two runs of one task compared (`?task=<name>&run_a=<id>&run_b=<id>`, or model_a/model_b)."""
    return HTMLResponse((STATIC / "compare.html").read_text(), headers=HEADERS)
