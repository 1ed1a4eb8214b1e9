"""The leaderboard page's Overall and Checkpoints views in real headless Chromium, on data stored directly in
the DB: the heat-coloured matrix (readable text on every cell), a header click re-sorting through the API, a
cell linking to its run on the task's board (highlighted there, the `?run=N` fix), a header linking to the task's
board; the score-against-step chart (one line per task and the average, the best checkpoint, the drops).
Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.test_leaderboard_page import ARGS, CHROMIUM, sign_in
from tests.vlmevals.api.checkpoint_data import seed_checkpoints
from tests.vlmevals.api.conftest import add_run

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
OUT = Path(__file__).resolve().parents[2] / "test-artifacts"
VALUES = {  # normalised 0-100 per model: three cover the suite, one only the first task
    "ov-a": {"demo-shapes-mcq": 90, "demo-colors-vqa": 40, "demo-shapes-yorn": 80},
    "ov-b": {"demo-shapes-mcq": 20, "demo-colors-vqa": 60, "demo-shapes-yorn": 30},
    "ov-c": {"demo-shapes-mcq": 55, "demo-colors-vqa": 95, "demo-shapes-yorn": 50},
    "ov-d": {"demo-shapes-mcq": 70},
}

# the WCAG contrast ratio of each heat cell's link text against the cell, as rendered
CONTRASTS = """() => {
  const rgb = (s) => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => { const [r, g, b] = c.map(lin); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  return [...document.querySelectorAll("#overall td.heat-cell")].map((td) => {
    const a = lum(rgb(getComputedStyle(td).backgroundColor));
    const b = lum(rgb(getComputedStyle(td.querySelector("a")).color));
    return { bg: getComputedStyle(td).backgroundColor, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
  });
}"""


def _seed_overall(engine) -> dict[tuple[str, str], int]:
    from sqlalchemy import select
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import Model, Task

    with session_scope(engine) as s:
        s.add_all(Model(name=m, display_name=m.upper(), vlmeval_model=m) for m in VALUES)
        scales = dict(s.execute(select(Task.name, Task.metric_scale)).tuples().all())  # the seed's demo suite
    return {
        (m, t): add_run(engine, t, m, score=v * scales[t] / 100, finished_days_ago=1)
        for m, cells in VALUES.items()
        for t, v in cells.items()
    }


def _open(browser, api_url: str, errors: list[str]):
    """A signed-in page that records every uncaught script error."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, api_url)
    return page


def _first_models(page, n: int = 3) -> list[str]:
    return page.locator("#overall tbody tr").evaluate_all(f"rs => rs.slice(0, {n}).map(r => r.dataset.model)")


def test_overall_view(live_stack, seeded) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "needs Debian's chromium: scripts/install-browser.sh"
    runs = _seed_overall(seeded)
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        errors: list[str] = []
        try:
            page = _open(browser, live_stack.api_url, errors)
            page.goto(f"{live_stack.api_url}/api/evals/ui/leaderboard?view=overall&suite=demo")
            expect(page.locator("#overall tbody tr")).to_have_count(3, timeout=30_000)
            expect(page.locator("#overall-partial tbody tr[data-model=ov-d]")).to_be_visible()  # shown apart
            expect(page.locator("#view-task")).to_be_hidden()
            assert _first_models(page) == ["ov-a", "ov-c", "ov-b"]  # by rank: averages 70, 66.7, 36.7
            cells = page.evaluate(CONTRASTS)
            assert len(cells) == 9, cells
            assert len({c["bg"] for c in cells}) == 9, "one heat colour per distinct value"
            assert all(c["ratio"] >= 4.5 for c in cells), cells  # readable text on every cell
            page.screenshot(path=str(OUT / "leaderboard-overall.png"))

            header = page.locator('#overall th[data-sort="demo-colors-vqa"]')
            header.locator("button.sort").click()  # a task column: highest first
            expect(header).to_have_attribute("aria-sort", "descending")
            expect(page.locator("#overall tbody tr").first).to_have_attribute("data-model", "ov-c")
            assert _first_models(page) == ["ov-c", "ov-b", "ov-a"]
            assert parse_qs(urlparse(page.url).query)["sort"] == ["demo-colors-vqa"]
            header.locator("button.sort").click()  # again: the other way
            expect(header).to_have_attribute("aria-sort", "ascending")
            expect(page.locator("#overall tbody tr").first).to_have_attribute("data-model", "ov-a")
            page.locator('#overall th[data-sort="model"]').click()  # the header cell itself sorts too
            expect(page.locator('#overall th[data-sort="model"]')).to_have_attribute("aria-sort", "ascending")
            assert _first_models(page) == ["ov-a", "ov-b", "ov-c"]

            task_link = page.locator('#overall th[data-sort="demo-shapes-mcq"] a')
            q = parse_qs(urlparse(task_link.get_attribute("href") or "").query)
            assert q["view"] == ["task"] and q["task"] == ["demo-shapes-mcq"], q

            run_id = runs[("ov-c", "demo-shapes-mcq")]
            cell = page.locator('#overall tr[data-model="ov-c"] td[data-task="demo-shapes-mcq"] a')
            q = parse_qs(urlparse(cell.get_attribute("href") or "").query)
            assert q["task"] == ["demo-shapes-mcq"] and q["run"] == [str(run_id)], q
            cell.click()  # to the task's board, the run's row highlighted
            row = page.locator(f'#board tr[data-run="{run_id}"]')
            expect(row).to_have_class("highlight", timeout=30_000)
            expect(page.locator("#board tr.highlight")).to_have_count(1)
            expect(row).to_have_attribute("data-model", "ov-c")
        finally:
            browser.close()
    assert not errors, errors


def test_checkpoints_chart(live_stack, seeded) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "needs Debian's chromium: scripts/install-browser.sh"
    ids = seed_checkpoints(seeded)["checkpoints"]
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        errors: list[str] = []
        try:
            page = _open(browser, live_stack.api_url, errors)
            page.goto(f"{live_stack.api_url}/api/evals/ui/leaderboard?view=checkpoints&model=trainee")
            chart = page.locator("#ck-chart svg")
            expect(chart.locator("path.series")).to_have_count(4, timeout=30_000)  # acc, err, vqa + the average
            series = chart.locator("path.series").evaluate_all("ps => ps.map(p => p.dataset.series)")
            assert series == ["acc", "err", "vqa", "average"]
            expect(chart.locator("path.series.average")).to_have_count(1)
            expect(chart.locator(".best-marker")).to_have_count(1)
            expect(chart.locator(".best-marker")).to_have_attribute("data-checkpoint", str(ids["100"]))
            drops = chart.locator(".drop-marker").evaluate_all(
                "ms => ms.map(m => [m.dataset.series, m.dataset.checkpoint]).sort()"
            )
            assert drops == [["acc", str(ids["400"])], ["average", str(ids["400"])]]
            assert chart.locator(".drop-marker").first.evaluate("m => getComputedStyle(m).stroke") == "rgb(214, 39, 40)"
            expect(page.locator("#ck-chart .legend .key-drop")).to_be_visible()
            expect(page.locator("#ck-chart .legend .key-best")).to_be_visible()
            table = page.locator("#ck-table tbody tr")
            expect(table).to_have_count(6)
            expect(page.locator("#ck-table tr.best")).to_have_attribute("data-checkpoint", str(ids["100"]))
            expect(page.locator(f'#ck-table tr[data-checkpoint="{ids["400"]}"] td.drop')).to_have_count(2)
            assert parse_qs(urlparse(page.url).query) == {"view": ["checkpoints"], "model": ["trainee"]}
            page.screenshot(path=str(OUT / "leaderboard-checkpoints.png"))
        finally:
            browser.close()
    assert not errors, errors
