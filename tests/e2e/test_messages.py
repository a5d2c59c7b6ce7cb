"""Anthropic's Messages API inbound (`POST /v1/messages`, `/v1/messages/count_tokens`), driven by
the official `anthropic` SDK against every bundled adapter: openai-compatible (mock_openai),
anthropic (mock_anthropic) and gemini (mock_gemini). Whatever the upstream speaks, the client
must get Anthropic's answers, events and errors; an Anthropic upstream must get what the client
sent — thinking blocks with their signatures, `cache_control` — intact, which mock_anthropic
checks the way the real API does. Also here: a request every target refuses as unsupported is a
400 `unsupported_request`, never a 502."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

import mock_anthropic as ma
import mock_gemini as mg
import mock_openai as mo
from harness import ADAPTER_MODELS, ADAPTERS, BUNDLED, adapter_provider, base_config

KINDS = ("openai-compatible", "anthropic", "gemini")
UPSTREAM = ADAPTER_MODELS
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather for a city",
                "input_schema": {"type": "object", "required": ["city"],
                                 "properties": {"city": {"type": "string"}}}}
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    mocks = module_mocks.one_per_adapter("msg")
    providers, models, env = {}, {}, {}
    for kind, mock in mocks.items():
        # Failing tests get targets of their own, so a cooldown never leaks into another test.
        upstream = [UPSTREAM[kind], UPSTREAM[kind] + "-429", UPSTREAM[kind] + "-broken"]
        if kind == "anthropic":
            upstream.append("claude-haiku-4-5")
        name, providers[name], key = adapter_provider(kind, mock, upstream)
        env.update(key)
        models[f"via-{name}"] = {"targets": [f"{name}/{UPSTREAM[kind]}"]}
        models[f"rl-{name}"] = {"targets": [f"{name}/{UPSTREAM[kind]}-429"]}
        models[f"broken-{name}"] = {"targets": [f"{name}/{UPSTREAM[kind]}-broken"]}
    # Two Anthropic targets: both refuse what the Messages API cannot do.
    models["claude-pair"] = {"targets": ["anthropic/claude-sonnet-4-5",
                                         "anthropic/claude-haiku-4-5"]}
    gw = module_gateways.start(base_config(providers=providers, models=models), env=env,
                               plugins=BUNDLED + ADAPTERS)
    return {"gw": gw, "mocks": mocks}


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


def model(kind: str) -> str:
    return "via-" + kind.split("-")[0]


def sdk(world) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=world["gw"].url, api_key="anything", max_retries=0,
                               timeout=30.0)


def text_answer(kind: str, content: str, prompt_tokens: int = 11, completion_tokens: int = 7,
                cached: int = 0) -> Any:
    if kind == "anthropic":
        b = ma.text(content, input_tokens=prompt_tokens - cached,
                    output_tokens=completion_tokens)
        b.extra["usage"] = {"cache_read_input_tokens": cached}
        return b
    if kind == "gemini":
        return mg.text(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    return mo.text(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   cached_tokens=cached)


def tool_answer(kind: str, name: str, args: dict[str, Any]) -> Any:
    encoded = json.dumps(args)
    if kind == "anthropic":
        return ma.tool_calls([(name, encoded)], ids=["toolu_01weather"])
    if kind == "gemini":
        return mg.tool_calls([(name, encoded)])
    return mo.tool_call(name, encoded, call_id="call_weather")


def upstream_body(world, kind: str) -> dict[str, Any]:
    return world["mocks"][kind].chat_requests[-1].json


# ---------------------------------------------------------------------------------------------
# Plain, streamed, tools
# ---------------------------------------------------------------------------------------------


def test_plain_message(world, kind):
    world["mocks"][kind].script(text_answer(kind, "Paris.", prompt_tokens=13,
                                            completion_tokens=3))
    raw = sdk(world).messages.with_raw_response.create(
        model=model(kind), max_tokens=200, system="Be brief.", stop_sequences=["###"],
        messages=[{"role": "user", "content": "Capital of France?"}])
    message = raw.parse()
    assert raw.headers["x-freeway-provider"] == kind.split("-")[0]
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Paris."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 13 and message.usage.output_tokens == 3
    sent = upstream_body(world, kind)
    if kind == "anthropic":
        assert sent["system"] == "Be brief." and sent["max_tokens"] == 200
        assert sent["stop_sequences"] == ["###"]
    elif kind == "openai-compatible":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["max_tokens"] == 200 and sent["stop"] == ["###"]
    else:
        assert sent["systemInstruction"]["parts"][0]["text"] == "Be brief."


def test_anthropic_beta_reaches_an_anthropic_target_and_only_it(world, kind):
    world["mocks"][kind].script(text_answer(kind, "ok"))
    sdk(world).messages.create(
        model=model(kind), max_tokens=50, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14, context-1m-2025-08-07"})
    sent = world["mocks"][kind].chat_requests[-1]
    assert "anthropic_beta" not in sent.json, sent.json
    if kind == "anthropic":
        assert sent.headers["anthropic-beta"] == ("interleaved-thinking-2025-05-14,"
                                                  "context-1m-2025-08-07")
    else:
        assert "anthropic-beta" not in sent.headers


def test_stream_events_and_final_message(world, kind):
    world["mocks"][kind].script(text_answer(kind, "one two three", prompt_tokens=20,
                                            completion_tokens=3))
    with sdk(world).messages.stream(model=model(kind), max_tokens=100,
                                    messages=[{"role": "user", "content": "Count"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "one two three" and len(pieces) > 1
    assert final.content[0].text == "one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3 and final.usage.input_tokens == 20


def test_stream_event_sequence_on_the_wire(world):
    world["mocks"]["openai-compatible"].script(mo.text("a b"))
    body = {"model": "via-openai", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(base_url=world["gw"].url, timeout=30) as http:
        r = http.post("/v1/messages", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [line[len("event: "):] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-4:] == ["content_block_delta", "content_block_stop", "message_delta",
                          "message_stop"]
    assert "[DONE]" not in r.text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_round_trip(world, kind, stream):
    mock = world["mocks"][kind]
    mock.script(tool_answer(kind, "get_weather", {"city": "Paris"}),
                text_answer(kind, "It is sunny in Paris."))
    client = sdk(world)
    question = {"role": "user", "content": "Weather in Paris?"}
    if stream:
        with client.messages.stream(model=model(kind), max_tokens=300, tools=[WEATHER_TOOL],
                                    messages=[question]) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model=model(kind), max_tokens=300, tools=[WEATHER_TOOL],
                                       tool_choice={"type": "auto"}, messages=[question])
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    second = client.messages.create(
        model=model(kind), max_tokens=300, tools=[WEATHER_TOOL],
        messages=[question,
                  {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                  {"role": "user", "content": [
                      {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 24C"}]}])
    assert second.content[0].text == "It is sunny in Paris."
    sent = upstream_body(world, kind)
    if kind == "anthropic":
        assert sent["messages"][1]["content"][-1]["type"] == "tool_use"
        result = sent["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.id
        assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["input_schema"]
    elif kind == "openai-compatible":
        assert sent["messages"][1]["tool_calls"][0]["id"] == call.id
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id,
                                       "content": "sunny, 24C"}
    else:
        parts = [p for c in sent["contents"] for p in c["parts"]]
        assert any("functionResponse" in p for p in parts)


# ---------------------------------------------------------------------------------------------
# Thinking, cache_control, a Claude Code-shaped session
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_thinking_signatures_survive_a_tool_loop(world, stream):
    mock = world["mocks"]["anthropic"]
    mock.script(ma.thinking("The user wants weather. I will call the tool.",
                            ma.tool_calls([("get_weather", '{"city": "Oslo"}')],
                                          ids=["toolu_01oslo"]),
                            signature="EqQBsignature==", redacted="opaque-redacted"),
                ma.thinking("Now answer.", ma.text("Cold in Oslo."), signature="EqQBtwo=="))
    client = sdk(world)
    kwargs = dict(model="via-anthropic", max_tokens=4096, tools=[WEATHER_TOOL],
                  thinking={"type": "enabled", "budget_tokens": 2048})
    question = {"role": "user", "content": "Weather in Oslo?"}
    if stream:
        with client.messages.stream(messages=[question], **kwargs) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(messages=[question], **kwargs)
    assert [b.type for b in first.content] == ["thinking", "redacted_thinking", "tool_use"]
    assert first.content[0].signature == "EqQBsignature=="
    assert first.content[0].thinking == "The user wants weather. I will call the tool."
    assert first.content[1].data == "opaque-redacted"
    assert mock.chat_requests[-1].json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # The real API refuses the next turn unless the thinking block leads the assistant turn
    # with its signature intact (mock_anthropic checks that too).
    second = client.messages.create(messages=[
        question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01oslo",
                                      "content": "-5C"}]}], **kwargs)
    assert [b.type for b in second.content] == ["thinking", "text"]
    assert second.content[1].text == "Cold in Oslo."
    sent = mock.chat_requests[-1].json["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "signature": "EqQBsignature==",
                       "thinking": "The user wants weather. I will call the tool."}
    assert sent[1] == {"type": "redacted_thinking", "data": "opaque-redacted"}


@pytest.mark.parametrize("target", ["openai-compatible", "gemini"])
def test_thinking_request_to_other_providers_is_answered(world, target):
    world["mocks"][target].script(text_answer(target, "fine"))
    message = sdk(world).messages.create(
        model=model(target), max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi"},
                  {"role": "assistant", "content": [
                      {"type": "thinking", "thinking": "t", "signature": "s"},
                      {"type": "text", "text": "hello"}]},
                  {"role": "user", "content": "again"}])
    assert message.content[0].text == "fine"
    if target == "openai-compatible":
        sent = upstream_body(world, target)
        assert "thinking" not in sent and "thinking_blocks" not in sent["messages"][1]


def claude_code_turns() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "text", "text": "Fix the failing test."}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": "toolu_01read", "name": "Read",
             "input": {"file_path": "/repo/test.py"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01read",
             "content": [{"type": "text", "text": "assert 1 == 2"}]},
            {"type": "text", "text": "go on", "cache_control": EPHEMERAL}]},
    ]


def test_claude_code_shaped_session(world, kind):
    """System blocks with cache_control, tools, tool results, metadata, streaming: what
    Claude Code sends on every turn."""
    mock = world["mocks"][kind]
    mock.script(tool_answer(kind, "Edit", {"file_path": "/repo/test.py"}),
                text_answer(kind, "Fixed.", prompt_tokens=900, cached=600))
    tools = [{"name": "Read", "description": "Read a file",
              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}},
             {"name": "Edit", "description": "Edit a file",
              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
              "cache_control": EPHEMERAL}]
    system = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
              {"type": "text", "text": "Work in /repo.", "cache_control": EPHEMERAL}]
    client = sdk(world)
    kwargs = dict(model=model(kind), max_tokens=8192, system=system, tools=tools,
                  metadata={"user_id": "user_abc_account_1_session_2"})
    turns = claude_code_turns()
    with client.messages.stream(messages=turns, **kwargs) as s:
        first = s.get_final_message()
    (edit,) = [b for b in first.content if b.type == "tool_use"]
    assert edit.name == "Edit" and edit.input == {"file_path": "/repo/test.py"}
    sent = upstream_body(world, kind)
    if kind == "anthropic":
        assert sent["system"][1]["cache_control"] == EPHEMERAL
        assert sent["tools"][1]["cache_control"] == EPHEMERAL
        assert sent["messages"][2]["content"][-1]["cache_control"] == EPHEMERAL
        assert sent["metadata"] == {"user_id": "user_abc_account_1_session_2"}
    elif kind == "openai-compatible":
        assert sent["user"] == "user_abc_account_1_session_2"
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool",
                                                         "user"]
    turns += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": edit.id,
                                            "content": "ok"}]}]
    with client.messages.stream(messages=turns, **kwargs) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Fixed." and final.stop_reason == "end_turn"
    if kind != "gemini":
        assert final.usage.cache_read_input_tokens == 600
        assert final.usage.input_tokens == 300


def test_count_tokens(world):
    count = sdk(world).messages.count_tokens(
        model="via-anthropic", system="You are terse.", tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "x" * 400}])
    assert count.input_tokens > 100
    assert not world["mocks"]["anthropic"].chat_requests


# ---------------------------------------------------------------------------------------------
# Errors in Anthropic's shape
# ---------------------------------------------------------------------------------------------


def test_invalid_request_is_anthropic_400(world):
    with pytest.raises(anthropic.BadRequestError) as e:
        sdk(world).messages.create(model="via-anthropic", max_tokens=10,
                                   messages=[{"role": "system", "content": "x"}])
    body = e.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "messages[0].role" in body["error"]["message"]
    assert body["request_id"] == e.value.response.headers["request-id"]
    with httpx.Client(base_url=world["gw"].url, timeout=30) as http:
        r = http.post("/v1/messages", json={"model": "via-anthropic",
                                            "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]


def test_unknown_model_is_anthropic_404(world):
    with pytest.raises(anthropic.NotFoundError) as e:
        sdk(world).messages.create(model="nope", max_tokens=10,
                                   messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "not_found_error"


def test_upstream_429_is_anthropic_rate_limit(world, kind):
    behaviour = {"anthropic": ma.rate_limited(17), "gemini": mg.rate_limited("37s"),
                 "openai-compatible": mo.rate_limited(20)}[kind]
    world["mocks"][kind].script(behaviour)
    with pytest.raises(anthropic.RateLimitError) as e:
        sdk(world).messages.create(model="rl-" + kind.split("-")[0], max_tokens=10,
                                   messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "rate_limit_error"
    assert int(e.value.response.headers["retry-after"]) > 0


def test_stream_broken_after_commit_ends_with_error_event(world):
    world["mocks"]["anthropic"].script(ma.stream_error(pieces=["Hello", " there"]))
    body = {"model": "broken-anthropic", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(base_url=world["gw"].url, timeout=30) as http:
        r = http.post("/v1/messages", json=body)
    frames = [f for f in r.text.split("\n\n") if f]
    assert frames[-1].startswith("event: error\ndata: ")
    error = json.loads(frames[-1].split("data: ", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] in ("overloaded_error",
                                                                    "api_error")
    assert "message_stop" not in r.text


def test_gateway_keys_accepted_as_x_api_key(gateways, mocks):
    mock = mocks.adopt(ma.MockAnthropic("claude-k", "sk-ant-k").start())
    cfg = base_config(
        auth={"keys": [{"name": "team", "key_env": "GW_KEY"}]},
        providers={"claude": {"adapter": "anthropic", "base_url": mock.base_url,
                              "api_key_env": "CLAUDE_K_KEY", "models": ["claude-sonnet-4-5"]}},
        models={"smart": {"targets": ["claude/claude-sonnet-4-5"]}})
    gw = gateways.start(cfg, env={"CLAUDE_K_KEY": "sk-ant-k", "GW_KEY": "gw-secret-key"}, plugins=BUNDLED + ADAPTERS)
    good = anthropic.Anthropic(base_url=gw.url, api_key="gw-secret-key", max_retries=0)
    message = good.messages.create(model="smart", max_tokens=10,
                                   messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "hello from claude-k"
    bad = anthropic.Anthropic(base_url=gw.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model="smart", max_tokens=10,
                            messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "authentication_error"
    assert "wrong" not in e.value.response.text


# ---------------------------------------------------------------------------------------------
# Incapability is a 400
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_every_target_refusing_as_unsupported_is_400(world, stream):
    client = world["gw"].client()
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="claude-pair", n=2, stream=stream,
                                       messages=[{"role": "user", "content": "x"}])
    error = e.value.body
    assert e.value.status_code == 400
    assert error["code"] == "unsupported_request"
    for target in ("anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"):
        assert f"{target}: unsupported: Anthropic's Messages API returns one choice" in \
            error["message"], error["message"]
    assert not world["mocks"]["anthropic"].chat_requests


# ---------------------------------------------------------------------------------------------
# Routed like any request: filters and failover
# ---------------------------------------------------------------------------------------------


def test_filters_and_failover_apply_to_messages(gateways, mocks):
    """A filter's rewrite is what reaches the provider (the extensions live inside the
    messages, so there is no unfiltered copy to leak), and an overloaded target fails over."""
    first = mocks.adopt(ma.MockAnthropic("claude-a", "sk-ant-a").start())
    second = mocks.adopt(ma.MockAnthropic("claude-b", "sk-ant-b").start())
    providers = {name: {"adapter": "anthropic", "base_url": mock.base_url,
                        "api_key_env": f"{name.upper()}_KEY", "models": ["claude-sonnet-4-5"]}
                 for name, mock in (("a", first), ("b", second))}
    cfg = base_config(providers=providers,
                      models={"smart": {"targets": ["a/claude-sonnet-4-5",
                                                    "b/claude-sonnet-4-5"]}})
    cfg["pipeline"]["filters"] = ["pii"]
    cfg["pipeline"]["settings"] = {"pii": {"actions": {"email": "redact"}}}
    gw = gateways.start(cfg, env={"A_KEY": "sk-ant-a", "B_KEY": "sk-ant-b"},
                        plugins=BUNDLED + ADAPTERS + ("pii",))
    first.script(ma.overloaded())
    client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="smart", max_tokens=50,
        system=[{"type": "text", "text": "Be kind.", "cache_control": EPHEMERAL}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Mail jane.doe@example.com please",
             "cache_control": EPHEMERAL}]}])
    assert raw.parse().content[0].text == "hello from claude-b"
    assert raw.headers["x-freeway-attempts"] == "2"
    sent = second.chat_requests[-1]
    assert b"jane.doe@example.com" not in sent.raw
    block = sent.json["messages"][0]["content"][0]
    assert "[EMAIL_1]" in block["text"] and block["cache_control"] == EPHEMERAL
    assert sent.json["system"][0]["cache_control"] == EPHEMERAL
