"""Escalation through the real binary (`models.<m>.escalate_on`): a whole answer cut off by the
token limit, empty, or not the JSON a JSON response format asked for is retried on the next
target and the client gets the better answer; the extra calls are counted (attempts, tokens,
ledger). Streams are never escalated. From every inbound dialect.
"""

from __future__ import annotations

import json

import anthropic
import pytest

import mock_openai as mo
from harness import Ops, base_config, chat_body, keys_for, poll, provider

ALL = ["length", "empty", "invalid_json"]


def config(a: mo.MockOpenAI, b: mo.MockOpenAI, **extra) -> dict:
    return base_config(
        providers={"mock-a": provider(a, ["small"]), "mock-b": provider(b, ["large"])},
        models={"esc": {"targets": ["mock-a/small", "mock-b/large"], "escalate_on": ALL},
                "length-only": {"targets": ["mock-a/small", "mock-b/large"],
                                "escalate_on": ["length"]},
                "plain": {"targets": ["mock-a/small", "mock-b/large"]}},
        **extra)


@pytest.fixture(scope="module")
def pair(module_mocks, module_gateways):
    a, b = module_mocks.add("mock-a"), module_mocks.add("mock-b")
    return module_gateways.start(config(a, b), env=keys_for(a, b)), a, b


@pytest.fixture
def esc(pair, module_mocks):
    module_mocks.reset()
    return pair


def test_an_answer_cut_off_by_length_is_escalated(esc):
    gw, a, b = esc
    a.script(mo.cut_off("The answer is"))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="esc", messages=[{"role": "user", "content": "Explain"}], max_tokens=5)
    reply = raw.parse()
    assert reply.choices[0].message.content == "hello from mock-b"
    assert reply.choices[0].finish_reason == "stop"
    route = raw.headers["x-freeway-route"]
    assert route.startswith("mock-a/small: escalated (length) "), route
    assert "mock-b/large: ok" in route
    assert raw.headers["x-freeway-attempts"] == "2"
    # The answer carries its own usage; the ledger counts both answers' (see below).
    assert reply.usage.prompt_tokens == 11 and reply.usage.completion_tokens == 7


def test_an_empty_answer_is_escalated(esc):
    gw, a, b = esc
    a.script(mo.empty())
    r = gw.client().chat.completions.create(model="esc",
                                            messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content == "hello from mock-b"


def test_invalid_json_for_a_json_format_is_escalated(esc):
    gw, a, b = esc
    a.script(mo.text("Sure! Here is the JSON: {\"ok\": tru"))
    b.script(mo.text('{"ok": true}'))
    r = gw.client().chat.completions.create(
        model="esc", messages=[{"role": "user", "content": "Give me JSON"}],
        response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content) == {"ok": True}
    # Without a JSON response format, text is text.
    a.script(mo.text("plain words"))
    r = gw.client().chat.completions.create(model="esc",
                                            messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content == "plain words"


def test_only_what_the_model_lists_is_escalated(esc):
    gw, a, b = esc
    a.script(mo.empty(), mo.cut_off("cut"))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("length-only"))
        assert r.json()["choices"][0]["message"]["content"] == ""
        r = h.post("/v1/chat/completions", json=chat_body("plain"))
        assert r.json()["choices"][0]["message"]["content"] == "cut"
        assert r.json()["choices"][0]["finish_reason"] == "length"
    assert not b.chat_requests


def test_when_nothing_better_comes_the_best_answer_is_served(esc):
    gw, a, b = esc
    a.script(mo.cut_off("A partial answer"))
    b.script(mo.empty())
    raw = gw.client().chat.completions.with_raw_response.create(
        model="esc", messages=[{"role": "user", "content": "Explain"}])
    reply = raw.parse()
    assert reply.choices[0].message.content == "A partial answer"
    assert reply.choices[0].finish_reason == "length"
    assert raw.headers["x-freeway-provider"] == "mock-a"
    route = raw.headers["x-freeway-route"]
    assert "mock-a/small: escalated (length)" in route
    assert "mock-b/large: ok" in route or "mock-b/large: escalated" in route
    # A failure after an escalated answer serves the escalated answer too.
    a.script(mo.cut_off("Another partial"))
    b.script(mo.server_error(503))
    r = gw.client().chat.completions.create(model="esc",
                                            messages=[{"role": "user", "content": "More"}])
    assert r.choices[0].message.content == "Another partial"


def test_streams_are_not_escalated(esc):
    gw, a, b = esc
    a.script(mo.cut_off("streamed and cut"))
    chunks = list(gw.client().chat.completions.create(
        model="esc", messages=[{"role": "user", "content": "Hi"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed and cut"
    assert not b.chat_requests


def test_messages_and_responses_clients_get_the_better_answer(esc):
    gw, a, b = esc
    claude = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    a.script(mo.cut_off("cut"))
    raw = claude.messages.with_raw_response.create(
        model="esc", max_tokens=20, messages=[{"role": "user", "content": "Explain"}])
    message = raw.parse()
    assert message.content[0].text == "hello from mock-b"
    assert message.stop_reason == "end_turn"
    assert raw.headers["x-freeway-route"].startswith("mock-a/small: escalated (length)")

    a.script(mo.empty())
    response = gw.client().responses.create(model="esc", input="Explain")
    assert response.output_text == "hello from mock-b"


def test_escalated_calls_are_counted_in_the_ledger(mocks, gateways):
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    o = Ops(gateways, config(a, b, store={"path": "freeway.db"}), keys_for(a, b))
    gw = o.launch()
    a.script(mo.cut_off("cut"))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="esc", messages=[{"role": "user", "content": "Explain"}])
    request_id = raw.headers["x-request-id"]
    row = poll(lambda: o.ledger("WHERE request_id = ?", (request_id,)), timeout=10,
               interval=0.1, what="the ledger row")[0]
    assert row["attempts"] == 2 and row["provider"] == "mock-b"
    assert row["prompt_tokens"] == 22 and row["completion_tokens"] == 14
    assert row["route"].startswith("mock-a/small: escalated (length)")
