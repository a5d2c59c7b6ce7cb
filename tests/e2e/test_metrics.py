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


def test_metrics_match_the_traffic(ops):
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

    def v(name, **labels):
        got = sample_sum(samples, name, **labels)
        assert got is not None, f"no sample {name}{labels}"
        return got

    assert v("freeway_requests_total", model="m", provider="mock-a", status_class="2xx") == 4
    assert v("freeway_requests_total", model="m", provider="mock-a", status_class="4xx") == 1
    assert v("freeway_requests_total", model="cool", status_class="4xx") == 1

    # Histograms: every request to m observed once, the stream's first token too.
    n = v("freeway_request_duration_seconds_count", model="m", provider="mock-a")
    assert n == 5, n
    inf = [s for s in samples if s.name == "freeway_request_duration_seconds_bucket"
           and s.labels.get("model") == "m" and s.labels.get("le") in ("+Inf", "inf")]
    assert inf and inf[0].value == n, inf
    assert v("freeway_request_duration_seconds_sum", model="m", provider="mock-a") > 0
    assert v("freeway_ttft_seconds_count", model="m", provider="mock-a") >= 1

    # Tokens and cost of the four answers (11 + 7 tokens each; the 400 used none).
    assert v("freeway_tokens_total", model="m", provider="mock-a", kind="prompt") == 44
    assert v("freeway_tokens_total", model="m", provider="mock-a", kind="completion") == 28
    assert v("freeway_cost_usd_total", model="m", provider="mock-a") == \
        pytest.approx(4 * cost(11, 7, IN_PRICE, OUT_PRICE), rel=1e-9)

    # Per-target gauges.
    cooling = v("freeway_target_cooldown_seconds", provider="mock-b", model="gpt-b")
    assert 20 < cooling <= 30, cooling
    assert v("freeway_target_cooldown_seconds", provider="mock-a", model="gpt-a") == 0
    assert v("freeway_target_breaker_open", provider="mock-a", model="gpt-a") == 0
    v("freeway_target_remaining_requests", provider="mock-a", model="gpt-a")
    ratio = v("freeway_quota_used_ratio", provider="mock-a", model="gpt-a")
    assert 0 < ratio <= 0.05, ratio

    assert v("freeway_plugin_calls_total", plugin="openai-compatible") > 0
    assert v("freeway_ledger_queue_depth") >= 0
    assert v("freeway_ledger_dropped_total") == 0

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
