"""Non-streaming chat completions through the gateway: what the client gets back, what the
upstream receives, and the model listing."""

from __future__ import annotations

import json

import pytest

import mock_openai as mo
from harness import base_config, chat_body, keys_for, provider

UNSET_KEY = "FREEWAY_TEST_UNSET_KEY_CHAT"


@pytest.fixture(scope="module")
def gw(module_mocks, module_gateways):
    a = module_mocks.add("mock-a")
    b = module_mocks.add("mock-b")
    cfg = base_config(
        providers={
            "mock-a": provider(a, ["gpt-a", "gpt-a2"]),
            "mock-b": provider(b, ["gpt-b"]),
            # Its key variable is never set: disabled.
            "mock-off": {"adapter": "openai-compatible", "base_url": b.base_url,
                         "api_key_env": UNSET_KEY, "models": ["gpt-off"]},
        },
        models={
            "smart": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]},
            "b-only": {"router": "priority-fallback", "targets": ["mock-b/gpt-b"]},
        },
    )
    return module_gateways.start(cfg, env=keys_for(a, b))


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


@pytest.fixture
def a(module_mocks):
    return module_mocks["mock-a"]


@pytest.fixture
def b(module_mocks):
    return module_mocks["mock-b"]


def test_healthz(gw):
    with gw.http() as h:
        r = h.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_answer_reaches_client_unchanged(gw, a, b):
    a.script(mo.text("The capital of France is Paris.", prompt_tokens=13, completion_tokens=8,
                     extra={"x_upstream_extra": {"kept": True}}))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": "Capital of France?"}])
    c = raw.parse()
    assert raw.headers["content-type"].startswith("application/json")
    assert c.object == "chat.completion"
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].message.content == "The capital of France is Paris."
    assert c.choices[0].finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (13, 8, 21)
    # The upstream's body is passed through: fields the gateway does not know survive.
    assert json.loads(raw.http_response.text)["x_upstream_extra"] == {"kept": True}
    assert b.chat_requests == [], "the first target answered; the second must not be called"


def test_success_headers_name_the_target(gw, a):
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("smart"))
    h = raw.headers
    assert h["x-freeway-provider"] == "mock-a"
    assert h["x-freeway-model"] == "gpt-a"
    assert h["x-freeway-attempts"] == "1"
    assert "mock-a/gpt-a: ok" in h["x-freeway-route"]
    assert h["x-request-id"]
    second = gw.client().chat.completions.with_raw_response.create(**chat_body("smart"))
    assert second.headers["x-request-id"] != h["x-request-id"], "request ids must be unique"


def test_upstream_gets_upstream_model_and_injected_key(gw, a):
    gw.client().chat.completions.create(**chat_body("smart", "ping"))
    rec = a.last()
    assert rec.method == "POST" and rec.path == "/v1/chat/completions"
    assert rec.json["model"] == "gpt-a", "the public name must be replaced by the upstream model"
    assert rec.json["messages"] == [{"role": "user", "content": "ping"}]
    # The client's own key ("anything") never reaches the upstream; the provider's key does.
    assert rec.authorization == "Bearer sk-mock-a-secret"
    assert "anything" not in json.dumps(rec.headers)


def test_provider_model_name_goes_only_to_that_provider(gw, a, b):
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("mock-a/gpt-a2"))
    assert raw.parse().choices[0].message.content == "hello from mock-a"
    assert raw.headers["x-freeway-provider"] == "mock-a"
    assert raw.headers["x-freeway-model"] == "gpt-a2"
    assert a.last().json["model"] == "gpt-a2"
    assert b.chat_requests == []


def test_model_with_explicit_router(gw, a, b):
    c = gw.client().chat.completions.create(**chat_body("b-only"))
    assert c.choices[0].message.content == "hello from mock-b"
    assert b.last().json["model"] == "gpt-b"
    assert a.chat_requests == []


def test_unknown_fields_and_sampling_parameters_pass_through(gw, a):
    gw.client().chat.completions.create(
        model="smart",
        messages=[{"role": "system", "content": "Be terse."},
                  {"role": "user", "content": "hi", "name": "alice"}],
        temperature=0.3, top_p=0.9, max_tokens=50, seed=42, stop=["\n\n"], n=1,
        response_format={"type": "json_object"}, user="user-1234",
        logit_bias={"50256": -100}, metadata={"team": "search"},
        extra_body={"x_vendor_option": {"nested": [1, 2, {"deep": None}]}, "top_k": 40,
                    "safe_prompt": False},
    )
    body = a.last().json
    assert body["x_vendor_option"] == {"nested": [1, 2, {"deep": None}]}
    assert body["top_k"] == 40 and body["safe_prompt"] is False
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["seed"] == 42
    assert body["max_tokens"] == 50 and body["stop"] == ["\n\n"] and body["n"] == 1
    assert body["response_format"] == {"type": "json_object"}
    assert body["user"] == "user-1234" and body["logit_bias"] == {"50256": -100}
    assert body["metadata"] == {"team": "search"}
    assert body["messages"][1] == {"role": "user", "content": "hi", "name": "alice"}


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string"},
                                      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]},
    },
}]


def test_tools_tool_results_and_images_reach_upstream_faithfully(gw, a):
    messages = [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is the weather where this photo was taken?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/paris.jpg"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_abc123", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
    ]
    a.script(mo.text("It is 21°C and clear in Paris."))
    c = gw.client().chat.completions.create(
        model="smart", messages=messages, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False)
    assert c.choices[0].message.content == "It is 21°C and clear in Paris."
    body = a.last().json
    assert body["messages"] == messages
    assert body["tools"] == TOOLS
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


def test_tool_call_answer_is_parsed_by_sdk(gw, a):
    args = json.dumps({"city": "Paris", "unit": "celsius"})
    a.script(mo.tool_call("get_weather", args, call_id="call_xyz789"))
    c = gw.client().chat.completions.create(
        model="smart", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS)
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id == "call_xyz789" and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}


def test_unicode_survives_both_ways(gw, a):
    text = "Grüße aus 東京 🚀 — «ok»"
    a.script(mo.text(text))
    c = gw.client().chat.completions.create(**chat_body("smart", "Ünïcödé? 你好 👋"))
    assert c.choices[0].message.content == text
    assert a.last().json["messages"][0]["content"] == "Ünïcödé? 你好 👋"


def test_model_listing(gw):
    models = gw.client().models.list()
    ids = [m.id for m in models.data]
    for expected in ("smart", "b-only", "mock-a/gpt-a", "mock-a/gpt-a2", "mock-b/gpt-b"):
        assert expected in ids, f"{expected} missing from {ids}"
    assert "mock-off/gpt-off" not in ids, "a disabled provider's models must not be listed"
    assert len(ids) == len(set(ids)), f"duplicate ids in {ids}"
    for m in models.data:
        assert m.object == "model"
        assert isinstance(m.created, int)
        assert isinstance(m.owned_by, str) and m.owned_by
    with gw.http() as h:
        raw = h.get("/v1/models").json()
    assert raw["object"] == "list"


def test_listed_models_are_usable(gw, a, b):
    """Every listed model answers a request (a user picks from the list)."""
    client = gw.client()
    for m in client.models.list().data:
        c = client.chat.completions.create(**chat_body(m.id))
        assert c.choices[0].message.content in ("hello from mock-a", "hello from mock-b"), m.id
