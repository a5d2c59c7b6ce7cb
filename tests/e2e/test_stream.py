"""Streaming chat completions: SSE framing, text and tool-call streams read by the SDK, and the
`stream_options.include_usage` contract."""

from __future__ import annotations

import json
import time

import pytest

import mock_openai as mo
from harness import base_config, chat_body, error_body, keys_for, poll, provider, sse_events


@pytest.fixture(scope="module")
def gw(module_mocks, module_gateways):
    a = module_mocks.add("mock-a")
    cfg = base_config(
        # A short per-attempt timeout: it bounds the wait for the first chunk, never a whole stream.
        providers={"mock-a": provider(a, ["gpt-a"], timeout_ms=400)},
        models={"smart": {"targets": ["mock-a/gpt-a"]}},
    )
    return module_gateways.start(cfg, env=keys_for(a))


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


@pytest.fixture
def a(module_mocks):
    return module_mocks["mock-a"]


def test_stream_text_in_order(gw, a):
    pieces = ["Once", " upon", " a", " time", ", there", " was", " a", " gateway", "."]
    a.script(mo.text("".join(pieces), pieces=pieces))
    raw = gw.client().chat.completions.with_raw_response.create(
        **chat_body("smart", "Tell me a story"), stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-freeway-provider"] == "mock-a"
    assert raw.headers["x-freeway-model"] == "gpt-a"
    chunks = list(raw.parse())
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    texts = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert texts == pieces, "pieces must arrive one per chunk, in order"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({ch.id for ch in chunks}) == 1
    assert a.last().json["stream"] is True
    assert a.last().json["model"] == "gpt-a"


def test_sse_framing_on_the_wire(gw, a):
    a.script(mo.text("alpha beta"))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("smart", stream=True))
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1] == "[DONE]", "a finished stream ends with data: [DONE]"
    assert events.count("[DONE]") == 1
    parsed = [json.loads(e) for e in events[:-1]]
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in parsed) == "alpha beta"


def test_tool_call_stream_reassembled_by_sdk(gw, a):
    args = json.dumps({"location": "Boston, MA", "unit": "fahrenheit", "days": 3})
    a.script(mo.tool_call("get_forecast", args, call_id="call_stream1",
                          argument_pieces=[args[:1], args[1:9], args[9:30], args[30:]]))
    tools = [{"type": "function", "function": {
        "name": "get_forecast", "strict": True,
        "parameters": {"type": "object", "additionalProperties": False,
                       "required": ["location", "unit", "days"],
                       "properties": {"location": {"type": "string"},
                                      "unit": {"type": "string"},
                                      "days": {"type": "integer"}}}}}]
    with gw.client().chat.completions.stream(
            model="smart", messages=[{"role": "user", "content": "Forecast?"}], tools=tools) as s:
        final = s.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id == "call_stream1" and call.function.name == "get_forecast"
    assert call.function.arguments == args
    assert call.function.parsed_arguments == {"location": "Boston, MA", "unit": "fahrenheit",
                                              "days": 3}
    assert a.last().json["tools"] == tools


def test_include_usage_requested_gets_usage_chunk(gw, a):
    a.script(mo.text("one two three", prompt_tokens=20, completion_tokens=3))
    chunks = list(gw.client().chat.completions.create(
        **chat_body("smart"), stream=True, stream_options={"include_usage": True}))
    usage_chunks = [ch for ch in chunks if ch.usage is not None]
    assert len(usage_chunks) == 1, "exactly one usage chunk"
    last = chunks[-1]
    assert last is usage_chunks[0], "the usage chunk is the last one"
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (20, 3, 23)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "one two three"
    assert a.last().json["stream_options"]["include_usage"] is True


def test_usage_chunk_withheld_when_not_requested(gw, a):
    a.script(mo.text("one two three"))
    chunks = list(gw.client().chat.completions.create(**chat_body("smart"), stream=True))
    assert chunks, "no chunks"
    assert all(ch.choices for ch in chunks), "no chunk with empty choices reaches the client"
    assert all(ch.usage is None for ch in chunks), "no usage reaches a client that did not ask"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "one two three"
    # The adapter always asks its upstream for usage (the host accounts for it).
    assert a.last().json.get("stream_options", {}).get("include_usage") is True


def test_include_usage_false_is_not_asked(gw, a):
    a.script(mo.text("x y"))
    chunks = list(gw.client().chat.completions.create(
        **chat_body("smart"), stream=True, stream_options={"include_usage": False}))
    assert all(ch.usage is None and ch.choices for ch in chunks)


def test_streamed_unicode_split_across_pieces(gw, a):
    pieces = ["Gr", "üße ", "東", "京 ", "🚀"]
    a.script(mo.text("".join(pieces), pieces=pieces))
    chunks = list(gw.client().chat.completions.create(**chat_body("smart"), stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "Grüße 東京 🚀"


def test_long_stream_complete_and_in_order(gw, a):
    pieces = [f" w{i}" for i in range(2000)]
    a.script(mo.text("".join(pieces), pieces=pieces))
    chunks = list(gw.client().chat.completions.create(**chat_body("smart"), stream=True))
    got = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert got == pieces


def test_upstream_framing_split_anywhere_with_comments(gw, a):
    """Upstream bytes arrive in 7-byte writes (events and UTF-8 sequences cut in half) with
    SSE keep-alive comments between events; the client still gets clean `data:` events."""
    pieces = ["Grüße", " aus", " 東京", " 🚀🚀", " done"]
    a.script(mo.text("".join(pieces), pieces=pieces, write_size=7, sse_comments=True))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("smart", stream=True))
    events = sse_events(r.text)  # asserts every block is a `data:` event
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    assert [p["choices"][0]["delta"].get("content") for p in parsed
            if p["choices"] and p["choices"][0]["delta"].get("content")] == pieces


def test_slow_stream_is_not_cut_by_attempt_timeout(gw, a):
    """timeout_ms (400 ms) bounds the wait for the first chunk; a long answer whose chunks
    come 550 ms apart must still arrive whole."""
    pieces = ["slow", " but steady"]
    a.script(mo.text("".join(pieces), pieces=pieces, event_gap=0.55))
    chunks = list(gw.client().chat.completions.create(**chat_body("smart"), stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "slow but steady"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_slow_first_chunk_times_out(gw, a):
    """Headers at once but no first chunk within timeout_ms: the only target timed out."""
    a.script(mo.text("too late", first_event_delay=3))
    t0 = time.monotonic()
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("smart", stream=True))
    assert r.status_code == 504, r.text
    assert error_body(r)["code"] == "upstream_timeout"
    assert time.monotonic() - t0 < 2.5


def test_client_disconnect_cancels_upstream_stream(gw, a):
    """A client that hangs up mid-stream must not leave the gateway reading (and the provider
    generating, and billing) the rest of the answer."""
    pieces = [f" p{i}" for i in range(100)]
    a.script(mo.text("".join(pieces), pieces=pieces, event_gap=0.05))  # ~5 s if read to the end
    with gw.http() as h:
        with h.stream("POST", "/v1/chat/completions", json=chat_body("smart", stream=True)) as r:
            assert r.status_code == 200
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data: ")
                if seen >= 3:
                    break
        # Leaving the block closes the half-read response, i.e. the client's connection.
    rec = a.wait_for_requests(1)[-1]
    poll(lambda: rec.outcome == "aborted", timeout=3,
         what="the gateway to close the upstream stream after its client left")
