// Unit tests for the routing rule: node --test src/
import assert from "node:assert/strict";
import { test } from "node:test";

import { order, parseSettings } from "./route.js";

function candidate(id, provider, model, { healthy = true, cooldownMs = 0 } = {}) {
  return { id, provider, model, healthy, cooldownMs, tags: [] };
}

const fleet = [
  candidate(0, "groq", "llama-3.1-8b-instant"),
  candidate(1, "cerebras", "llama3.1-8b"),
  candidate(2, "openai", "gpt-4o-mini"),
  candidate(3, "ollama", "llama3.2"),
  candidate(4, "openrouter", "meta-llama/llama-3.3-70b-instruct:free"),
];

const settings = parseSettings(
  JSON.stringify({
    routes: {
      sensitive: ["ollama"],
      code: ["openrouter/meta-llama/llama-3.3-70b-instruct:free", "openai"],
    },
  }),
);

const route = (tags, candidates = fleet, parsed = settings) =>
  order({ tags }, candidates, parsed);

test("untagged requests keep the configured order", () => {
  assert.deepEqual(route([]), [0, 1, 2, 3, 4]);
  assert.deepEqual(route(["unrelated"]), [0, 1, 2, 3, 4]);
});

test("a routed tag puts its targets first, in list order", () => {
  assert.deepEqual(route(["sensitive"]), [3, 0, 1, 2, 4]);
  assert.deepEqual(route(["code"]), [4, 2, 0, 1, 3]);
});

test("several routed tags follow the request's tag order", () => {
  assert.deepEqual(route(["code", "sensitive"]), [4, 2, 3, 0, 1]);
  assert.deepEqual(route(["sensitive", "code"]), [3, 4, 2, 0, 1]);
});

test("unhealthy and cooling candidates are dropped", () => {
  const mixed = [
    candidate(0, "groq", "a", { cooldownMs: 1500 }),
    candidate(1, "ollama", "b", { healthy: false }),
    candidate(2, "ollama", "c"),
    candidate(3, "openai", "d"),
  ];
  assert.deepEqual(route(["sensitive"], mixed), [2, 3]);
  assert.deepEqual(route([], mixed), [2, 3]);
});

test("default none makes routes exclusive for tagged requests only", () => {
  const exclusive = parseSettings('{"routes": {"sensitive": ["ollama"]}, "default": "none"}');
  assert.deepEqual(route(["sensitive"], fleet, exclusive), [3]);
  assert.deepEqual(route([], fleet, exclusive), [0, 1, 2, 3, 4]);
});

test("empty settings route like priority-fallback", () => {
  assert.deepEqual(route(["sensitive"], fleet, parseSettings("{}")), [0, 1, 2, 3, 4]);
  assert.deepEqual(route([], fleet, parseSettings("")), [0, 1, 2, 3, 4]);
});

test("bad settings throw the typed error", () => {
  for (const text of [
    "[]",
    "not json",
    '{"route": {}}',
    '{"routes": {"a": "ollama"}}',
    '{"routes": {"a": [""]}}',
    '{"default": "fastest"}',
  ]) {
    assert.throws(
      () => parseSettings(text),
      (error) =>
        error.kind === "internal" &&
        error.retryable === false &&
        error.message.startsWith("invalid tag-router settings"),
      text,
    );
  }
});
