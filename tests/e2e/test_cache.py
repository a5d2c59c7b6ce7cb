"""The response cache: a deterministic request asked twice reaches the upstream once.

What a user notices, through the real binary and the official `openai` SDK:
- `temperature: 0` requests are answered from the cache the second time (`x-freeway-cache:
  hit`, an `age` header, no upstream call); others say `bypass` and always go upstream;
- a cached answer is served as JSON or as a valid SSE stream, whichever the client asks for,
  whichever way it was first fetched (tool calls and usage included);
- `cache-control: no-store` / `no-cache` / `max-age`, `x-freeway-cache: use | skip` and the
  model's `cache` policy decide; errors are never cached; entries expire after `cache.ttl_s`;
- one key's cached answer is not served to another key unless `cache.scope = "shared"`;
- a hit is a ledger row with outcome `cache_hit` and zero cost, and a Prometheus count;
- two instances on one Redis share answers, and a dead Redis only costs hits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

import mock_openai as mo
from harness import (REDIS_SERVER, Ops, RedisServer, base_config, chat_body, keys_for, poll,
                     priced, provider, sample_sum, sse_events)


def config(a: mo.MockOpenAI, **sections: Any) -> dict[str, Any]:
    cfg = base_config(providers={a.name: provider(a, ["gpt-a"])},
                      models={"m": {"targets": [f"{a.name}/gpt-a"]},
                              "fixed": {"targets": [f"{a.name}/gpt-a"], "cache": "always"},
                              "fresh": {"targets": [f"{a.name}/gpt-a"], "cache": "never"}})
    cfg.update(sections)
    return cfg


@pytest.fixture
def one(mocks, gateways):
    a = mocks.add("mock-a")
    gw = gateways.start(config(a), env=keys_for(a))
    return gw, a


def det(content: str = "What is 2+2?", **extra: Any) -> dict[str, Any]:
    return chat_body("m", content, temperature=0, **extra)


def post(gw, body: dict[str, Any], headers: Optional[dict[str, str]] = None) -> httpx.Response:
    with gw.http() as c:
        return c.post("/v1/chat/completions", json=body, headers=headers or {})


def ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, f"{r.status_code}: {r.text[:400]}"
    return r


def stream_chunks(r: httpx.Response) -> list[dict[str, Any]]:
    ok(r)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]", events[-3:]
    return [json.loads(e) for e in events[:-1]]


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join((c["choices"][0]["delta"].get("content") or "")
                   for c in chunks if c["choices"])


# =============================================================================================
# Hit, miss, bypass
# =============================================================================================


def test_a_deterministic_request_asked_twice_reaches_the_upstream_once(one):
    gw, a = one
    a.script(mo.text("Four."))
    first = ok(post(gw, det()))
    assert first.headers["x-freeway-cache"] == "miss"
    second = ok(post(gw, det()))
    assert second.headers["x-freeway-cache"] == "hit"
    assert second.json()["choices"][0]["message"]["content"] == "Four."
    assert second.json() == first.json(), "a hit is the answer the first client got"
    assert second.headers["x-freeway-attempts"] == "0"
    assert second.headers["x-freeway-provider"] == "mock-a"
    assert "cached answer" in second.headers["x-freeway-route"]
    assert int(second.headers["age"]) >= 0
    assert len(a.chat_requests) == 1
    # The official SDK sees an ordinary answer.
    c = gw.client()
    answer = c.chat.completions.create(model="m", temperature=0,
                                       messages=[{"role": "user", "content": "What is 2+2?"}])
    assert answer.choices[0].message.content == "Four."
    assert len(a.chat_requests) == 1


def test_non_deterministic_requests_bypass_the_cache(one):
    gw, a = one
    for body in (chat_body("m", "hi"), chat_body("m", "hi", temperature=0.7),
                 chat_body("m", "hi", temperature=0.7)):
        r = ok(post(gw, body))
        assert r.headers["x-freeway-cache"] == "bypass"
    assert len(a.chat_requests) == 3


def test_a_different_question_or_parameter_is_a_different_entry(one):
    gw, a = one
    ok(post(gw, det("one")))
    assert post(gw, det("two")).headers["x-freeway-cache"] == "miss"
    assert post(gw, det("one", max_tokens=5)).headers["x-freeway-cache"] == "miss"
    assert post(gw, det("one")).headers["x-freeway-cache"] == "hit"
    assert len(a.chat_requests) == 3


def test_errors_are_never_cached(one):
    gw, a = one
    a.script(mo.bad_request("nope"), mo.text("fine"))
    assert post(gw, det()).status_code == 400
    r = ok(post(gw, det()))
    assert r.headers["x-freeway-cache"] == "miss"
    assert r.json()["choices"][0]["message"]["content"] == "fine"
    assert post(gw, det()).headers["x-freeway-cache"] == "hit"
    assert len(a.chat_requests) == 2


# =============================================================================================
# JSON and streams, either way round
# =============================================================================================


def test_a_streamed_answer_is_served_again_as_json_and_as_a_stream(one):
    gw, a = one
    a.script(mo.text("Hello there, friend.", pieces=["Hello", " there,", " friend."]))
    first = stream_chunks(post(gw, det(stream=True, stream_options={"include_usage": True})))
    assert streamed_text(first) == "Hello there, friend."
    as_json = ok(post(gw, det()))
    assert as_json.headers["x-freeway-cache"] == "hit"
    body = as_json.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant",
                                             "content": "Hello there, friend."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 7
    # And through the SDK's stream reader, with usage asked for.
    c = gw.client()
    stream = c.chat.completions.create(model="m", temperature=0, stream=True,
                                       stream_options={"include_usage": True},
                                       messages=[{"role": "user", "content": "What is 2+2?"}])
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Hello there, friend."
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    assert len(a.chat_requests) == 1


def test_a_json_answer_is_replayed_as_a_stream(one):
    gw, a = one
    a.script(mo.text("Plain first."))
    ok(post(gw, det()))
    r = post(gw, det(stream=True))
    assert r.headers["x-freeway-cache"] == "hit"
    chunks = stream_chunks(r)
    assert streamed_text(chunks) == "Plain first."
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("usage" not in c for c in chunks), "usage only when stream_options asks"
    assert len(a.chat_requests) == 1


def test_tool_calls_survive_the_cache_both_ways(one):
    gw, a = one
    tools = [{"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "number"}}}}}]
    a.script(mo.tool_call("add", '{"a": 2, "b": 2}', call_id="call_cached"))
    stream_chunks(post(gw, det(tools=tools, stream=True)))
    body = ok(post(gw, det(tools=tools))).json()
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["id"] == "call_cached" and call["type"] == "function"
    assert call["function"] == {"name": "add", "arguments": '{"a": 2, "b": 2}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    c = gw.client()
    stream = c.chat.completions.create(model="m", temperature=0, stream=True, tools=tools,
                                       messages=[{"role": "user", "content": "What is 2+2?"}])
    args = ""
    for ch in stream:
        for d in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            args += d.function.arguments or ""
    assert args == '{"a": 2, "b": 2}'
    assert len(a.chat_requests) == 1


def test_a_stream_cut_short_is_not_cached(one):
    gw, a = one
    a.script(mo.stream_then_drop("partial answer that breaks", 2), mo.text("whole"))
    r = post(gw, det(stream=True))
    assert r.status_code == 200  # committed, then broken
    r = ok(post(gw, det()))
    assert r.headers["x-freeway-cache"] == "miss"
    assert r.json()["choices"][0]["message"]["content"] == "whole"


# =============================================================================================
# What the client and the config say
# =============================================================================================


def test_cache_control_and_the_client_choice(one):
    gw, a = one
    a.script(mo.text("v1"), mo.text("v2"), mo.text("v3"), mo.text("v4"), mo.text("v5"))
    ok(post(gw, det()))  # v1 stored
    r = ok(post(gw, det(), {"cache-control": "no-store"}))
    assert r.headers["x-freeway-cache"] == "bypass" and r.json()["choices"][0]["message"][
        "content"] == "v2"
    assert post(gw, det()).json()["choices"][0]["message"]["content"] == "v1", \
        "no-store neither reads nor writes"
    r = ok(post(gw, det(), {"cache-control": "no-cache"}))
    assert r.headers["x-freeway-cache"] == "miss"
    assert r.json()["choices"][0]["message"]["content"] == "v3"
    r = ok(post(gw, det()))
    assert (r.headers["x-freeway-cache"], r.json()["choices"][0]["message"]["content"]) == (
        "hit", "v3"), "no-cache refreshes the stored answer"
    time.sleep(1.1)
    r = ok(post(gw, det(), {"cache-control": "max-age=1"}))
    assert r.json()["choices"][0]["message"]["content"] == "v4", "older than max-age"
    r = ok(post(gw, det(), {"x-freeway-cache": "skip"}))
    assert (r.headers["x-freeway-cache"], r.json()["choices"][0]["message"]["content"]) == (
        "bypass", "v5")
    # `use` caches a request that is not deterministic.
    body = chat_body("m", "tell me a story", temperature=1.0)
    ok(post(gw, body, {"x-freeway-cache": "use"}))
    assert post(gw, body, {"x-freeway-cache": "use"}).headers["x-freeway-cache"] == "hit"
    assert post(gw, body).headers["x-freeway-cache"] == "bypass"


def test_model_policies_always_and_never(one):
    gw, a = one
    body = chat_body("fixed", "classify this", temperature=0.9)
    ok(post(gw, body))
    assert post(gw, body).headers["x-freeway-cache"] == "hit"
    body = chat_body("fresh", "what time is it", temperature=0)
    for _ in range(2):
        assert post(gw, body, {"x-freeway-cache": "use"}).headers["x-freeway-cache"] == "bypass"
    assert len(a.chat_requests) == 3


def test_entries_expire_after_the_ttl(mocks, gateways):
    a = mocks.add("mock-a")
    gw = gateways.start(config(a, cache={"ttl_s": 1}), env=keys_for(a))
    ok(post(gw, det()))
    assert post(gw, det()).headers["x-freeway-cache"] == "hit"
    time.sleep(1.2)
    assert post(gw, det()).headers["x-freeway-cache"] == "miss"
    assert len(a.chat_requests) == 2


def test_a_disabled_cache_says_nothing_and_caches_nothing(mocks, gateways):
    a = mocks.add("mock-a")
    gw = gateways.start(config(a, cache={"enabled": False}), env=keys_for(a))
    for _ in range(2):
        r = ok(post(gw, det()))
        assert "x-freeway-cache" not in r.headers
    assert len(a.chat_requests) == 2


def test_bad_cache_settings_are_refused_with_their_path(mocks, gateways):
    a = mocks.add("mock-a")
    for section, path in (({"ttl_s": 0}, "cache.ttl_s"), ({"scope": "everyone"}, "cache.scope"),
                          ({"max_mb": 0}, "cache.max_mb")):
        err = gateways.start_refused(config(a, cache=section), env=keys_for(a))
        assert path in err, err


# =============================================================================================
# Scope per key, and accounting
# =============================================================================================

KEYS = {"GW_ALICE": "fw-alice-secret-0001", "GW_BOB": "fw-bob-secret-00002"}


def keyed(a: mo.MockOpenAI, **sections: Any) -> dict[str, Any]:
    return config(a, auth={"keys": [{"name": "alice", "key_env": "GW_ALICE"},
                                    {"name": "bob", "key_env": "GW_BOB"}]}, **sections)


def as_key(gw, key: str, body: dict[str, Any]) -> httpx.Response:
    return post(gw, body, {"authorization": f"Bearer {key}"})


def test_one_keys_answer_is_not_served_to_another_key(mocks, gateways):
    a = mocks.add("mock-a")
    gw = gateways.start(keyed(a), env={**keys_for(a), **KEYS})
    a.script(mo.text("for alice"), mo.text("for bob"))
    ok(as_key(gw, KEYS["GW_ALICE"], det()))
    r = ok(as_key(gw, KEYS["GW_BOB"], det()))
    assert (r.headers["x-freeway-cache"], r.json()["choices"][0]["message"]["content"]) == (
        "miss", "for bob")
    r = ok(as_key(gw, KEYS["GW_ALICE"], det()))
    assert (r.headers["x-freeway-cache"], r.json()["choices"][0]["message"]["content"]) == (
        "hit", "for alice")


def test_a_shared_scope_serves_every_key(mocks, gateways):
    a = mocks.add("mock-a")
    gw = gateways.start(keyed(a, cache={"scope": "shared"}), env={**keys_for(a), **KEYS})
    ok(as_key(gw, KEYS["GW_ALICE"], det()))
    assert as_key(gw, KEYS["GW_BOB"], det()).headers["x-freeway-cache"] == "hit"
    assert len(a.chat_requests) == 1


def test_a_hit_is_a_ledger_row_with_zero_cost_and_a_metric(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(a, admin={"listen": "127.0.0.1:0"}, store={"path": "freeway.db"},
                 providers={a.name: priced(a, "gpt-a", input_price=3.0, output_price=15.0)})
    o = Ops(gateways, cfg, keys_for(a))
    o.launch()
    miss = ok(o.post(None, det()))
    hit = ok(o.post(None, det()))
    ids = [miss.headers["x-request-id"], hit.headers["x-request-id"]]

    def rows():
        found = o.ledger("WHERE request_id IN (?, ?)", tuple(ids))
        return found if len(found) == 2 else None

    by_id = {r["request_id"]: r for r in poll(rows, timeout=10, what="two ledger rows")}
    assert by_id[ids[0]]["outcome"] == "ok" and by_id[ids[0]]["cost_usd"] > 0
    assert by_id[ids[1]]["outcome"] == "cache_hit"
    assert by_id[ids[1]]["cost_usd"] == 0
    assert by_id[ids[1]]["attempts"] == 0
    samples = o.metrics()
    assert sample_sum(samples, "freeway_cache_requests_total", result="hit") == 1
    assert sample_sum(samples, "freeway_cache_requests_total", result="miss") == 1
    assert not sample_sum(samples, "freeway_request_failures_total"), \
        "a hit is not a failure"
    assert 'cache="hit"' in o.gw.stderr, "the log line says the answer came from the cache"


# =============================================================================================
# Several instances on one Redis
# =============================================================================================

needs_redis = pytest.mark.skipif(
    not REDIS_SERVER.is_file(),
    reason=f"{REDIS_SERVER} is missing (apt-get install redis-server; CI installs it)")


@needs_redis
def test_two_instances_share_answers_through_redis(mocks, gateways, tmp_path: Path):
    redis = RedisServer(tmp_path).start()
    try:
        a = mocks.add("mock-a")
        cfg = config(a, admin={"listen": "127.0.0.1:0"}, store={"path": "memory"},
                     state={"redis_url": redis.url, "redis_timeout_ms": 500})
        one_ = Ops(gateways, cfg, keys_for(a))
        two = Ops(gateways, cfg, keys_for(a))
        one_.launch()
        two.launch()
        a.script(mo.text("shared answer"))
        assert ok(one_.post(None, det())).headers["x-freeway-cache"] == "miss"

        def stored() -> bool:
            return any(":cache:" in k for k in redis.keys())

        poll(stored, timeout=5, what="the answer written to Redis")
        r = ok(two.post(None, det(stream=True)))
        assert r.headers["x-freeway-cache"] == "hit"
        assert streamed_text(stream_chunks(r)) == "shared answer"
        assert len(a.chat_requests) == 1
        # Redis gone: requests still succeed; the cache just misses what it cannot read.
        redis.kill()
        for body in (det("after redis died"), det("after redis died")):
            assert two.post(None, body).status_code == 200
    finally:
        redis.stop()


# =============================================================================================
# Every inbound dialect
# =============================================================================================


def test_an_anthropic_client_gets_cached_answers_in_its_own_dialect(one):
    """The cache keeps canonical answers, so `/v1/messages` hits are served in Anthropic's wire
    format, whole or as its event stream, like any dialect's."""
    import anthropic

    gw, a = one
    a.script(mo.text("Four, as always."))
    ok(post(gw, det()))
    claude = anthropic.Anthropic(base_url=gw.url, api_key="anything", max_retries=0, timeout=30)
    message = claude.messages.with_raw_response.create(
        model="m", max_tokens=64, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": "What is 2+2?"}])
    # The Anthropic body maps max_tokens into the canonical request: a different entry.
    assert message.headers["x-freeway-cache"] == "miss"
    again = claude.messages.with_raw_response.create(
        model="m", max_tokens=64, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": "What is 2+2?"}])
    assert again.headers["x-freeway-cache"] == "hit"
    assert again.parse().content[0].text == message.parse().content[0].text
    with claude.messages.stream(model="m", max_tokens=64, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "What is 2+2?"}]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed == message.parse().content[0].text
    assert final.stop_reason == "end_turn"
    assert len(a.chat_requests) == 2
