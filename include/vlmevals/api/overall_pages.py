"""Rendered pages of a (cached) overall board, as JSON bytes plain and gzip-compressed.

At 1,000 models x 100 tasks a page of 100 rows is ~1.4 MB of JSON. Rendering it (10,000 cells validated and
dumped) took ~60 ms and Airflow's GZipMiddleware compressing it again on every request ~25 ms, so:
- a row is validated and dumped once, the first time a page shows it, and a page is the rows' JSON joined
  under a validated header (the same rows in another sort or offset cost a join). Only the page's rows: under a
  nightly the board is patched with every completion, and each patched board has new rows (ranks move), so
  rendering all 1,000 rows of it up front would cost ten times what the page needs;
- a page keeps its gzip bytes, answered with `Content-Encoding: gzip` (the middleware then passes them on
  untouched) when the client accepts gzip, the plain bytes otherwise.
Everything lives in the cached board's `rendered` dict (api.board_cache), so it is valid exactly as long as the board.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import Response
from pydantic import TypeAdapter
from pydantic_core import to_json

from vlmevals.api.board_cache import CachedBoard
from vlmevals.api.schemas.overall import (
    OverallBoardResponse,
    OverallCell,
    OverallColumn,
    OverallRow,
    OverallSuite,
)
from vlmevals.db.models import Suite
from vlmevals.results import overall

MAX_PAGES = 32  # pages kept per cached board and API root (page 1 in a few sorts is the common case)
# level 1: a miss compresses 1.4 MB in ~7 ms instead of ~18 ms at the middleware's 5, for ~15 % more bytes
GZIP_LEVEL = 1
_ROW = TypeAdapter(OverallRow)
_CELL = TypeAdapter(OverallCell)
_EMPTY_CELLS = b'"cells":{}}'  # how a row dumped without cells ends (its last field)
_TAIL = b'"data":[],"partial":[]}'  # how a header dumped with empty lists ends (the model's last two fields)


@dataclass
class RenderedPage:
    """One page's JSON; its gzip form made on first demand (a client without gzip never pays for it)."""

    plain: bytes
    _gzip: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self.plain, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzip


@dataclass
class _Renderings:
    rows: dict[int, bytes]  # id(row) -> the row's JSON (rows live as long as their board)
    pages: dict[tuple[Any, ...], RenderedPage] = field(default_factory=dict)


_lock = threading.Lock()


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (`gzip` or `*`, with a q-value above 0)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def respond(page: RenderedPage, accept_encoding: str) -> Response:
    """The page as gzip bytes when the client takes gzip, plain otherwise. `Vary` only on the gzip answer: the
    middleware passes an encoded body on untouched but adds `Vary` to a plain one itself."""
    if accepts_gzip(accept_encoding):
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(page.gzipped(), media_type="application/json", headers=headers)
    return Response(page.plain, media_type="application/json")


def _cell_data(api: str, c: overall.Cell) -> dict[str, Any]:
    return {
        "score": c.score,
        "value": c.value,
        "task_rank": c.task_rank,
        "run_id": c.run_id,
        "link": f"{api}/runs/{c.run_id}",
        "limited": c.sample_limit is not None,
        "sample_limit": c.sample_limit,
    }


def _row_head(row: overall.Row, tasks: int) -> dict[str, Any]:
    """An OverallRow's fields but its cells."""
    m = row.model
    return {
        "rank": row.rank,
        "model_name": m.name,
        "model_display_name": m.display_name,
        "params_b": m.params_b,
        "average": row.average,
        "mean_rank": row.mean_rank,
        "covered": row.covered,
        "coverage": f"{row.covered}/{tasks}",
    }


def row_data(api: str, suite_tasks: list[str], row: overall.Row) -> dict[str, Any]:
    """An OverallRow as plain data (validated in one go, many times faster than 100 OverallCell models)."""
    cells = {t: (_cell_data(api, c) if (c := row.cells.get(t)) else None) for t in suite_tasks}
    return {**_row_head(row, len(suite_tasks)), "cells": cells}


def _cell_json(api: str, c: overall.Cell) -> bytes:
    """A cell's validated JSON, kept on the cell (`Cell.memo`): a patched board shares most cells with the
    board it came from, so a page of a board patched a moment ago dumps only the cells that changed."""
    memo = c.memo
    if memo is not None and memo[0] == api:
        got: bytes = memo[1]
        return got
    got = _CELL.dump_json(_CELL.validate_python(_cell_data(api, c)))
    c.memo = (api, got)
    return got


def _row_json(api: str, keys: list[tuple[str, bytes]], row: overall.Row) -> bytes:
    """`row_data` validated and dumped, from the row's head (validated) and its cells' kept JSON (`keys`: each
    task's name and its JSON string): byte for byte what dumping the whole row gives."""
    head = _ROW.dump_json(_ROW.validate_python({**_row_head(row, len(keys)), "cells": {}}))
    if not head.endswith(_EMPTY_CELLS):  # the schema's last field moved: this module must follow
        raise RuntimeError("OverallRow must end with its cells")
    memo = row.memo  # the cells' JSON, kept on the row while its cells dict stays the same (Row.memo)
    if memo is not None and memo[0] == api and memo[1] is row.cells:
        cells: bytes = memo[2]
    else:
        cells = b",".join(
            b"%s:%s" % (key, _cell_json(api, c) if (c := row.cells.get(t)) else b"null") for t, key in keys
        )
        row.memo = (api, row.cells, cells)
    return b"%s{%s}}" % (head[: -len(_EMPTY_CELLS) + len(b'"cells":')], cells)


def _header(
    api: str, s: Suite, board: overall.OverallBoard, sort: str, order: overall.Order | None, count: int
) -> dict[str, Any]:
    """Everything of the response but its two lists of rows."""
    return dict(
        suite=OverallSuite(
            name=s.name,
            display_name=s.display_name,
            tasks=[
                OverallColumn(
                    task=m.task.name,
                    display_name=m.task.display_name,
                    weight=m.weight,
                    higher_is_better=m.task.higher_is_better,
                    metric_scale=m.task.metric_scale,
                    leaderboard=f"{api}/tasks/{m.task.name}/leaderboard",
                )
                for m in s.members
            ],
        ),
        pick=board.pick,
        include_limited=board.include_limited,
        sort=sort,
        order=order or overall.default_order(sort),
        count=count,
        partial_count=len(board.partial),
    )


def body(
    api: str, s: Suite, board: overall.OverallBoard, sort: str, order: overall.Order | None, limit: int, offset: int
) -> OverallBoardResponse:
    """The page as a validated model (what the CSV export writes from)."""
    rows = overall.sort_rows(board, sort, order)
    names = [m.task.name for m in s.members]
    return OverallBoardResponse.model_validate(
        dict(
            **_header(api, s, board, sort, order, len(rows)),
            data=[row_data(api, names, r) for r in rows[offset : offset + limit]],
            partial=[row_data(api, names, r) for r in board.partial[offset : offset + limit]],
        )
    )


def _renderings(api: str, board: CachedBoard) -> _Renderings:
    """What this board rendered for links under `api` (rows and pages, filled as pages ask for them)."""
    key = ("overall_pages", api)
    got: _Renderings | None = board.rendered.get(key)
    if got is None:
        with _lock:
            got = board.rendered.setdefault(key, _Renderings({}))
    return got


def _rows_json(api: str, s: Suite, r: _Renderings, rows: list[overall.Row]) -> bytes:
    """These rows' JSON, joined; each row validated and dumped the first time any page shows it."""
    keys: list[tuple[str, bytes]] | None = None
    out = []
    for row in rows:
        got = r.rows.get(id(row))
        if got is None:
            keys = keys or [(m.task.name, to_json(m.task.name)) for m in s.members]
            got = r.rows[id(row)] = _row_json(api, keys, row)
        out.append(got)
    return b",".join(out)


def page(
    api: str,
    s: Suite,
    board: CachedBoard,
    sort: str,
    order: overall.Order | None,
    limit: int,
    offset: int,
) -> RenderedPage:
    """The page's JSON: a cached page when this board rendered it before, else the rows' JSON joined."""
    r = _renderings(api, board)
    # what the page depends on beyond the (cached) board and its rows
    key = (sort, order, limit, offset, s.display_name, tuple(m.task.display_name for m in s.members))
    if (hit := r.pages.get(key)) is not None:
        return hit
    rows = overall.sort_rows(board, sort, order)
    head = OverallBoardResponse.model_validate(
        dict(**_header(api, s, board, sort, order, len(rows)), data=[], partial=[])
    )
    dumped = head.__pydantic_serializer__.to_json(head)
    if not dumped.endswith(_TAIL):  # the schema's last fields moved: this module must follow
        raise RuntimeError("OverallBoardResponse must end with its data and partial lists")
    data = _rows_json(api, s, r, rows[offset : offset + limit])
    partial = _rows_json(api, s, r, board.partial[offset : offset + limit])
    out = RenderedPage(b'%s"data":[%s],"partial":[%s]}' % (dumped[: -len(_TAIL)], data, partial))
    with _lock:
        if len(r.pages) >= MAX_PAGES:
            r.pages.clear()
        r.pages[key] = out
    return out
