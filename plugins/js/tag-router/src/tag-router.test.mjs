// Unit tests for the component's entry points (world-level exports): node --test src/
import assert from "node:assert/strict";
import { test } from "node:test";

import { checkSettings, metadata, policy } from "./tag-router.js";

test("metadata names a router", () => {
  const m = metadata();
  assert.equal(m.name, "tag-router");
  assert.equal(m.kind, "router");
});

test("checkSettings accepts what route accepts", () => {
  assert.equal(checkSettings(""), undefined);
  assert.equal(checkSettings('{"routes": {"code": ["groq"]}, "default": "none"}'), undefined);
});

test("checkSettings throws the message route would fail with", () => {
  // result<_, string>: the thrown value is the message itself.
  assert.throws(() => checkSettings('{"routes": {"code": "groq"}}'), (thrown) => {
    assert.equal(typeof thrown, "string");
    assert.match(thrown, /^invalid tag-router settings: `routes\.code` must be a list/);
    return true;
  });
  assert.throws(() => checkSettings('{"rutes": {}}'), /unknown key `rutes`/);
  assert.throws(
    () => policy.route({ tags: [] }, [], '{"rutes": {}}'),
    (error) => error.kind === "internal" && /unknown key/.test(error.message),
  );
});
