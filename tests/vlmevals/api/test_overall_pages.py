"""Rendered overall pages: the joined rows' JSON is exactly the validated page, pages are reused while the board
lives, gzip is answered only when accepted and holds the same bytes."""

from __future__ import annotations

import gzip
import json

import pytest
from vlmevals.api import overall_pages
from vlmevals.api.board_cache import CachedBoard
from vlmevals.api.schemas.overall import OverallBoardResponse
from vlmevals.db.models import Model, Suite, SuiteTask, Task
from vlmevals.results.overall import Cell, Row

API = "/api/evals"


def _board() -> tuple[Suite, CachedBoard]:
    tasks = [Task(name=n, display_name=n.upper(), higher_is_better=True, metric_scale=1.0) for n in ("a", "b")]
    suite = Suite(
        name="s", display_name="S", members=[SuiteTask(task=t, task_id=i, weight=1.0) for i, t in enumerate(tasks)]
    )
    models = [Model(name=f"m{i}", display_name=f"Model {i}", params_b=None if i else 7.5) for i in range(5)]
    ranked = [
        Row(
            m,
            {"a": Cell(10 + i, 0.9 - i / 10, 90.0 - 10 * i, i + 1), "b": Cell(20 + i, 0.5, 50.0, 1)},
            2,
            70.0 - 5 * i,
            i + 1,
            i + 1.0,
        )
        for i, m in enumerate(models[:4])
    ]
    partial = [Row(models[4], {"b": Cell(30, 0.2, 20.0)}, 1, 20.0)]
    return suite, CachedBoard(suite, "best", ranked, partial)


@pytest.mark.parametrize(
    ("sort", "order", "limit", "offset"), [("rank", None, 2, 1), ("b", "asc", 10, 0), ("model", "desc", 3, 9)]
)
def test_page_is_the_validated_body(sort: str, order: str | None, limit: int, offset: int) -> None:
    suite, board = _board()
    page = overall_pages.page(API, suite, board, sort, order, limit, offset)
    body = overall_pages.body(API, suite, board, sort, order, limit, offset)
    assert page.plain == body.model_dump_json().encode()
    assert OverallBoardResponse.model_validate_json(page.plain) == body
    assert json.loads(gzip.decompress(page.gzipped())) == json.loads(page.plain)


def test_pages_are_kept_with_their_board() -> None:
    suite, board = _board()
    first = overall_pages.page(API, suite, board, "rank", None, 2, 0)
    assert overall_pages.page(API, suite, board, "rank", None, 2, 0) is first
    assert overall_pages.page("/other/api/evals", suite, board, "rank", None, 2, 0).plain != first.plain  # links
    suite.display_name = "Renamed"
    assert b'"Renamed"' in overall_pages.page(API, suite, board, "rank", None, 2, 0).plain


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip, deflate", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        ("deflate, br", False),
    ],
)
def test_accepts_gzip(header: str, gzip_ok: bool) -> None:
    assert overall_pages.accepts_gzip(header) is gzip_ok


def test_respond_gzip_or_plain_same_content() -> None:
    page = overall_pages.RenderedPage(b'{"x":' + b"1" * 5000 + b"}")
    zipped = overall_pages.respond(page, "gzip, deflate")
    plain = overall_pages.respond(page, "identity")
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.body) == plain.body == page.plain
