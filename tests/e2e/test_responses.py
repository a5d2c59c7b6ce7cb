"""OpenAI's Responses API inbound (`POST /v1/responses`), stateless, driven by the official
`openai` SDK (`client.responses.create` and its `client.responses.stream` helper) against every
bundled adapter: openai-compatible (mock_openai), anthropic (mock_anthropic) and gemini
(mock_gemini). The client must get Responses objects and events whatever the upstream speaks;
what the gateway cannot do without storing responses is refused clearly."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import mock_anthropic as ma
import mock_gemini as mg
import mock_openai as mo
from harness import ADAPTER_MODELS, ADAPTERS, BUNDLED, adapter_provider, base_config

KINDS = ("openai-compatible", "anthropic", "gemini")
UPSTREAM = ADAPTER_MODELS
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "required": ["city"],
                               "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    mocks = module_mocks.one_per_adapter("resp")
    providers, models, env = {}, {}, {}
    for kind, mock in mocks.items():
        name, providers[name], key = adapter_provider(kind, mock, [UPSTREAM[kind]])
        env.update(key)
        models[f"via-{name}"] = {"targets": [f"{name}/{UPSTREAM[kind]}"]}
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


def text_answer(kind: str, content: str, prompt_tokens: int = 11,
                completion_tokens: int = 7) -> Any:
    if kind == "anthropic":
        return ma.text(content, input_tokens=prompt_tokens, output_tokens=completion_tokens)
    if kind == "gemini":
        return mg.text(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    return mo.text(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def tool_answer(kind: str, name: str, args: dict[str, Any]) -> Any:
    encoded = json.dumps(args)
    if kind == "anthropic":
        return ma.tool_calls([(name, encoded)], ids=["toolu_01weather"])
    if kind == "gemini":
        return mg.tool_calls([(name, encoded)])
    return mo.tool_call(name, encoded, call_id="call_weather")


def test_plain_response(world, kind):
    world["mocks"][kind].script(text_answer(kind, "Paris.", prompt_tokens=13,
                                            completion_tokens=3))
    client = world["gw"].client()
    response = client.responses.create(model=model(kind), instructions="Be brief.",
                                       input="Capital of France?", max_output_tokens=100)
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output_text == "Paris."
    assert response.usage.input_tokens == 13 and response.usage.output_tokens == 3
    assert response.usage.total_tokens == 16
    sent = world["mocks"][kind].chat_requests[-1].json
    if kind == "openai-compatible":
        assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Capital of France?"}]
        assert sent["max_completion_tokens"] == 100
    elif kind == "anthropic":
        assert sent["system"] == "Be brief." and sent["max_tokens"] == 100


def test_stream_helper(world, kind):
    world["mocks"][kind].script(text_answer(kind, "one two three", prompt_tokens=5,
                                            completion_tokens=3))
    client = world["gw"].client()
    deltas = []
    types = []
    with client.responses.stream(model=model(kind), input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Count"}]}]) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "one two three" and len(deltas) > 1
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.output_item.done" in types and "response.content_part.done" in types
    assert final.output_text == "one two three"
    assert final.usage.output_tokens == 3


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_function_tool_round_trip(world, kind, stream):
    mock = world["mocks"][kind]
    mock.script(tool_answer(kind, "get_weather", {"city": "Paris"}),
                text_answer(kind, "Sunny."))
    client = world["gw"].client()
    question = {"role": "user", "content": "Weather in Paris?"}
    if stream:
        with client.responses.stream(model=model(kind), input=[question],
                                     tools=[WEATHER_TOOL]) as s:
            first = s.get_final_response()
    else:
        first = client.responses.create(model=model(kind), input=[question],
                                        tools=[WEATHER_TOOL], tool_choice="auto")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=model(kind), tools=[WEATHER_TOOL],
        input=[question, *[item.model_dump(exclude_none=True) for item in first.output],
               {"type": "function_call_output", "call_id": call.call_id,
                "output": "sunny, 24C"}])
    assert second.output_text == "Sunny."
    sent = mock.chat_requests[-1].json
    if kind == "openai-compatible":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.call_id,
                                        "content": "sunny, 24C"}
        assert sent["tools"][0]["function"]["name"] == "get_weather"
    elif kind == "anthropic":
        assert sent["messages"][-1]["content"][0]["type"] == "tool_result"


def test_json_schema_format_reaches_the_provider(world):
    world["mocks"]["openai-compatible"].script(mo.text('{"city": "Paris"}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    response = world["gw"].client().responses.create(
        model="via-openai", input="Capital of France as JSON",
        text={"format": {"type": "json_schema", "name": "capital", "schema": schema,
                         "strict": True}},
        reasoning={"effort": "low"})
    assert json.loads(response.output_text) == {"city": "Paris"}
    sent = world["mocks"]["openai-compatible"].chat_requests[-1].json
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "capital", "schema": schema, "strict": True}}
    assert sent["reasoning_effort"] == "low"


def test_previous_response_id_is_refused_clearly(world):
    with pytest.raises(openai.BadRequestError) as e:
        world["gw"].client().responses.create(model="via-openai", input="and then?",
                                              previous_response_id="resp_123")
    error = e.value.body
    assert error["param"] == "previous_response_id"
    assert "does not store responses" in error["message"]
    assert not world["mocks"]["openai-compatible"].chat_requests


def test_hosted_tools_are_unsupported(world):
    with pytest.raises(openai.BadRequestError) as e:
        world["gw"].client().responses.create(model="via-openai", input="news?",
                                              tools=[{"type": "web_search"}])
    assert e.value.body["code"] == "unsupported_request"
    assert "web_search" in e.value.body["message"]


def test_truncated_answer_is_incomplete(world):
    world["mocks"]["openai-compatible"].script(mo.text("cut", finish_reason="length"))
    response = world["gw"].client().responses.create(model="via-openai", input="long story",
                                                     max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_json_schema_answer_from_every_provider(world, kind, stream):
    """`text.format` json_schema: the answer is the JSON as output text, whatever the
    provider (Anthropic answers through its forced answer tool, never a function call)."""
    answer = '{"city": "Paris"}'
    behaviour = {"anthropic": ma.tool_calls([("freeway_json_response", answer)]),
                 "gemini": mg.text(answer), "openai-compatible": mo.text(answer)}[kind]
    world["mocks"][kind].script(behaviour)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    kwargs = dict(model=model(kind), input="Capital of France as JSON",
                  text={"format": {"type": "json_schema", "name": "capital", "schema": schema}})
    client = world["gw"].client()
    if stream:
        with client.responses.stream(**kwargs) as s:
            response = s.get_final_response()
    else:
        response = client.responses.create(**kwargs)
    assert json.loads(response.output_text) == {"city": "Paris"}
    assert [item.type for item in response.output] == ["message"]
