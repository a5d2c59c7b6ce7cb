// tag-router: a Freeway routing policy that sends tagged requests to chosen providers first.
//
// Built into a WebAssembly component (world `router` of wit/freeway.wit) with componentize-qjs,
// the QuickJS backend for jco. Like every Freeway plugin it is a pure function of its inputs:
// the host passes the request's facts, the candidates with their live state and the settings
// JSON, and gets back the candidate ids to try, first-to-try first.
//
// Settings: {"routes": {"<tag>": ["provider" | "provider/model", ...]}, "default": "priority"}
//
// - Candidates that are unhealthy or cooling down (cooldown-ms > 0) are never returned.
// - For each request tag that has a route (in the order the request carries its tags), the
//   candidates matching that route's entries come first, entry by entry; an entry "groq"
//   matches every candidate of provider groq, "groq/llama-3.1-8b-instant" that one model.
// - default "priority" (the default): every other ready candidate follows in configured order.
//   default "none": a request with a routed tag tries only its routes' candidates; a request
//   without one still gets every ready candidate in configured order.
//
// WIT-to-JS mapping (componentize-qjs): records are objects with camelCase fields, enums are
// their case names as strings, `option<T>` is T or null, u64 is a Number, and a function that
// returns `result<T, error>` returns T or throws the error record.

import { order, parseSettings } from "./route.js";

const NAME = "tag-router";
const VERSION = "0.2.0";

// Settings arrive as text on every call; with pooled instances the same instance serves many
// requests, so keep the last parse. Pure memoisation: the answer depends on the text only.
let cachedText = null;
let cachedSettings = null;

function settingsFor(text) {
  if (text !== cachedText) {
    cachedSettings = parseSettings(text);
    cachedText = text;
  }
  return cachedSettings;
}

/** World-level export: who this component is. */
export function metadata() {
  return {
    name: NAME,
    version: VERSION,
    kind: "router",
    description: "Routes tagged requests to the providers configured for the tag first",
  };
}

/**
 * World-level export, called by the host at load and reload: bad settings are refused before
 * any request. `result<_, string>`: return nothing, or throw the message.
 */
export function checkSettings(text) {
  try {
    parseSettings(text);
  } catch (problem) {
    throw problem.message ?? String(problem);
  }
}

/** The `freeway:plugin/policy` export. */
export const policy = {
  route(request, candidates, settings) {
    return order(request, candidates, settingsFor(settings));
  },
};
