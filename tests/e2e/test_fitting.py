"""Context fitting through the real binary (`models.<m>.context_fit`, `max_input_tokens`): the
bundled `middle-out` and `summarize` fitter plugins, per target after routing, from every
inbound dialect (chat completions with the `openai` SDK, /v1/messages with the `anthropic`
SDK, /v1/responses with the `openai` SDK).

What is asserted is what a user (and their free quota) notices: what the upstream received
(which messages, how many estimated tokens), the `x-freeway-fit` header, and that a target
with a large window still gets the whole conversation.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

import mock_openai as mo
from harness import Ops, base_config, error_body, keys_for, poll, provider

SMALL_WINDOW = 4000
ANSWER_TOKENS = 500
# What the small target leaves for a prompt, in the gateway's estimate (characters / 4).
BUDGET = SMALL_WINDOW - ANSWER_TOKENS
SYSTEM = "You are a careful assistant."
FIRST = "My name is Ada and I keep bees in Lisbon."
# Long conversations are the point here.
BIG_BODIES = {"max_body_bytes": 1_000_000}


def windowed(mock: mo.MockOpenAI, model: str, window: int) -> dict[str, Any]:
    p = provider(mock, [])
    p["models"] = {model: {"context_window": window}}
    return p


def long_conversation(turns: int = 40, size: int = 800) -> list[dict[str, Any]]:
    """A system message, a first turn, `turns` long turns and a last question."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
    ]
    for i in range(turns):
        messages.append({"role": "user", "content": f"turn {i} question " + "q" * size})
        messages.append({"role": "assistant", "content": f"turn {i} answer " + "a" * size})
    messages.append({"role": "user", "content": "What is my name?"})
    return messages


def estimate(messages: list[dict[str, Any]]) -> int:
    """The gateway's estimate of a conversation's prompt tokens."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content.encode())
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "").encode()) for p in content if p.get("type") == "text")
        for call in m.get("tool_calls") or []:
            chars += len(json.dumps(call, separators=(",", ":")).encode())
    return chars // 4


@pytest.fixture(scope="module")
def fitting(module_mocks, module_gateways):
    s = module_mocks.add("mock-s")      # small window
    b = module_mocks.add("mock-b")      # 1M window
    c = module_mocks.add("mock-c")      # the cheap summarizer
    providers = {
        "mock-s": windowed(s, "small", SMALL_WINDOW),
        "mock-b": windowed(b, "big", 1_000_000),
        "mock-c": provider(c, ["cheap"]),
    }
    models = {
        "fit": {"targets": ["mock-s/small", "mock-b/big"], "context_fit": "middle-out"},
        "big-first": {"targets": ["mock-b/big", "mock-s/small"], "context_fit": "middle-out"},
        "refuse": {"targets": ["mock-s/small"]},
        "capped": {"targets": ["mock-b/big"], "max_input_tokens": 100},
        "capped-fit": {"targets": ["mock-b/big"], "max_input_tokens": 2000,
                       "context_fit": "middle-out"},
        "cheap-model": {"targets": ["mock-c/cheap"]},
        "sum": {"targets": ["mock-s/small"], "context_fit": "summarize",
                "context_fit_settings": {"model": "cheap-model", "timeout_ms": 400,
                                         "max_summary_tokens": 100}},
    }
    gw = module_gateways.start(base_config(providers=providers, models=models, server=BIG_BODIES),
                               env=keys_for(s, b, c),
                               plugins=("openai-compatible", "priority-fallback", "middle-out",
                                        "summarize"))
    return gw, s, b, c


@pytest.fixture
def fit(fitting, module_mocks):
    module_mocks.reset()
    return fitting


def sent_messages(mock: mo.MockOpenAI) -> list[dict[str, Any]]:
    return mock.last().json["messages"]


def text_of(message: dict[str, Any]) -> str:
    """A message's text, whether its content is a string or text parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def assert_trimmed(sent: list[dict[str, Any]], original: list[dict[str, Any]]) -> None:
    """What a small window must get: every system message, the first turn, the newest turns,
    whole turns only, within the budget."""
    assert len(sent) < len(original)
    assert estimate(sent) <= BUDGET, estimate(sent)
    assert sent[0]["role"] == "system" and text_of(sent[0]) == SYSTEM
    assert text_of(sent[1]) == FIRST
    assert text_of(sent[-1]) == "What is my name?"
    roles = [m["role"] for m in sent[1:]]
    assert all(a != b for a, b in zip(roles, roles[1:])), f"roles must alternate: {roles}"
    # The kept middle is the newest: contiguous up to the last turn.
    kept = [int(text_of(m).split()[1]) for m in sent if text_of(m).startswith("turn ")]
    assert kept == sorted(kept) and kept[-1] == 39, kept


def fit_header(headers: Any) -> str:
    value = headers.get("x-freeway-fit")
    assert value, f"no x-freeway-fit header: {dict(headers)}"
    return value


# ---------------------------------------------------------------------------------------------
# middle-out, every inbound dialect
# ---------------------------------------------------------------------------------------------


def test_chat_completions_are_fitted_to_the_small_window(fit):
    gw, s, b, _ = fit
    original = long_conversation()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="fit", messages=original, max_tokens=ANSWER_TOKENS)
    reply = raw.parse()
    assert reply.choices[0].message.content == "hello from mock-s"
    assert_trimmed(sent_messages(s), original)
    header = fit_header(raw.headers)
    dropped = len(original) - len(sent_messages(s))
    assert header.startswith(f"middle-out: dropped {dropped} messages (~"), header
    assert int(header.split("(~")[1].split()[0]) >= estimate(original) - BUDGET
    assert not b.chat_requests


def test_messages_api_is_fitted_too(fit):
    gw, s, _, _ = fit
    original = long_conversation()
    claude = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    raw = claude.messages.with_raw_response.create(
        model="fit", max_tokens=ANSWER_TOKENS, system=SYSTEM,
        messages=[m for m in original if m["role"] != "system"])
    assert raw.parse().content[0].text == "hello from mock-s"
    assert_trimmed(sent_messages(s), original)
    assert fit_header(raw.headers).startswith("middle-out: dropped ")


def test_responses_api_is_fitted_too(fit):
    gw, s, _, _ = fit
    original = long_conversation()
    raw = gw.client().responses.with_raw_response.create(
        model="fit", instructions=SYSTEM, max_output_tokens=ANSWER_TOKENS,
        input=[{"role": m["role"], "content": m["content"]}
               for m in original if m["role"] != "system"])
    assert raw.parse().output_text == "hello from mock-s"
    assert_trimmed(sent_messages(s), original)
    assert fit_header(raw.headers).startswith("middle-out: dropped ")


def test_streams_are_fitted(fit):
    gw, s, _, _ = fit
    original = long_conversation()
    with gw.client().chat.completions.with_streaming_response.create(
            model="fit", messages=original, max_tokens=ANSWER_TOKENS, stream=True) as raw:
        text = "".join(chunk.choices[0].delta.content or ""
                       for chunk in raw.parse() if chunk.choices)
        assert fit_header(raw.headers).startswith("middle-out: dropped ")
    assert text == "hello from mock-s"
    assert_trimmed(sent_messages(s), original)


# ---------------------------------------------------------------------------------------------
# per target, after routing
# ---------------------------------------------------------------------------------------------


def test_a_large_window_gets_the_whole_conversation(fit):
    gw, s, b, _ = fit
    original = long_conversation()
    # The small target fails; the large one gets the conversation untouched.
    s.script(mo.server_error(503))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="fit", messages=original, max_tokens=ANSWER_TOKENS)
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert len(sent_messages(s)) < len(original)
    assert sent_messages(b) == original
    assert raw.headers.get("x-freeway-fit") is None
    # And when the large target comes first, nothing is trimmed at all.
    raw = gw.client().chat.completions.with_raw_response.create(
        model="big-first", messages=original, max_tokens=ANSWER_TOKENS)
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert sent_messages(b) == original and len(s.chat_requests) == 1


def test_tool_calls_stay_with_their_results(fit):
    gw, s, _, _ = fit
    original = long_conversation(turns=10)
    tool_turns = []
    for i in range(12):
        call_id = f"call_{i}"
        tool_turns += [
            {"role": "user", "content": f"look up item {i} " + "u" * 600},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": call_id, "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"item": i})}}]},
            {"role": "tool", "tool_call_id": call_id, "content": "r" * 900},
            {"role": "assistant", "content": f"item {i} found"},
        ]
    messages = original[:-1] + tool_turns + original[-1:]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"item": {"type": "integer"}}}}}]
    r = gw.client().chat.completions.create(model="fit", messages=messages, tools=tools,
                                            max_tokens=ANSWER_TOKENS)
    assert r.choices[0].message.content == "hello from mock-s"
    sent = sent_messages(s)
    assert len(sent) < len(messages) and estimate(sent) <= BUDGET
    for i, m in enumerate(sent):
        if m["role"] == "tool":
            call = sent[i - 1]
            assert call["role"] == "assistant", sent[i - 1]
            assert call["tool_calls"][0]["id"] == m["tool_call_id"]
        if m.get("tool_calls"):
            assert sent[i + 1]["role"] == "tool"


def test_one_oversized_message_is_cut_in_its_middle(fit):
    gw, s, _, _ = fit
    document = "BEGIN " + "lorem ipsum " * 3000 + " END"
    raw = gw.client().chat.completions.with_raw_response.create(
        model="fit", max_tokens=ANSWER_TOKENS,
        messages=[{"role": "system", "content": SYSTEM},
                  {"role": "user", "content": "Summarize: " + document}])
    assert raw.parse().choices[0].message.content == "hello from mock-s"
    sent = sent_messages(s)
    assert len(sent) == 2 and estimate(sent) <= BUDGET
    content = sent[1]["content"]
    assert content.startswith("Summarize: BEGIN ") and content.endswith(" END")
    assert "characters left out by the gateway to fit the context window" in content
    assert "truncated 1 in the middle" in fit_header(raw.headers)


def test_what_cannot_fit_is_refused_with_a_reason(fit):
    gw, s, b, _ = fit
    huge = "x" * 40000
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json={
            "model": "fit", "max_tokens": ANSWER_TOKENS, "messages": [
                {"role": "system", "content": huge}, {"role": "user", "content": huge}]})
    # The small target cannot be made to fit; the large one still takes it whole.
    assert r.status_code == 200, r.text
    assert r.headers["x-freeway-provider"] == "mock-b"
    assert "mock-s/small: cannot serve (" in r.headers["x-freeway-route"]
    assert "need about" in r.headers["x-freeway-route"]
    assert not s.chat_requests


def test_refuse_is_the_default_and_max_input_tokens_caps_even_a_large_window(fit):
    gw, s, b, _ = fit
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json={
            "model": "refuse", "max_tokens": ANSWER_TOKENS, "messages": long_conversation()})
        assert r.status_code == 400, r.text
        assert error_body(r)["code"] == "unsupported_request"
        assert "context window of 4000" in error_body(r)["message"]
        r = h.post("/v1/chat/completions", json={
            "model": "capped", "messages": long_conversation(turns=2)})
        assert r.status_code == 400, r.text
        assert "max_input_tokens of 100" in error_body(r)["message"]
    assert not s.chat_requests and not b.chat_requests
    # With a fitter, the cap trims a request for a 1M window to 2000 tokens.
    original = long_conversation()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="capped-fit", messages=original)
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    sent = sent_messages(b)
    assert len(sent) < len(original) and estimate(sent) <= 2000
    assert fit_header(raw.headers).startswith("middle-out: dropped ")


# ---------------------------------------------------------------------------------------------
# summarize: a cheap model's summary in place of the span, through the gateway itself
# ---------------------------------------------------------------------------------------------


def test_summarize_puts_a_summary_in_place_of_the_dropped_turns(fit):
    gw, s, _, c = fit
    c.respond_with(lambda body: mo.text("SUMMARY: Ada asked about turns 0 to 30."))
    original = long_conversation()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="sum", messages=original, max_tokens=ANSWER_TOKENS)
    assert raw.parse().choices[0].message.content == "hello from mock-s"
    # The summarizer was asked about the span, through the gateway.
    asked = c.last().json
    assert asked["model"] == "cheap"
    assert "turn 0 question" in asked["messages"][1]["content"]
    sent = sent_messages(s)
    assert estimate(sent) <= BUDGET
    summaries = [m for m in sent if "SUMMARY: Ada asked" in (m.get("content") or "")]
    assert len(summaries) == 1 and summaries[0]["role"] == "system"
    assert sent[1]["content"] == FIRST and sent[-1]["content"] == "What is my name?"
    header = fit_header(raw.headers)
    assert header.startswith("summarize: dropped ") and "added 1 summary" in header, header
    assert "summary by cheap-model in " in header, header
    # The same span again: the summary comes from the cache, the summarizer is not asked.
    raw = gw.client().chat.completions.with_raw_response.create(
        model="sum", messages=original, max_tokens=ANSWER_TOKENS)
    assert "summary by cheap-model, cached" in fit_header(raw.headers)
    assert len(c.chat_requests) == 1


def test_summarize_falls_back_to_middle_out_when_the_summary_is_late(fit):
    gw, s, _, c = fit
    c.script(mo.text("too late", delay=2.0))
    original = long_conversation(size=790)  # another span: not in the cache
    raw = gw.client().chat.completions.with_raw_response.create(
        model="sum", messages=original, max_tokens=ANSWER_TOKENS)
    assert raw.parse().choices[0].message.content == "hello from mock-s"
    header = fit_header(raw.headers)
    assert "summary by cheap-model failed, middle-out instead: no answer within 400 ms" in header
    sent = sent_messages(s)
    assert not any("too late" in (m.get("content") or "") for m in sent)
    assert_trimmed(sent, original)


def test_summary_calls_are_ledger_rows_of_their_own(mocks, gateways):
    s = mocks.add("mock-s")
    c = mocks.add("mock-c")
    c.respond_with(lambda body: mo.text("SUMMARY"))
    config = base_config(
        store={"path": "freeway.db"}, server=BIG_BODIES,
        providers={"mock-s": windowed(s, "small", SMALL_WINDOW), "mock-c": provider(c, ["cheap"])},
        models={"cheap-model": {"targets": ["mock-c/cheap"]},
                "sum": {"targets": ["mock-s/small"], "context_fit": "summarize",
                        "context_fit_settings": {"model": "cheap-model"}}})
    o = Ops(gateways, config, keys_for(s, c),
            plugins=("openai-compatible", "priority-fallback", "summarize"))
    gw = o.launch()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="sum", messages=long_conversation(), max_tokens=ANSWER_TOKENS)
    request_id = raw.headers["x-request-id"]
    rows = poll(lambda: (lambda r: r if len(r) == 2 else None)(
        o.ledger("WHERE request_id LIKE ?", (request_id + "%",))),
        timeout=10, interval=0.1, what="two ledger rows")
    by_id = {r["request_id"]: r for r in rows}
    summary = by_id[request_id + ".summary"]
    assert summary["model"] == "cheap-model" and summary["provider"] == "mock-c"
    assert summary["prompt_tokens"] == 11 and summary["status"] == 200
    assert by_id[request_id]["model"] == "sum"


def test_a_fitter_the_config_names_must_be_a_loaded_fitter(gateways, mocks):
    s = mocks.add("mock-s")
    config = base_config(providers={"mock-s": windowed(s, "small", SMALL_WINDOW)},
                         models={"fit": {"targets": ["mock-s/small"],
                                         "context_fit": "priority-fallback"}})
    path = gateways.write(config)
    out = gateways.cli(path, "check", env=keys_for(s), check=False)
    assert out.returncode != 0
    assert "models.fit.context_fit" in out.stderr + out.stdout
    assert "not a fitter plugin" in out.stderr + out.stdout
    config["models"]["fit"]["context_fit"] = "summarize"
    config["models"]["fit"]["context_fit_settings"] = {"timeout_ms": 5}
    path = gateways.write(config, plugins=("openai-compatible", "priority-fallback", "summarize"))
    out = gateways.cli(path, "check", env=keys_for(s), check=False)
    assert out.returncode != 0
    assert "models.fit.context_fit_settings" in out.stderr + out.stdout
    assert "summarize needs `model`" in out.stderr + out.stdout
