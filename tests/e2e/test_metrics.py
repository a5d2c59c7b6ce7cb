"""Prometheus metrics on the admin listener's `GET /metrics`, parsed with the official Python
client's text parser (what a Prometheus server would accept), checked against what the test
did: requests by model / provider / status class, latency and time-to-first-token histograms,
tokens and cost by the catalog's prices, per-target gauges, plugin calls, reloads and the
ledger's counters.
"""

from __future__ import annotations

import pytest

import mock_openai as mo
from harness import (Ops, base_config, chat_body, cost, keys_for, poll, priced, sample_sum,
                     scrape)

IN_PRICE, OUT_PRICE = 3.0, 15.0


@pytest.fixture
def ops(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        store={"path": "freeway.db"},
        providers={"mock-a": priced(a, "gpt-a", input_price=IN_PRICE, output_price=OUT_PRICE,
                                    rpd=100),
                   "mock-b": priced(b, "gpt-b", input_price=1.0, output_price=2.0)},
        models={"m": {"targets": ["mock-a/gpt-a"]}, "cool": {"targets": ["mock-b/gpt-b"]}})
    o = Ops(gateways, cfg, keys_for(a, b))
    o.launch()
    return o, a, b


@pytest.fixture
def traffic(ops):
    """Four answers from mock-a for "m" (three JSON, one stream), an upstream 400 from mock-a
    for "m", and a 429 (Retry-After: 30) from mock-b for "cool"; then the scraped samples."""
    o, a, b = ops
    client = o.client("unused")
    msgs = [{"role": "user", "content": "count me"}]
    for _ in range(3):
        client.chat.completions.create(model="m", messages=msgs)
    chunks = list(client.chat.completions.create(
        model="m", messages=msgs, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens == 11
    a.script(mo.context_length_exceeded())
    assert o.post(None, chat_body("m")).status_code == 400
    b.script(mo.error(429, mo.openai_error("slow down", "requests", code="rate_limit_exceeded"),
                      headers={"retry-after": "30"}))
    assert o.post(None, chat_body("cool")).status_code == 429

    # Counted when each request finishes (a stream: after its last byte).
    samples = poll(lambda: (s := o.metrics()) and
                   sample_sum(s, "freeway_requests_total") == 6 and s,
                   timeout=5, what="6 requests counted in freeway_requests_total")
    return o, samples


def value(samples, name, **labels) -> float:
    got = sample_sum(samples, name, **labels)
    if got is None:
        present = sorted({tuple(sorted(x.labels.items())) for x in samples if x.name == name})
        raise AssertionError(f"no sample {name}{labels}; there are: {present}")
    return got


def test_requests_counted_by_model_provider_and_status_class(traffic):
    _, samples = traffic
    assert value(samples, "freeway_requests_total", model="m", provider="mock-a",
                 status_class="2xx") == 4


def test_upstream_errors_are_counted_under_the_provider_that_answered(traffic):
    _, samples = traffic
    assert value(samples, "freeway_requests_total", model="m", provider="mock-a",
                 status_class="4xx") == 1
    assert value(samples, "freeway_requests_total", model="cool", provider="mock-b",
                 status_class="4xx") == 1
    # And by why: the upstream refused the request itself; every target was rate-limited.
    assert value(samples, "freeway_request_failures_total", outcome="upstream_refused") == 1
    assert value(samples, "freeway_request_failures_total", outcome="rate_limited") == 1


def test_latency_and_ttft_histograms(traffic):
    _, samples = traffic
    # Every answer mock-a gave for "m" observed once (the 400 too), the stream's first token.
    n = value(samples, "freeway_request_duration_seconds_count", model="m")
    assert n == 5, n
    inf = [x for x in samples if x.name == "freeway_request_duration_seconds_bucket"
           and x.labels.get("model") == "m" and x.labels.get("le") in ("+Inf", "inf")]
    assert sum(x.value for x in inf) == n, inf
    assert value(samples, "freeway_request_duration_seconds_sum", model="m") > 0
    assert value(samples, "freeway_ttft_seconds_count", model="m", provider="mock-a") >= 1


def test_tokens_and_cost_match_the_catalog(traffic):
    _, samples = traffic
    # Four answers of 11 + 7 tokens; the 400 used none.
    assert value(samples, "freeway_tokens_total", model="m", provider="mock-a",
                 kind="prompt") == 44
    assert value(samples, "freeway_tokens_total", model="m", provider="mock-a",
                 kind="completion") == 28
    assert value(samples, "freeway_cost_usd_total", model="m", provider="mock-a") == \
        pytest.approx(4 * cost(11, 7, IN_PRICE, OUT_PRICE), rel=1e-9)


def test_target_gauges(traffic):
    _, samples = traffic
    cooling = value(samples, "freeway_target_cooldown_seconds", provider="mock-b", model="gpt-b")
    assert 20 < cooling <= 30, cooling
    assert value(samples, "freeway_target_cooldown_seconds", provider="mock-a",
                 model="gpt-a") == 0
    assert value(samples, "freeway_target_breaker_open", provider="mock-a", model="gpt-a") == 0
    # rpd = 100 and five answers so far.
    left = value(samples, "freeway_target_remaining_requests", provider="mock-a", model="gpt-a")
    assert 90 <= left <= 96, left
    ratio = value(samples, "freeway_quota_used_ratio", provider="mock-a", model="gpt-a")
    assert 0.03 < ratio <= 0.05, ratio


def test_plugin_and_ledger_counters(traffic):
    o, samples = traffic
    assert value(samples, "freeway_plugin_calls_total", plugin="openai-compatible") > 0
    assert value(samples, "freeway_plugin_faults_total", plugin="openai-compatible") == 0
    assert value(samples, "freeway_ledger_queue_depth") >= 0
    assert value(samples, "freeway_ledger_dropped_total") == 0
    # Every request became a ledger row.
    poll(lambda: sample_sum(o.metrics(), "freeway_ledger_written_total") == 6, timeout=10,
         what="freeway_ledger_written_total == 6")
    assert o.ledger_count() == 6


def test_reloads_are_counted(ops):
    o, _, _ = ops
    with o.admin() as adm:
        r = adm.post("/admin/reload")
        assert r.status_code == 200, r.text
    samples = o.metrics()
    assert sample_sum(samples, "freeway_reloads_total", result="ok") == 1


def test_metrics_endpoint_speaks_prometheus_text(ops):
    o, _, _ = ops
    with o.admin() as adm:
        r = adm.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain"), r.headers
        assert "# TYPE freeway_ledger_queue_depth gauge" in r.text, r.text[:500]
        names = {x.name for x in scrape(r.text)}
        assert {"freeway_ledger_queue_depth", "freeway_ledger_dropped_total"} <= names, names
        # The old hand-written page keeps working.
        assert adm.get("/admin/metrics").status_code == 200
