"""Failover between targets: which upstream failures move on to the next target, cooldowns after
a 429, and the rule that a stream never fails over once its first chunk reached the client.

Each test runs its own gateway: cooldowns and health are gateway state and must not leak."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

import mock_openai as mo
from harness import base_config, chat_body, error_body, keys_for, provider, sse_events


@pytest.fixture
def ab(mocks, gateways):
    """mock-a then mock-b behind the public model "chain"."""
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")

    def start(a_extra=None, **models):
        cfg = base_config(
            providers={"mock-a": provider(a, ["gpt-a"], **(a_extra or {})),
                       "mock-b": provider(b, ["gpt-b"])},
            models={"chain": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}, **models},
        )
        return gateways.start(cfg, env=keys_for(a, b))

    return a, b, start


def test_429_fails_over_and_cooldown_skips_target(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.rate_limited(30, model="gpt-a"))
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert raw.headers["x-freeway-provider"] == "mock-b"
    assert raw.headers["x-freeway-attempts"] == "2"
    route = raw.headers["x-freeway-route"]
    assert "mock-a/gpt-a: 429" in route and "mock-b/gpt-b: ok" in route, route
    assert len(a.chat_requests) == 1

    # mock-a asked for 30 s: the next requests go straight to mock-b without touching mock-a.
    for _ in range(3):
        raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
        assert raw.headers["x-freeway-provider"] == "mock-b"
        assert raw.headers["x-freeway-attempts"] == "1", "a skipped target is not an attempt"
    assert len(a.chat_requests) == 1, "a cooling target must not be contacted"
    assert len(b.chat_requests) == 4


def test_short_cooldown_expires(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.rate_limited(1, model="gpt-a"))
    client = gw.client()
    t0 = time.monotonic()
    assert client.chat.completions.with_raw_response.create(
        **chat_body("chain")).headers["x-freeway-provider"] == "mock-b"
    # Retry-After: 1 -> mock-b serves until the second is over, then mock-a is first again.
    while True:
        provider_ = client.chat.completions.with_raw_response.create(
            **chat_body("chain")).headers["x-freeway-provider"]
        elapsed = time.monotonic() - t0
        if provider_ == "mock-a":
            break
        assert elapsed < 4, "mock-a never came back after its 1 s cooldown"
        time.sleep(0.05)
    assert elapsed >= 0.8, f"mock-a was used again after {elapsed:.2f}s despite Retry-After: 1"
    assert len(a.chat_requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_fails_over(ab, status):
    a, b, start = ab
    gw = start()
    a.script(mo.server_error(status) if status != 502 else mo.error(502, "<html>Bad Gateway</html>",
                                                                   headers={"content-type": "text/html"}))
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert raw.headers["x-freeway-attempts"] == "2"
    assert f"mock-a/gpt-a: {status}" in raw.headers["x-freeway-route"]
    assert b.last().json["model"] == "gpt-b"
    assert b.last().authorization == "Bearer sk-mock-b-secret"


@pytest.mark.parametrize("status", [401, 403, 404])
def test_upstream_auth_and_not_found_fail_over(ab, status):
    a, b, start = ab
    gw = start()
    a.script(mo.error(status, mo.openai_error(f"upstream says {status}", "invalid_request_error")))
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    assert raw.headers["x-freeway-provider"] == "mock-b"
    assert raw.headers["x-freeway-attempts"] == "2"


def test_timeout_fails_over_quickly(ab):
    a, b, start = ab
    gw = start(a_extra={"timeout_ms": 300})
    a.script(mo.text("too late", delay=5))
    t0 = time.monotonic()
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    elapsed = time.monotonic() - t0
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert raw.headers["x-freeway-attempts"] == "2"
    assert elapsed < 2.5, f"a 300 ms attempt timeout took {elapsed:.1f}s to fail over"


def test_all_timing_out_gives_504(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={"mock-a": provider(a, ["gpt-a"], timeout_ms=200),
                   "mock-b": provider(b, ["gpt-b"], timeout_ms=200)},
        models={"chain": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}})
    gw = gateways.start(cfg, env=keys_for(a, b))
    a.script(mo.text("late", delay=5))
    b.script(mo.text("late", delay=5))
    t0 = time.monotonic()
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 504
    assert error_body(r)["code"] == "upstream_timeout"
    assert time.monotonic() - t0 < 3


def test_refused_connection_fails_over(mocks, gateways):
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={
            "dead": {"adapter": "openai-compatible",
                     "base_url": f"http://127.0.0.1:{mo.closed_port()}/v1",
                     "api_key_env": "MOCK_DEAD_KEY", "models": ["gpt-dead"]},
            "mock-b": provider(b, ["gpt-b"])},
        models={"chain": {"targets": ["dead/gpt-dead", "mock-b/gpt-b"]}})
    gw = gateways.start(cfg, env={**keys_for(b), "MOCK_DEAD_KEY": "sk-dead"})
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert raw.headers["x-freeway-attempts"] == "2"
    assert "dead/gpt-dead" in raw.headers["x-freeway-route"]


def test_connection_closed_without_answer_fails_over(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.close())
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    assert raw.headers["x-freeway-provider"] == "mock-b"


def test_all_rate_limited_gives_429_with_soonest_retry_after(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.rate_limited(20, model="gpt-a"))
    b.script(mo.rate_limited(5, model="gpt-b"))
    with pytest.raises(openai.RateLimitError) as e:
        gw.client().chat.completions.create(**chat_body("chain"))
    ra = int(e.value.response.headers["retry-after"])
    assert 1 <= ra <= 5, f"Retry-After must be the soonest (5 s), got {ra}"
    assert e.value.message
    # Both cool down now: the next request is refused without contacting either.
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 5
    error_body(r)
    assert (len(a.chat_requests), len(b.chat_requests)) == (1, 1)


def test_all_rate_limited_without_retry_after_still_says_when(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.rate_limited(None, model="gpt-a"))
    b.script(mo.rate_limited(None, model="gpt-b"))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    error_body(r)


def test_all_unavailable_gives_503(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.server_error(500))
    b.script(mo.server_error(503))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 503, r.text
    assert error_body(r)["code"] == "no_available_target"


def test_garbage_answer_fails_over(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.error(200, "<html>captive portal</html>", headers={"content-type": "text/html"}))
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"))
    assert raw.parse().choices[0].message.content == "hello from mock-b"
    assert raw.headers["x-freeway-attempts"] == "2"


def test_all_garbage_gives_502(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.error(200, "not json at all", headers={"content-type": "text/plain"}))
    b.script(mo.error(200, '{"unexpected": "shape"', headers={"content-type": "application/json"}))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 502, r.text
    assert error_body(r)["code"] == "upstream_error"


# -- streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["503", "429", "drop-before-first-chunk"])
def test_stream_fails_over_before_first_chunk(ab, failure):
    a, b, start = ab
    gw = start()
    a.script({"503": mo.server_error(503),
              "429": mo.rate_limited(30, model="gpt-a"),
              "drop-before-first-chunk": mo.stream_then_drop("never seen", 0)}[failure])
    b.script(mo.text("streamed by b"))
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"), stream=True)
    assert raw.headers["x-freeway-provider"] == "mock-b"
    chunks = list(raw.parse())
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "streamed by b"
    assert len(a.chat_requests) == 1 and len(b.chat_requests) == 1


def test_no_failover_after_first_streamed_chunk(ab):
    a, b, start = ab
    gw = start()
    # Role chunk + "Hello" reach the client, then mock-a's connection drops.
    a.script(mo.stream_then_drop("Hello there world", 2, pieces=["Hello", " there", " world"]))
    got = []
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"), stream=True)
    assert raw.headers["x-freeway-provider"] == "mock-a"
    with pytest.raises(openai.APIError):
        for ch in raw.parse():
            if ch.choices:
                got.append(ch.choices[0].delta.content or "")
    assert "".join(got) == "Hello", "what was streamed before the failure must reach the client"
    assert b.chat_requests == [], "no failover once the first chunk went out"


def test_mid_stream_failure_ends_with_error_event_and_no_done(ab):
    a, b, start = ab
    gw = start()
    a.script(mo.stream_then_drop("Hello there world", 3, pieces=["Hello", " there", " world"]))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain", stream=True))
    assert r.status_code == 200
    events = sse_events(r.text)
    assert "[DONE]" not in events, "a broken stream must not look finished"
    last = json.loads(events[-1])
    assert set(last) == {"error"} and last["error"]["message"], last
    assert {"message", "type", "param", "code"} <= set(last["error"]), last
    content = "".join((json.loads(e)["choices"][0]["delta"].get("content") or "")
                      for e in events[:-1])
    assert content == "Hello there"
    assert b.chat_requests == []


def test_stalled_stream_ends_with_error_after_idle_timeout(ab):
    """stream_idle_timeout_ms = 300: an upstream that goes quiet mid-stream for seconds ends
    the client's stream with an error event soon after, without failover."""
    a, b, start = ab
    gw = start(a_extra={"stream_idle_timeout_ms": 300})
    a.script(mo.text("Hello world", pieces=["Hello", " world"], event_gap=4))
    t0 = time.monotonic()
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain", stream=True))
    elapsed = time.monotonic() - t0
    events = sse_events(r.text)
    assert "[DONE]" not in events
    assert set(json.loads(events[-1])) == {"error"}, events[-1]
    assert elapsed < 2.5, f"the stalled stream was ended after {elapsed:.1f}s"
    assert b.chat_requests == []


def test_stream_timeout_before_first_chunk_fails_over(ab):
    a, b, start = ab
    gw = start(a_extra={"timeout_ms": 300})
    a.script(mo.text("slow", delay=5))
    t0 = time.monotonic()
    chunks = list(gw.client().chat.completions.create(**chat_body("chain"), stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "hello from mock-b"
    assert time.monotonic() - t0 < 2.5


def test_stream_first_chunk_stall_fails_over(ab):
    """mock-a sends 200 headers at once, then nothing: the attempt timeout covers the wait for
    the first chunk, so the stream moves to mock-b before the client saw anything."""
    a, b, start = ab
    gw = start(a_extra={"timeout_ms": 300})
    a.script(mo.text("stalled", first_event_delay=5))
    t0 = time.monotonic()
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("chain"), stream=True)
    assert raw.headers["x-freeway-provider"] == "mock-b"
    chunks = list(raw.parse())
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "hello from mock-b"
    assert time.monotonic() - t0 < 2.5


def test_concurrent_requests_all_served(ab):
    """Ten clients at once while the first target rate-limits: everyone gets an answer."""
    a, b, start = ab
    gw = start()
    a.script(mo.rate_limited(30, model="gpt-a"))
    client = gw.client()

    def one(i):
        return client.chat.completions.create(**chat_body("chain", f"q{i}")).choices[0].message.content

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(one, range(10)))
    assert all(ans in ("hello from mock-a", "hello from mock-b") for ans in answers), answers
    assert answers.count("hello from mock-b") >= 1
    assert sorted(r.json["messages"][0]["content"] for r in a.chat_requests + b.chat_requests
                  if r.status == 200) == sorted(f"q{i}" for i in range(10))
