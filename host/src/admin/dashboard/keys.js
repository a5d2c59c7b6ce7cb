// Virtual keys: list with budgets used, create (the secret is shown once, here, and kept
// nowhere), revoke (after a second click that confirms it).

import { api } from './api.js';
import { h, clear, table, num, usd, percent, bar, badge } from './dom.js';

const $ = (id) => document.getElementById(id);
const WARN = 0.8;
let confirming = null; // the key whose revoke button asks for confirmation

export function init() {
  $('key-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const value = (name) => form.elements[name].value.trim();
    const spec = { name: value('name') };
    if (value('owner')) spec.owner = value('owner');
    if (value('models')) spec.models = value('models').split(',').map((m) => m.trim()).filter(Boolean);
    for (const field of ['daily_usd', 'monthly_usd', 'budget_usd']) {
      if (value(field)) spec[field] = Number(value(field));
    }
    $('keys-error').textContent = '';
    try {
      const created = await api('/admin/keys', { method: 'POST', body: spec });
      form.reset();
      showSecret(created);
      refresh();
    } catch (error) {
      $('keys-error').textContent = `Cannot create the key: ${error.message}`;
    }
  });
}

export function show() {
  refresh();
}

function showSecret(created) {
  const box = $('key-secret');
  const status = h('span', { role: 'status' });
  clear(box,
    h('p', {}, h('strong', {}, `Key ${created.name} created. `),
      'Copy it now: it is not stored and will not be shown again.'),
    h('p', {}, h('code', { id: 'new-key-secret', class: 'secret-value' }, created.key)),
    h('p', {},
      h('button', {
        type: 'button',
        onclick: () => {
          const refused = () => { status.textContent = 'Copying is not allowed here; select the key and copy it.'; };
          // No clipboard API outside a secure context (plain http beyond localhost).
          if (!navigator.clipboard) return refused();
          return navigator.clipboard.writeText(created.key)
            .then(() => { status.textContent = 'Copied.'; }, refused);
        },
      }, 'Copy'), ' ',
      h('button', { type: 'button', class: 'quiet', onclick: () => { box.hidden = true; clear(box); } }, 'Done'),
      ' ', status));
  box.hidden = false;
}

function budgets(k) {
  const lines = [];
  for (const [limit, spent, what, format] of [
    [k.daily_usd, k.spent_usd_today, 'today', usd],
    [k.monthly_usd, k.spent_usd_month, 'this month', usd],
    [k.budget_usd, k.spent_usd_total, 'lifetime', usd],
    [k.daily_tokens, k.tokens_today, 'tokens today', num],
  ]) {
    if (limit) {
      const used = spent / limit;
      lines.push(bar(used, `${format(spent)} of ${format(limit)} ${what} (${percent(used)})`, used >= WARN));
    }
  }
  if (!lines.length) lines.push(h('span', { class: 'muted' }, `no budget · ${usd(k.spent_usd_total)} spent`));
  return lines;
}

function state(k) {
  if (k.revoked) return badge('revoked', 'bad');
  if (k.expires_at && Date.parse(k.expires_at) < Date.now()) return badge('expired', 'warn');
  return badge('active', 'ok');
}

function actions(k) {
  if (k.revoked) return h('span', { class: 'muted' }, k.revoked_at || '');
  if (confirming !== k.name) {
    return h('button', { type: 'button', onclick: () => { confirming = k.name; refresh(); } }, `Revoke ${k.name}`);
  }
  return h('span', {},
    h('button', { type: 'button', class: 'danger', onclick: () => revoke(k.name) }, `Confirm revoking ${k.name}`), ' ',
    h('button', { type: 'button', class: 'quiet', onclick: () => { confirming = null; refresh(); } }, 'Cancel'));
}

async function revoke(name) {
  confirming = null;
  try {
    await api(`/admin/keys/${encodeURIComponent(name)}`, { method: 'DELETE' });
  } catch (error) {
    $('keys-error').textContent = `Cannot revoke ${name}: ${error.message}`;
  }
  refresh();
}

async function refresh() {
  let answer;
  try {
    answer = await api('/admin/keys');
  } catch (error) {
    clear($('keys-table'), h('p', { class: 'error' }, `Cannot list keys: ${error.message}`));
    return;
  }
  clear($('keys-table'), answer.keys.length
    ? table('Virtual keys', ['Name', 'Prefix', 'Owner', 'Models', 'Budget used', 'Tokens today', 'Created', 'State', 'Action'],
      answer.keys.map((k) => h('tr', { dataset: { key: k.name } },
        h('td', {}, h('strong', {}, k.name)),
        h('td', {}, h('code', {}, k.prefix)),
        h('td', {}, k.owner || '–'),
        h('td', {}, k.models ? k.models.join(', ') : 'all'),
        h('td', { class: 'budgets' }, budgets(k)),
        h('td', { class: 'num' }, num(k.tokens_today)),
        h('td', {}, k.created_at),
        h('td', {}, state(k)),
        h('td', {}, actions(k)))))
    : h('p', { class: 'muted' }, 'No virtual keys yet.'));
}
