// {{name}}: a Freeway provider adapter for an OpenAI-compatible API ({base_url}/chat/completions,
// Bearer key). Requests pass through with `model` set to the upstream's id; answers pass back as
// they are; errors become typed errors the gateway's failover understands.
//
// WIT-to-JS (componentize-qjs): records are objects with camelCase fields, list<u8> is a
// Uint8Array, variants are { tag, val }, option<T> is T or null; a function returning
// result<T, error> returns T or throws the error record.

const STATUS_KINDS = {
  400: ["bad-request", false],
  422: ["bad-request", false],
  401: ["auth", true],
  403: ["permission", true],
  404: ["not-found", true],
  408: ["timeout", true],
  504: ["timeout", true],
  429: ["rate-limited", true],
};

export function error(kind, message, status = null, retryable = false) {
  return { kind, retryable, message, status, retryAfterMs: null, code: null, param: null };
}

/** UTF-8 both ways, without relying on TextEncoder (not every JS engine has it). */
export function encode(text) {
  const bytes = [];
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(bytes);
}

export function decode(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const n = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    let c = n === 1 ? b : b & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) c = (c << 6) | (bytes[i + k] & 63);
    out += String.fromCodePoint(c);
    i += n;
  }
  return out;
}

export function usageOf(answer) {
  const u = answer && answer.usage;
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return null;
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
}

/** The client's body with the upstream's model id and the stream fields of this attempt. */
export function rewrite(request, model, stream) {
  let body;
  try {
    body = JSON.parse(request);
  } catch (problem) {
    throw error("bad-request", `the request is not JSON: ${problem}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw error("bad-request", "the request is not a JSON object");
  }
  body.model = model;
  delete body.stream_options;
  delete body.stream;
  if (stream) {
    // The gateway needs token usage: ask for it on every stream.
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return JSON.stringify(body);
}

export function upstreamError(status, text) {
  const [kind, retryable] = STATUS_KINDS[status] || ["unavailable", true];
  let message = `the upstream answered ${status}`;
  try {
    message = String(JSON.parse(text).error.message ?? message);
  } catch {
    // not an OpenAI error body
  }
  return error(kind, message, status, retryable);
}

/** Server-sent events in, one chunk per `data:` event out; frames may split anywhere. */
export class StreamDecoder {
  constructor(target) {
    this.pending = [];
  }

  push(bytes) {
    for (const b of bytes) this.pending.push(b);
    const chunks = [];
    for (;;) {
      const bytesNow = this.pending.filter((b) => b !== 13);
      let end = -1;
      for (let i = 0; i + 1 < bytesNow.length; i++) {
        if (bytesNow[i] === 10 && bytesNow[i + 1] === 10) {
          end = i;
          break;
        }
      }
      if (end < 0) return chunks;
      const event = decode(bytesNow.slice(0, end));
      this.pending = bytesNow.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "" || data === "[DONE]") continue;
        let parsed;
        try {
          parsed = JSON.parse(data);
        } catch (problem) {
          throw error("invalid-response", `a stream event is not JSON: ${problem}`);
        }
        chunks.push({ data, usage: usageOf(parsed) });
      }
    }
  }

  finish() {
    return [];
  }
}

export function metadata() {
  return { name: "{{name}}", version: "0.1.0", kind: "provider", description: "pass-through adapter for an OpenAI-compatible API" };
}

export function checkSettings(settings) {
  const text = (settings || "").trim();
  if (text !== "" && text !== "{}") throw `{{name}} takes no settings, got ${settings}`;
}

export const adapter = {
  buildRequest(target, request) {
    return {
      method: "POST",
      url: target.baseUrl.replace(/\/+$/, "") + "/chat/completions",
      headers: [["content-type", "application/json"]],
      body: encode(rewrite(request, target.model, target.stream)),
      auth: { tag: "bearer" },
    };
  },

  parseResponse(target, status, headers, body) {
    const text = decode(body);
    if (status < 200 || status >= 300) throw upstreamError(status, text);
    let answer;
    try {
      answer = JSON.parse(text);
    } catch (problem) {
      throw error("invalid-response", `the upstream answered non-JSON: ${problem}`, status);
    }
    return { body: text, usage: usageOf(answer) };
  },

  readRateLimits(status, headers, body) {
    const number = (name) => {
      const found = headers.find(([key]) => key === name);
      return found && /^\d+$/.test(found[1].trim()) ? Number(found[1].trim()) : null;
    };
    const retry = number("retry-after");
    return {
      retryAfterMs: retry === null ? null : retry * 1000,
      limitRequests: number("x-ratelimit-limit-requests"),
      remainingRequests: number("x-ratelimit-remaining-requests"),
      resetRequestsMs: null,
      limitTokens: number("x-ratelimit-limit-tokens"),
      remainingTokens: number("x-ratelimit-remaining-tokens"),
      resetTokensMs: null,
    };
  },

  StreamDecoder,
};
