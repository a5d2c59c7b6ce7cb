"""Unit tests for app.py, run natively under CPython (`make test`)."""

import unittest

from wit_world.exports import guard

import app


class Verdict(unittest.TestCase):
    def test_blocks_the_keyword_in_any_case(self):
        self.assertIsInstance(app.verdict('{"content": "a FORBIDDEN plan"}'), guard.RequestVerdict_Block)
        self.assertIsInstance(app.verdict('{"content": "hello"}'), guard.RequestVerdict_Allow)


if __name__ == "__main__":
    unittest.main()
