"""One behaviour matrix run against every provider adapter: openai-compatible (mock_openai),
anthropic (mock_anthropic) and gemini (mock_gemini), each behind the real gateway, driven by the
official `openai` SDK. Whatever the upstream speaks, the client must see the same OpenAI
answers, and the upstream must receive the request in its own shape.

One gateway serves the whole module. Each adapter has a main mock, a backup mock (a second
target of the same adapter) and a provider using the main mock with a wrong key. Error tests
each get their own upstream model (hence their own target), so a cooldown started by a 429
never leaks into another test. The last tests check the two new mocks themselves: they must
refuse what the real APIs refuse, or the matrix would prove nothing."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import openai
import pytest

import mock_anthropic as ma
import mock_gemini as mg
import mock_openai as mo
from harness import ADAPTERS, BUNDLED, base_config, poll

KINDS = ("openai-compatible", "anthropic", "gemini")

# A 1x1 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "required": ["city"],
                       "properties": {"city": {"type": "string"},
                                      "unit": {"type": "string",
                                               "enum": ["celsius", "fahrenheit"]}}}}},
    {"type": "function", "function": {
        "name": "get_time", "description": "Local time in a city",
        "parameters": {"type": "object", "required": ["city"],
                       "properties": {"city": {"type": "string"}}}}},
]
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
TIME_ARGS = {"city": "Tōkyō, \"JP\""}

# Error scenarios: name → whether a backup target follows the failing one.
SCENARIOS = {
    "429-failover": True, "429-alone": False,
    "overload-failover": True, "overload-alone": False,
    "401-failover": True, "401-alone": False,
    "400": True,
}


# ---------------------------------------------------------------------------------------------
# One adapter's world inside the shared gateway
# ---------------------------------------------------------------------------------------------


@dataclass
class Kit:
    kind: str  # the adapter
    prov: str  # provider name of the main mock
    model: str  # upstream model of the plain targets
    main: Any
    backup: Any
    # The Retry-After the client must get when the only target answers this kit's 429.
    retry_after: str
    overload_status: int
    gw: Any = None  # the module's gateway, set once it runs

    @property
    def backup_prov(self) -> str:
        return self.prov + "-b"

    @property
    def badkey_prov(self) -> str:
        return self.prov + "-badkey"

    @property
    def chat_model(self) -> str:
        return self.prov + "-chat"

    def scenario_model(self, scenario: str, stream: bool) -> str:
        """Public model name (and main target's upstream model suffix) of an error scenario."""
        return f"{self.prov}-{scenario}-{'stream' if stream else 'json'}"

    def scenario_upstream(self, scenario: str, stream: bool) -> str:
        return f"{self.model}-{scenario}-{'stream' if stream else 'json'}"

    # -- behaviours, the same for every adapter ------------------------------------------------

    def text(self, content: str, pieces: list[str] | None = None, prompt_tokens: int = 11,
             completion_tokens: int = 7, write_size: int = 0, truncated: bool = False) -> Any:
        """A text answer; `truncated`: cut by the token limit (each API's own stop reason)."""
        if self.kind == "anthropic":
            return ma.text(content, pieces=pieces, input_tokens=prompt_tokens,
                           output_tokens=completion_tokens, write_size=write_size,
                           stop_reason="max_tokens" if truncated else "end_turn")
        if self.kind == "gemini":
            return mg.text(content, pieces=pieces, prompt_tokens=prompt_tokens,
                           completion_tokens=completion_tokens, write_size=write_size,
                           finish_reason="MAX_TOKENS" if truncated else "STOP")
        return mo.text(content, pieces=pieces, prompt_tokens=prompt_tokens,
                       completion_tokens=completion_tokens, write_size=write_size,
                       finish_reason="length" if truncated else "stop")

    def tool_calls(self, calls: list[tuple[str, dict]]) -> Any:
        encoded = [(name, json.dumps(args)) for name, args in calls]
        if self.kind == "anthropic":
            return ma.tool_calls(encoded)
        if self.kind == "gemini":
            return mg.tool_calls(encoded)
        return mo.Behaviour("tool_call", finish_reason="tool_calls", tool_calls=[
            {"id": "call_" + name + str(i), "type": "function",
             "function": {"name": name, "arguments": args}, "_pieces": mo._split(args, 4)}
            for i, (name, args) in enumerate(encoded)])

    def rate_limited(self) -> Any:
        if self.kind == "anthropic":
            return ma.rate_limited(17)
        if self.kind == "gemini":
            return mg.rate_limited("37s")
        return mo.rate_limited(20)

    def overloaded(self) -> Any:
        if self.kind == "anthropic":
            return ma.overloaded()
        if self.kind == "gemini":
            return mg.unavailable()
        return mo.server_error(503)

    def bad_request(self) -> Any:
        if self.kind == "anthropic":
            return ma.bad_request()
        if self.kind == "gemini":
            return mg.bad_request()
        return mo.bad_request("Invalid 'max_tokens': integer above maximum value. Expected a "
                              "value <= 16384, but got 64000 instead.", param="max_tokens",
                              code="integer_above_max_value")


def _provider(adapter: str, mock: Any, env: str, models: list[str]) -> dict[str, Any]:
    return {"adapter": adapter, "base_url": mock.base_url, "api_key_env": env, "models": models}


@pytest.fixture(scope="module")
def kits(module_mocks, module_gateways) -> dict[str, Kit]:
    made = {
        "openai-compatible": Kit("openai-compatible", "oai", "gpt-4o-mini",
                                 module_mocks.add("oai-main"), module_mocks.add("oai-backup"),
                                 "20", 503),
        "anthropic": Kit("anthropic", "claude", "claude-sonnet-4-5",
                         module_mocks.adopt(ma.MockAnthropic("claude-main", "sk-ant-main").start()),
                         module_mocks.adopt(ma.MockAnthropic("claude-backup",
                                                             "sk-ant-backup").start()),
                         "17", 529),
        "gemini": Kit("gemini", "gem", "gemini-2.5-flash",
                      module_mocks.adopt(mg.MockGemini("gem-main", "AIza-main").start()),
                      module_mocks.adopt(mg.MockGemini("gem-backup", "AIza-backup").start()),
                      "37", 503),
    }
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    env: dict[str, str] = {}
    for kit in made.values():
        prefix = kit.prov.upper()
        env[f"{prefix}_KEY"] = kit.main.api_key
        env[f"{prefix}_B_KEY"] = kit.backup.api_key
        env[f"{prefix}_BADKEY_KEY"] = "wrong-key-0000"
        main_models = [kit.model]
        bad_models = []
        models[kit.chat_model] = {"targets": [f"{kit.prov}/{kit.model}"]}
        for scenario, with_backup in SCENARIOS.items():
            for stream in (False, True):
                upstream = kit.scenario_upstream(scenario, stream)
                if scenario.startswith("401"):
                    bad_models.append(upstream)
                    first = f"{kit.badkey_prov}/{upstream}"
                else:
                    main_models.append(upstream)
                    first = f"{kit.prov}/{upstream}"
                targets = [first] + ([f"{kit.backup_prov}/{kit.model}"] if with_backup else [])
                models[kit.scenario_model(scenario, stream)] = {"targets": targets}
        # Anthropic's overload reported as an `error` event right after `message_start`.
        main_models.append(kit.model + "-event")
        models[kit.prov + "-event"] = {"targets": [f"{kit.prov}/{kit.model}-event",
                                                   f"{kit.backup_prov}/{kit.model}"]}
        main_models.append(kit.model + "-fraction")
        models[kit.prov + "-fraction"] = {"targets": [f"{kit.prov}/{kit.model}-fraction"]}
        providers[kit.prov] = _provider(kit.kind, kit.main, f"{prefix}_KEY", main_models)
        providers[kit.backup_prov] = _provider(kit.kind, kit.backup, f"{prefix}_B_KEY",
                                               [kit.model])
        providers[kit.badkey_prov] = _provider(kit.kind, kit.main, f"{prefix}_BADKEY_KEY",
                                               bad_models)
    cfg = base_config(providers=providers, models=models)
    gw = module_gateways.start(cfg, env=env, plugins=BUNDLED + ADAPTERS)
    for kit in made.values():
        kit.gw = gw
    return made


@pytest.fixture(autouse=True)
def _reset(module_mocks):
    module_mocks.reset()


@pytest.fixture(params=KINDS)
def kit(request, kits) -> Kit:
    return kits[request.param]


def client(kit: Kit) -> openai.OpenAI:
    return kit.gw.client()


def user(text: str = "Say hello") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def system_text(system: Any) -> str:
    """Anthropic's `system`: a string or a list of text blocks."""
    if isinstance(system, str):
        return system
    return "".join(block["text"] for block in system)


def contains_value(haystack: Any, needle: Any) -> bool:
    if haystack == needle:
        return True
    if isinstance(haystack, dict):
        return any(contains_value(v, needle) for v in haystack.values())
    if isinstance(haystack, list):
        return any(contains_value(v, needle) for v in haystack)
    return False


# ---------------------------------------------------------------------------------------------
# Plain chat
# ---------------------------------------------------------------------------------------------


def test_chat_text_finish_reason_and_usage(kit):
    kit.main.script(kit.text("The capital of France is Paris.", prompt_tokens=13,
                             completion_tokens=8))
    raw = client(kit).chat.completions.with_raw_response.create(
        model=kit.chat_model, messages=user("Capital of France?"))
    c = raw.parse()
    assert raw.headers["x-freeway-provider"] == kit.prov
    assert raw.headers["x-freeway-model"] == kit.model
    assert c.object == "chat.completion"
    assert c.id
    (choice,) = c.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "The capital of France is Paris."
    assert choice.message.tool_calls in (None, [])
    assert choice.finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (13, 8, 21)

    rec = kit.main.last()
    assert "anything" not in json.dumps(rec.headers), "the client's key must not reach upstream"
    if kit.kind == "anthropic":
        assert rec.path == "/v1/messages"
        assert rec.headers["x-api-key"] == kit.main.api_key
        assert "authorization" not in rec.headers
        assert rec.headers["anthropic-version"] == "2023-06-01"
        assert rec.json["model"] == kit.model
        assert isinstance(rec.json["max_tokens"], int) and rec.json["max_tokens"] > 0
        assert rec.json["messages"] == [{"role": "user", "content": [
            {"type": "text", "text": "Capital of France?"}]}]
        assert "stream" not in rec.json or rec.json["stream"] is False
    elif kit.kind == "gemini":
        assert rec.path == f"/v1beta/models/{kit.model}:generateContent"
        assert rec.headers["x-goog-api-key"] == kit.main.api_key
        assert "authorization" not in rec.headers and "key=" not in rec.path
        assert rec.json["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
    else:
        assert rec.path == "/v1/chat/completions"
        assert rec.authorization == f"Bearer {kit.main.api_key}"
        assert rec.json["model"] == kit.model


def test_provider_slash_model_name_works_directly(kit):
    c = client(kit).chat.completions.create(model=f"{kit.prov}/{kit.model}", messages=user())
    assert c.choices[0].message.content == f"hello from {kit.main.name}"
    assert len(kit.main.chat_requests) == 1 and kit.backup.chat_requests == []


def test_model_listing_names_adapter_models(kit):
    ids = [m.id for m in client(kit).models.list().data]
    assert kit.chat_model in ids and f"{kit.prov}/{kit.model}" in ids


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


def test_stream_text_deltas_role_and_finish(kit):
    pieces = ["Once", " upon", " a time", ", Grüße", " 東京 🚀", "."]
    kit.main.script(kit.text("".join(pieces), pieces=pieces))
    raw = client(kit).chat.completions.with_raw_response.create(
        model=kit.chat_model, messages=user("Story?"), stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-freeway-provider"] == kit.prov
    chunks = list(raw.parse())
    assert chunks and all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert all(ch.choices for ch in chunks), "no usage-only chunk unless asked"
    assert all(ch.usage is None for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant", "the first chunk carries the role"
    assert all(ch.choices[0].delta.role in (None, "assistant") for ch in chunks[1:])
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "".join(pieces)
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({ch.id for ch in chunks}) == 1, "one id for the whole stream"

    rec = kit.main.last()
    if kit.kind == "anthropic":
        assert rec.json["stream"] is True
    elif kit.kind == "gemini":
        assert rec.path == f"/v1beta/models/{kit.model}:streamGenerateContent?alt=sse"
    else:
        assert rec.json["stream"] is True


def test_stream_include_usage_gives_final_usage_chunk(kit):
    kit.main.script(kit.text("one two three", prompt_tokens=20, completion_tokens=3))
    chunks = list(client(kit).chat.completions.create(
        model=kit.chat_model, messages=user(), stream=True,
        stream_options={"include_usage": True}))
    usage_chunks = [ch for ch in chunks if ch.usage is not None]
    assert len(usage_chunks) == 1, [ch.model_dump() for ch in chunks]
    last = chunks[-1]
    assert last is usage_chunks[0], "the usage chunk is the last one"
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens,
            last.usage.total_tokens) == (20, 3, 23)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == \
        "one two three"
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_usage_absent_when_not_asked(kit):
    kit.main.script(kit.text("one two three", prompt_tokens=20, completion_tokens=3))
    with kit.gw.http() as h:
        r = h.post("/v1/chat/completions", json={"model": kit.chat_model, "messages": user(),
                                                 "stream": True})
    assert r.status_code == 200
    events = [b[len("data: "):] for b in r.text.split("\n\n") if b.startswith("data: ")]
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    parsed = [json.loads(e) for e in events[:-1]]
    assert all(p["choices"] for p in parsed), "no empty-choices chunk reaches the client"
    assert all(p.get("usage") is None for p in parsed), "no usage for a client that did not ask"


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("calls", [
    [("get_weather", WEATHER_ARGS)],
    [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)],
], ids=["one", "parallel"])
def test_tool_calls(kit, calls, stream):
    kit.main.script(kit.tool_calls(calls))
    kw: dict[str, Any] = {"model": kit.chat_model, "tools": TOOLS,
                          "messages": user("Weather and time in Paris and Tokyo?")}
    if stream:
        with client(kit).chat.completions.stream(**kw) as s:
            final = s.get_final_completion()
    else:
        final = client(kit).chat.completions.create(**kw)
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    got = choice.message.tool_calls
    assert [c.function.name for c in got] == [name for name, _ in calls]
    assert [json.loads(c.function.arguments) for c in got] == [args for _, args in calls]
    assert all(c.type == "function" and c.id for c in got)
    assert len({c.id for c in got}) == len(got), "tool call ids must be distinct"

    body = kit.main.last().json
    if kit.kind == "anthropic":
        assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time"]
        assert body["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
        assert body["tools"][0]["description"] == "Current weather for a city"
    elif kit.kind == "gemini":
        decls = body["tools"][0]["functionDeclarations"]
        assert [d["name"] for d in decls] == ["get_weather", "get_time"]
        assert decls[0]["parameters"]["required"] == ["city"]
    else:
        assert body["tools"] == TOOLS


def test_anthropic_tool_call_ids_pass_through(kits):
    kit = kits["anthropic"]
    b = ma.tool_calls([("get_weather", json.dumps(WEATHER_ARGS)),
                       ("get_time", json.dumps(TIME_ARGS))],
                      ids=["toolu_01A09q90qw90lq917835lq9", "toolu_01B"])
    kit.main.script(b)
    c = client(kit).chat.completions.create(model=kit.chat_model, tools=TOOLS, messages=user())
    assert [t.id for t in c.choices[0].message.tool_calls] == ["toolu_01A09q90qw90lq917835lq9",
                                                               "toolu_01B"]


# ---------------------------------------------------------------------------------------------
# Tool results, images, system prompts: what the upstream receives
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_results_round_trip(kit, stream):
    """Turn 1 gets two tool calls through the gateway; turn 2 sends them back with their
    results, exactly as an agent loop does. The upstream must receive the calls and results in
    its own shape, matched (Anthropic by tool_use id, Gemini by function name)."""
    kit.main.script(kit.tool_calls([("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]))
    history: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a travel bot."},
        {"role": "user", "content": "Weather in Paris, time in Tokyo?"},
    ]
    first = client(kit).chat.completions.create(model=kit.chat_model, tools=TOOLS,
                                                messages=history)
    calls = first.choices[0].message.tool_calls
    assert len(calls) == 2
    history.append(first.choices[0].message.model_dump(exclude_none=True,
                                                       include={"role", "content",
                                                                "tool_calls"}))
    weather_result = {"temp": 21, "sky": "clear"}
    history.append({"role": "tool", "tool_call_id": calls[0].id,
                    "content": json.dumps(weather_result)})
    history.append({"role": "tool", "tool_call_id": calls[1].id, "content": "09:41 JST"})

    kit.main.script(kit.text("21°C and clear in Paris; 09:41 in Tokyo."))
    if stream:
        with client(kit).chat.completions.stream(model=kit.chat_model, tools=TOOLS,
                                                 messages=history) as s:
            answer = s.get_final_completion()
    else:
        answer = client(kit).chat.completions.create(model=kit.chat_model, tools=TOOLS,
                                                     messages=history)
    assert answer.choices[0].message.content == "21°C and clear in Paris; 09:41 in Tokyo."
    assert answer.choices[0].finish_reason == "stop"

    rec = kit.main.last()
    poll(lambda: rec.outcome, what="the upstream to finish answering")
    assert rec.status == 200, f"the upstream refused the round trip: {rec.status} {rec.raw!r}"
    body = rec.json
    if kit.kind == "anthropic":
        upstream_ids = [c.id for c in calls]  # Anthropic's own toolu_ ids, kept by the gateway
        assert system_text(body["system"]) == "You are a travel bot."
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        uses = [b for b in body["messages"][1]["content"] if b["type"] == "tool_use"]
        assert [(u["id"], u["name"], u["input"]) for u in uses] == [
            (upstream_ids[0], "get_weather", WEATHER_ARGS), (upstream_ids[1], "get_time", TIME_ARGS)]
        results = body["messages"][2]["content"]
        assert [r["type"] for r in results] == ["tool_result", "tool_result"]
        assert [r["tool_use_id"] for r in results] == upstream_ids
        assert contains_value(results[0], json.dumps(weather_result)) or \
            contains_value(results[0], weather_result), results[0]
        assert contains_value(results[1], "09:41 JST"), results[1]
    elif kit.kind == "gemini":
        assert body["systemInstruction"]["parts"] == [{"text": "You are a travel bot."}]
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        fcalls = [p["functionCall"] for p in body["contents"][1]["parts"] if "functionCall" in p]
        assert [(f["name"], f["args"]) for f in fcalls] == [("get_weather", WEATHER_ARGS),
                                                            ("get_time", TIME_ARGS)]
        responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
        assert [r["name"] for r in responses] == ["get_weather", "get_time"]
        assert contains_value(responses[0]["response"], weather_result) or \
            contains_value(responses[0]["response"], json.dumps(weather_result)), responses[0]
        assert contains_value(responses[1]["response"], "09:41 JST"), responses[1]
    else:
        assert body["messages"] == history


def test_image_input(kit):
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What colour is this pixel?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]}]
    kit.main.script(kit.text("Red."))
    c = client(kit).chat.completions.create(model=kit.chat_model, messages=messages)
    assert c.choices[0].message.content == "Red."
    body = kit.main.last().json
    if kit.kind == "anthropic":
        (turn,) = body["messages"]
        images = [b for b in turn["content"] if b["type"] == "image"]
        assert len(images) == 1
        source = images[0]["source"]
        assert source["type"] == "base64" and source["media_type"] == "image/png"
        assert base64.b64decode(source["data"]) == PNG
        assert {"type": "text", "text": "What colour is this pixel?"} in turn["content"]
    elif kit.kind == "gemini":
        (content,) = body["contents"]
        inline = [p["inlineData"] for p in content["parts"] if "inlineData" in p]
        assert len(inline) == 1
        assert inline[0]["mimeType"] == "image/png"
        assert base64.b64decode(inline[0]["data"]) == PNG
        assert {"text": "What colour is this pixel?"} in content["parts"]
    else:
        assert body["messages"] == messages


def test_system_message_lifted(kit):
    messages = [{"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Bonjour !"},
                {"role": "user", "content": "How are you?"},
                {"role": "user", "content": "Be brief."}]
    kit.main.script(kit.text("Bien."))
    assert client(kit).chat.completions.create(
        model=kit.chat_model, messages=messages).choices[0].message.content == "Bien."
    body = kit.main.last().json
    if kit.kind == "anthropic":
        assert system_text(body["system"]) == "Answer in French."
        # Consecutive user messages are merged: Anthropic refuses non-alternating roles.
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert [b["text"] for b in body["messages"][2]["content"]] == ["How are you?",
                                                                       "Be brief."]
    elif kit.kind == "gemini":
        assert body["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["contents"][1]["parts"] == [{"text": "Bonjour !"}]
    else:
        assert body["messages"] == messages


# ---------------------------------------------------------------------------------------------
# Edges every adapter must get right
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_truncated_answer_finishes_with_length(kit, stream):
    kit.main.script(kit.text("It was the best of", truncated=True))
    kw: dict[str, Any] = {"model": kit.chat_model, "messages": user(), "max_tokens": 5}
    if stream:
        chunks = list(client(kit).chat.completions.create(**kw, stream=True))
        finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices[0].finish_reason]
        assert finishes == ["length"]
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "It was the best of"
    else:
        c = client(kit).chat.completions.create(**kw)
        assert c.choices[0].finish_reason == "length"
        assert c.choices[0].message.content == "It was the best of"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_cached_and_thinking_tokens_in_usage(kits, kind, stream):
    """Anthropic counts cached prompt tokens apart from input_tokens; Gemini counts thinking
    tokens apart from candidates: OpenAI's usage folds them in and details them."""
    kit = kits[kind]
    if kind == "anthropic":
        b = ma.text("ok", input_tokens=5, output_tokens=7)
        b.extra = {"usage": {"cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}}
        want = (125, 7, {"cached_tokens": 100}, None)
    else:
        b = mg.text("ok", prompt_tokens=5, completion_tokens=7)
        b.extra = {"usageMetadata": {"thoughtsTokenCount": 30, "totalTokenCount": 42}}
        want = (5, 37, None, {"reasoning_tokens": 30})
    kit.main.script(b)
    if stream:
        chunks = list(client(kit).chat.completions.create(
            model=kit.chat_model, messages=user(), stream=True,
            stream_options={"include_usage": True}))
        usage = chunks[-1].usage
    else:
        usage = client(kit).chat.completions.create(model=kit.chat_model, messages=user()).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == want[:2]
    assert usage.total_tokens == want[0] + want[1]
    if want[2]:
        assert usage.prompt_tokens_details.cached_tokens == want[2]["cached_tokens"]
    if want[3]:
        assert usage.completion_tokens_details.reasoning_tokens == want[3]["reasoning_tokens"]


def test_stream_framing_split_anywhere(kit):
    """Upstream bytes arrive in 5-byte writes: events, CRLFs and UTF-8 sequences cut in half."""
    pieces = ["Grüße", " aus", " 東京", " 🚀🚀", " done"]
    kit.main.script(kit.text("".join(pieces), pieces=pieces, write_size=5))
    chunks = list(client(kit).chat.completions.create(model=kit.chat_model, messages=user(),
                                                      stream=True))
    got = [ch.choices[0].delta.content for ch in chunks if ch.choices[0].delta.content]
    assert got == pieces
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_sampling_and_limits_mapped(kit):
    c = client(kit)
    c.chat.completions.create(model=kit.chat_model, messages=user(), temperature=0.3,
                              top_p=0.9, max_tokens=50, stop=["\n\n", "END"])
    body = kit.main.last().json
    if kit.kind == "anthropic":
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 50)
        assert body["stop_sequences"] == ["\n\n", "END"]
    elif kit.kind == "gemini":
        assert body["generationConfig"] == {"temperature": 0.3, "topP": 0.9,
                                            "maxOutputTokens": 50,
                                            "stopSequences": ["\n\n", "END"]}
    else:
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 50)
    c.chat.completions.create(model=kit.chat_model, messages=user(), max_completion_tokens=77)
    body = kit.main.last().json
    if kit.kind == "anthropic":
        assert body["max_tokens"] == 77
    elif kit.kind == "gemini":
        assert body["generationConfig"]["maxOutputTokens"] == 77
    else:
        assert body["max_completion_tokens"] == 77


@pytest.mark.parametrize("choice", ["required", "none", "named"])
def test_tool_choice_mapped(kit, choice):
    tool_choice: Any = ({"type": "function", "function": {"name": "get_time"}}
                        if choice == "named" else choice)
    client(kit).chat.completions.create(model=kit.chat_model, messages=user(), tools=TOOLS,
                                        tool_choice=tool_choice)
    body = kit.main.last().json
    if kit.kind == "anthropic":
        assert body["tool_choice"] == {"required": {"type": "any"}, "none": {"type": "none"},
                                       "named": {"type": "tool", "name": "get_time"}}[choice]
    elif kit.kind == "gemini":
        assert body["toolConfig"] == {"functionCallingConfig": {
            "required": {"mode": "ANY"}, "none": {"mode": "NONE"},
            "named": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}[choice]}
    else:
        assert body["tool_choice"] == tool_choice


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_without_parameters(kit, stream):
    """A call of a function that takes no arguments: OpenAI clients json.loads the arguments,
    so they must be "{}" (Anthropic streams such an input as one empty `partial_json`)."""
    tools = [{"type": "function", "function": {
        "name": "get_status", "description": "Service status",
        "parameters": {"type": "object", "properties": {}}}}]
    kit.main.script(kit.tool_calls([("get_status", {})]))
    kw: dict[str, Any] = {"model": kit.chat_model, "messages": user("Status?"), "tools": tools}
    if stream:
        with client(kit).chat.completions.stream(**kw) as s:
            final = s.get_final_completion()
    else:
        final = client(kit).chat.completions.create(**kw)
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "get_status"
    try:
        arguments = json.loads(call.function.arguments)
    except ValueError:
        pytest.fail(f"arguments of a no-parameter call must be the JSON object {{}}; the client "
                    f"got {call.function.arguments!r}", pytrace=False)
    assert arguments == {}
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_text_then_tool_calls(kits, kind, stream):
    """Claude and Gemini often say something before calling tools: both reach the client."""
    kit = kits[kind]
    encoded = [("get_weather", json.dumps(WEATHER_ARGS)), ("get_time", json.dumps(TIME_ARGS))]
    kit.main.script(ma.tool_calls(encoded, preamble="Let me check.") if kind == "anthropic"
                    else mg.tool_calls(encoded, preamble="Let me check."))
    kw: dict[str, Any] = {"model": kit.chat_model, "messages": user(), "tools": TOOLS}
    if stream:
        with client(kit).chat.completions.stream(**kw) as s:
            final = s.get_final_completion()
    else:
        final = client(kit).chat.completions.create(**kw)
    msg = final.choices[0].message
    assert msg.content == "Let me check."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [
        ("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]
    assert final.choices[0].finish_reason == "tool_calls"


def test_same_function_called_twice_round_trip(kit):
    """Two parallel calls of one function: Gemini matches results by name only, so both
    responses carry that name, in the calls' order; Anthropic matches them by id."""
    paris, tokyo = {"city": "Paris"}, {"city": "Tokyo"}
    kit.main.script(kit.tool_calls([("get_weather", paris), ("get_weather", tokyo)]))
    history: list[dict[str, Any]] = user("Weather in Paris and Tokyo?")
    first = client(kit).chat.completions.create(model=kit.chat_model, tools=TOOLS,
                                                messages=history)
    calls = first.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [paris, tokyo]
    history.append({"role": "assistant", "content": None, "tool_calls": [
        c.model_dump(include={"id", "type", "function"}) for c in calls]})
    history += [{"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
                {"role": "tool", "tool_call_id": calls[1].id, "content": "rainy"}]
    client(kit).chat.completions.create(model=kit.chat_model, tools=TOOLS, messages=history)
    rec = kit.main.last()
    poll(lambda: rec.outcome, what="the upstream to finish answering")
    assert rec.status == 200, rec.raw
    body = rec.json
    if kit.kind == "anthropic":
        results = body["messages"][2]["content"]
        assert [r["tool_use_id"] for r in results] == [c.id for c in calls]
        assert contains_value(results[0], "sunny") and contains_value(results[1], "rainy")
    elif kit.kind == "gemini":
        responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
        assert [r["name"] for r in responses] == ["get_weather", "get_weather"]
        assert contains_value(responses[0]["response"], "sunny")
        assert contains_value(responses[1]["response"], "rainy")
    else:
        assert body["messages"] == history


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_refusal_finishes_with_content_filter(kit, stream):
    """Claude's stop_reason "refusal" and Gemini's finishReason "SAFETY" are OpenAI's
    "content_filter"."""
    if kit.kind == "anthropic":
        b = ma.text("I can't help with that.", stop_reason="refusal")
    elif kit.kind == "gemini":
        b = mg.text("I can't help with that.", finish_reason="SAFETY")
    else:
        b = mo.text("I can't help with that.", finish_reason="content_filter")
    kit.main.script(b)
    if stream:
        chunks = list(client(kit).chat.completions.create(model=kit.chat_model,
                                                          messages=user(), stream=True))
        finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices[0].finish_reason]
        assert finishes == ["content_filter"]
    else:
        c = client(kit).chat.completions.create(model=kit.chat_model, messages=user())
        assert c.choices[0].finish_reason == "content_filter"


def test_gemini_blocked_prompt_is_a_content_filter_error(kits):
    """A prompt Gemini blocks answers 200 with no candidate and a promptFeedback.blockReason:
    the client gets a 400 content_filter error, and no other target is asked."""
    kit = kits["gemini"]
    kit.main.script(mo.Behaviour("error", status=200, body={
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash", "responseId": "blocked1"}))
    with pytest.raises(openai.BadRequestError) as e:
        client(kit).chat.completions.create(model=kit.scenario_model("400", False),
                                            messages=user())
    assert e.value.code == "content_filter"
    assert "PROHIBITED_CONTENT" in e.value.message
    assert kit.backup.chat_requests == []


def _raw_stream(kit: Kit, model: str) -> tuple[list[Any], str]:
    """The parsed `data:` events of a streamed request (the last may be "[DONE]")."""
    with kit.gw.http() as h:
        r = h.post("/v1/chat/completions",
                   json={"model": model, "messages": user(), "stream": True})
    assert r.status_code == 200, r.text
    events = [b[len("data: "):] for b in r.text.split("\n\n") if b.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in events], r.text


def _assert_interrupted(kit: Kit, events: list[Any], prefix: str) -> None:
    assert "[DONE]" not in events, "a cut stream must not look finished"
    assert "error" in events[-1], f"the last event must say what happened: {events[-1]}"
    assert events[-1]["error"]["code"] == "stream_interrupted"
    text = "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if e.get("choices"))
    assert text == prefix
    assert not any(e["choices"][0].get("finish_reason") for e in events[:-1] if e.get("choices"))


def test_stream_cut_mid_answer_ends_with_error(kit):
    """The connection drops after the first two pieces: the client gets them, then an error
    event, never a [DONE] (a silently short answer would pass for a whole one)."""
    pieces = ["alpha", " beta", " gamma", " delta"]
    if kit.kind == "anthropic":
        # message_start, content_block_start, ping, then two text deltas.
        b = ma.stream_then_drop("".join(pieces), 5, pieces=pieces)
    elif kit.kind == "gemini":
        b = mg.stream_then_drop("".join(pieces), 2, pieces=pieces)
    else:
        b = mo.stream_then_drop("".join(pieces), 3, pieces=pieces)  # role chunk + two pieces
    kit.main.script(b)
    events, _ = _raw_stream(kit, kit.chat_model)
    _assert_interrupted(kit, events, "alpha beta")
    with pytest.raises(openai.APIError):
        kit.main.script(b)
        list(client(kit).chat.completions.create(model=kit.chat_model, messages=user(),
                                                 stream=True))


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_error_event_after_content_ends_stream_with_error(kits, kind):
    kit = kits[kind]
    pieces = ["alpha", " beta"]
    kit.main.script(ma.stream_error(pieces=pieces) if kind == "anthropic"
                    else mg.stream_error(pieces=pieces))
    events, _ = _raw_stream(kit, kit.chat_model)
    _assert_interrupted(kit, events, "alpha beta")
    assert "overloaded" in events[-1]["error"]["message"].lower()
    assert kit.backup.chat_requests == []


# ---------------------------------------------------------------------------------------------
# Error classes, failover and Retry-After
# ---------------------------------------------------------------------------------------------


def _scenario(kit: Kit, scenario: str, stream: bool) -> tuple[Callable[[], Any], str]:
    """A call of the scenario's public model (raising the SDK's error, or returning text) and
    the failing first target's name."""
    model = kit.scenario_model(scenario, stream)
    prov = kit.badkey_prov if scenario.startswith("401") else kit.prov
    first = f"{prov}/{kit.scenario_upstream(scenario, stream)}"

    def call() -> tuple[Any, str]:
        raw = client(kit).chat.completions.with_raw_response.create(
            model=model, messages=user(), stream=stream)
        parsed = raw.parse()
        if stream:
            text = "".join(ch.choices[0].delta.content or "" for ch in parsed if ch.choices)
        else:
            text = parsed.choices[0].message.content
        return raw.headers, text

    return call, first


def _assert_failed_over(kit: Kit, headers: Any, text: str, first: str, what: str) -> None:
    assert text == f"hello from {kit.backup.name}"
    assert headers["x-freeway-provider"] == kit.backup_prov
    assert headers["x-freeway-attempts"] == "2"
    route = headers["x-freeway-route"]
    assert f"{first}: {what}" in route, route
    assert f"{kit.backup_prov}/{kit.model}: ok" in route, route


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


@STREAM
def test_429_fails_over(kit, stream):
    call, first = _scenario(kit, "429-failover", stream)
    kit.main.script(kit.rate_limited())
    headers, text = call()
    _assert_failed_over(kit, headers, text, first, "429 rate-limited")
    assert len(kit.main.chat_requests) == 1 and kit.main.pending == 0


@STREAM
def test_429_alone_gives_429_with_upstream_retry_after(kit, stream):
    call, _ = _scenario(kit, "429-alone", stream)
    kit.main.script(kit.rate_limited())
    with pytest.raises(openai.RateLimitError) as e:
        call()
    assert e.value.status_code == 429
    assert e.value.response.headers.get("retry-after") == kit.retry_after, (
        f"the upstream asked to wait {kit.retry_after}s; the client was told "
        f"{e.value.response.headers.get('retry-after')!r}")
    assert len(kit.main.chat_requests) == 1


@STREAM
def test_overload_fails_over(kit, stream):
    call, first = _scenario(kit, "overload-failover", stream)
    kit.main.script(kit.overloaded())
    headers, text = call()
    _assert_failed_over(kit, headers, text, first, f"{kit.overload_status} unavailable")


@STREAM
def test_overload_alone_gives_503(kit, stream):
    call, _ = _scenario(kit, "overload-alone", stream)
    kit.main.script(kit.overloaded())
    with pytest.raises(openai.InternalServerError) as e:
        call()
    assert e.value.status_code == 503


@STREAM
def test_refused_key_fails_over(kit, stream):
    """The badkey provider sends a wrong key to the main mock, which refuses it the way the real
    API does (Gemini: 400 API_KEY_INVALID, not 401)."""
    call, first = _scenario(kit, "401-failover", stream)
    headers, text = call()
    refused_status = 400 if kit.kind == "gemini" else 401
    _assert_failed_over(kit, headers, text, first, f"{refused_status} auth")
    (rec,) = kit.main.chat_requests
    assert rec.status == refused_status


@STREAM
def test_refused_key_alone_gives_502(kit, stream):
    call, _ = _scenario(kit, "401-alone", stream)
    with pytest.raises(openai.APIStatusError) as e:
        call()
    assert e.value.status_code == 502
    assert "wrong-key" not in e.value.response.text, "the gateway's key must never be echoed"


@STREAM
def test_400_reaches_client_and_is_not_retried(kit, stream):
    call, _ = _scenario(kit, "400", stream)
    kit.main.script(kit.bad_request())
    with pytest.raises(openai.BadRequestError) as e:
        call()
    assert e.value.status_code == 400
    assert "64000" in e.value.message or "max_output_tokens" in e.value.message, e.value.message
    assert len(kit.main.chat_requests) == 1
    assert kit.backup.chat_requests == [], "a bad request must not be tried on another target"


def test_anthropic_error_event_before_content_fails_over(kits):
    """Anthropic reports overload mid-stream as an `error` event right after `message_start`;
    no content reached the client yet, so the gateway can still fail over."""
    kit = kits["anthropic"]
    kit.main.script(ma.stream_error())
    chunks = list(client(kit).chat.completions.create(model="claude-event", messages=user(),
                                                      stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == \
        "hello from claude-backup"
    assert len(kit.backup.chat_requests) == 1


def test_gemini_fractional_retry_delay_rounds_up(kits):
    kit = kits["gemini"]
    kit.main.script(mg.rate_limited("4.200s"))
    with pytest.raises(openai.RateLimitError) as e:
        client(kit).chat.completions.create(model="gem-fraction", messages=user())
    assert e.value.response.headers.get("retry-after") == "5"


# ---------------------------------------------------------------------------------------------
# The mocks refuse what the real APIs refuse (no gateway involved)
# ---------------------------------------------------------------------------------------------


def test_mock_anthropic_refuses_what_anthropic_refuses():
    with ma.MockAnthropic("m", api_key="sk-ant-right") as m, \
            httpx.Client(base_url=f"http://127.0.0.1:{m.port}") as h:
        ok_headers = {"x-api-key": "sk-ant-right", "anthropic-version": "2023-06-01"}
        ok = {"model": "claude-sonnet-4-5", "max_tokens": 64,
              "messages": [{"role": "user", "content": "hi"}]}

        def refused(body: Any, headers: dict[str, str] = ok_headers) -> tuple[int, dict]:
            r = h.post("/v1/messages", json=body, headers=headers)
            assert r.json()["type"] == "error"
            return r.status_code, r.json()["error"]

        assert h.post("/v1/messages", json=ok, headers=ok_headers).status_code == 200
        status, err = refused(ok, {"anthropic-version": "2023-06-01"})
        assert (status, err["type"]) == (401, "authentication_error")
        status, err = refused(ok, {**ok_headers, "x-api-key": "sk-ant-wrong"})
        assert (status, err["type"]) == (401, "authentication_error")
        status, err = refused(ok, {"x-api-key": "sk-ant-right"})
        assert status == 400 and "anthropic-version" in err["message"]
        status, err = refused({k: v for k, v in ok.items() if k != "max_tokens"})
        assert status == 400 and err["message"] == "max_tokens: Field required"
        status, err = refused({**ok, "messages": [{"role": "system", "content": "x"},
                                                  {"role": "user", "content": "hi"}]})
        assert status == 400 and "system" in err["message"]
        status, err = refused({**ok, "messages": [{"role": "user", "content": "a"},
                                                  {"role": "user", "content": "b"}]})
        assert status == 400 and "alternate" in err["message"]
        status, err = refused({**ok, "messages": [{"role": "assistant", "content": "a"}]})
        assert status == 400
        status, err = refused({**ok, "messages": [
            {"role": "user", "content": "w?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                               "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2",
                                          "content": "x"}]}]})
        assert status == 400 and "tool_use" in err["message"]
        status, err = refused({**ok, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                         "data": "AAAA"}}]}]})
        assert status == 400
        assert all(r.status != 200 for r in m.requests[1:])
        assert m.pending == 0


def test_mock_anthropic_stream_read_by_event_sequence():
    with ma.MockAnthropic("m", api_key="k") as m, \
            httpx.Client(base_url=f"http://127.0.0.1:{m.port}") as h:
        m.script(ma.tool_calls([("f", '{"a": 1}')], preamble="Let me check."))
        r = h.post("/v1/messages", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                   json={"model": "c", "max_tokens": 9, "stream": True,
                         "messages": [{"role": "user", "content": "x"}]})
        names = [line[len("event: "):] for line in r.text.splitlines()
                 if line.startswith("event: ")]
        assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
        assert names.count("content_block_start") == names.count("content_block_stop") == 2
        partial = "".join(json.loads(line[6:])["delta"].get("partial_json", "")
                          for line in r.text.splitlines()
                          if line.startswith("data: ") and "input_json_delta" in line)
        assert json.loads(partial) == {"a": 1}


def test_mock_gemini_refuses_what_gemini_refuses():
    with mg.MockGemini("m", api_key="AIza-right") as m, \
            httpx.Client(base_url=f"http://127.0.0.1:{m.port}") as h:
        url = "/v1beta/models/gemini-2.5-flash:generateContent"
        key = {"x-goog-api-key": "AIza-right"}
        ok = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

        def refused(body: Any, headers: dict[str, str] = key, path: str = url) -> tuple[int, dict]:
            r = h.post(path, json=body, headers=headers)
            return r.status_code, r.json()["error"]

        assert h.post(url, json=ok, headers=key).status_code == 200
        status, err = refused(ok, {})
        assert (status, err["status"]) == (403, "PERMISSION_DENIED")
        status, err = refused(ok, {"x-goog-api-key": "AIza-wrong"})
        assert (status, err["details"][0]["reason"]) == (400, "API_KEY_INVALID")
        status, err = refused({**ok, "model": "gemini-2.5-flash"})
        assert status == 400 and 'Unknown name "model"' in err["message"]
        for role in ("system", "assistant"):
            status, err = refused({"contents": [{"role": role, "parts": [{"text": "x"}]}]})
            assert status == 400 and err["message"] == "Please use a valid role: user, model."
        status, err = refused({"contents": [
            {"role": "user", "parts": [{"text": "w?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}},
                                        {"functionCall": {"name": "g", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]})
        assert status == 400 and "function response parts" in err["message"]
        status, err = refused({"contents": [{"role": "user", "parts": [
            {"inlineData": {"data": "AAAA"}}]}]})
        assert status == 400
        status, _ = refused(ok, path="/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        assert status == 400
        assert m.pending == 0


def test_mock_gemini_stream_is_crlf_framed_sse():
    with mg.MockGemini("m", api_key="k") as m, \
            httpx.Client(base_url=f"http://127.0.0.1:{m.port}") as h:
        m.script(mg.text("a b c", prompt_tokens=5, completion_tokens=3))
        r = h.post("/v1beta/models/g:streamGenerateContent?alt=sse", headers={"x-goog-api-key": "k"},
                   json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]})
        assert r.headers["content-type"] == "text/event-stream"
        frames = r.text.split("\r\n\r\n")
        assert frames[-1] == "" and all(f.startswith("data: ") for f in frames[:-1])
        events = [json.loads(f[6:]) for f in frames[:-1]]
        assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == "a b c"
        assert events[-1]["candidates"][0]["finishReason"] == "STOP"
        assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 3
