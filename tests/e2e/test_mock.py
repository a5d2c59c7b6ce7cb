"""The mock upstream itself, driven by the official SDK: if the SDK cannot read the mock, no
gateway test means anything. These run without the gateway binary."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

import mock_openai as mo


@pytest.fixture
def mock():
    with mo.MockOpenAI("m", api_key="sk-right") as m:
        yield m


def sdk(m: mo.MockOpenAI, key: str = "sk-right") -> openai.OpenAI:
    return openai.OpenAI(base_url=m.base_url, api_key=key, max_retries=0, timeout=10)


def test_sdk_reads_json_answer_and_request_is_recorded(mock):
    mock.script(mo.text("Hi there"))
    c = sdk(mock).chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "yo"}],
                                          extra_body={"custom": 1})
    assert c.choices[0].message.content == "Hi there"
    assert c.object == "chat.completion" and c.model == "gpt-x"
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    rec = mock.last()
    assert rec.authorization == "Bearer sk-right"
    assert rec.json["custom"] == 1 and rec.json["messages"][0]["content"] == "yo"


def test_sdk_reassembles_streamed_tool_call(mock):
    args = json.dumps({"city": "Paris", "unit": "celsius"})
    mock.script(mo.tool_call("get_weather", args, call_id="call_1"))
    tools = [{"type": "function", "function": {
        "name": "get_weather", "strict": True,
        "parameters": {"type": "object", "additionalProperties": False,
                       "required": ["city", "unit"],
                       "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}}]
    with sdk(mock).chat.completions.stream(model="gpt-x", tools=tools,
                                           messages=[{"role": "user", "content": "w?"}]) as s:
        final = s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.id == "call_1" and call.function.arguments == args
    assert call.function.parsed_arguments == {"city": "Paris", "unit": "celsius"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_usage_chunk_only_when_asked(mock):
    client = sdk(mock)
    msgs = [{"role": "user", "content": "x"}]
    plain = list(client.chat.completions.create(model="g", messages=msgs, stream=True))
    assert all(ch.choices for ch in plain) and all(ch.usage is None for ch in plain)
    mock.script(mo.text("a b c"))
    with_usage = list(client.chat.completions.create(
        model="g", messages=msgs, stream=True, stream_options={"include_usage": True}))
    assert with_usage[-1].choices == [] and with_usage[-1].usage.completion_tokens == 7
    assert "".join(ch.choices[0].delta.content or "" for ch in with_usage[:-1]) == "a b c"


def test_refuses_what_openai_refuses(mock):
    with pytest.raises(openai.AuthenticationError) as e:
        sdk(mock, key="sk-wrong").chat.completions.create(model="g", messages=[])
    assert e.value.code == "invalid_api_key"
    with httpx.Client(base_url=mock.base_url) as h:
        auth = {"authorization": "Bearer sk-right"}
        assert h.post("/chat/completions", json={"model": "g"}).status_code == 401
        r = h.post("/chat/completions", json={"model": "g"}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        r = h.post("/chat/completions", json={"messages": []}, headers=auth)
        assert r.status_code == 400 and "model" in r.json()["error"]["message"]
        r = h.post("/chat/completions", content=b"{nope", headers=auth)
        assert r.status_code == 400
    assert mock.pending == 0


def test_rate_limit_headers_and_sdk_error(mock):
    mock.script(mo.rate_limited(7))
    with pytest.raises(openai.RateLimitError) as e:
        sdk(mock).chat.completions.create(model="g", messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "7"
    assert e.value.code == "rate_limit_exceeded"


def test_stream_drop_makes_sdk_fail(mock):
    mock.script(mo.stream_then_drop("one two three", 2))
    got = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for ch in sdk(mock).chat.completions.create(
                model="g", messages=[{"role": "user", "content": "x"}], stream=True):
            got.append(ch.choices[0].delta.content or "")
    assert "".join(got) == "one"


def test_close_without_answer(mock):
    mock.script(mo.close())
    with pytest.raises(openai.APIConnectionError):
        sdk(mock).chat.completions.create(model="g", messages=[{"role": "user", "content": "x"}])
    assert len(mock.chat_requests) == 1
