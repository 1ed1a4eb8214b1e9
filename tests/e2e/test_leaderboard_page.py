"""The leaderboard page in real headless Chromium: sign in on Airflow's login page, open "Leaderboard" from
the navigation, see the demo run's score; light and dark screenshots go to test-artifacts/ (and to docs/ when
UPDATE_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e.plugin_helpers import client, wait_dag, wait_dag_run_over, wait_run
from tests.vlmevals.api.conftest import add_run, add_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def sign_in(page, api_url: str, user: str = "admin") -> None:
    """Through Airflow's own login page (the stack's users have their name as password): the browser then holds
    the `_token` cookie."""
    page.goto(f"{api_url}/")
    page.wait_for_url("**/auth/login**", timeout=30_000)  # Airflow sends us to its login page
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(user)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{api_url}/", timeout=60_000)


def check_page(api_url: str, run: dict, out_dir: Path, docs_dir: Path | None = None) -> None:
    """Log in as admin, open the page from the nav, check the row and the theme, take screenshots."""
    from playwright.sync_api import expect, sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            sign_in(page, api_url)
            page.get_by_role("link", name="Leaderboard").click()
            page.wait_for_url("**/plugin/leaderboard**", timeout=30_000)
            frame = page.frame_locator("iframe")
            row = frame.locator(f'#board tr[data-model="{run["model_name"]}"]')
            expect(row).to_be_visible(timeout=30_000)
            expect(row.locator(".score")).to_have_text(f"{run['primary_metric']:.4f}")
            expect(row.locator("td.rank")).to_have_text("1")
            expect(frame.locator("#trigger-open")).to_be_visible()  # admin may trigger
            expect(frame.locator("#size-chart svg circle")).to_have_count(1)
            expect(frame.locator("#time-chart svg circle")).to_have_count(1)
            expect(frame.locator("#categories tbody tr")).to_have_count(1)
            page.wait_for_timeout(500)
            shots = [out_dir / "leaderboard.png"]
            page.screenshot(path=str(shots[0]))
            # dark mode, the Airflow way (its colour-mode setting lives in localStorage "theme")
            page.evaluate("localStorage.setItem('theme', 'dark')")
            page.reload()
            expect(frame.locator(f'#board tr[data-model="{run["model_name"]}"]')).to_be_visible(timeout=30_000)
            assert "dark" in (frame.locator("html").get_attribute("class") or "")
            bg = frame.locator("body").evaluate("e => getComputedStyle(e).backgroundColor")
            assert bg != "rgb(255, 255, 255)", "dark mode not followed"
            page.wait_for_timeout(500)
            shots.append(out_dir / "leaderboard-dark.png")
            page.screenshot(path=str(shots[1]))
            if docs_dir is not None:
                docs_dir.mkdir(exist_ok=True)
                for s in shots:
                    (docs_dir / s.name).write_bytes(s.read_bytes())
        finally:
            browser.close()


def test_leaderboard_page_in_airflow_ui(live_stack, seeded, demo_assets) -> None:
    assert Path(CHROMIUM).exists(), "needs Debian's chromium: apt-get install -y chromium (scripts/install-browser.sh)"
    op = client(live_stack, "op")
    wait_dag(op)
    r = op.post("/api/evals/tasks/demo-shapes-mcq/runs", json={"model_name": "demo-tiny-idefics3"})
    assert r.status_code == 201, r.text
    run = wait_run(op, r.json()["id"])
    assert run["status"] == "completed", run["error"]
    wait_dag_run_over(op, run["dag_run_id"])  # its teardown too: later tests' `seeded` reuses the run ids
    docs = ROOT / "docs" if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1" else None
    check_page(live_stack.api_url, run, ROOT / "test-artifacts", docs)


# what a user sees: the fill of each model's dots in both charts and its legend swatch, as rendered
SEEN_COLOURS = """() => {
  const seen = {};
  const put = (chart, model, colour) => ((seen[model] ??= {})[chart] ??= new Set()).add(colour);
  for (const c of document.querySelectorAll("#size-chart svg circle"))
    put("size", c.querySelector("title").textContent.split(":")[0], getComputedStyle(c).fill);
  for (const c of document.querySelectorAll("#time-chart svg circle"))
    put("time", c.querySelector("title").textContent.split(" · ")[0], getComputedStyle(c).fill);
  for (const s of document.querySelectorAll("#time-chart .legend span"))
    put("legend", s.textContent, getComputedStyle(s, "::before").backgroundColor);
  return Object.fromEntries(Object.entries(seen).map(([m, by]) =>
    [m, Object.fromEntries(Object.entries(by).map(([k, v]) => [k, [...v]]))]));
}"""


def test_one_colour_per_model_across_charts(live_stack, seeded) -> None:
    """Models ranked in a different order than the history lists them: each keeps one colour in the size
    chart, the time chart and its legend, and no two models share one (the page opened standalone)."""
    from playwright.sync_api import expect, sync_playwright
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import Model

    sizes = {"zeta-vlm": 1.0, "alpha-vlm": 7.0, "mid-vlm": 3.0}
    with session_scope(seeded) as s:
        s.add_all(Model(name=n, display_name=n.upper(), vlmeval_model=n, params_b=p) for n, p in sizes.items())
    for i, (name, score) in enumerate([("zeta-vlm", 0.9), ("alpha-vlm", 0.5), ("mid-vlm", 0.7)]):
        for day in (3, 1):  # two points each: a line per model in "Score over time"
            add_run(seeded, "demo-shapes-mcq", name, score=score - 0.05 * day, finished_days_ago=day + i / 10)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            sign_in(page, live_stack.api_url)
            page.goto(f"{live_stack.api_url}/api/evals/ui/leaderboard?task=demo-shapes-mcq")
            expect(page.locator("#size-chart svg circle")).to_have_count(3, timeout=30_000)
            expect(page.locator("#time-chart svg circle")).to_have_count(6)
            seen = page.evaluate(SEEN_COLOURS)
        finally:
            browser.close()
    assert set(seen) == {n.upper() for n in sizes}, seen
    for model, by_chart in seen.items():
        assert set(by_chart) == {"size", "time", "legend"}, (model, by_chart)
        colours = {c for cs in by_chart.values() for c in cs}
        assert len(colours) == 1, f"{model} is drawn in {by_chart}"
    assert len({next(iter(by["size"])) for by in seen.values()}) == 3, f"two models share a colour: {seen}"


def test_limited_runs_shown_on_request_with_a_badge(live_stack, seeded) -> None:
    """A smoke test (`limit: 5`, 20.00) after a full run (10.00): the page ranks the full run and draws one point
    over time; with `include_limited=true` (the checkbox ticked) the limited run shows, badged, as a second point."""
    from playwright.sync_api import expect, sync_playwright

    task, model = "demo-shapes-yorn", "demo-tiny-idefics3"
    add_run(seeded, task, model, score=10.0, finished_days_ago=2)
    add_run(seeded, task, model, score=20.0, finished_days_ago=1, options={"limit": 5})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            sign_in(page, live_stack.api_url)
            page.goto(f"{live_stack.api_url}/api/evals/ui/leaderboard?task={task}")
            row = page.locator(f'#board tr[data-model="{model}"]')
            expect(row.locator(".score")).to_have_text("10.00", timeout=30_000)
            expect(row.locator(".badge.limited")).to_have_count(0)
            expect(page.locator("#time-chart svg circle")).to_have_count(1)
            expect(page.locator("#include-limited")).not_to_be_checked()
            page.locator("#include-limited").check()
            expect(row.locator(".score")).to_have_text("20.00", timeout=30_000)
            expect(row.locator(".badge.limited")).to_have_text("limited: 5 samples")
            expect(page.locator("#time-chart svg circle")).to_have_count(2)
            assert "include_limited=true" in page.url
            page.goto(f"{live_stack.api_url}/api/evals/ui/leaderboard?task={task}&include_limited=true")
            expect(page.locator("#include-limited")).to_be_checked(timeout=30_000)
            expect(row.locator(".badge.limited")).to_have_text("limited: 5 samples", timeout=30_000)
        finally:
            browser.close()


def _see_servers(page, live: int, failed: int) -> None:
    """The servers panel shows the live server first, then the failed one, each with its fields."""
    from playwright.sync_api import expect

    rows = page.locator("#servers tbody tr")
    expect(rows).to_have_count(2, timeout=30_000)
    assert rows.nth(0).get_attribute("data-server") == str(live), "live servers first"
    row = page.locator(f'#servers tr[data-server="{live}"]')
    expect(row.locator(".state .badge")).to_have_text("ready")
    expect(row).to_contain_text("checkpoint step 100")
    expect(row.locator(".engine")).to_have_text("vllm 0.11.0")
    expect(row.locator(".endpoint")).to_have_text("http://127.0.0.1:18018/v1")
    expect(row.locator(".gpus")).to_have_text("2devices 0,1")
    expect(row.locator(".requests")).to_have_text("12")
    expect(row.locator(".needing")).to_have_text("0")
    expect(row.locator(".idle")).to_have_text(re.compile(r"\d"))  # a date, not the dash of "never idle"
    expect(row.locator(".started")).not_to_contain_text("requested")
    bad = page.locator(f'#servers tr[data-server="{failed}"]')
    expect(bad.locator(".state .badge")).to_have_text("failed")
    expect(bad.locator(".reason")).to_have_text("vllm exited with code 1: CUDA out of memory")
    expect(bad.locator(".started")).to_contain_text("ended")


def test_servers_panel_shows_model_servers_and_stops_one(live_stack, seeded) -> None:
    """A ready server (with a checkpoint and a run it served) and a failed one, rows as their `model_server` task
    leaves them: a viewer sees both with their fields and no Stop button; admin stops the ready one from the page
    and its row says the stop was asked for (no task runs it here, so it stays until one would take it up)."""
    import datetime as dt

    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import ModelServer

    idle = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    failed = add_server(seeded, "internvl2.5-2b", state="failed", reason="vllm exited with code 1: CUDA out of memory")
    live = add_server(seeded, "demo-tiny-idefics3", checkpoint_step=100, idle_since=idle)
    add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", score=0.5, server_id=live, progress_done=12)
    page_url = f"{live_stack.api_url}/api/evals/ui/leaderboard?task=demo-shapes-mcq"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            viewer = browser.new_context().new_page()
            sign_in(viewer, live_stack.api_url, "viewer")
            viewer.goto(page_url)
            _see_servers(viewer, live, failed)
            expect(viewer.locator("#servers").get_by_role("button", name="Stop")).to_have_count(0)  # no permission

            admin = browser.new_context().new_page()
            sign_in(admin, live_stack.api_url)
            admin.goto(page_url)
            row = admin.locator(f'#servers tr[data-server="{live}"]')
            expect(admin.locator("#servers").get_by_role("button", name="Stop")).to_have_count(1, timeout=30_000)
            admin.once("dialog", lambda d: d.accept())
            row.get_by_role("button", name="Stop").click()
            expect(admin.locator("#alert")).to_contain_text(f"Server #{live} asked to stop", timeout=30_000)
            expect(row.locator(".badge.stop-requested")).to_have_text("stop requested")
            expect(row.get_by_role("button", name="Stop")).to_have_count(0)
            (ROOT / "test-artifacts").mkdir(exist_ok=True)
            admin.locator("#servers").screenshot(path=str(ROOT / "test-artifacts" / "leaderboard-servers.png"))
        finally:
            browser.close()
    with session_scope(seeded) as s:
        asked = s.scalars(select(ModelServer.stop_requested_by).where(ModelServer.id == live)).one()
    assert asked == f"user admin (POST /api/evals/servers/{live}/stop)"
