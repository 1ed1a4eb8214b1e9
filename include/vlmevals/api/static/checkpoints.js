// The Checkpoints view: a model's checkpoints on a suite (GET /models/{name}/checkpoints/scores) as score
// against step, one line per task and one for the suite average, the best checkpoint and the drops marked,
// and a table with the same numbers. All numbers and flags come from the API; nothing is recomputed here.
import { $, api, el, fmtDate, fmtJudge, modelColors, reportError } from "./common.js";
import { axes, H, M, svg, W, yScale } from "./charts.js";

const st = { ready: false, models: [], data: null };
const AVERAGE = "average";
const name = (c) => (c.step === null ? c.label : `step ${c.step}`);
const fmt = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(1));

export async function showCheckpoints(params) {
  if (!st.ready) {
    let suites;
    try {
      [st.models, suites] = await Promise.all([api("/checkpoint-scores").then((r) => r.data), api("/suites?limit=1000").then((r) => r.data)]);
    } catch (e) { reportError("Could not load the models with checkpoints: ", e); return; }
    const ms = $("ck-model");
    for (const m of st.models) ms.append(el("option", { value: m.name, text: `${m.display_name} (${m.checkpoints} checkpoints)` }));
    const ss = $("ck-suite");
    for (const s of suites) ss.append(el("option", { value: s.name, text: s.display_name }));
    if (st.models.some((m) => m.name === params.get("model"))) ms.value = params.get("model");
    if (suites.some((s) => s.name === params.get("suite"))) ss.value = params.get("suite");
    ms.addEventListener("change", loadCheckpoints);
    ss.addEventListener("change", loadCheckpoints);
    st.ready = true;
  }
  if (!st.models.length) {
    $("ck-desc").textContent = "No model has checkpoints yet (POST /api/evals/models/{name}/checkpoints).";
    return;
  }
  await loadCheckpoints();
}

async function loadCheckpoints() {
  const model = $("ck-model").value, suite = $("ck-suite").value;
  const q = new URLSearchParams({ view: "checkpoints", model });
  if (suite) q.set("suite", suite);
  window.history.replaceState(null, "", `${window.location.pathname}?${q}`);
  try {
    st.data = await api(`/models/${encodeURIComponent(model)}/checkpoints/scores${suite ? `?suite=${encodeURIComponent(suite)}` : ""}`);
  } catch (e) {
    st.data = null;
    $("ck-chart").replaceChildren();
    $("ck-table").querySelector("tbody").replaceChildren();
    if (e.status === 422 || e.status === 404) $("ck-desc").textContent = e.message; else reportError("Could not load the checkpoint scores: ", e);
    return;
  }
  const d = st.data;
  $("ck-desc").textContent = `${d.model} on ${d.suite}: scores normalised to 0–100 (higher is better); the average is weighted over the tasks each checkpoint covers; a drop is a fall against the previous checkpoint (the average's tolerance: ${d.average_tolerance.toFixed(2)} points).`;
  renderChart();
  renderTable();
}

// x positions: checkpoints with a step on a linear step axis, label-only ones after it, evenly spaced
function xPositions(cps) {
  const left = M.l + 12, right = W - M.r - 12;
  const stepped = cps.filter((c) => c.step !== null), labelled = cps.filter((c) => c.step === null);
  const split = labelled.length ? (stepped.length ? right - Math.min(0.4, 0.12 * labelled.length) * (right - left) : left) : right;
  const lo = Math.min(...stepped.map((c) => c.step)), hi = Math.max(...stepped.map((c) => c.step));
  const pos = new Map();
  for (const c of stepped) pos.set(c.id, hi > lo ? left + ((c.step - lo) / (hi - lo)) * (split - left) : (left + split) / 2);
  const gap = labelled.length ? (right - split) / labelled.length : 0;
  labelled.forEach((c, i) => pos.set(c.id, split + gap * (i + (stepped.length ? 1 : 0.5))));
  return { pos, split: stepped.length && labelled.length ? split + gap / 2 : null };
}

function seriesOf(d) {
  const colors = modelColors(d.tasks.map((t) => t.name));
  return [
    ...d.tasks.map((t) => ({ key: t.name, label: t.display_name, color: colors.get(t.name),
      value: (c) => c.scores[t.name]?.score ?? null, drop: (c) => Boolean(c.scores[t.name]?.drop) })),
    { key: AVERAGE, label: "suite average", color: "var(--fg)", value: (c) => c.average, drop: (c) => c.average_drop },
  ];
}

function renderChart() {
  const d = st.data, box = $("ck-chart");
  box.replaceChildren();
  const cps = d.checkpoints;
  if (!cps.length) { box.append(el("p", { class: "muted", text: "This model has no checkpoints." })); return; }
  const series = seriesOf(d);
  const all = cps.flatMap((c) => series.map((s) => s.value(c))).filter((v) => v !== null);
  const ys = yScale(all.length ? all : [0, 100], 100);
  const { pos, split } = xPositions(cps);
  const every = Math.ceil(cps.length / 10);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "score against training step" });
  axes(root, cps.filter((_, i) => i % every === 0).map((c) => [pos.get(c.id), c.step === null ? c.label : String(c.step)]), ys.ticks, "training step", "score (0–100)");
  if (split) root.append(svg("line", { x1: split, x2: split, y1: M.t, y2: H - M.b, class: "grid-line" }));
  const best = cps.find((c) => c.best);
  if (best) root.append(svg("line", { x1: pos.get(best.id), x2: pos.get(best.id), y1: M.t, y2: H - M.b, class: "best-line" }));
  for (const s of series) drawSeries(root, s, cps, pos, ys);
  if (best) {
    const x = pos.get(best.id), y = ys.f(best.average);
    const star = svg("path", { d: starPath(x, y, 9), class: "best-marker", "data-checkpoint": String(best.id) });
    const t = svg("title"); t.textContent = `best: ${name(best)}, average ${fmt(best.average)}`; star.append(t); root.append(star);
  }
  const legend = el("div", { class: "legend" },
    ...series.map((s) => el("span", { style: `--c: ${s.color}`, "data-series": s.key, text: s.label })),
    el("span", { class: "key-drop", text: "drop against the previous checkpoint" }),
    el("span", { class: "key-best", text: "best checkpoint (highest average, every task covered)" }));
  box.append(root, legend);
}

function drawSeries(root, s, cps, pos, ys) {
  let d = "", pen = "M";
  const points = [];
  for (const c of cps) {
    const v = s.value(c);
    if (v === null) { pen = "M"; continue; }  // a gap: the line breaks where a checkpoint has no result
    const x = pos.get(c.id), y = ys.f(v);
    d += `${pen}${x.toFixed(1)},${y.toFixed(1)} `; pen = "L";
    points.push([x, y, v, c]);
  }
  const avg = s.key === AVERAGE;
  root.append(svg("path", { d: d.trim() || "M0,0", fill: "none", stroke: s.color, "stroke-width": avg ? 3 : 2, class: `series${avg ? " average" : ""}`, "data-series": s.key }));
  for (const [x, y, v, c] of points) {
    const dot = svg("circle", { cx: x, cy: y, r: avg ? 4 : 3, fill: s.color, class: "point", "data-series": s.key });
    const t = svg("title"); t.textContent = `${s.label} · ${name(c)}: ${fmt(v)}`; dot.append(t); root.append(dot);
    if (s.drop(c)) {
      const m = svg("circle", { cx: x, cy: y, r: 7, class: "drop-marker", "data-series": s.key, "data-checkpoint": String(c.id) });
      const mt = svg("title"); mt.textContent = `drop: ${s.label} at ${name(c)} fell against the previous checkpoint`; m.append(mt); root.append(m);
    }
  }
}

function starPath(cx, cy, r) {
  const pts = [];
  for (let i = 0; i < 10; i++) {
    const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = i % 2 ? r * 0.45 : r;
    pts.push(`${(cx + rr * Math.cos(a)).toFixed(1)},${(cy + rr * Math.sin(a)).toFixed(1)}`);
  }
  return `M${pts.join("L")}Z`;
}

function renderTable() {
  const d = st.data, t = $("ck-table");
  const runLink = (task, run) => `leaderboard?${new URLSearchParams({ view: "task", task, run: String(run) })}`;
  t.querySelector("thead").replaceChildren(el("tr", {}, el("th", { text: "Checkpoint" }), el("th", { text: "Registered" }),
    ...d.tasks.map((x) => el("th", { class: "num", text: x.display_name })),
    el("th", { class: "num", text: "Average" }), el("th", { class: "num", text: "Coverage" }),
    el("th", { class: "num", title: "requests to the LLM judge of the runs shown, and what they cost", text: "Judge" })));
  const dropBadge = () => el("span", { class: "badge regression", title: "fell against the previous checkpoint", text: "drop" });
  t.querySelector("tbody").replaceChildren(...d.checkpoints.map((c) => el("tr", { "data-checkpoint": String(c.id), class: c.best ? "best" : null },
    el("td", {}, el("span", { text: name(c) }), c.best ? el("span", {}, " ", el("span", { class: "badge best", text: "best" })) : null),
    el("td", { class: "muted", text: fmtDate(c.created_at) }),
    ...d.tasks.map((x) => {
      const cell = c.scores[x.name];
      if (!cell) return el("td", { class: "num muted", text: "–" });
      return el("td", { class: `num${cell.drop ? " drop" : ""}`, "data-task": x.name },
        el("a", { href: runLink(x.name, cell.run_id), title: `run #${cell.run_id}`, text: fmt(cell.score) }), cell.drop ? " " : null, cell.drop ? dropBadge() : null);
    }),
    el("td", { class: `num score${c.average_drop ? " drop" : ""}` }, fmt(c.average), c.average_drop ? " " : null, c.average_drop ? dropBadge() : null),
    el("td", { class: "num", text: `${c.coverage}/${d.tasks.length}` }),
    el("td", { class: "num judge", text: fmtJudge(c) }))));
}
