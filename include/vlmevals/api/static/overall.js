// The Overall view: a suite's model x task matrix from GET /suites/{suite}/leaderboard as a heat-coloured table.
// Sorting and paging are the endpoint's own (`sort`, `order`, `limit`, `offset`); nothing is ranked here.
// A cell links to its run on the task's board (highlighted there), a task's name to that board.
import { $, API, api, el, reportError } from "./common.js";

const st = { ready: false, suites: [], body: null, sort: "rank", order: null, offset: 0 };

// a sequential scale (light yellow: 0 -> dark blue: 100, colour-blind safe) on the normalised value; the text is
// black or white, whichever contrasts more with the cell
const STOPS = [[0, [255, 255, 217]], [25, [199, 233, 180]], [50, [65, 182, 196]], [75, [34, 94, 168]], [100, [8, 29, 88]]];
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
export function heat(value) {
  const v = Math.max(0, Math.min(100, value));
  let i = 0;
  while (i < STOPS.length - 2 && v > STOPS[i + 1][0]) i++;
  const [[a, ca], [b, cb]] = [STOPS[i], STOPS[i + 1]];
  const t = (v - a) / (b - a);
  const rgb = ca.map((c, k) => Math.round(c + (cb[k] - c) * t));
  const L = luminance(rgb);
  const fg = (L + 0.05) / 0.05 >= 1.05 / (L + 0.05) ? "#000000" : "#ffffff";
  return { bg: `rgb(${rgb.join(", ")})`, fg };
}

const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const taskLink = (task, pick, run = null) => {
  const q = new URLSearchParams({ view: "task", task, pick });
  if (run) q.set("run", String(run));
  return `leaderboard?${q}`;
};

export async function showOverall(params) {
  if (!st.ready) {
    try { st.suites = (await api("/suites?limit=1000")).data; } catch (e) { reportError("Could not load the suites: ", e); return; }
    const sel = $("ov-suite");
    for (const s of st.suites) sel.append(el("option", { value: s.name, text: s.display_name }));
    let stored = null;
    try { stored = localStorage.getItem("evals.overall.suite"); } catch (e) { /* private mode */ }
    const known = (n) => n && st.suites.some((s) => s.name === n);
    sel.value = [params.get("suite"), stored].find(known) || st.suites[0]?.name || "";
    if (params.get("pick") === "latest") $("ov-pick").value = "latest";
    $("ov-include-limited").checked = params.get("include_limited") === "true";
    if (["25", "50", "100"].includes(params.get("limit"))) $("ov-limit").value = params.get("limit");
    st.sort = params.get("sort") || "rank";
    st.order = ["asc", "desc"].includes(params.get("order")) ? params.get("order") : null;
    st.offset = Math.max(0, Number(params.get("offset")) || 0);
    const reset = () => { st.offset = 0; loadOverall(); };
    sel.addEventListener("change", () => { st.sort = "rank"; st.order = null; reset(); });
    $("ov-pick").addEventListener("change", reset);
    $("ov-include-limited").addEventListener("change", reset);
    $("ov-limit").addEventListener("change", reset);
    $("ov-prev").addEventListener("click", () => { st.offset = Math.max(0, st.offset - limit()); loadOverall(); });
    $("ov-next").addEventListener("click", () => { st.offset += limit(); loadOverall(); });
    st.ready = true;
  }
  if (!st.suites.length) { $("ov-desc").textContent = "No suites yet (POST /api/evals/suites or the seed file)."; return; }
  await loadOverall();
}

const limit = () => Number($("ov-limit").value);

function query() {
  const q = new URLSearchParams({ pick: $("ov-pick").value, sort: st.sort, limit: String(limit()), offset: String(st.offset) });
  if (st.order) q.set("order", st.order);
  if ($("ov-include-limited").checked) q.set("include_limited", "true");
  return q;
}

async function loadOverall() {
  const suite = $("ov-suite").value;
  try { localStorage.setItem("evals.overall.suite", suite); } catch (e) { /* private mode */ }
  const q = query();
  window.history.replaceState(null, "", `${window.location.pathname}?${new URLSearchParams({ view: "overall", suite, ...Object.fromEntries(q) })}`);
  try {
    st.body = await api(`/suites/${encodeURIComponent(suite)}/leaderboard?${q}`);
  } catch (e) {
    if (e.status === 422 && st.sort !== "rank") { st.sort = "rank"; st.order = null; return loadOverall(); }  // a stale sort
    reportError("Could not load the overall board: ", e);
    return;
  }
  $("ov-csv").href = `${API}/suites/${encodeURIComponent(suite)}/leaderboard?${q}&format=csv`;
  render();
}

function onSort(column) {
  if (st.body && st.body.sort === column) st.order = st.body.order === "asc" ? "desc" : "asc";
  else { st.sort = column; st.order = null; }
  st.sort = column;
  st.offset = 0;
  loadOverall();
}

function header(sortable) {
  const { suite, pick, sort, order } = st.body;
  const th = (column, label, cls = "", link = null) => {
    const cell = el("th", { class: cls, "data-sort": column, scope: "col" });
    if (link) cell.append(el("a", { href: link, title: `the ${label} board`, text: label }), " ");
    if (sortable) {
      const active = sort === column;
      cell.setAttribute("aria-sort", active ? (order === "asc" ? "ascending" : "descending") : "none");
      cell.append(el("button", { type: "button", class: `sort${active ? " active" : ""}`, title: `sort by ${label}`,
        text: `${link ? "" : label}${active ? (order === "asc" ? " ▲" : " ▼") : link ? "↕" : ""}` }));
      cell.addEventListener("click", (ev) => { if (!ev.target.closest("a")) onSort(column); });
    } else if (!link) cell.textContent = label;
    return cell;
  };
  return el("tr", {},
    th("rank", "Rank", "num"), th("model", "Model"), th("average", "Average", "num"), th("mean_rank", "Mean rank", "num"),
    th("covered", "Coverage", "num"),
    ...suite.tasks.map((t) => th(t.task, t.display_name, "num task", taskLink(t.task, pick))));
}

function row(r) {
  const { suite, pick } = st.body;
  const cells = suite.tasks.map((t) => {
    const c = r.cells[t.task];
    if (!c) return el("td", { class: "num missing muted", "data-task": t.task, text: "–", title: "no completed run" });
    const { bg, fg } = heat(c.value);
    const limited = c.limited ? ` · limited: ${c.sample_limit} samples` : "";
    return el("td", { class: "num heat-cell", "data-task": t.task, "data-value": c.value.toFixed(2), "data-limited": c.limited ? "true" : null, style: `background: ${bg}; color: ${fg}` },
      el("a", { href: taskLink(t.task, pick, c.run_id), style: `color: ${fg}`, title: `run #${c.run_id}: ${c.score} on the task's own scale${c.task_rank ? ` · rank ${c.task_rank} on this task` : ""}${limited}`, text: `${fmt(c.value)}${c.limited ? "*" : ""}` }));
  });
  return el("tr", { "data-model": r.model_name },
    el("td", { class: "num rank", text: r.rank === null ? "–" : String(r.rank) }),
    el("td", {}, el("span", { text: r.model_display_name }), el("div", { class: "muted small", text: r.model_name })),
    el("td", { class: "num score", text: fmt(r.average, 2) }),
    el("td", { class: "num", text: fmt(r.mean_rank, 2) }),
    el("td", { class: "num", text: r.coverage }),
    ...cells);
}

function render() {
  const b = st.body;
  const weights = b.suite.tasks.some((t) => t.weight !== 1) ? `; weights ${b.suite.tasks.map((t) => `${t.display_name} ${t.weight}`).join(", ")}` : "";
  $("ov-desc").textContent = `${b.suite.display_name}: ${b.suite.tasks.length} tasks, scores normalised to 0–100 (higher is better)${weights}. Click a column header to sort.`;
  const t = $("overall");
  t.querySelector("thead").replaceChildren(header(true));
  t.querySelector("tbody").replaceChildren(...b.data.map(row));
  $("overall-empty").hidden = b.data.length > 0;
  $("ov-partial-card").hidden = b.partial_count === 0;
  const p = $("overall-partial");
  p.querySelector("thead").replaceChildren(header(false));
  p.querySelector("tbody").replaceChildren(...b.partial.map(row));
  const total = Math.max(b.count, b.partial_count);
  const span = (n) => (n ? `${Math.min(st.offset + 1, n)}–${Math.min(st.offset + limit(), n)} of ${n}` : "0");
  $("ov-page").textContent = `ranked ${span(b.count)} · partial ${span(b.partial_count)}`;
  $("ov-prev").disabled = st.offset === 0;
  $("ov-next").disabled = st.offset + limit() >= total;
}
