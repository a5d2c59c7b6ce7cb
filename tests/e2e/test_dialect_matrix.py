"""One matrix over every inbound dialect × every bundled adapter: chat completions and the
Responses API through the official `openai` SDK, Messages through the official `anthropic`
SDK, each against openai-compatible (`mock_openai`), anthropic (`mock_anthropic`) and gemini
(`mock_gemini`), for a plain answer, a streamed one, a tool call, structured output and an
upstream's 400. Every cell checks what the client got in its own dialect; the per-feature files
(`test_adapter_matrix`, `test_messages`, `test_responses`, `test_translation`) check the wire
details. One gateway and one set of mocks serve all 42 cells."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

import mock_anthropic as ma
import mock_gemini as mg
import mock_openai as mo
from harness import ADAPTER_MODELS, ADAPTERS, BUNDLED, adapter_provider, base_config

DIALECTS = ("chat", "messages", "responses")
ADAPTER_KINDS = ("openai-compatible", "anthropic", "gemini")
UPSTREAM = ADAPTER_MODELS
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "required": ["city"],
                          "properties": {"city": {"type": "string"}}}}
QUESTION = "Capital of France?"


@pytest.fixture(scope="module")
def world(module_mocks, module_gateways) -> dict[str, Any]:
    mocks = module_mocks.one_per_adapter("mx")
    providers, models, env = {}, {}, {}
    for kind, mock in mocks.items():
        name, providers[name], key = adapter_provider(kind, mock, [UPSTREAM[kind]])
        env.update(key)
        models[name] = {"targets": [f"{name}/{UPSTREAM[kind]}"]}
    gw = module_gateways.start(base_config(providers=providers, models=models), env=env,
                               plugins=BUNDLED + ADAPTERS)
    return {"gw": gw, "mocks": mocks}


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


# -- what each upstream is scripted to answer ---------------------------------------------------


def text_answer(kind: str, content: str, pieces: list[str] | None = None) -> Any:
    return {"openai-compatible": mo.text, "anthropic": ma.text,
            "gemini": mg.text}[kind](content, pieces=pieces)


def tool_answer(kind: str) -> Any:
    if kind == "anthropic":
        return ma.tool_calls([("get_weather", '{"city": "Paris"}')])
    if kind == "gemini":
        return mg.tool_calls([("get_weather", '{"city": "Paris"}')])
    return mo.tool_call("get_weather", '{"city": "Paris"}')


def structured_answer(kind: str) -> Any:
    if kind == "anthropic":  # the forced answer tool the adapter asks for
        return ma.tool_calls([("freeway_json_response", '{"city": "Paris"}')])
    return text_answer(kind, '{"city": "Paris"}')


def refusal(kind: str) -> Any:
    if kind == "anthropic":
        return ma.bad_request("messages.0.content: mock refusal of this request")
    if kind == "gemini":
        return mg.bad_request("* GenerateContentRequest.contents: mock refusal of this request\n")
    return mo.error(400, mo.openai_error("mock refusal of this request", "invalid_request_error"))


# -- each dialect, as its SDK is used ---------------------------------------------------------


def openai_client(world) -> openai.OpenAI:
    return world["gw"].client()


def claude_client(world) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=world["gw"].url, api_key="anything", max_retries=0,
                               timeout=30.0)


def ask(world, dialect: str, model: str, *, stream: bool = False, tools: bool = False,
        structured: bool = False) -> dict[str, Any]:
    """One request in `dialect`; what the client saw: text, tool calls (name, arguments)."""
    if dialect == "chat":
        kw: dict[str, Any] = {}
        if tools:
            kw["tools"] = [{"type": "function", "function": WEATHER}]
        if structured:
            kw["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "capital", "schema": SCHEMA, "strict": True}}
        messages = [{"role": "user", "content": QUESTION}]
        if stream:
            text, calls = "", {}
            for chunk in openai_client(world).chat.completions.create(
                    model=model, messages=messages, stream=True, **kw):
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for call in choice.delta.tool_calls or []:
                        slot = calls.setdefault(call.index, ["", ""])
                        slot[0] += (call.function.name or "") if call.function else ""
                        slot[1] += (call.function.arguments or "") if call.function else ""
            return {"text": text, "calls": [(n, json.loads(a)) for n, a in calls.values()]}
        message = openai_client(world).chat.completions.create(
            model=model, messages=messages, **kw).choices[0].message
        return {"text": message.content or "",
                "calls": [(c.function.name, json.loads(c.function.arguments))
                          for c in message.tool_calls or []]}
    if dialect == "messages":
        kw = {"tools": [{"name": WEATHER["name"], "description": WEATHER["description"],
                         "input_schema": WEATHER["parameters"]}]} if tools else {}
        request = {"model": model, "max_tokens": 300,
                   "messages": [{"role": "user", "content": QUESTION}], **kw}
        if stream:
            with claude_client(world).messages.stream(**request) as events:
                message = events.get_final_message()
        else:
            message = claude_client(world).messages.create(**request)
        return {"text": "".join(b.text for b in message.content if b.type == "text"),
                "calls": [(b.name, b.input) for b in message.content if b.type == "tool_use"]}
    kw = {}
    if tools:
        kw["tools"] = [{"type": "function", **WEATHER}]
    if structured:
        kw["text"] = {"format": {"type": "json_schema", "name": "capital", "schema": SCHEMA,
                                 "strict": True}}
    if stream:
        with openai_client(world).responses.stream(model=model, input=QUESTION, **kw) as events:
            response = events.get_final_response()
    else:
        response = openai_client(world).responses.create(model=model, input=QUESTION, **kw)
    return {"text": response.output_text,
            "calls": [(i.name, json.loads(i.arguments)) for i in response.output
                      if i.type == "function_call"]}


def client_error(dialect: str) -> type[Exception]:
    return anthropic.BadRequestError if dialect == "messages" else openai.BadRequestError


# -- the matrix -------------------------------------------------------------------------------

CASES = [(d, k) for d in DIALECTS for k in ADAPTER_KINDS]
IDS = [f"{d}-{k}" for d, k in CASES]


@pytest.mark.parametrize("dialect,kind", CASES, ids=IDS)
def test_plain(world, dialect, kind):
    world["mocks"][kind].script(text_answer(kind, "Paris."))
    assert ask(world, dialect, kind.split("-")[0]) == {"text": "Paris.", "calls": []}


@pytest.mark.parametrize("dialect,kind", CASES, ids=IDS)
def test_streamed(world, dialect, kind):
    world["mocks"][kind].script(text_answer(kind, "Paris is the capital",
                                            pieces=["Paris ", "is ", "the capital"]))
    seen = ask(world, dialect, kind.split("-")[0], stream=True)
    assert seen == {"text": "Paris is the capital", "calls": []}
    assert world["mocks"][kind].chat_requests[-1].path.split("?")[0].endswith(
        {"openai-compatible": "/chat/completions", "anthropic": "/messages",
         "gemini": ":streamGenerateContent"}[kind])


@pytest.mark.parametrize("dialect,kind", CASES, ids=IDS)
def test_tool_call(world, dialect, kind):
    world["mocks"][kind].script(tool_answer(kind))
    seen = ask(world, dialect, kind.split("-")[0], tools=True)
    assert seen["calls"] == [("get_weather", {"city": "Paris"})]


# Anthropic's Messages API has no response-format field for a client to send.
STRUCTURED = [(d, k) for d, k in CASES if d != "messages"]


@pytest.mark.parametrize("dialect,kind", STRUCTURED, ids=[f"{d}-{k}" for d, k in STRUCTURED])
def test_structured_output(world, dialect, kind):
    world["mocks"][kind].script(structured_answer(kind))
    seen = ask(world, dialect, kind.split("-")[0], structured=True)
    assert json.loads(seen["text"]) == {"city": "Paris"} and seen["calls"] == []


@pytest.mark.parametrize("dialect,kind", CASES, ids=IDS)
def test_upstream_refusal_is_a_400_in_the_clients_dialect(world, dialect, kind):
    world["mocks"][kind].script(refusal(kind))
    with pytest.raises(client_error(dialect)) as refused:
        ask(world, dialect, kind.split("-")[0])
    assert refused.value.status_code == 400
    assert "mock refusal of this request" in str(refused.value)

