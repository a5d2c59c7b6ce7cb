"""Streams from endpoints that cannot stream, and whole answers from endpoints that only stream
(`streaming = false | "only"` on a provider or a model, or learned from the upstream's refusal).

A client's streamed request to a target that cannot stream is sent upstream without streaming
and the whole answer is replayed as a valid stream in the client's own dialect (chat
completions, `/v1/messages`, `/v1/responses`), through the official SDKs. A plain request to a
target that only streams is sent as a stream and folded into one answer. A target that refuses
the shape at run time is asked again in the other one, and the gateway remembers it."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

import mock_openai as mo
from harness import base_config, keys_for, provider


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    whole = module_mocks.add("whole")  # cannot stream: says so in the catalog
    streamer = module_mocks.add("streamer")  # only streams: says so in the catalog
    learner = module_mocks.add("learner")  # says nothing: the gateway learns from refusals
    cfg = base_config(
        providers={
            "whole": provider(whole, ["gpt-whole"], streaming=False),
            "streamer": provider(streamer, {"gpt-stream": {"streaming": "only"}}),
            "learner": provider(learner, ["gpt-never-a", "gpt-never-b", "gpt-only-a"]),
        },
        models={
            "whole": {"targets": ["whole/gpt-whole"]},
            "streamer": {"targets": ["streamer/gpt-stream"]},
            "never-a": {"targets": ["learner/gpt-never-a"]},
            "never-b": {"targets": ["learner/gpt-never-b"]},
            "only-a": {"targets": ["learner/gpt-only-a"]},
        },
    )
    gw = module_gateways.start(cfg, env=keys_for(whole, streamer, learner))
    return {"gw": gw, "whole": whole, "streamer": streamer, "learner": learner}


@pytest.fixture(autouse=True)
def _reset(world, module_mocks):
    module_mocks.reset()
    world["whole"].streaming = "never"
    world["streamer"].streaming = "only"


def test_chat_stream_is_replayed_from_a_whole_answer(world):
    world["whole"].script(mo.text("one two three", prompt_tokens=9, completion_tokens=3))
    chunks = list(world["gw"].client().chat.completions.create(
        model="whole", messages=[{"role": "user", "content": "count"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    sent = world["whole"].chat_requests
    assert len(sent) == 1, "the catalog says it cannot stream: no refused try"
    assert not sent[0].json.get("stream") and "stream_options" not in sent[0].json


def test_chat_stream_of_a_tool_call_keeps_its_arguments(world):
    world["whole"].script(mo.tool_call("get_weather", '{"city":"Paris"}', call_id="call_1"))
    stream = world["gw"].client().chat.completions.create(
        model="whole", messages=[{"role": "user", "content": "weather?"}], stream=True,
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}])
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                into = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                into["id"] += call.id or ""
                into["name"] += (call.function.name or "") if call.function else ""
                into["args"] += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert calls == {0: {"id": "call_1", "name": "get_weather", "args": '{"city":"Paris"}'}}
    assert finish == "tool_calls"


def test_messages_stream_from_a_whole_answer(world):
    world["whole"].script(mo.text("Bonjour tout le monde", prompt_tokens=6, completion_tokens=4))
    sdk = anthropic.Anthropic(base_url=world["gw"].url, api_key="x", max_retries=0)
    with sdk.messages.stream(model="whole", max_tokens=100,
                             messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Bonjour tout le monde"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4
    assert not world["whole"].chat_requests[-1].json.get("stream")


def test_responses_stream_from_a_whole_answer(world):
    world["whole"].script(mo.text("Paris is the capital", completion_tokens=4))
    with world["gw"].client().responses.stream(model="whole", input="Capital?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Paris is the capital"
    assert final.status == "completed" and final.usage.output_tokens == 4


@pytest.mark.parametrize("dialect", ["chat", "messages", "responses"])
def test_a_plain_request_to_a_target_that_only_streams_gets_the_assembled_answer(world, dialect):
    world["streamer"].script(mo.text("assembled from pieces", prompt_tokens=5,
                                     completion_tokens=3))
    gw = world["gw"]
    if dialect == "chat":
        answer = gw.client().chat.completions.create(
            model="streamer", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "assembled from pieces"
        assert answer.choices[0].finish_reason == "stop"
        assert answer.usage.prompt_tokens == 5 and answer.usage.completion_tokens == 3
    elif dialect == "messages":
        sdk = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        message = sdk.messages.create(model="streamer", max_tokens=50,
                                      messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].text == "assembled from pieces"
        assert message.usage.output_tokens == 3
    else:
        response = gw.client().responses.create(model="streamer", input="hi")
        assert response.output_text == "assembled from pieces"
        assert response.usage.output_tokens == 3
    sent = world["streamer"].chat_requests
    assert len(sent) == 1 and sent[0].json["stream"] is True


def test_a_refused_stream_is_retried_whole_and_remembered(world):
    learner = world["learner"]
    learner.streaming = "never"
    client = world["gw"].client()
    for _ in range(2):
        chunks = list(client.chat.completions.create(
            model="never-a", messages=[{"role": "user", "content": "hi"}], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
            "hello from learner"
    streamed = [r.json.get("stream") for r in learner.chat_requests]
    assert [bool(s) for s in streamed] == [True, False, False], "refused once, then asked whole from then on"
    # What was learned is per target: another model of the same provider is still asked to
    # stream until it refuses too.
    list(client.chat.completions.create(
        model="never-b", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert [bool(r.json.get("stream")) for r in learner.chat_requests][3:] == [True, False]


def test_a_refused_plain_request_is_retried_as_a_stream_and_remembered(world):
    learner = world["learner"]
    learner.streaming = "only"
    client = world["gw"].client()
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="only-a", messages=[{"role": "user", "content": "hi"}])
        assert raw.parse().choices[0].message.content == "hello from learner"
        assert raw.headers["x-freeway-attempts"] == "1"
    assert [bool(r.json.get("stream")) for r in learner.chat_requests] == [False, True, True]


def test_streaming_must_be_a_bool_or_only(gateways, mocks):
    m = mocks.add("m")
    cfg = base_config(providers={"m": provider(m, ["x"], streaming="sometimes")},
                      models={"x": {"targets": ["m/x"]}})
    out = gateways.start_refused(cfg, env=keys_for(m))
    assert "streaming" in out and "only" in out, out

