// Hand-drawn SVG charts: a column chart over time. Scales with its container (viewBox), names
// itself for screen readers (role="img" and a summary), and shows each column's value on hover.

import { h } from './dom.js';

const WIDTH = 420;
const HEIGHT = 180;
const PAD = { top: 12, right: 6, bottom: 26, left: 60 };

/** A tidy upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

/**
 * `points`: [{label, value}] in time order; `format(value)` writes a value; `every`: label one
 * column in this many.
 */
export function columns(title, points, format, every = 1) {
  const max = niceMax(Math.max(0, ...points.map((p) => p.value)));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const step = plotW / Math.max(points.length, 1);
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const peak = points.reduce((best, p) => (p.value > (best ? best.value : -1) ? p : best), null);
  const summary = points.length
    ? `${title}: ${format(total)} in total; highest ${peak ? `${format(peak.value)} at ${peak.label}` : '–'}`
    : `${title}: no data`;
  const svg = h('svg:svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img', 'aria-label': summary,
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = PAD.top + plotH * (1 - fraction);
    svg.append(
      h('svg:line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'grid' }),
      h('svg:text', { x: PAD.left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, format(max * fraction)));
  }
  points.forEach((p, i) => {
    const height = max ? (p.value / max) * plotH : 0;
    const x = PAD.left + i * step;
    const column = h('svg:rect', {
      x: x + step * 0.12, y: PAD.top + plotH - height, width: Math.max(step * 0.76, 1),
      height: Math.max(height, p.value > 0 ? 1 : 0), class: 'column',
    }, h('svg:title', {}, `${p.label}: ${format(p.value)}`));
    svg.append(column);
    if (i % every === 0) {
      svg.append(h('svg:text', { x: x + step / 2, y: HEIGHT - 8, class: 'axis', 'text-anchor': 'middle' }, p.shortLabel || p.label));
    }
  });
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), svg);
}
