"""Restart-safe state: what the gateway learnt about its upstreams and its keys survives a
SIGTERM and a new `freeway serve` on the same config and store.

A user notices it as: the restarted gateway does not call an upstream that told it to wait
(Retry-After: 60) and says so in `x-freeway-route`; a target whose daily quota (rpd) is used up
stays refused; a key that reached its daily cap still gets 429. With `store.path = "memory"`
nothing survives, as documented.
"""

from __future__ import annotations

import re
from typing import Optional

import httpx
import pytest

import mock_openai as mo
from harness import (Ops, base_config, chat_body, error_body, keys_for, priced,
                     utc_midnight_in)


def config(a: mo.MockOpenAI, b: mo.MockOpenAI, *, a_info: Optional[dict] = None,
           store: str = "freeway.db", **sections) -> dict:
    return base_config(
        store={"path": store},
        providers={a.name: priced(a, "gpt-a", input_price=0.0, output_price=1000.0,
                                  **(a_info or {})),
                   b.name: priced(b, "gpt-b", input_price=0.0, output_price=1000.0)},
        models={"chain": {"targets": [f"{a.name}/gpt-a", f"{b.name}/gpt-b"]},
                "solo": {"targets": [f"{a.name}/gpt-a"]}},
        **sections)


@pytest.fixture
def ab(mocks):
    return mocks.add("mock-a"), mocks.add("mock-b")


def served_by(r: httpx.Response) -> str:
    assert r.status_code == 200, f"{r.status_code}: {r.text[:400]}"
    return r.headers.get("x-freeway-provider", "")


def route_of(r: httpx.Response) -> str:
    return r.headers.get("x-freeway-route", "")


def retry_60() -> mo.Behaviour:
    """A 429 whose only hint is `Retry-After: 60`."""
    return mo.error(429, mo.openai_error("slow down", "requests", code="rate_limit_exceeded"),
                    headers={"retry-after": "60"})


def test_cooldown_survives_a_restart(ab, gateways):
    a, b = ab
    o = Ops(gateways, config(a, b), keys_for(a, b))
    o.launch()
    a.script(retry_60())
    r = o.post(None, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    assert len(a.chat_requests) == 1

    o.restart()
    r = o.post(None, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    m = re.search(r"mock-a/gpt-a: skipped \(cooldown (\d+)s\)", route_of(r))
    assert m, f"the route should say mock-a is cooling down: {route_of(r)!r}"
    assert 40 <= int(m.group(1)) <= 60, route_of(r)
    assert r.headers.get("x-freeway-attempts") == "1"

    r = o.post(None, chat_body("solo"))
    assert r.status_code == 429, r.text
    assert 40 <= int(r.headers["retry-after"]) <= 60, r.headers
    assert len(a.chat_requests) == 1, "the restarted gateway must not call a cooling upstream"


def test_memory_store_forgets_on_restart(ab, gateways):
    a, b = ab
    o = Ops(gateways, config(a, b, store="memory"), keys_for(a, b))
    o.launch()
    a.script(retry_60())
    assert served_by(o.post(None, chat_body("chain"))) == "mock-b"
    o.restart()
    assert served_by(o.post(None, chat_body("chain"))) == "mock-a"
    assert len(a.chat_requests) == 2
    assert not list(o.path.parent.glob("*.db")), "store.path = memory writes no file"


def test_rpd_quota_survives_a_restart(ab, gateways):
    a, b = ab
    o = Ops(gateways, config(a, b, a_info={"rpd": 2}), keys_for(a, b))
    o.launch()
    assert served_by(o.post(None, chat_body("chain"))) == "mock-a"
    assert served_by(o.post(None, chat_body("chain"))) == "mock-a"

    o.restart()
    r = o.post(None, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    assert "mock-a/gpt-a: skipped (requests per day limit reached" in route_of(r), route_of(r)
    r = o.post(None, chat_body("solo"))
    assert r.status_code == 429, r.text
    assert "requests per day limit" in error_body(r)["message"]
    assert 3600 < int(r.headers["retry-after"]) <= 86400, r.headers
    assert len(a.chat_requests) == 2


def test_virtual_key_daily_cap_survives_a_restart(ab, gateways):
    """0.0175 USD a day; each answer costs 7 x 1000 / 1e6 = 0.007: two fit, a third does not."""
    a, b = ab
    o = Ops(gateways, config(a, b), keys_for(a, b))
    secret = o.create_key("capped", "--daily-usd", "0.0175")["key"]
    o.launch()
    body = chat_body("solo", max_tokens=7)
    assert o.post(secret, body).status_code == 200
    assert o.post(secret, body).status_code == 200
    r = o.post(secret, body)
    assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text

    o.restart()
    r = o.post(secret, body)
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "budget_exceeded"
    assert abs(int(r.headers["retry-after"]) - utc_midnight_in()) <= 5, r.headers
    assert len(a.chat_requests) == 2
    o.wait_key("capped", "spent_usd_today", 0.014)


def test_env_key_daily_request_cap_survives_a_restart(ab, gateways):
    a, b = ab
    cfg = config(a, b, auth={"keys": [{"name": "team", "key_env": "GW_TEAM",
                                       "daily_requests": 2}]})
    o = Ops(gateways, cfg, {**keys_for(a, b), "GW_TEAM": "fw-team-key-0001"})
    o.launch()
    assert o.post("fw-team-key-0001", chat_body("solo")).status_code == 200
    assert o.post("fw-team-key-0001", chat_body("solo")).status_code == 200
    assert o.post("fw-team-key-0001", chat_body("solo")).status_code == 429

    o.restart()
    r = o.post("fw-team-key-0001", chat_body("solo"))
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "daily_cap_reached"
    assert abs(int(r.headers["retry-after"]) - utc_midnight_in()) <= 5, r.headers
    assert len(a.chat_requests) == 2
