"""Health checks: a provider with `health_check` gets a trivial prompt every interval; a target
that fails it leaves the pool (requests skip it without contacting it) until a check passes."""

from __future__ import annotations

import mock_openai as mo
from harness import base_config, chat_body, keys_for, poll, provider


def test_health_check_ejects_and_readmits(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={
            "mock-a": provider(a, ["gpt-a"], health_check={"interval_ms": 200, "timeout_ms": 1000}),
            "mock-b": provider(b, ["gpt-b"]),
        },
        models={"chain": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}},
    )
    gw = gateways.start(cfg, env=keys_for(a, b))
    # Probes reach a: trivial prompts with a tiny max_tokens.
    poll(lambda: len(a.chat_requests) >= 2, timeout=5, what="health probes at mock-a")
    probe = a.chat_requests[0]
    assert probe.json["model"] == "gpt-a" and probe.json["max_tokens"] == 5

    # a starts failing: the next probe takes it out of the pool.
    a.script(*[mo.server_error(503)] * 3)
    gw.wait_for_log("health check failed", timeout=5)
    seen = len(a.chat_requests)
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 200, r.text
    assert r.headers["x-freeway-provider"] == "mock-b"
    assert "failing its health check" in r.headers["x-freeway-route"]
    # The request itself never went to a (only probes may have).
    assert all(req.json.get("max_tokens") == 5 for req in a.chat_requests[seen:])

    # a recovers (its script ran out): a passing probe readmits it.
    gw.wait_for_log("health check passed", timeout=5)
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.headers["x-freeway-provider"] == "mock-a"


def test_slow_answers_fail_the_health_check(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={
            "mock-a": provider(a, ["gpt-a"], health_check={"interval_ms": 200, "max_latency_ms": 100}),
            "mock-b": provider(b, ["gpt-b"]),
        },
        models={"chain": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}},
    )
    a.script(*[mo.text("slow", delay=0.4)] * 20)
    gw = gateways.start(cfg, env=keys_for(a, b))
    gw.wait_for_log("over its limit of 100 ms", timeout=5)
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.headers["x-freeway-provider"] == "mock-b"


def test_probes_count_against_the_free_tier_limits(mocks, gateways):
    """A probe spends the upstream's quota like a request: with `rpm = 3` and a probe every
    100 ms, three probes go out in the minute, then the checks wait for room — and a request
    in that minute is refused without a network call, as the upstream would have refused it."""
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={
            "mock-a": provider(a, {"gpt-a": {"rpm": 3}}, health_check={"interval_ms": 100}),
            "mock-b": provider(b, ["gpt-b"]),
        },
        models={"chain": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}},
    )
    gw = gateways.start(cfg, env={**keys_for(a, b), "FREEWAY_LOG": "debug"})
    poll(lambda: len(a.chat_requests) >= 3, timeout=5, what="three probes")
    gw.wait_for_log("health check skipped: its requests per minute limit is reached", timeout=5)
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chain"))
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-b", r.text
    assert "requests per minute limit reached" in r.headers["x-freeway-route"], r.headers
    assert len(a.chat_requests) == 3, [req.json for req in a.chat_requests]
