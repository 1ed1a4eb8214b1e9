// Leaderboard page of the VLM evals API. No build step, no dependencies: DOM + SVG, helpers from common.js.
// Served at {base}/api/evals/ui/leaderboard inside the Airflow UI (iframe, same origin): the browser sends
// Airflow's `_token` cookie with every fetch, so the API sees the signed-in Airflow user.
// Three views, picked by the tabs or `?view=`: the per-task board (this file), Overall (overall.js) and
// Checkpoints (checkpoints.js); each writes its own state into the URL, so every view is deep-linkable.
import { $, api, el, fmtDate, fmtJudge, fmtParams, fmtScore, modelColors, reportError, showAlert, watchTheme } from "./common.js";
import { axes, H, M, svg, W, yScale } from "./charts.js";
import { showCheckpoints } from "./checkpoints.js";
import { showOverall } from "./overall.js";

const state = { tasks: [], models: [], me: null, task: null, board: null, history: null, colors: new Map(), timer: null, lastActive: "", view: null, taskReady: false, runId: null, stopAsked: new Set() };
const VIEWS = { task: showTask, overall: showOverall, checkpoints: showCheckpoints };
function airflowLink(url, text) { return url ? el("a", { href: url, target: "_top", text }) : document.createTextNode(text); }
function color(model) { return state.colors.get(model); }

// ---------- load ----------
async function init() {
  watchTheme(renderCharts);
  try {
    [state.me, state.tasks, state.models] = await Promise.all([
      api("/me"), api("/tasks?limit=1000").then((r) => r.data), api("/models?limit=1000").then((r) => r.data),
    ]);
  } catch (e) {
    reportError("Could not load the catalogue: ", e);
    return;
  }
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => switchView(b.dataset.view));
  const params = new URLSearchParams(window.location.search);
  await switchView(VIEWS[params.get("view")] ? params.get("view") : "task", params);
  state.timer = setInterval(refreshActive, 3000);
}

async function switchView(view, params = new URLSearchParams()) {
  state.view = view;
  for (const v of Object.keys(VIEWS)) {
    $(`view-${v}`).hidden = v !== view;
    $(`tab-${v}`).setAttribute("aria-selected", String(v === view));
  }
  for (const e of document.querySelectorAll(".view-task-only")) e.hidden = view !== "task";
  showAlert("");
  await VIEWS[view](params);
}

async function showTask(params) {
  if (!state.taskReady) state.taskReady = await setupTask(params);
  if (state.taskReady) await load();
}

// the task view's controls, once; false when there is no task to show
async function setupTask(params) {
  state.runId = Number(params.get("run")) || null;
  const sel = $("task");
  for (const t of state.tasks) sel.append(el("option", { value: t.name, text: t.display_name }));
  if (!state.tasks.length) { showAlert("No tasks registered yet (POST /api/evals/tasks or `vlmevals seed`).", "error"); return false; }
  sel.value = await initialTask(params.get("task"));
  if (params.get("pick") === "latest") $("pick").value = "latest";
  $("include-limited").checked = params.get("include_limited") === "true";
  const ms = $("trigger-model");
  for (const m of state.models) ms.append(el("option", { value: m.name, text: `${m.display_name} (${m.name})` }));
  $("trigger-open").hidden = !state.me.can_trigger;
  sel.addEventListener("change", () => { state.lastActive = ""; state.runId = null; load(); });
  $("pick").addEventListener("change", load);
  $("include-limited").addEventListener("change", load);
  $("trigger-open").addEventListener("click", () => { $("trigger-form").hidden = false; });
  $("trigger-cancel").addEventListener("click", () => { $("trigger-form").hidden = true; });
  $("trigger-form").addEventListener("submit", onTrigger);
  return true;
}

// the task in the URL, else the one picked last time, else the task of the latest completed run, else the first
async function initialTask(fromUrl) {
  const known = (n) => n && state.tasks.some((t) => t.name === n);
  if (known(fromUrl)) return fromUrl;
  let stored = null;
  try { stored = localStorage.getItem("evals.leaderboard.task"); } catch (e) { /* private mode */ }
  if (known(stored)) return stored;
  try {
    const latest = await api("/runs?status=completed&limit=1");
    if (latest.data.length && known(latest.data[0].task_name)) return latest.data[0].task_name;
  } catch (e) { /* fall through */ }
  return state.tasks[0].name;
}

async function load() {
  const task = $("task").value;
  try { localStorage.setItem("evals.leaderboard.task", task); } catch (e) { /* private mode */ }
  state.task = state.tasks.find((t) => t.name === task);
  const q = new URLSearchParams({ view: "task", task, pick: $("pick").value });
  // limited runs (option `limit`) count only when asked for: on the board and in the score-over-time lines
  const limited = $("include-limited").checked ? "&include_limited=true" : "";
  if (limited) q.set("include_limited", "true");
  if (state.runId) q.set("run", String(state.runId));
  window.history.replaceState(null, "", `${window.location.pathname}?${q}`);
  try {
    const [board, history] = await Promise.all([
      api(`/tasks/${encodeURIComponent(task)}/leaderboard?pick=${$("pick").value}&limit=1000${limited}`),
      api(`/tasks/${encodeURIComponent(task)}/leaderboard/history?per_model=100${limited}`),
    ]);
    state.board = board; state.history = history;
  } catch (e) {
    reportError("Could not load the leaderboard: ", e);
    return;
  }
  // one colour per model over every chart and legend of the page
  state.colors = modelColors([...state.board.data, ...state.history.data].map((x) => x.model_name));
  renderHeader(); renderBoard(); renderCategories(); renderCharts();
  await markRun();
  await refreshActive();
}

// ---------- render ----------
function renderHeader() {
  const t = state.board.task;
  $("task-desc").textContent = `${t.display_name} · metric ${t.primary_metric_key} (0–${t.metric_scale})`;
  $("direction").textContent = t.higher_is_better ? "higher is better" : "lower is better";
  $("compare-open").href = `compare?task=${encodeURIComponent(t.name)}`;
}

function renderBoard() {
  const { data, unranked, task } = state.board;
  const tbody = $("board").querySelector("tbody");
  tbody.replaceChildren(...data.map((r) => {
    const score = el("td", { class: "num" }, el("span", { class: "score", text: fmtScore(r.score, task.metric_scale) }));
    if (r.ci_low !== null && r.ci_high !== null) {
      score.append(el("span", { class: "ci", text: `[${fmtScore(r.ci_low, task.metric_scale)}, ${fmtScore(r.ci_high, task.metric_scale)}]` }));
    }
    if (r.limited) score.append(" ", el("span", { class: "badge limited", title: "a run on the first samples only (option limit): not a full evaluation", text: `limited: ${r.sample_limit} samples` }));
    if (r.regression) score.append(" ", el("span", { class: "badge regression", title: "dropped against its previous run", text: "regression" }));
    if (r.drift && r.drift.length) score.append(" ", el("span", { class: "badge drift", title: `not comparable with the rest of the table: ${r.drift.join("; ")}`, text: "drift" }));
    const failed = r.samples_failed === null ? "–" : `${r.samples_failed}${r.samples_total ? ` / ${r.samples_total}` : ""}`;
    const mine = r.run_id === state.runId;
    return el("tr", { "data-model": r.model_name, "data-run": String(r.run_id), class: mine ? "highlight" : null, "aria-current": mine ? "true" : null },
      el("td", { class: "num rank", text: String(r.rank) }),
      el("td", {}, el("span", { text: r.model_display_name }), el("div", { class: "muted small", text: r.model_name })),
      el("td", { class: "num", text: fmtParams(r.params_b) }),
      score,
      el("td", { class: "num", text: failed }),
      el("td", { class: "num judge", text: fmtJudge(r) }),
      el("td", { text: fmtDate(r.finished_at) }),
      el("td", {}, airflowLink(r.links.airflow_run, `#${r.run_id}`),
        r.links.worker_log ? el("span", {}, " · ", el("a", { href: r.links.worker_log, target: "_blank", text: "log" })) : null,
        r.samples_total ? el("span", {}, " · ", el("a", { href: `samples?run=${r.run_id}&outcome=wrong`, text: "wrong answers" })) : null,
        r.samples_total && data[0].run_id !== r.run_id ? el("span", {}, " · ", el("a", { href: `compare?task=${encodeURIComponent(task.name)}&run_a=${data[0].run_id}&run_b=${r.run_id}`, title: `compare with ${data[0].model_display_name}`, text: "compare" })) : null),
    );
  }));
  $("board-empty").hidden = data.length > 0;
  const u = $("unranked");
  u.replaceChildren();
  if (unranked.length) {
    u.append("Not ranked (no completed run): ");
    unranked.forEach((x, i) => {
      if (i) u.append(", ");
      u.append(`${x.model_display_name} — `, el("span", { class: `badge ${x.latest_status}`, text: x.latest_status }));
    });
  }
}

// `?run=N` (the run's note in Airflow, the Overall and Checkpoints views link here): its row is highlighted;
// a run this board does not show (another pick, a checkpoint's run) is described, its model's row marked
async function markRun() {
  const id = state.runId;
  if (!id) return;
  const row = $("board").querySelector(`tr[data-run="${id}"]`);
  if (row) { row.scrollIntoView({ block: "center" }); return; }
  let run;
  try { run = await api(`/runs/${id}`); } catch (e) { reportError(`Run #${id}: `, e); return; }
  const shown = state.board.data.find((r) => r.model_name === run.model_name);
  const here = run.task_name === state.task.name;
  const mrow = here && shown ? $("board").querySelector(`tr[data-run="${shown.run_id}"]`) : null;
  if (mrow) { mrow.classList.add("highlight-model"); mrow.scrollIntoView({ block: "center" }); }
  const score = run.primary_metric === null ? run.status : fmtScore(run.primary_metric, run.metric_scale);
  const where = !here ? `a run of task ${run.task_name}`
    : shown ? `not the run this board shows for the model (#${shown.run_id}, ${$("pick").value} run)` : "not on this board";
  showAlert(`Run #${id} (${run.model_display_name}: ${score}) is ${where}. `, "ok",
    run.links.airflow_run ? { href: run.links.airflow_run, text: "Open it in Airflow" } : null);
}

function renderCategories() {
  const { data, task } = state.board;
  const keys = [];
  for (const r of data) for (const k of Object.keys(r.categories)) if (!keys.includes(k)) keys.push(k);
  const table = $("categories");
  $("categories-empty").hidden = keys.length > 0;
  table.hidden = keys.length === 0;
  table.querySelector("thead").replaceChildren(el("tr", {}, el("th", { text: "Model" }),
    ...keys.map((k) => el("th", { class: "num", text: k }))));
  table.querySelector("tbody").replaceChildren(...data.map((r) => el("tr", {},
    el("td", { text: r.model_display_name }),
    ...keys.map((k) => {
      const v = r.categories[k];
      const td = el("td", { class: "num" });
      if (v === undefined) { td.textContent = "–"; return td; }
      const frac = Math.max(0, Math.min(1, v / task.metric_scale));
      const good = task.higher_is_better ? frac : 1 - frac;
      td.append(el("span", { class: "heat", style: `background: color-mix(in oklch, var(--brand) ${Math.round(good * 45)}%, transparent)`, text: fmtScore(v, task.metric_scale) }));
      return td;
    }))));
}

// ---------- charts (SVG, helpers in charts.js) ----------
function renderSizeChart() {
  const box = $("size-chart");
  box.replaceChildren();
  const rows = (state.board?.data || []).filter((r) => r.params_b !== null && r.params_b > 0);
  if (!rows.length) { box.append(el("p", { class: "muted", text: "No ranked model with a known size." })); return; }
  const scale = state.board.task.metric_scale;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "score against model size" });
  const lx = rows.map((r) => Math.log10(r.params_b));
  let lo = Math.floor(Math.min(...lx)), hi = Math.ceil(Math.max(...lx));
  if (hi === lo) { lo -= 1; hi += 1; }
  const fx = (p) => M.l + 10 + ((Math.log10(p) - lo) / (hi - lo)) * (W - M.l - M.r - 20);
  const ys = yScale(rows.map((r) => r.score), scale);
  const xt = []; for (let e = lo; e <= hi; e++) xt.push([fx(10 ** e), e >= 0 ? `${10 ** e}B` : `${+(10 ** e).toPrecision(1)}B`]);
  axes(root, xt, ys.ticks, "parameters (billions, log scale)", "score");
  rows.forEach((r) => {
    const cx = fx(r.params_b), cy = ys.f(r.score);
    const c = svg("circle", { cx, cy, r: 6, fill: color(r.model_name), "fill-opacity": 0.85, "data-model": r.model_name });
    const title = svg("title"); title.textContent = `${r.model_display_name}: ${fmtScore(r.score, scale)} (${fmtParams(r.params_b)}B)`;
    c.append(title); root.append(c);
    const left = cx > W * 0.55;  // keep the label inside the chart
    const t = svg("text", { x: left ? cx - 9 : cx + 9, y: cy + 4, class: "label", "text-anchor": left ? "end" : "start" });
    t.textContent = r.model_display_name; root.append(t);
  });
  box.append(root);
}
function renderTimeChart() {
  const box = $("time-chart");
  box.replaceChildren();
  const series = (state.history?.data || []).filter((s) => s.points.length);
  if (!series.length) { box.append(el("p", { class: "muted", text: "No completed runs yet." })); return; }
  const scale = state.history.task.metric_scale;
  const all = series.flatMap((s) => s.points);
  const ts = all.map((p) => Date.parse(p.finished_at));
  let t0 = Math.min(...ts), t1 = Math.max(...ts);
  if (t1 - t0 < 60000) { t0 -= 3600000; t1 += 3600000; }
  const fx = (t) => M.l + 10 + ((t - t0) / (t1 - t0)) * (W - M.l - M.r - 20);
  const ys = yScale(all.map((p) => p.score), scale);
  const xt = [0, 0.5, 1].map((q) => { const t = t0 + q * (t1 - t0); return [fx(t), new Date(t).toLocaleDateString(undefined, { month: "short", day: "numeric" })]; });
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "score over time" });
  axes(root, xt, ys.ticks, "finished", "score");
  const legend = el("div", { class: "legend" });
  series.forEach((s) => {
    const c0 = color(s.model_name);
    const pts = s.points.map((p) => [fx(Date.parse(p.finished_at)), ys.f(p.score), p]);
    if (pts.length > 1) root.append(svg("polyline", { points: pts.map(([x, y]) => `${x},${y}`).join(" "), fill: "none", stroke: c0, "stroke-width": 2, "data-model": s.model_name }));
    for (const [x, y, p] of pts) {
      const c = svg("circle", { cx: x, cy: y, r: 3.5, fill: c0, "data-model": s.model_name });
      const title = svg("title"); title.textContent = `${s.model_display_name} · run ${p.run_id}: ${fmtScore(p.score, scale)} (${fmtDate(p.finished_at)})`;
      c.append(title); root.append(c);
    }
    legend.append(el("span", { style: `--c: ${c0}`, "data-model": s.model_name, text: s.model_display_name }));
  });
  box.append(root, legend);
}
function renderCharts() { if (state.board) { renderSizeChart(); renderTimeChart(); } }

// ---------- active runs, trigger, cancel ----------
async function refreshActive() {
  if (!state.task || state.view !== "task") return;
  refreshServers();  // its own table and errors: not tied to the task's runs
  let page;
  try {
    page = await api(`/tasks/${encodeURIComponent(state.task.name)}/runs?status=queued&status=running&limit=100`);
  } catch (e) { return; }
  const tbody = $("active").querySelector("tbody");
  tbody.replaceChildren(...page.data.map((r) => {
    const pct = r.progress === null ? null : Math.round(r.progress * 100);
    const prog = el("td", {});
    if (pct !== null) {
      const bar = el("div", { class: "progress" }, el("div", { style: `width:${pct}%` }));
      prog.append(bar, ` ${r.progress_done}/${r.progress_total}`);
    } else prog.textContent = "–";
    const act = el("td", {});
    if (state.me?.can_trigger) {
      const b = el("button", { class: "btn small danger", type: "button", text: "Cancel" });
      b.addEventListener("click", () => onCancel(r.id));
      act.append(b);
    }
    return el("tr", {},
      el("td", {}, airflowLink(r.links.airflow_run, `#${r.id}`)),
      el("td", { text: r.model_display_name }),
      el("td", {}, el("span", { class: `badge ${r.status}`, text: r.status })),
      prog,
      el("td", { class: "muted", text: `${fmtDate(r.created_at)}${r.triggered_by_user ? ` by ${r.triggered_by_user}` : ""}` }),
      act);
  }));
  $("active-empty").hidden = page.data.length > 0;
  $("active").hidden = page.data.length === 0;
  const sig = page.data.map((r) => r.id).join(",") || "-";
  if (state.lastActive && sig !== state.lastActive) {  // a run finished or started: the ranking may have moved
    state.lastActive = sig;
    await load();
    return;
  }
  state.lastActive = sig;
}

// ---------- model servers (GET /api/evals/servers): the live ones, then the last few over ----------
const RECENT_OVER = 3;
async function refreshServers() {
  let live, recent;
  try {
    [live, recent] = await Promise.all([api("/servers?live=true&limit=100"), api(`/servers?limit=${RECENT_OVER + 20}`)]);
  } catch (e) { return; }
  const liveIds = new Set(live.servers.map((s) => s.id));
  const over = recent.servers.filter((s) => !liveIds.has(s.id) && s.stopped_at).slice(0, RECENT_OVER);
  for (const id of state.stopAsked) if (!liveIds.has(id)) state.stopAsked.delete(id);
  $("servers").querySelector("tbody").replaceChildren(...live.servers.map((s) => serverRow(s, true)), ...over.map((s) => serverRow(s, false)));
  const none = live.servers.length + over.length === 0;
  $("servers-empty").hidden = !none;
  $("servers").hidden = none;
}

function serverRow(s, live) {
  const small = (text, title = null) => (text ? el("div", { class: "muted small", text, title }) : null);
  // a stop asked for (here, or recorded when the API says who asked) until its task takes it up (`stopping`)
  const asked = live && s.state !== "stopping" && Boolean(s.stop_requested_by || state.stopAsked.has(s.id));
  const act = el("td", {});
  if (live && !asked && s.state !== "stopping" && state.me?.can_trigger) {
    const b = el("button", { class: "btn small danger", type: "button", text: "Stop" });
    b.addEventListener("click", () => onStopServer(s));
    act.append(b);
  }
  const devices = s.devices === null ? null : s.devices === "" ? "CPU" : `devices ${s.devices}`;
  return el("tr", { "data-server": String(s.id), "data-state": s.state },
    el("td", { title: s.dag_run_id ? `model_server DAG run ${s.dag_run_id}` : null, text: `#${s.id}` },
      small([s.worker, s.pid ? `pid ${s.pid}` : null].filter(Boolean).join(" · "))),
    el("td", {}, el("span", { text: s.model }), small(s.checkpoint ? `checkpoint ${s.checkpoint}` : "as registered")),
    el("td", { class: "state" }, el("span", { class: `badge ${s.state}`, text: s.state }),
      asked ? el("span", {}, " ", el("span", { class: "badge stop-requested", title: s.stop_requested_by || "asked from this page", text: "stop requested" })) : null,
      s.reason ? el("div", { class: "reason small", title: s.reason, text: s.reason }) : null),
    el("td", { class: "engine", title: [s.args.join(" "), s.command].filter(Boolean).join("\n") || null, text: [s.engine, s.engine_version].filter(Boolean).join(" ") }),
    el("td", { class: "endpoint" }, s.base_url ? el("code", { text: s.base_url }) : "–"),
    el("td", { class: "gpus" }, el("span", { text: String(s.gpus) }), small(devices)),
    el("td", { class: "started" }, el("span", { text: s.started_at ? fmtDate(s.started_at) : `requested ${fmtDate(s.created_at)}` }),
      small(s.loads > 1 ? `${s.loads} loads (restarted)` : null), small(s.stopped_at ? `ended ${fmtDate(s.stopped_at)}` : null)),
    el("td", { class: "num requests", text: String(s.requests_served) }),
    el("td", { class: "num needing", text: String(s.runs_needing) }),
    el("td", { class: "idle", text: s.idle_since ? fmtDate(s.idle_since) : "–" }),
    act);
}

async function onStopServer(s) {
  const what = `${s.engine} server #${s.id} of ${s.model}${s.checkpoint ? ` (checkpoint ${s.checkpoint})` : ""}`;
  if (!window.confirm(`Stop the ${what}? Its engine stops and its GPUs are released; runs still using it fail saying who stopped it.`)) return;
  try {
    const after = await api(`/servers/${s.id}/stop`, { method: "POST" });
    if (after.stopped_at) showAlert(`Server #${s.id} stopped.`, "ok");
    else {
      state.stopAsked.add(s.id);
      showAlert(`Server #${s.id} asked to stop: its task stops the engine and releases its GPUs within a poll.`, "ok");
    }
  } catch (e) {
    reportError("Stop failed: ", e);
  }
  await refreshServers();
}

async function onTrigger(ev) {
  ev.preventDefault();
  const body = { model_name: $("trigger-model").value, force: $("trigger-force").checked, options: {} };
  const limit = $("trigger-limit").value;
  if (limit) body.options.limit = Number(limit);
  try {
    const run = await api(`/tasks/${encodeURIComponent(state.task.name)}/runs`, { method: "POST", body: JSON.stringify(body) });
    showAlert(`Triggered run #${run.id} (DAG run ${run.dag_run_id}). `, "ok", { href: run.links.airflow_run, text: "Open in Airflow" });
    $("trigger-form").hidden = true;
  } catch (e) {
    if (e.status === 409 && e.body?.existing_run_id) showAlert(`${e.message} `, "error", e.body.run?.links?.airflow_run ? { href: e.body.run.links.airflow_run, text: `Open run #${e.body.existing_run_id}` } : null);
    else reportError("Trigger failed: ", e);
  }
  await refreshActive();
}

async function onCancel(runId) {
  if (!window.confirm(`Cancel eval run #${runId}? Its running task and VLMEvalKit process are stopped.`)) return;
  try {
    await api(`/runs/${runId}/cancel`, { method: "POST" });
    showAlert(`Run #${runId} cancelled.`, "ok");
  } catch (e) {
    reportError("Cancel failed: ", e);
  }
  await refreshActive();
}

init();
