"""Unit tests for app.py, run natively under CPython (`make test`)."""

import json
import unittest

from wit_world.imports import types

import app


class Adapter(unittest.TestCase):
    def test_model_is_the_upstreams_and_streams_ask_for_usage(self):
        body = json.loads(app.rewrite('{"model": "mine", "messages": []}', "theirs", True))
        self.assertEqual(body["model"], "theirs")
        self.assertEqual(body["stream_options"], {"include_usage": True})

    def test_errors_are_typed_by_status(self):
        error = app.upstream_error(429, '{"error": {"message": "slow down"}}')
        self.assertEqual((error.kind, error.retryable, error.message),
                         (types.ErrorKind.RATE_LIMITED, True, "slow down"))


if __name__ == "__main__":
    unittest.main()
