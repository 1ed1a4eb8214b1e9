// Shared by every page of the VLM evals API (leaderboard, samples, compare): colour mode and theme tokens taken
// from the Airflow UI around us, fetch with Airflow's session cookie, DOM building, number/date formatting and
// the one colour per model used by every chart. An ES module, no build step; pages import what they use.
// The pages run inside the Airflow UI (iframe, same origin) and standalone; both work the same.

export const API = new URL("../", window.location.href).pathname.replace(/\/$/, ""); // …/api/evals
export const SITE = API.replace(/\/api\/evals$/, "");
export const $ = (id) => document.getElementById(id);

// ---------- theme ----------
function parentRoot() {
  try { return window.parent !== window ? window.parent.document.documentElement : null; } catch (e) { return null; }
}
// the colour mode: the Airflow UI around us, else its stored choice (localStorage "theme"), else the OS
function initialDark() {
  const root = parentRoot();
  if (root?.classList.contains("dark")) return true;
  if (root?.classList.contains("light")) return false;
  try {
    const t = localStorage.getItem("theme");
    if (t === "dark" || t === "light") return t === "dark";
  } catch (e) { /* storage blocked */ }
  return Boolean(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
}
document.documentElement.classList.add(initialDark() ? "dark" : "light"); // at import: before the page renders

const TOKENS = {
  "--bg": ["--chakra-colors-bg", "--chakra-colors-bg-panel"],
  "--bg-subtle": ["--chakra-colors-bg-subtle"],
  "--bg-muted": ["--chakra-colors-bg-muted"],
  "--fg": ["--chakra-colors-fg"],
  "--fg-muted": ["--chakra-colors-fg-muted"],
  "--border": ["--chakra-colors-border"],
  "--font": ["--chakra-fonts-body"],
};
// inside the Airflow UI: follow its light/dark class and copy its live colour tokens over ours
function syncTheme() {
  const root = parentRoot();
  if (!root) return;
  const dark = root.classList.contains("dark");
  document.documentElement.classList.toggle("dark", dark);
  document.documentElement.classList.toggle("light", !dark);
  const cs = window.parent.getComputedStyle(root);
  for (const [mine, theirs] of Object.entries(TOKENS)) {
    const v = theirs.map((t) => cs.getPropertyValue(t).trim()).find((x) => x);
    if (v) document.documentElement.style.setProperty(mine, v); else document.documentElement.style.removeProperty(mine);
  }
}
export function watchTheme(onChange = () => {}) {
  syncTheme();
  const root = parentRoot();
  if (!root) return;
  new MutationObserver(() => { syncTheme(); onChange(); })
    .observe(root, { attributes: true, attributeFilter: ["class", "style"] });
}

// ---------- DOM ----------
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
// the page's #alert line; an empty message hides it
export function showAlert(msg, kind = "ok", link = null) {
  const a = $("alert");
  a.replaceChildren(document.createTextNode(msg));
  if (link) a.append(el("a", { href: link.href, target: "_top", text: link.text }));
  a.className = `alert ${kind}`;
  a.hidden = !msg;
}

// ---------- API ----------
export function detailText(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return JSON.stringify(body);
}
// JSON from the evals API with the Airflow session cookie; a 401 shows a sign-in link and throws
// Error("unauthenticated"); another refusal throws an Error carrying the API's detail, status and body
export async function api(path, opts = {}) {
  const r = await fetch(API + path, {
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(opts.body ? { "Content-Type": "application/json" } : {}) },
    ...opts,
  });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) {
    const here = window.location.pathname;  // back here after signing in (the leaderboard: inside Airflow's UI)
    const back = here.endsWith("/ui/leaderboard") ? `${SITE}/plugin/leaderboard` : here + window.location.search;
    showAlert("You are not signed in to Airflow. ", "error",
      { href: `${SITE}/auth/login/?next=${encodeURIComponent(back)}`, text: "Sign in" });
    throw new Error("unauthenticated");
  }
  if (!r.ok) {
    const err = new Error(detailText(body) || `HTTP ${r.status}`);
    err.status = r.status; err.body = body;
    throw err;
  }
  return body;
}
// an error already shown (sign-in) is not shown again
export function reportError(prefix, e) {
  if (e.message !== "unauthenticated") showAlert(`${prefix}${e.message}`, "error");
}

// ---------- formatting ----------
export function fmtScore(v, scale) {
  if (v === null || v === undefined) return "–";
  return Number(v).toFixed(scale >= 10 ? 2 : 4);
}
export function fmtParams(p) { return p === null || p === undefined ? "–" : (p < 0.01 ? p.toExponential(1) : String(+p.toFixed(2))); }
// "12 req (4 cached) · $0.0004": what the LLM judge was asked (a run, or summed over a checkpoint's runs); "–": none
export function fmtJudge(r) {
  if (r.judge_requests === null || r.judge_requests === undefined) return "–";
  const cached = r.judge_cached ? ` (${r.judge_cached} cached)` : "";
  const cost = r.judge_cost_usd === null || r.judge_cost_usd === undefined ? "" : ` · $${r.judge_cost_usd.toFixed(4)}`;
  return `${r.judge_requests} req${cached}${cost}`;
}
export function fmtDate(s) { return s ? new Date(s).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "–"; }

// ---------- one colour per model ----------
export const PALETTE = ["#4f7fbf", "#d9822b", "#3fa46a", "#c9485b", "#8a63c7", "#2aa3a3", "#b8a32e", "#7a7f87",
  "#e377c2", "#17becf", "#8c564b", "#bcbd22"];
// model name -> colour, assigned once over every model a page shows (by name, so the same set gives the same
// colours on every load): every chart and legend reads its colour here, never from its own row order
export function modelColors(names) {
  const unique = [...new Set(names)].sort();
  return new Map(unique.map((n, i) => [n, PALETTE[i % PALETTE.length]]));
}
