"""Hedging (`models.<m>.hedge_after_ms`, `max_hedges`, `hedge_budget`): when the running
attempt has given no first token in time, the next target starts beside it; the first to answer
wins and the other is cancelled at once — nothing of it reaches the client, its connection and
in-flight slot are released, and the route header names both. Deterministic failures are not
hedged, and the budget caps hedges as a share of the model's requests."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import pytest

import mock_openai as mo
from harness import base_config, keys_for, provider, sample_sum, scrape

SLOW = 4.0  # seconds the slow target waits before its first byte


@pytest.fixture
def world(mocks, gateways) -> dict[str, Any]:
    slow = mocks.add("mock-slow")
    fast = mocks.add("mock-fast")
    hedged = {"targets": ["mock-slow/gpt-slow", "mock-fast/gpt-fast"]}
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        providers={"mock-slow": provider(slow, ["gpt-slow"]),
                   "mock-fast": provider(fast, ["gpt-fast"])},
        models={
            "hedged": {**hedged, "hedge_after_ms": 150, "hedge_budget": 1.0},
            "auto": {**hedged, "hedge_after_ms": "auto", "hedge_budget": 1.0},
            "budgeted": {**hedged, "hedge_after_ms": 150},
            # Long enough that no answer of a loaded CI machine reaches it by accident.
            "patient": {**hedged, "hedge_after_ms": 2000, "hedge_budget": 1.0},
            "plain": hedged,
        },
    )
    gw = gateways.start(cfg, env=keys_for(slow, fast))
    gw.wait_admin()
    return {"gw": gw, "slow": slow, "fast": fast}


def metrics(gw) -> list[Any]:
    with gw.admin() as admin:
        return scrape(admin.get("/metrics").text)


def test_a_slow_first_attempt_is_hedged_and_cancelled(world):
    gw, slow, fast = world["gw"], world["slow"], world["fast"]
    slow.script(mo.text("too late", delay=SLOW))
    t0 = time.monotonic()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="hedged", messages=[{"role": "user", "content": "hi"}])
    took = time.monotonic() - t0
    assert raw.parse().choices[0].message.content == "hello from mock-fast"
    assert took < 2.5, f"the hedge should have answered long before {SLOW}s; took {took:.2f}s"
    route = raw.headers["x-freeway-route"]
    assert "mock-slow/gpt-slow: cancelled after" in route, route
    assert "mock-fast/gpt-fast (hedge): ok" in route, route
    assert raw.headers["x-freeway-attempts"] == "2"
    assert raw.headers["x-freeway-provider"] == "mock-fast"
    # The loser was dropped at once: nothing of it is in flight any more.
    samples = metrics(gw)
    assert sample_sum(samples, "freeway_target_in_flight", provider="mock-slow") == 0
    assert sample_sum(samples, "freeway_hedges_total", model="hedged", result="won") == 1
    line = gw.wait_for_log("(hedge): ok")
    assert "request served" in line and "mock-slow/gpt-slow: cancelled" in line, line


@pytest.mark.parametrize("dialect", ["chat", "messages", "responses"])
def test_a_hedged_stream_carries_nothing_of_the_loser(world, dialect):
    gw, slow, fast = world["gw"], world["slow"], world["fast"]
    slow.script(mo.text("loser words", delay=SLOW))
    fast.script(mo.text("winner words here"))
    t0 = time.monotonic()
    if dialect == "chat":
        chunks = list(gw.client().chat.completions.create(
            model="hedged", messages=[{"role": "user", "content": "hi"}], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    elif dialect == "messages":
        sdk = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        with sdk.messages.stream(model="hedged", max_tokens=50,
                                 messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join(stream.text_stream)
    else:
        with gw.client().responses.stream(model="hedged", input="hi") as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    assert text == "winner words here"
    assert time.monotonic() - t0 < 2.5


def test_auto_waits_for_the_targets_observed_p95(world):
    gw, slow, fast = world["gw"], world["slow"], world["fast"]
    client = gw.client()
    # Until the gateway has seen the target answer, "auto" has no p95 and does not hedge.
    for _ in range(5):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "warm"}])
        assert raw.headers["x-freeway-provider"] == "mock-slow"
    slow.script(mo.text("too late", delay=SLOW))
    t0 = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-freeway-provider"] == "mock-fast"
    assert time.monotonic() - t0 < 1.0, "p95 of a fast target is tens of ms"
    assert "(hedge): ok" in raw.headers["x-freeway-route"]


def test_an_answer_before_hedge_after_ms_is_not_hedged(world):
    gw, slow, fast = world["gw"], world["slow"], world["fast"]
    slow.script(mo.text("in time", delay=0.3))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="patient", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-freeway-provider"] == "mock-slow"
    assert raw.headers["x-freeway-attempts"] == "1"
    assert fast.chat_requests == []


def test_a_deterministic_failure_is_not_hedged_or_retried(world):
    gw, slow, fast = world["gw"], world["slow"], world["fast"]
    slow.script(mo.context_length_exceeded())
    with gw.http() as http:
        r = http.post("/v1/chat/completions", json={
            "model": "patient", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400
    assert fast.chat_requests == []


def test_the_budget_caps_hedges(world):
    gw, slow, fast = world["gw"], world["slow"], world["fast"]
    # 10% of one request is less than one hedge: this slow request waits for its answer.
    slow.script(mo.text("slow but sure", delay=0.6))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="budgeted", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == "slow but sure"
    assert raw.headers["x-freeway-attempts"] == "1"
    assert fast.chat_requests == []
    assert sample_sum(metrics(gw), "freeway_hedges_total", model="budgeted",
                      result="over_budget") == 1


def test_hedge_settings_are_validated(gateways, mocks):
    m = mocks.add("m")
    for bad, says in [({"hedge_after_ms": "soon"}, "auto"),
                      ({"hedge_after_ms": 100, "max_hedges": 9}, "max_hedges"),
                      ({"hedge_after_ms": 100, "hedge_budget": 2.0}, "hedge_budget"),
                      ({"max_hedges": 2}, "hedge_after_ms")]:
        cfg = base_config(providers={"m": provider(m, ["x"])},
                          models={"x": {"targets": ["m/x"], **bad}})
        out = gateways.start_refused(cfg, env=keys_for(m))
        assert f"models.x.{says}" in out or says in out, out

