"""Unit tests for keyword-guard, run natively against componentize-py's generated bindings:
./test.sh (which runs `componentize-py bindings` into ./bindings first)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bindings"))

from componentize_py_types import Err  # noqa: E402
from wit_world.exports import guard as wit_guard  # noqa: E402
from wit_world.imports import types  # noqa: E402

import app  # noqa: E402
import guard  # noqa: E402

SETTINGS = json.dumps(
    {
        "block": ["forbidden", "top secret", "c++"],
        "patterns": [r"\b\d{3}-\d{2}-\d{4}\b"],
        "label": {"sensitive": ["salary"], "code": ["python", "rust"]},
    }
)
INFO = wit_guard.RequestInfo(model="chat", tags=[], metadata=[])


def chat(*messages):
    return json.dumps(
        {"model": "chat", "messages": [{"role": r, "content": c} for r, c in messages]}
    )


def verdict(body, settings=SETTINGS, info=INFO):
    return app.Guard().on_request(info, body, settings).verdict


def tags(body, settings=SETTINGS, info=INFO):
    return app.Guard().on_request(info, body, settings).tags


class RequestTests(unittest.TestCase):
    def test_blocked_word_names_the_rule_not_the_prompt(self):
        result = verdict(chat(("user", "this is FORBIDDEN, my secret plan")))
        self.assertIsInstance(result, wit_guard.RequestVerdict_Block)
        self.assertIn('block[0] ("forbidden")', result.value)
        self.assertNotIn("secret plan", result.value)

    def test_words_match_whole_words_only(self):
        for text in ["forbiddenness", "unforbidden", "top secretary", "abc++"]:
            self.assertIsInstance(
                verdict(chat(("user", text))), wit_guard.RequestVerdict_Allow, text
            )
        for text in ["(forbidden)", "Top\n  Secret!", "I like c++."]:
            self.assertIsInstance(
                verdict(chat(("user", text))), wit_guard.RequestVerdict_Block, text
            )

    def test_patterns_block_and_are_named(self):
        result = verdict(chat(("user", "ssn 123-45-6789")))
        self.assertIsInstance(result, wit_guard.RequestVerdict_Block)
        self.assertIn("patterns[0]", result.value)
        self.assertNotIn("123-45-6789", result.value)

    def test_system_and_content_parts_are_checked_assistant_is_not(self):
        self.assertIsInstance(
            verdict(chat(("system", "top secret"), ("user", "hi"))),
            wit_guard.RequestVerdict_Block,
        )
        parts = [{"type": "text", "text": "forbidden"}, {"type": "image_url", "image_url": {}}]
        self.assertIsInstance(verdict(chat(("user", parts))), wit_guard.RequestVerdict_Block)
        self.assertIsInstance(
            verdict(chat(("assistant", "forbidden"), ("tool", "forbidden"), ("user", "ok"))),
            wit_guard.RequestVerdict_Allow,
        )

    def test_labels_in_settings_order_without_duplicates(self):
        body = chat(("user", "my salary in Rust and python"))
        self.assertIsInstance(verdict(body), wit_guard.RequestVerdict_Allow)
        self.assertEqual(tags(body), ["sensitive", "code"])
        tagged = wit_guard.RequestInfo(model="chat", tags=["sensitive"], metadata=[])
        self.assertEqual(tags(chat(("user", "salary, rust")), info=tagged), ["code"])
        self.assertEqual(tags(chat(("user", "salary")), info=tagged), [])

    def test_block_wins_over_label(self):
        self.assertIsInstance(
            verdict(chat(("user", "salary forbidden"))), wit_guard.RequestVerdict_Block
        )
        self.assertEqual(tags(chat(("user", "salary forbidden"))), [])

    def test_empty_settings_allow_everything(self):
        for settings in ["", "{}", " { } "]:
            self.assertIsInstance(
                verdict(chat(("user", "forbidden")), settings=settings),
                wit_guard.RequestVerdict_Allow,
            )

    def test_bad_settings_are_typed_errors(self):
        for settings in [
            "[]",
            "nope",
            '{"blocks": ["x"]}',
            '{"block": "x"}',
            '{"block": [""]}',
            '{"patterns": ["("]}',
            '{"label": ["x"]}',
            '{"label": {"t": [1]}}',
            '{"block_answers": "yes"}',
        ]:
            with self.assertRaises(Err, msg=settings) as caught:
                verdict(chat(("user", "hi")), settings=settings)
            error = caught.exception.value
            self.assertEqual(error.kind, types.ErrorKind.INTERNAL)
            self.assertFalse(error.retryable)
            self.assertTrue(error.message.startswith("invalid keyword-guard settings"))

    def test_check_settings_refuses_what_requests_would(self):
        app.WitWorld().check_settings(SETTINGS)
        app.WitWorld().check_settings("")
        with self.assertRaises(Err) as caught:
            app.WitWorld().check_settings('{"blocks": ["x"]}')
        self.assertEqual(caught.exception.value, "invalid keyword-guard settings: unknown key `blocks`")

    def test_body_that_is_not_json_is_a_bad_request(self):
        with self.assertRaises(Err) as caught:
            verdict("not json")
        self.assertEqual(caught.exception.value.kind, types.ErrorKind.BAD_REQUEST)


class ResponseTests(unittest.TestCase):
    @staticmethod
    def answer(text):
        return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

    def test_answers_pass_unless_block_answers(self):
        result = app.Guard().on_response(INFO, None, self.answer("forbidden"), SETTINGS)
        self.assertIsInstance(result, wit_guard.ResponseVerdict_Allow)

    def test_block_answers(self):
        settings = json.dumps({"block": ["forbidden"], "block_answers": True})
        blocked = app.Guard().on_response(INFO, None, self.answer("It is Forbidden."), settings)
        self.assertIsInstance(blocked, wit_guard.ResponseVerdict_Block)
        self.assertIn('block[0] ("forbidden")', blocked.value)
        allowed = app.Guard().on_response(INFO, None, self.answer("fine"), settings)
        self.assertIsInstance(allowed, wit_guard.ResponseVerdict_Allow)

    def test_streams_pass(self):
        stream = guard.StreamFilter(INFO, None, SETTINGS)
        self.assertIsInstance(stream.on_chunk('{"choices":[]}'), wit_guard.ChunkVerdict_Pass)
        self.assertEqual(stream.finish(), [])

    def test_metadata(self):
        metadata = app.WitWorld().metadata()
        self.assertEqual(metadata.name, "keyword-guard")
        self.assertEqual(metadata.kind, types.PluginKind.FILTER)


if __name__ == "__main__":
    unittest.main()
