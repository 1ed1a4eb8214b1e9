"""Error mapping: every refusal is a 4xx whose `detail` names the problem and the fix; nothing becomes a 500.

Domain errors (vlmevals.core.errors) map to 404/409/422; database errors caused by input that slipped past
validation (a NUL character, a number out of range) map to 422; a concurrent duplicate insert to 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from vlmevals.airflow.dag_runs import AirflowTriggerError
from vlmevals.core.errors import ConflictError, EvalsError, InvalidRequestError, NotFoundError

log = logging.getLogger(__name__)


class ErrorResponse(BaseModel):
    detail: str


class InvalidInputResponse(BaseModel):
    """422: our own checks answer a sentence; FastAPI's request validation a list naming each field."""

    detail: str | list[dict[str, Any]]


_DESCRIPTIONS = {
    400: "The body is not JSON text (e.g. not UTF-8): send `Content-Type: application/json` with a JSON body",
    401: "Not authenticated: send `Authorization: Bearer <token>` (POST /auth/token) or the UI session cookie",
    403: "Authenticated, but the user may not do this (writes need the right to trigger eval_run)",
    404: "Unknown task, model, run or file",
    409: "Conflict: duplicate name, an active run of the same task x model, or a run that is already over",
    422: "Invalid input: the message names the field and the problem",
    503: "Airflow could not start the DAG run (e.g. eval_run not parsed yet); the eval run is marked failed",
}


def responses(*codes: int, conflict_model: type[BaseModel] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route, so the document lists every status it can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        model = conflict_model if (c == 409 and conflict_model) else InvalidInputResponse if c == 422 else ErrorResponse
        out[c] = {"description": _DESCRIPTIONS[c], "model": model}
    return out


def _json(code: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=code, content={"detail": detail, **extra})


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """Every method some route of `app` answers on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


# domain errors answered with their message alone (the most specific class registered wins)
_PLAIN_ERRORS: dict[type[Exception], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    AirflowTriggerError: status.HTTP_503_SERVICE_UNAVAILABLE,
    InvalidRequestError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    EvalsError: status.HTTP_400_BAD_REQUEST,
}


def _plain(code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return _json(code, str(exc))

    return handler


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            allow = ", ".join(allowed_methods(app, dict(request.scope)))
            exc = HTTPException(exc.status_code, exc.detail, headers={**(exc.headers or {}), "Allow": allow})
        return await http_exception_handler(request, exc)

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> JSONResponse:
        extra = {f"existing_{exc.existing}_id": exc.existing_id} if exc.existing_id is not None else {}
        run = getattr(exc, "run", None)
        if run is not None:
            extra["run"] = run
        return _json(status.HTTP_409_CONFLICT, str(exc), **extra)

    for exc_type, code in _PLAIN_ERRORS.items():
        app.add_exception_handler(exc_type, _plain(code))

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        log.info("rejected input the database cannot store: %s", exc.orig)
        return _json(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"a value cannot be stored: {str(exc.orig).splitlines()[0]} (e.g. NUL characters are not "
            "allowed in text); fix the input",
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        if getattr(exc.orig, "sqlstate", None) == "23514":  # check constraint: invalid value, not a conflict
            return _json(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid value: {str(exc.orig).splitlines()[0]}; fix the input"
            )
        return _json(
            status.HTTP_409_CONFLICT, f"the change conflicts with stored data: {str(exc.orig).splitlines()[0]}"
        )
