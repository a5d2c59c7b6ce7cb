// Usage from the ledger: requests, tokens and cost over time (by hour or day), by key,
// provider and model; quota and budget warnings past 80% highlighted at the top.

import { api } from './api.js';
import { h, clear, table, num, usd, percent, bar } from './dom.js';
import { columns } from './charts.js';

const $ = (id) => document.getElementById(id);
const WARN = 0.8;
const RANGES = {
  '24h': { by: 'hour', periods: 24, stepMs: 3600e3, every: 3 },
  '7d': { by: 'day', periods: 7, stepMs: 86400e3, every: 1 },
  '30d': { by: 'day', periods: 30, stepMs: 86400e3, every: 5 },
};
let targetsView = null;
let lastKeys = [];
let refreshTimer = null;
let loading = null;

export function init() {
  $('usage-range').addEventListener('change', () => refresh());
  $('usage-range').addEventListener('submit', (event) => event.preventDefault());
}

export function show() {
  refresh();
}

/** A request finished: refresh within a few seconds while the view is open. */
export function requestSeen() {
  if ($('view-usage').hidden || refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    if (!$('view-usage').hidden) refresh();
  }, 3000);
}

export function targetsSeen(view) {
  targetsView = view;
  if (!$('view-usage').hidden && !loading) renderWarnings(lastKeys);
}

/** The UTC period labels the ledger groups by, oldest first. */
function periods(range) {
  const { by, periods: count, stepMs } = RANGES[range];
  const now = Date.now();
  const labels = [];
  for (let i = count - 1; i >= 0; i -= 1) {
    const iso = new Date(now - i * stepMs).toISOString();
    labels.push(by === 'hour' ? `${iso.slice(0, 10)} ${iso.slice(11, 13)}:00` : iso.slice(0, 10));
  }
  return labels;
}

function keyWarnings(keys) {
  const out = [];
  for (const k of keys.filter((key) => !key.revoked)) {
    for (const [limit, spent, what] of [
      [k.daily_usd, k.spent_usd_today, 'daily budget'],
      [k.monthly_usd, k.spent_usd_month, 'monthly budget'],
      [k.budget_usd, k.spent_usd_total, 'lifetime budget'],
      [k.daily_tokens, k.tokens_today, 'daily tokens'],
    ]) {
      if (limit && spent / limit >= WARN) out.push(`key ${k.name}: ${percent(spent / limit)} of its ${what} used`);
    }
  }
  return out;
}

function renderWarnings(keys) {
  const lines = [];
  for (const t of (targetsView ? targetsView.targets : []).filter((x) => x.quota_warning)) {
    lines.push(`${t.provider}/${t.model}: ${percent(t.quota_used)} of today's free quota used`);
  }
  lines.push(...keyWarnings(keys));
  clear($('usage-warnings'), lines.length
    ? h('div', { class: 'warnings', role: 'alert' }, h('h3', {}, 'Over 80%'),
      h('ul', {}, lines.map((line) => h('li', {}, line))))
    : h('p', { class: 'muted' }, 'No quota or budget is past 80%.'));
}

function breakdown(title, rows) {
  const most = Math.max(0, ...rows.map((r) => r.requests));
  return table(title, ['Name', 'Requests', 'Tokens (in + out)', 'Cost', 'Share of requests'],
    rows.map((r) => [r.group, num(r.requests), `${num(r.prompt_tokens)} + ${num(r.completion_tokens)}`,
      usd(r.cost_usd), bar(most ? r.requests / most : 0, num(r.requests))]));
}

async function refresh() {
  const range = $('usage-range').elements.range.value;
  const { by, every } = RANGES[range];
  const ask = (group) => api(`/admin/usage?by=${group}&since=${range}`);
  loading = Promise.all([ask(by), ask('key'), ask('provider'), ask('model'),
    api('/admin/keys').catch(() => ({ keys: [] }))]);
  let answers;
  try {
    answers = await loading;
  } catch (error) {
    clear($('usage-charts'), h('p', { class: 'error' }, `Cannot read usage: ${error.message}`));
    return;
  } finally {
    loading = null;
  }
  const [time, keys, providers, models, keyList] = answers;
  lastKeys = keyList.keys || [];
  renderWarnings(lastKeys);
  const byLabel = new Map(time.rows.map((r) => [r.group, r]));
  const series = periods(range).map((label) => ({ label, row: byLabel.get(label) }));
  const short = (label) => (by === 'hour' ? label.slice(11, 13) : label.slice(5));
  const points = (pick) => series.map(({ label, row }) => ({
    label: `${label} UTC`, shortLabel: short(label), value: row ? pick(row) : 0,
  }));
  clear($('usage-charts'),
    columns('Requests', points((r) => r.requests), (v) => num(v), every),
    columns('Tokens', points((r) => r.prompt_tokens + r.completion_tokens), (v) => num(v), every),
    columns('Cost', points((r) => r.cost_usd), (v) => usd(v), every));
  clear($('usage-breakdowns'),
    breakdown('By key', keys.rows),
    breakdown('By provider', providers.rows),
    breakdown('By model', models.rows));
}
