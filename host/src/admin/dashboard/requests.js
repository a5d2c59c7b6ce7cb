// Recent requests, newest first, live: model, key, who served, attempts, latency, tokens,
// cost, status and the route explanation; filters by key, model and status; each row opens
// to show its attempts one by one.

import { api } from './api.js';
import { h, clear, num, ms, usd, time, badge } from './dom.js';

const $ = (id) => document.getElementById(id);
const HEADERS = ['Time', 'Model', 'Key', 'Served by', 'Attempts', 'Latency', 'Tokens', 'Cost', 'Status', 'Route', ''];
let capacity = 500;
let all = []; // newest first
const seen = new Set();
const open = new Set(); // request ids whose details are shown
let body = null;

export function init() {
  const tbody = h('tbody', {});
  body = tbody;
  const t = h('table', { class: 'requests' },
    h('caption', {}, 'Recent requests (newest first)'),
    h('thead', {}, h('tr', {}, HEADERS.map((text, i) => h('th', { scope: 'col' },
      i === HEADERS.length - 1 ? h('span', { class: 'visually-hidden' }, 'Details') : text)))),
    tbody);
  clear($('requests-table'), h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Recent requests' }, t));
  $('requests-filter').addEventListener('input', render);
  $('requests-filter').addEventListener('submit', (event) => event.preventDefault());
}

export function show() {
  render();
}

/** The feed restarted: its backlog follows. */
export function reset() {
  all = [];
  seen.clear();
  render();
}

/** The feed skipped events (this tab was too slow): start again from the ring. */
export function refetch() {
  api('/admin/requests').then((answer) => {
    capacity = answer.capacity;
    all = answer.requests;
    seen.clear();
    for (const r of all) seen.add(r.seq);
    render();
  }).catch(() => {});
}

function filters() {
  const form = $('requests-filter');
  return {
    key: form.elements.key.value.trim().toLowerCase(),
    model: form.elements.model.value.trim().toLowerCase(),
    status: form.elements.status.value,
  };
}

function matches(r, f) {
  if (f.key && !(r.key || '').toLowerCase().includes(f.key)) return false;
  if (f.model && !r.model.toLowerCase().includes(f.model)
    && !`${r.provider || ''}/${r.upstream_model || ''}`.toLowerCase().includes(f.model)) return false;
  if (f.status === 'failed') return r.outcome !== 'ok';
  if (f.status === '429') return r.status === 429;
  if (f.status) return String(r.status).startsWith(f.status);
  return true;
}

function statusBadge(r) {
  if (r.outcome === 'ok') return badge(String(r.status), 'ok');
  if (r.outcome === 'interrupted') return badge('interrupted', 'warn');
  return badge(`${r.status} ${r.outcome}`, r.status === 429 ? 'warn' : 'bad');
}

function details(r) {
  return h('tr', { class: 'details', id: `details-${r.seq}` },
    h('td', { colspan: HEADERS.length },
      h('p', {}, h('strong', {}, 'Request '), h('code', {}, r.id),
        r.stream ? ' (stream)' : '', r.ttft_ms !== null ? ` · first token ${ms(r.ttft_ms)}` : ''),
      r.error ? h('p', { class: 'error' }, r.error) : null,
      r.steps.length ? h('ol', { class: 'steps', 'aria-label': 'Attempts in order' },
        r.steps.map((s) => h('li', { class: `step ${s.verdict}` },
          h('strong', {}, s.target), ' ', badge(s.verdict), ' ', s.detail)))
        : h('p', { class: 'muted' }, 'No target was tried.'),
      h('p', { class: 'route-full' }, h('strong', {}, 'Route: '), r.route || '–')));
}

function row(r) {
  const tokens = r.prompt_tokens !== null || r.completion_tokens !== null
    ? `${num(r.prompt_tokens || 0)} + ${num(r.completion_tokens || 0)}` : '–';
  const expanded = open.has(r.id);
  const toggle = h('button', {
    type: 'button', class: 'quiet', 'aria-expanded': String(expanded), 'aria-controls': `details-${r.seq}`,
    onclick: () => {
      if (open.has(r.id)) open.delete(r.id);
      else open.add(r.id);
      render();
    },
  }, expanded ? 'Hide' : 'Attempts');
  const tr = h('tr', { class: 'request', dataset: { id: r.id, status: r.status } },
    h('td', {}, time(r.ts)),
    h('td', {}, r.model || '–'),
    h('td', {}, r.key || '–'),
    h('td', {}, r.provider ? `${r.provider}/${r.upstream_model}` : '–'),
    h('td', { class: 'num' }, String(r.attempts)),
    h('td', { class: 'num' }, ms(r.latency_ms)),
    h('td', { class: 'num' }, tokens),
    h('td', { class: 'num' }, usd(r.cost_usd)),
    h('td', {}, statusBadge(r)),
    h('td', { class: 'route' }, r.route || '–'),
    h('td', {}, toggle));
  return expanded ? [tr, details(r)] : [tr];
}

function countText(shown) {
  $('requests-count').textContent = shown === all.length
    ? `${all.length} requests (the last ${capacity} are kept)`
    : `${shown} of ${all.length} requests match`;
}

function render() {
  if (!body) return;
  const f = filters();
  const shown = all.filter((r) => matches(r, f));
  clear(body, shown.flatMap(row));
  countText(shown.length);
}

/** A request event from the feed: prepended, without redrawing the table. */
export function add(r) {
  if (seen.has(r.seq)) return;
  seen.add(r.seq);
  all.unshift(r);
  if (all.length > capacity) {
    const dropped = all.pop();
    seen.delete(dropped.seq);
    if (open.delete(dropped.id)) render();
    else body.querySelector(`tr.request[data-id="${CSS.escape(dropped.id)}"]`)?.remove();
  }
  if ($('view-requests').hidden) return;
  const f = filters();
  if (matches(r, f)) body.prepend(row(r)[0]);
  countText(all.filter((x) => matches(x, f)).length);
}
