// Unit tests, run natively: node --test src/
import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamDecoder, decode, encode, rewrite, upstreamError } from "./main.js";

test("the model is the upstream's and streams ask for usage", () => {
  const body = JSON.parse(rewrite('{"model": "mine", "messages": []}', "theirs", true));
  assert.equal(body.model, "theirs");
  assert.deepEqual(body.stream_options, { include_usage: true });
});

test("errors are typed by status", () => {
  const e = upstreamError(429, '{"error": {"message": "slow down"}}');
  assert.deepEqual([e.kind, e.retryable, e.message], ["rate-limited", true, "slow down"]);
});

test("UTF-8 round trip and events split anywhere", () => {
  assert.equal(decode(encode("héllo €𝄞")), "héllo €𝄞");
  const d = new StreamDecoder({});
  assert.deepEqual(d.push(encode('data: {"choices":[]')), []);
  assert.equal(d.push(encode("}\n\ndata: [DONE]\n\n")).length, 1);
});
