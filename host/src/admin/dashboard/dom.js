// DOM and formatting helpers. Everything shown is built with these (text nodes, never
// innerHTML), so a model name or an error message can never become markup.

/** An element: h('td', {class: 'num'}, 'text', child, ...). `on*` attributes are listeners. */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** A table with a caption and column headers; `rows` are arrays of cells or <tr>s. */
export function table(caption, headers, rows, opts = {}) {
  const head = h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col' }, text))));
  const body = h('tbody', {}, rows.map((row) => (row instanceof Node ? row
    : h('tr', {}, row.map((cell) => (cell instanceof Node && cell.tagName === 'TD' ? cell : h('td', {}, cell)))))));
  const t = h('table', { class: opts.class || null }, h('caption', {}, caption), head, body);
  // A scrollable region a keyboard can reach, named after the table.
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption }, t);
}

export function num(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function usd(n) {
  if (n === null || n === undefined) return '–';
  if (n === 0) return '$0';
  return n < 0.01 ? `$${n.toPrecision(2)}` : `$${n.toFixed(2)}`;
}

export function ms(n) {
  if (n === null || n === undefined) return '–';
  return n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined) return '–';
  return `${Math.round(ratio * 100)}%`;
}

/** "12 s", "3 min 05 s", "2 h 10 min". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function time(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

export function dateTime(ms) {
  return new Date(ms).toLocaleString('en-GB', { hour12: false });
}

/** A horizontal bar for a share in [0, 1], with a text label; `warn` highlights it. */
export function bar(ratio, label, warn = false) {
  const clamped = Math.max(0, Math.min(1, ratio || 0));
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${(clamped * 100).toFixed(1)}%`;
  return h('div', { class: `bar${warn ? ' warn' : ''}` },
    h('div', {
      class: 'track', role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0,
      'aria-valuemax': 100, 'aria-valuenow': Math.round(clamped * 100),
    }, fill),
    h('span', { class: 'bar-label' }, label));
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || text}` }, text);
}
