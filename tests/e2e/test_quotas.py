"""Quota awareness: gateway keys with daily caps (429 + Retry-After when reached), the warning
when a provider crosses 80% of its daily free allowance, and the metrics that show it."""

from __future__ import annotations

import httpx
import openai
import pytest

from harness import base_config, chat_body, error_body, keys_for, provider


@pytest.fixture
def keyed(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = base_config(
        auth={"keys": [
            {"name": "team-a", "key_env": "GW_KEY_A", "daily_requests": 2},
            {"name": "team-b", "key_env": "GW_KEY_B", "daily_tokens": 20},
        ]},
        admin={"listen": "127.0.0.1:0"},
        providers={"mock-a": provider(a, {"gpt-a": {"rpd": 4}})},
        models={"m": {"targets": ["mock-a/gpt-a"]}},
    )
    env = {**keys_for(a), "GW_KEY_A": "fw-key-aaaa", "GW_KEY_B": "fw-key-bbbb"}
    gw = gateways.start(cfg, env=env)
    return gw, a


def post(gw, key=None):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=gw.base_url.removesuffix("/v1"), timeout=10) as h:
        return h.post("/v1/chat/completions", json=chat_body("m"), headers=headers)


def test_gateway_keys_are_required(keyed):
    gw, a = keyed
    for key in (None, "wrong"):
        r = post(gw, key)
        assert r.status_code == 401, r.text
        assert error_body(r)["code"] == "invalid_api_key"
    assert a.chat_requests == []
    # The SDK with a gateway key works.
    client = openai.OpenAI(base_url=gw.base_url, api_key="fw-key-aaaa", max_retries=0)
    reply = client.chat.completions.create(**chat_body("m"))
    assert reply.choices[0].message.content == "hello from mock-a"


def test_daily_request_cap_answers_429_with_retry_after(keyed):
    gw, a = keyed
    assert post(gw, "fw-key-aaaa").status_code == 200
    assert post(gw, "fw-key-aaaa").status_code == 200
    r = post(gw, "fw-key-aaaa")
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "daily_cap_reached"
    assert 0 < int(r.headers["retry-after"]) <= 86_400
    assert len(a.chat_requests) == 2
    # Another key is not affected.
    assert post(gw, "fw-key-bbbb").status_code == 200


def test_daily_token_cap_counts_reported_usage(keyed):
    gw, a = keyed
    # The mock reports 11 + 7 = 18 tokens per answer: the second request still fits (18 < 20),
    # the third does not (36 >= 20).
    assert post(gw, "fw-key-bbbb").status_code == 200
    assert post(gw, "fw-key-bbbb").status_code == 200
    r = post(gw, "fw-key-bbbb")
    assert r.status_code == 429 and "20 tokens" in error_body(r)["message"]


def test_quota_warning_and_metric_at_80_percent(keyed):
    gw, a = keyed
    # rpd = 4: the fourth request takes the day's usage past 80%.
    for key in ("fw-key-aaaa", "fw-key-aaaa", "fw-key-bbbb", "fw-key-bbbb"):
        assert post(gw, key).status_code in (200, 429)
    gw.wait_for_log("of its daily free allowance", timeout=5)
    with gw.admin() as admin:
        text = admin.get("/admin/metrics").text
    line = next(l for l in text.splitlines() if l.startswith("freeway_quota_used_ratio{"))
    assert 'provider="mock-a"' in line and float(line.split()[-1]) >= 0.79
