// The routing rule of tag-router, free of any component-model glue so it runs under Node's
// test runner as well as inside the component. See tag-router.js for the settings.

const NAME = "tag-router";
const DEFAULTS = ["priority", "none"];

/** The typed error for bad settings; the host fails the request rather than guess. */
function settingsError(problem) {
  return {
    kind: "internal",
    retryable: false,
    message: `invalid ${NAME} settings: ${problem}`,
    status: null,
    retryAfterMs: null,
    code: null,
    param: null,
  };
}

function isPlainObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validate the settings JSON; throws the typed error on anything unexpected. */
export function parseSettings(text) {
  const source = (text ?? "").trim() || "{}";
  let raw;
  try {
    raw = JSON.parse(source);
  } catch (problem) {
    throw settingsError(`not JSON (${problem.message})`);
  }
  if (!isPlainObject(raw)) {
    throw settingsError("expected a JSON object");
  }
  for (const key of Object.keys(raw)) {
    if (key !== "routes" && key !== "default") {
      throw settingsError(`unknown key \`${key}\``);
    }
  }
  const routes = new Map();
  const rawRoutes = raw.routes ?? {};
  if (!isPlainObject(rawRoutes)) {
    throw settingsError("`routes` must be an object of tag -> list of targets");
  }
  for (const [tag, entries] of Object.entries(rawRoutes)) {
    if (
      !Array.isArray(entries) ||
      !entries.every((entry) => typeof entry === "string" && entry.trim() !== "")
    ) {
      throw settingsError(
        `\`routes.${tag}\` must be a list of "provider" or "provider/model" strings`,
      );
    }
    routes.set(tag, entries.map(parseEntry));
  }
  const fallback = raw.default ?? "priority";
  if (!DEFAULTS.includes(fallback)) {
    throw settingsError(`\`default\` must be one of ${DEFAULTS.map((d) => `"${d}"`).join(", ")}`);
  }
  return { routes, fallback };
}

/** "groq" names a provider; "openrouter/meta-llama/llama-3.3-70b" a provider and its model. */
function parseEntry(entry) {
  const slash = entry.indexOf("/");
  return slash < 0
    ? { provider: entry, model: null }
    : { provider: entry.slice(0, slash), model: entry.slice(slash + 1) };
}

function matches(entry, candidate) {
  return (
    candidate.provider === entry.provider &&
    (entry.model === null || candidate.model === entry.model)
  );
}

/** Candidate ids in the order to try them. */
export function order(request, candidates, settings) {
  const ready = candidates.filter(
    (candidate) => candidate.healthy && Number(candidate.cooldownMs) === 0,
  );
  const chosen = [];
  const taken = new Set();
  let routed = false;
  for (const tag of request.tags) {
    const entries = settings.routes.get(tag);
    if (entries === undefined) continue;
    routed = true;
    for (const entry of entries) {
      for (const candidate of ready) {
        if (!taken.has(candidate.id) && matches(entry, candidate)) {
          taken.add(candidate.id);
          chosen.push(candidate.id);
        }
      }
    }
  }
  if (routed && settings.fallback === "none") {
    return chosen;
  }
  for (const candidate of ready) {
    if (!taken.has(candidate.id)) {
      chosen.push(candidate.id);
    }
  }
  return chosen;
}
