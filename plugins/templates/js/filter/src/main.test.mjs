// Unit tests, run natively: node --test src/
import assert from "node:assert/strict";
import { test } from "node:test";

import { verdict } from "./main.js";

test("blocks the keyword in any case", () => {
  assert.equal(verdict('{"content": "a FORBIDDEN plan"}').tag, "block");
  assert.equal(verdict('{"content": "hello"}').tag, "allow");
});
