// {{name}}: a Freeway router that tries the cheapest ready candidate first.
//
// Ready means healthy and not cooling down; candidates that are not ready come after the ready
// ones (also cheapest first), so failover can still reach them.
//
// WIT-to-JS (componentize-qjs): records are objects with camelCase fields, enums are their case
// names, option<T> is T or null, u64 is a Number; a function returning result<T, error>
// returns T or throws the error record.

/** This router takes no settings: anything but an empty object is refused. */
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

/** Ready candidates first, then the rest; cheapest (prompt + completion price) first. */
export function byPrice(candidates) {
  const notReady = (c) => (c.healthy && Number(c.cooldownMs) === 0 ? 0 : 1);
  const price = (c) => c.inputPrice + c.outputPrice;
  return [...candidates]
    .sort((a, b) => notReady(a) - notReady(b) || price(a) - price(b))
    .map((c) => c.id);
}

export function metadata() {
  return { name: "{{name}}", version: "0.1.0", kind: "router", description: "tries the cheapest ready candidate first" };
}

/** result<_, string>: return nothing, or throw the message. */
export function checkSettings(settings) {
  noSettings(settings);
}

export const policy = {
  route(request, candidates, settings) {
    try {
      noSettings(settings);
    } catch (message) {
      throw { kind: "internal", retryable: false, message: String(message), status: null, retryAfterMs: null, code: null, param: null };
    }
    return byPrice(candidates);
  },
};
