// Unit tests, run natively: node --test src/
import assert from "node:assert/strict";
import { test } from "node:test";

import { byPrice, checkSettings } from "./main.js";

const candidate = (id, price, healthy = true) => ({ id, healthy, cooldownMs: 0, inputPrice: price, outputPrice: price });

test("cheapest ready candidate first, unhealthy last", () => {
  assert.deepEqual(byPrice([candidate(0, 3), candidate(1, 0, false), candidate(2, 1)]), [2, 0, 1]);
});

test("settings must be empty", () => {
  assert.equal(checkSettings("{}"), undefined);
  assert.throws(() => checkSettings('{"max": 1}'));
});
