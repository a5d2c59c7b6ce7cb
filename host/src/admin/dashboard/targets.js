// Providers and targets: each target's verdict (with a countdown while it cools down or its
// breaker is open), what is left of its free quota against the published limits, latency and
// error rate. Fed by the live feed's `targets` events; counts down by itself in between.

import { api } from './api.js';
import { h, clear, table, num, ms, percent, duration, bar, badge } from './dom.js';

const $ = (id) => document.getElementById(id);
let latest = null;

export function init() {
  // One clock for every countdown on the page.
  setInterval(tick, 1000);
}

export function show() {
  if (!latest) api('/admin/targets').then(update).catch(() => {});
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-until]')) {
    const left = (Number(el.dataset.until) - now) / 1000;
    el.textContent = left > 0 ? `${duration(left)} left` : 'ending…';
  }
}

function limitText(limits) {
  const parts = [];
  if (limits.rpm) parts.push(`${num(limits.rpm)} rpm`);
  if (limits.rpd) parts.push(`${num(limits.rpd)} rpd`);
  if (limits.tpm) parts.push(`${num(limits.tpm)} tpm`);
  if (limits.tpd) parts.push(`${num(limits.tpd)} tpd`);
  return parts.length ? parts.join(' · ') : 'no published limits';
}

function stateCell(t) {
  const cell = h('td', { class: 'state' }, badge(t.state));
  if (t.until_ms) {
    const left = (t.until_ms - Date.now()) / 1000;
    cell.append(' ', h('span', { class: 'countdown', dataset: { until: t.until_ms } },
      left > 0 ? `${duration(left)} left` : 'ending…'));
  }
  if (t.reason) cell.append(h('div', { class: 'muted small' }, t.reason));
  return cell;
}

function quotaCell(t) {
  const cell = h('td', { class: 'quota' });
  if (t.quota_used !== null && t.quota_used !== undefined) {
    const daily = [t.limits.rpd && `${num(t.limits.rpd)} req`, t.limits.tpd && `${num(t.limits.tpd)} tok`]
      .filter(Boolean).join(' / ');
    cell.append(bar(1 - t.quota_used, `${percent(1 - t.quota_used)} of today's ${daily} left`, t.quota_warning));
    if (t.quota_warning) cell.append(h('div', { class: 'warn-text small' }, `${percent(t.quota_used)} used today`));
  }
  const now = [];
  if (t.remaining_requests !== null) now.push(`${num(t.remaining_requests)} requests`);
  if (t.remaining_tokens !== null) now.push(`${num(t.remaining_tokens)} tokens`);
  if (now.length) cell.append(h('div', { class: 'small' }, `left now: ${now.join(', ')}`));
  cell.append(h('div', { class: 'muted small' }, limitText(t.limits)));
  return cell;
}

function row(t) {
  const name = `${t.provider}/${t.model}`;
  return h('tr', { dataset: { target: name, state: t.state }, class: t.quota_warning ? 'warn-row' : null },
    h('td', {}, h('strong', {}, name),
      t.used_by.length ? h('div', { class: 'muted small' }, `model ${t.used_by.join(', ')}`) : null),
    stateCell(t),
    quotaCell(t),
    h('td', { class: 'num' }, ms(t.latency_ms),
      t.ttft_ms !== null ? h('div', { class: 'muted small' }, `first token ${ms(t.ttft_ms)}`) : null),
    h('td', { class: 'num' }, percent(t.error_rate)),
    h('td', { class: 'num' }, num(t.in_flight)));
}

/** A new `targets` view (from the feed or a fetch). */
export function update(view) {
  latest = view;
  const counts = {};
  for (const t of view.targets) counts[t.state] = (counts[t.state] || 0) + 1;
  const disabled = view.providers.filter((p) => !p.enabled);
  const card = (label, value, kind) => h('div', { class: `card ${kind || ''}` },
    h('span', { class: 'card-value' }, String(value)), h('span', { class: 'card-label' }, label));
  clear($('targets-summary'),
    card('serving', counts.serving || 0, 'ok'),
    card('cooling down', counts.cooling || 0, counts.cooling ? 'warn' : ''),
    card('breaker open', counts['breaker-open'] || 0, counts['breaker-open'] ? 'bad' : ''),
    card('unhealthy or key refused', (counts.unhealthy || 0) + (counts['key-refused'] || 0),
      counts.unhealthy || counts['key-refused'] ? 'bad' : ''),
    card('providers enabled', view.providers.length - disabled.length),
    card('quota over 80%', view.targets.filter((t) => t.quota_warning).length,
      view.targets.some((t) => t.quota_warning) ? 'warn' : ''));
  clear($('targets-table'), table('Targets the configured models route to',
    ['Target', 'State', 'Free quota', 'Latency', 'Error rate', 'In flight'],
    view.targets.map(row), { class: 'targets' }));
  const providers = view.providers.filter((p) => p.enabled).map((p) => p.name).join(', ') || 'none';
  clear($('targets-providers'),
    h('p', {}, h('strong', {}, 'Enabled providers: '), providers),
    disabled.length ? h('details', {},
      h('summary', {}, `${disabled.length} providers disabled`),
      h('ul', {}, disabled.map((p) => h('li', {}, h('strong', {}, p.name), `: ${p.disabled_reason}`)))) : null);
  tick();
}

/** The last view seen (for the usage view's quota warnings). */
export function last() {
  return latest;
}
