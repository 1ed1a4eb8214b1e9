// SVG chart helpers shared by the leaderboard page's views: one frame size, axes with grid lines, a y scale that
// keeps a little room around the values. No dependencies.
import { fmtScore } from "./common.js";

export const W = 560, H = 300, M = { l: 52, r: 16, t: 14, b: 40 };
export function svg(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
export function axes(root, xTicks, yTicks, xLabel, yLabel) {
  for (const [y, label] of yTicks) {
    root.append(svg("line", { x1: M.l, x2: W - M.r, y1: y, y2: y, class: "grid-line" }));
    const t = svg("text", { x: M.l - 6, y: y + 4, "text-anchor": "end" }); t.textContent = label; root.append(t);
  }
  for (const [x, label] of xTicks) {
    const t = svg("text", { x, y: H - M.b + 16, "text-anchor": "middle" }); t.textContent = label; root.append(t);
  }
  root.append(svg("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: "axis" }));
  root.append(svg("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: "axis" }));
  const xl = svg("text", { x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle" }); xl.textContent = xLabel; root.append(xl);
  const yl = svg("text", { x: 12, y: (M.t + H - M.b) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})` });
  yl.textContent = yLabel; root.append(yl);
}
export function yScale(values, scale) {
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!isFinite(lo)) { lo = 0; hi = scale; }
  if (hi - lo < scale * 0.05) { const mid = (hi + lo) / 2; lo = mid - scale * 0.05; hi = mid + scale * 0.05; }
  lo = Math.max(0, lo - (hi - lo) * 0.1); hi = Math.min(scale, hi + (hi - lo) * 0.1);
  if (hi <= lo) hi = lo + 1;
  const f = (v) => H - M.b - ((v - lo) / (hi - lo)) * (H - M.t - M.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((q) => { const v = lo + q * (hi - lo); return [f(v), fmtScore(v, scale)]; });
  return { f, ticks };
}
