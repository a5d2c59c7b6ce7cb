"""Translation fidelity on `/v1/chat/completions` (the official `openai` SDK) to the Anthropic
and Gemini adapters: structured output, several choices, reasoning effort, reasoning content
back, cached-token usage in answers and streams. Each upstream mock refuses what its real API
refuses, and the test checks both what the upstream received and what the client got."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import mock_anthropic as ma
import mock_gemini as mg
from harness import ADAPTERS, BUNDLED, base_config

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "capital", "schema": SCHEMA, "strict": True}}


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    claude = module_mocks.adopt(ma.MockAnthropic("claude", "sk-ant-t").start())
    gem = module_mocks.adopt(mg.MockGemini("gem", "AIza-t").start())
    cfg = base_config(
        providers={
            "anthropic": {"adapter": "anthropic", "base_url": claude.base_url,
                          "api_key_env": "CLAUDE_KEY", "models": ["claude-sonnet-4-5"]},
            "gemini": {"adapter": "gemini", "base_url": gem.base_url,
                       "api_key_env": "GEM_KEY",
                       "models": ["gemini-2.5-flash", "gemini-2.5-pro"]}},
        models={"claude": {"targets": ["anthropic/claude-sonnet-4-5"]},
                "gem": {"targets": ["gemini/gemini-2.5-flash"]},
                "gem-pro": {"targets": ["gemini/gemini-2.5-pro"]}})
    gw = module_gateways.start(cfg, env={"CLAUDE_KEY": "sk-ant-t", "GEM_KEY": "AIza-t"},
                               plugins=BUNDLED + ADAPTERS)
    return {"gw": gw, "claude": claude, "gem": gem}


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


def ask(world, model: str, **kw: Any) -> Any:
    return world["gw"].client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Capital of France?"}], **kw)


def streamed(world, model: str, **kw: Any) -> tuple[dict[str, str], Any, list[str]]:
    """The joined content and reasoning of a stream, its usage and finish reasons."""
    text = {"content": "", "reasoning": ""}
    usage, finishes = None, []
    for chunk in ask(world, model, stream=True, stream_options={"include_usage": True}, **kw):
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text["content"] += choice.delta.content or ""
            text["reasoning"] += getattr(choice.delta, "reasoning_content", None) or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return text, usage, finishes


# ---------------------------------------------------------------------------------------------
# Structured output
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fmt", ["json_schema", "json_object"])
def test_structured_output_to_anthropic_is_content_not_a_tool_call(world, stream, fmt):
    world["claude"].script(ma.tool_calls([("freeway_json_response", '{"city": "Paris"}')]))
    response_format = JSON_SCHEMA if fmt == "json_schema" else {"type": "json_object"}
    if stream:
        text, _, finishes = streamed(world, "claude", response_format=response_format)
        content, finish = text["content"], finishes[-1]
    else:
        c = ask(world, "claude", response_format=response_format)
        (choice,) = c.choices
        assert not choice.message.tool_calls
        content, finish = choice.message.content, choice.finish_reason
    assert json.loads(content) == {"city": "Paris"}
    assert finish == "stop"
    sent = world["claude"].chat_requests[-1].json
    (tool,) = sent["tools"]
    assert tool["name"] == "freeway_json_response"
    assert tool["input_schema"] == (SCHEMA if fmt == "json_schema" else {"type": "object"})
    assert sent["tool_choice"] == {"type": "tool", "name": "freeway_json_response"}


def test_structured_output_to_gemini_is_a_response_schema(world):
    world["gem"].script(mg.text('{"city": "Paris"}'))
    c = ask(world, "gem", response_format=JSON_SCHEMA)
    assert json.loads(c.choices[0].message.content) == {"city": "Paris"}
    config = world["gem"].chat_requests[-1].json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["properties"]["city"]["type"].lower() == "string"


# ---------------------------------------------------------------------------------------------
# Several choices
# ---------------------------------------------------------------------------------------------


def test_n_to_gemini_is_candidate_count(world):
    world["gem"].script(mg.text("Paris"))
    c = ask(world, "gem", n=2)
    assert [choice.index for choice in c.choices] == [0, 1]
    assert [choice.message.content for choice in c.choices] == ["Paris", "Paris (2)"]
    assert world["gem"].chat_requests[-1].json["generationConfig"]["candidateCount"] == 2


def test_n_to_gemini_streams_every_candidate(world):
    world["gem"].script(mg.text("Paris is the capital", pieces=["Paris ", "is the capital"]))
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in ask(world, "gem", n=2, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: "Paris is the capital", 1: "Paris is the capital (2)"}
    assert finishes == {0: "stop", 1: "stop"}
    assert world["gem"].chat_requests[-1].json["generationConfig"]["candidateCount"] == 2


def test_n_to_anthropic_is_a_clear_400(world):
    with pytest.raises(openai.BadRequestError) as e:
        ask(world, "claude", n=2)
    assert e.value.body["code"] == "unsupported_request"
    assert "one choice per request" in e.value.body["message"]
    assert not world["claude"].chat_requests


# ---------------------------------------------------------------------------------------------
# Reasoning
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_reasoning_effort_to_anthropic_and_reasoning_back(world, stream):
    world["claude"].script(ma.thinking("Paris is the capital.", ma.text("Paris"),
                                       signature="EqQBsig=="))
    if stream:
        text, _, _ = streamed(world, "claude", reasoning_effort="medium", max_tokens=500)
        assert text == {"content": "Paris", "reasoning": "Paris is the capital."}
    else:
        c = ask(world, "claude", reasoning_effort="medium", max_tokens=500)
        message = c.choices[0].message
        assert message.content == "Paris"
        assert message.reasoning_content == "Paris is the capital."
        assert message.thinking_blocks == [{"type": "thinking", "signature": "EqQBsig==",
                                            "thinking": "Paris is the capital."}]
    sent = world["claude"].chat_requests[-1].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] > 4096


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_reasoning_effort_to_gemini_and_thoughts_back(world, stream):
    b = mg.text("Paris")
    b.extra["thought"] = "France's capital is Paris."
    world["gem"].script(b)
    if stream:
        text, _, _ = streamed(world, "gem", reasoning_effort="low")
        assert text == {"content": "Paris", "reasoning": "France's capital is Paris."}
    else:
        message = ask(world, "gem", reasoning_effort="low").choices[0].message
        assert message.content == "Paris"
        assert message.reasoning_content == "France's capital is Paris."
    config = world["gem"].chat_requests[-1].json["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}


def test_thinking_signatures_round_trip_on_chat(world):
    """A chat client that hands `thinking_blocks` back keeps Anthropic's tool loop valid."""
    world["claude"].script(
        ma.thinking("Need the tool.", ma.tool_calls([("lookup", '{"q": "x"}')],
                                                    ids=["toolu_01x"]), signature="sig1=="),
        ma.thinking("Done.", ma.text("42"), signature="sig2=="))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    client = world["gw"].client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Look it up"}]
    extra = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    first = client.chat.completions.create(model="claude", messages=messages, tools=tools,
                                           max_tokens=2048, extra_body=extra)
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    assert assistant["thinking_blocks"][0]["signature"] == "sig1=="
    messages += [assistant, {"role": "tool", "tool_call_id": "toolu_01x", "content": "42"}]
    second = client.chat.completions.create(model="claude", messages=messages, tools=tools,
                                            max_tokens=2048, extra_body=extra)
    assert second.choices[0].message.content == "42"
    sent = world["claude"].chat_requests[-1].json["messages"][1]["content"]
    assert sent[0]["type"] == "thinking" and sent[0]["signature"] == "sig1=="


# ---------------------------------------------------------------------------------------------
# Cached tokens
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_cache_counts_reach_the_client(world, stream):
    b = ma.text("Paris", input_tokens=100, output_tokens=2)
    b.extra["usage"] = {"cache_read_input_tokens": 800, "cache_creation_input_tokens": 50}
    world["claude"].script(b)
    if stream:
        _, usage, _ = streamed(world, "claude")
    else:
        usage = ask(world, "claude").usage
    assert usage.prompt_tokens == 950
    assert usage.prompt_tokens_details.cached_tokens == 800
    assert usage.prompt_tokens_details.model_extra["cache_creation_tokens"] == 50


def test_no_reasoning_to_gemini_is_the_least_each_model_allows(world):
    """`reasoning_effort: "none"`: 2.5 Flash turns thinking off (budget 0); 2.5 Pro cannot
    (Gemini refuses a budget under 128 for it), so it gets its smallest budget, not a 400."""
    for model, budget in (("gem", 0), ("gem-pro", 128)):
        answer = ask(world, model, reasoning_effort="none")
        assert answer.choices[0].message.content == "hello from gem"
        config = world["gem"].chat_requests[-1].json["generationConfig"]
        assert config["thinkingConfig"] == {"thinkingBudget": budget}, model
