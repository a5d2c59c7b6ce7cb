// {{name}}: a Freeway filter that blocks requests whose text contains a keyword.
//
// The check is case-insensitive and reads the whole request body. Answers and streams pass
// unchanged. Variants are { tag, val } objects; a function returning result<T, error>
// returns T or throws the error record.

// Requests containing this word are refused with a 400 naming it.
export const BLOCKED = "forbidden";

export function verdict(body) {
  if (body.toLowerCase().includes(BLOCKED)) {
    return { tag: "block", val: `the request contains the blocked word "${BLOCKED}"` };
  }
  return { tag: "allow" };
}

/** This filter takes no settings: anything but an empty object is refused. */
export function noSettings(settings) {
  const text = (settings || "").trim();
  let parsed = null;
  try {
    parsed = text === "" ? {} : JSON.parse(text);
  } catch {
    // fall through: not JSON
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed) || Object.keys(parsed).length > 0) {
    throw `{{name}} takes no settings, got ${settings}`;
  }
}

export function metadata() {
  return { name: "{{name}}", version: "0.1.0", kind: "filter", description: `blocks requests containing "${BLOCKED}"` };
}

export function checkSettings(settings) {
  noSettings(settings);
}

export const guard = {
  onRequest(info, body, settings) {
    try {
      noSettings(settings);
    } catch (message) {
      throw { kind: "internal", retryable: false, message: String(message), status: null, retryAfterMs: null, code: null, param: null };
    }
    return { verdict: verdict(body), tags: [], state: null };
  },
  onResponse(info, state, body, settings) {
    return { tag: "allow" };
  },
  StreamFilter: class {
    constructor(info, state, settings) {}
    onChunk(chunk) {
      return { tag: "pass" };
    }
    finish() {
      return [];
    }
  },
};
