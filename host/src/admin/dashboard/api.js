// The admin API as the page uses it: the admin key (this tab's sessionStorage only, sent as
// `Authorization: Bearer`), JSON calls, and the live feed (SSE read through fetch, since an
// EventSource cannot send a header).

const STORAGE = 'freeway-admin-key';
let key = sessionStorage.getItem(STORAGE) || '';
let onRefused = () => {};

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export function setKey(value) {
  key = value;
  if (value) sessionStorage.setItem(STORAGE, value);
  else sessionStorage.removeItem(STORAGE);
}

/** Called when the admin API refuses the key (it changed, or was never right). */
export function whenRefused(handler) {
  onRefused = handler;
}

function headers(extra) {
  const all = { ...extra };
  if (key) all.authorization = `Bearer ${key}`;
  return all;
}

/** Does the gateway want a key, and is ours right? Always a 200, so never a console error. */
export async function session() {
  const res = await fetch('/admin/session', { headers: headers({}) });
  return res.json();
}

export async function api(path, { method = 'GET', body } = {}) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.status === 401) {
    onRefused();
    throw new ApiError('the admin key was refused', 401);
  }
  if (!res.ok) {
    throw new ApiError((data && data.error && data.error.message) || `HTTP ${res.status}`, res.status);
  }
  return data;
}

/**
 * Read the live feed until `signal` aborts; `dispatch(name, data)` gets each event,
 * `status(text)` the connection's state. Reconnects with backoff when the stream ends.
 */
export async function follow(dispatch, status, signal) {
  let wait = 500;
  while (!signal.aborted) {
    try {
      const res = await fetch('/admin/events', { headers: headers({}), signal });
      if (res.status === 401) {
        onRefused();
        return;
      }
      if (!res.ok || !res.body) throw new ApiError(`HTTP ${res.status}`, res.status);
      status('Live');
      wait = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) name = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) dispatch(name, JSON.parse(data));
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    status('Reconnecting…');
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 10000);
  }
}
