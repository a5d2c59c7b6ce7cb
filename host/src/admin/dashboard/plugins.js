// Plugins: what is loaded (kind, version, digest, load time, instance mode, calls, faults,
// last error), the files refused and why, a reload button, and reloads as they happen.

import { api } from './api.js';
import { h, clear, table, num, dateTime, badge } from './dom.js';

const $ = (id) => document.getElementById(id);
const reloadsSeen = new Set();

export function init() {
  $('reload-button').addEventListener('click', async () => {
    const button = $('reload-button');
    button.disabled = true;
    $('reload-result').textContent = 'Reloading…';
    try {
      const answer = await api('/admin/reload', { method: 'POST' });
      $('reload-result').textContent = `Reloaded: ${answer.message}`;
    } catch (error) {
      $('reload-result').textContent = `Refused: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

export function show() {
  refresh();
}

function reloadItem(event) {
  return h('li', { class: `reload ${event.ok ? 'ok' : 'refused'}`, dataset: { seq: event.seq } },
    h('time', { datetime: new Date(event.ts).toISOString() }, dateTime(event.ts)), ' ',
    badge(event.ok ? 'applied' : 'refused', event.ok ? 'ok' : 'bad'), ' ',
    h('span', { class: 'muted' }, `${event.trigger}, ${Math.round(event.took_ms)} ms`), ' ',
    h('span', { class: 'message' }, event.message));
}

/** A reload event from the feed (or the backlog): listed newest first, and the table redone. */
export function addReload(event) {
  if (insert(event) && !$('view-plugins').hidden) refresh();
}

/** List a reload in sequence order; false if it is listed already. */
function insert(event) {
  if (reloadsSeen.has(event.seq)) return false;
  reloadsSeen.add(event.seq);
  const list = $('reloads');
  const later = [...list.children].find((li) => Number(li.dataset.seq) < event.seq);
  list.insertBefore(reloadItem(event), later || null);
  return true;
}

async function refresh() {
  let answer;
  try {
    answer = await api('/admin/plugins');
  } catch (error) {
    clear($('plugins-table'), h('p', { class: 'error' }, `Cannot list plugins: ${error.message}`));
    return;
  }
  const plugins = [...answer.plugins].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  clear($('plugins-table'), table('Loaded plugins',
    ['Name', 'Kind', 'Version', 'Digest', 'Loaded', 'Instances', 'Calls', 'Faults', 'Last error'],
    plugins.map((p) => h('tr', { dataset: { plugin: p.name } },
      h('td', {}, h('strong', {}, p.name), p.description ? h('div', { class: 'muted small desc' }, p.description) : null),
      h('td', {}, p.kind),
      h('td', {}, p.version),
      h('td', {}, h('code', { title: `sha256 ${p.sha256}` }, p.sha256.slice(0, 12))),
      h('td', {}, dateTime(p.loaded_at * 1000)),
      h('td', {}, p.instances === 'pooled' ? `pooled (${p.pool_size})` : p.instances,
        h('div', { class: 'muted small' }, `${p.timeout_ms} ms, ${p.memory_mb} MiB`)),
      h('td', { class: 'num' }, num(p.calls)),
      h('td', { class: `num${p.faults ? ' bad-text' : ''}` }, num(p.faults)),
      h('td', { class: 'small' }, p.last_error || '–')))));
  clear($('plugins-rejected'), answer.rejected.length
    ? table('Refused files', ['File', 'Why'], answer.rejected.map((r) => [h('code', {}, r.file), r.reason]))
    : h('p', { class: 'muted' }, 'No plugin file was refused.'));
  for (const event of [...answer.reloads].reverse()) insert(event);
}

