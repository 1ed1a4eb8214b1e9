"""The leaderboard page (an iframe in the Airflow UI, signed in by Airflow's `_token` cookie) and what it needs
to know about the signed-in user."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse

from vlmevals.api.deps import UserDep, can_trigger, user_name
from vlmevals.api.errors import responses
from vlmevals.api.schemas.envelopes import Me
from vlmevals.core.errors import NotFoundError

STATIC = Path(__file__).resolve().parents[1] / "static"
ASSETS = {
    "common.js": "text/javascript",
    "leaderboard.js": "text/javascript",
    "charts.js": "text/javascript",
    "overall.js": "text/javascript",
    "checkpoints.js": "text/javascript",
    "leaderboard.css": "text/css",
    "icon.svg": "image/svg+xml",
}
router = APIRouter(tags=["ui"])


@router.get("/me", response_model=Me, responses=responses(401, 403))
def me(user: UserDep) -> Me:
    """The signed-in user and whether they may trigger evaluations (the page shows its button accordingly)."""
    return Me(username=user_name(user), can_trigger=can_trigger(user))


@router.get("/ui/leaderboard", response_class=HTMLResponse, responses=responses(401, 403))
def leaderboard_page(user: UserDep) -> HTMLResponse:
    """The leaderboard page shown in the Airflow UI's navigation."""
    return HTMLResponse(
        (STATIC / "leaderboard.html").read_text(),
        headers={"Content-Security-Policy": "frame-ancestors 'self'", "Cache-Control": "no-cache"},
    )


@router.get("/ui/static/{name}", response_class=FileResponse, responses=responses(401, 403, 404))
def static_asset(name: Annotated[str, PathParam(description="asset file name")], user: UserDep) -> FileResponse:
    if name not in ASSETS:
        raise NotFoundError(f"no asset {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})
