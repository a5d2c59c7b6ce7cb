"""Routing state and policies through the real binary: cooldowns (Retry-After, backoff, quota,
exhausted windows), the token-bucket pre-check of the catalog limits (rpm/tpm), the circuit
breaker, refused keys, and the bundled router plugins (least-busy, lowest-latency, cheapest,
classify, weighted, most-capacity).

What is asserted is what a user notices: the status, which provider answered
(`x-freeway-provider`), the `x-freeway-route` explanation, and how many requests each mock
received (a target that is skipped must not be contacted at all).

Most tests run their own gateway (cooldowns and buckets are gateway state). The circuit breaker
opens for a fixed 15 s, so its probe is checked at the end of the module: a module fixture opens
the breakers first, the other tests run meanwhile, and the last test only sleeps what is left.
"""

from __future__ import annotations

import re
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import httpx
import pytest

import mock_openai as mo
from harness import (PLUGINS_DIR, TEST_PLUGINS_DIR, Gateway, base_config, chat_body, error_body,
                     keys_for, provider, to_toml)

ROUTERS = ("weighted", "least-busy", "lowest-latency", "most-capacity", "cheapest", "classify")
ROUTER_FILES = {f"{r}.wasm": PLUGINS_DIR / f"{r}.wasm" for r in ROUTERS}

BREAKER_OPEN_S = 15.0  # routing.rs BREAKER_FIRST_OPEN


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def post(gw: Gateway, body: dict[str, Any], headers: Optional[dict[str, str]] = None
         ) -> httpx.Response:
    with gw.http() as h:
        return h.post("/v1/chat/completions", json=body, headers=headers or {})


def served_by(r: httpx.Response) -> Optional[str]:
    assert r.status_code == 200, f"{r.status_code}: {r.text[:400]}"
    return r.headers.get("x-freeway-provider")


def route_of(r: httpx.Response) -> str:
    return r.headers.get("x-freeway-route", "")


def count(m: mo.MockOpenAI) -> int:
    return len(m.chat_requests)


def start(gateways, mocks_: list[mo.MockOpenAI], providers: dict[str, Any],
          models: dict[str, Any], routers: bool = False) -> Gateway:
    cfg = base_config(providers=providers, models=models)
    return gateways.start(cfg, env=keys_for(*mocks_),
                          plugin_files=ROUTER_FILES if routers else None)


def limited(m: mo.MockOpenAI, model: str, **info: Any) -> dict[str, Any]:
    """A provider whose one model carries catalog facts (limits, prices, ...)."""
    p = provider(m, [])
    p["models"] = {model: dict(info)}
    return p


@pytest.fixture
def ab(mocks, gateways):
    """mock-a then mock-b behind "chain"; `a_info`/`b_info` give their models catalog facts;
    "solo" is mock-a alone."""
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")

    def go(a_info: Optional[dict[str, Any]] = None, b_info: Optional[dict[str, Any]] = None,
           **models: Any) -> Gateway:
        providers = {"mock-a": limited(a, "gpt-a", **(a_info or {})),
                     "mock-b": limited(b, "gpt-b", **(b_info or {}))}
        return start(gateways, [a, b], providers, {
            "chain": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]},
            "solo": {"targets": ["mock-a/gpt-a"]},
            **models})

    return a, b, go


def rate_limited_only(retry_after: Optional[str] = None, status: int = 429) -> mo.Behaviour:
    """A 429 (or other status) with nothing but an optional Retry-After: no x-ratelimit-*
    hints of its own (the mock's default headers still say plenty is left)."""
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return mo.error(status, mo.openai_error("slow down", "requests", code="rate_limit_exceeded"),
                    headers=headers)


# =============================================================================================
# 1-2. Cooldowns
# =============================================================================================


def test_retry_after_is_honoured_to_the_second(ab):
    a, b, go = ab
    gw = go()
    a.script(rate_limited_only("2"))
    t_sent = time.monotonic()
    r = post(gw, chat_body("chain"))
    t_back = time.monotonic()
    assert served_by(r) == "mock-b"
    assert "mock-a/gpt-a: 429 rate-limited (retry in 2s)" in route_of(r), route_of(r)
    assert count(a) == 1

    # Within the 2 s: mock-a is skipped without a call, and the route says for how long.
    seen = []
    while time.monotonic() < t_sent + 1.8:
        r = post(gw, chat_body("chain"))
        assert served_by(r) == "mock-b", route_of(r)
        m = re.search(r"mock-a/gpt-a: skipped \(cooldown (\d+)(m?s)\)", route_of(r))
        assert m, route_of(r)
        seen.append(int(m.group(1)) if m.group(2) == "s" else 1)
        assert r.headers["x-freeway-attempts"] == "1"
        time.sleep(0.15)
    assert count(a) == 1, "a cooling target must not be contacted"
    assert max(seen) <= 2 and seen[0] == 2, seen
    assert seen[-1] == 1, f"the cooldown shown should count down to 1s: {seen}"

    # Just after the 2 s (counted from the answer), mock-a is first again.
    time.sleep(max(0.0, t_back + 2.1 - time.monotonic()))
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-a", route_of(r)
    assert count(a) == 2


def test_every_target_cooling_gives_429_with_soonest_retry_after_and_reasons(ab):
    a, b, go = ab
    gw = go()
    a.script(rate_limited_only("7"))
    b.script(rate_limited_only("3"))
    r = post(gw, chat_body("chain"))
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "3", r.headers
    assert (count(a), count(b)) == (1, 1)

    # Both cool now: refused without contacting either, Retry-After = the soonest (B, ~3 s,
    # rounded up), and the message names each target and why.
    r = post(gw, chat_body("chain"))
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "3", r.headers
    err = error_body(r)
    assert err["code"] == "rate_limited", err
    msg = err["message"]
    assert "mock-a/gpt-a: skipped (cooldown 7s)" in msg, msg
    assert "mock-b/gpt-b: skipped (cooldown 3s)" in msg, msg
    assert "retry in 3s" in msg, msg
    assert (count(a), count(b)) == (1, 1), "no request may reach a cooling target"


def test_backoff_without_retry_after_is_exponential(ab):
    """Consecutive 429s without any hint: 1 s (+ up to 25 % jitter) after the first, 2 s after
    the second (no success in between)."""
    a, b, go = ab
    gw = go()
    a.script(rate_limited_only(None), rate_limited_only(None))

    def until_contacted(n: int) -> float:
        t = time.monotonic()
        while count(a) < n:
            assert time.monotonic() - t < 5, f"mock-a never came back (wanted call {n})"
            r = post(gw, chat_body("chain"))
            if count(a) < n:
                assert served_by(r) == "mock-b", route_of(r)
                assert "mock-a/gpt-a: skipped (cooldown" in route_of(r), route_of(r)
            time.sleep(0.02)
        return time.monotonic() - t

    until_contacted(1)
    first = until_contacted(2)
    second = until_contacted(3)
    assert served_by(r_last := post(gw, chat_body("chain"))) == "mock-a", route_of(r_last)
    assert 0.9 <= first <= 1.5, f"first backoff {first:.2f}s, want 1-1.25 s"
    assert 1.9 <= second <= 2.8, f"second backoff {second:.2f}s, want 2-2.5 s"


def test_quota_exhausted_without_hint_cools_until_utc_midnight(ab):
    a, b, go = ab
    gw = go()
    a.script(mo.error(402, mo.openai_error("You exceeded your current quota", "insufficient_quota",
                                           code="insufficient_quota")))
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-b"
    r = post(gw, chat_body("solo"))
    assert r.status_code == 429, r.text
    now = time.time()
    to_midnight = 86400 - now % 86400
    assert abs(int(r.headers["retry-after"]) - to_midnight) <= 3, (r.headers, to_midnight)
    assert count(a) == 1


def test_remaining_requests_zero_cools_until_the_reset(ab):
    a, b, go = ab
    gw = go()
    a.ratelimit_headers = {**a.ratelimit_headers, "x-ratelimit-remaining-requests": "0",
                           "x-ratelimit-reset-requests": "3s"}
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-a", "the answer itself is fine"
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-b"
    assert re.search(r"mock-a/gpt-a: skipped \(cooldown [23]s\)", route_of(r)), route_of(r)
    assert count(a) == 1, "nothing is left at mock-a until its reset: no doomed call"


# =============================================================================================
# 3-4. Token buckets from the catalog limits
# =============================================================================================


def test_rpm_bucket_skips_target_without_calling_it(ab):
    a, b, go = ab
    gw = go({"rpm": 2})
    assert [served_by(post(gw, chat_body("chain"))) for _ in range(2)] == ["mock-a", "mock-a"]
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-b"
    assert re.search(r"mock-a/gpt-a: skipped \(requests per minute limit reached, frees in "
                     r"(29|30)s\)", route_of(r)), route_of(r)
    assert r.headers["x-freeway-attempts"] == "1"
    assert count(a) == 2

    # mock-a alone: refused up front with a 429 that says when and why.
    r = post(gw, chat_body("solo"))
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] in ("29", "30"), r.headers
    err = error_body(r)
    assert "requests per minute limit" in err["message"], err
    assert count(a) == 2, "a doomed call must not be sent"


def test_tpm_estimate_over_remaining_skips_target(ab):
    a, b, go = ab
    gw = go({"tpm": 1000})
    # Estimate 500 + 100 = 600; the answer reports 600 used: ~400 left.
    a.script(mo.text("big", prompt_tokens=500, completion_tokens=100))
    r = post(gw, chat_body("chain", "x" * 2000, max_tokens=100))
    assert served_by(r) == "mock-a"
    # Another 600 does not fit in ~400: skipped without a call.
    r = post(gw, chat_body("chain", "y" * 2000, max_tokens=100))
    assert served_by(r) == "mock-b"
    assert re.search(r"mock-a/gpt-a: skipped \(tokens per minute limit reached, frees in "
                     r"1[0-3]s\)", route_of(r)), route_of(r)
    assert count(a) == 1
    # A small request still fits.
    r = post(gw, chat_body("chain", "hi", max_tokens=10))
    assert served_by(r) == "mock-a"


def test_tpm_estimate_is_corrected_by_reported_usage(ab):
    a, b, go = ab
    gw = go({"tpm": 1000})
    # Estimated 600, but the answer says 18 were used: ~980 are back.
    a.script(mo.text("small", prompt_tokens=11, completion_tokens=7))
    assert served_by(post(gw, chat_body("chain", "x" * 2000, max_tokens=100))) == "mock-a"
    r = post(gw, chat_body("chain", "y" * 2000, max_tokens=100))
    assert served_by(r) == "mock-a", route_of(r)
    # Without max_tokens the estimate counts 256 output tokens: 3000/4 + 256 = 1006 > 1000.
    r = post(gw, chat_body("chain", "z" * 3000))
    assert served_by(r) == "mock-b", route_of(r)
    assert "tokens per minute limit reached" in route_of(r), route_of(r)


def test_rpd_bucket_refuses_for_the_day(ab):
    a, b, go = ab
    gw = go({"rpd": 1})
    assert served_by(post(gw, chat_body("chain"))) == "mock-a"
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-b"
    assert re.search(r"mock-a/gpt-a: skipped \(requests per day limit reached, frees in "
                     r"8640\ds\)", route_of(r)), route_of(r)
    r = post(gw, chat_body("solo"))
    assert r.status_code == 429, r.text
    assert 86390 <= int(r.headers["retry-after"]) <= 86400, r.headers
    assert "requests per day limit" in error_body(r)["message"]
    assert count(a) == 1


def test_concurrent_requests_never_exceed_rpm(ab):
    a, b, go = ab
    gw = go({"rpm": 5})
    a.script(*[mo.text("slow a", delay=0.2) for _ in range(20)])
    barrier = threading.Barrier(20)

    def one(i: int) -> httpx.Response:
        with gw.http() as h:
            barrier.wait(5)
            return h.post("/v1/chat/completions", json=chat_body("chain", f"q{i}"))

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    providers = [served_by(r) for r in answers]
    assert count(a) <= 5, f"mock-a got {count(a)} requests with rpm = 5"
    assert count(a) == 5 and providers.count("mock-a") == 5, providers
    assert providers.count("mock-b") == 15
    assert count(b) == 15


# =============================================================================================
# 5. Circuit breaker
# =============================================================================================


@pytest.fixture(scope="module")
def breaker(module_mocks, module_gateways):
    """mock-a (probe succeeds) and mock-c (probe fails) each fail 5 times in a row with 503
    while mock-b answers; both breakers open at module start, so the probe test at the end of
    the module waits only what is left of the 15 s."""
    a = module_mocks.add("brk-a")
    c = module_mocks.add("brk-c")
    b = module_mocks.add("brk-b")
    cfg = base_config(
        providers={"brk-a": provider(a, ["gpt-a"]), "brk-b": provider(b, ["gpt-b"]),
                   "brk-c": provider(c, ["gpt-c"])},
        models={"ab": {"targets": ["brk-a/gpt-a", "brk-b/gpt-b"]},
                "cb": {"targets": ["brk-c/gpt-c", "brk-b/gpt-b"]}})
    gw = module_gateways.start(cfg, env=keys_for(a, b, c))
    routes = []
    for name, m in (("ab", a), ("cb", c)):
        m.script(*[mo.server_error(503) for _ in range(5)])
        for _ in range(5):
            r = post(gw, chat_body(name))
            assert served_by(r) == "brk-b", route_of(r)
            routes.append(route_of(r))
    opened = time.monotonic()
    return {"gw": gw, "a": a, "b": b, "c": c, "opened": opened, "routes": routes}


def test_breaker_opens_after_five_unavailable_and_skips_target(breaker):
    gw, a, c = breaker["gw"], breaker["a"], breaker["c"]
    assert count(a) == 5 and count(c) == 5
    assert all("503 unavailable" in r for r in breaker["routes"]), breaker["routes"]
    r = post(gw, chat_body("ab"))
    assert served_by(r) == "brk-b"
    assert count(a) == 5, "an open breaker must keep requests away from the target"
    assert r.headers["x-freeway-attempts"] == "1"
    assert re.search(r"brk-a/gpt-a: skipped \(circuit open after repeated failures, next probe "
                     r"in 1[0-5]s\)", route_of(r)), route_of(r)


def test_breaker_needs_five_consecutive_failures(ab):
    a, b, go = ab
    gw = go()
    a.script(*[mo.server_error(503) for _ in range(4)], mo.text("fine"),
             *[mo.server_error(503) for _ in range(4)])
    for _ in range(9):
        post(gw, chat_body("chain"))
    assert count(a) == 9
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-a", "a success in between resets the count: still closed"


# =============================================================================================
# 6. A refused key
# =============================================================================================


def test_refused_key_skips_target_until_config_changes(ab):
    a, b, go = ab
    gw = go()
    a.script(mo.error(401, mo.openai_error("Incorrect API key provided", "invalid_request_error",
                                           code="invalid_api_key")))
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-b"
    assert "mock-a/gpt-a: 401" in route_of(r), route_of(r)
    for _ in range(3):
        r = post(gw, chat_body("chain"))
        assert served_by(r) == "mock-b"
    assert count(a) == 1, "a refused key must not be tried again"
    refused_route = route_of(r)

    # A comment does not change the effective config: still out.
    mark = gw.log_mark()
    gw.config_path.write_text(gw.config_path.read_text() + "\n# touched\n")
    gw.wait_for_log("reloaded", since=mark, timeout=5)
    r = post(gw, chat_body("chain"))
    assert served_by(r) == "mock-b"
    assert count(a) == 1

    # A real change (the model's router settings) gives mock-a another chance.
    cfg = tomllib.loads(gw.config_path.read_text())
    cfg["models"]["chain"]["settings"] = {"include_cooling": False}
    mark = gw.log_mark()
    gw.config_path.write_text(to_toml(cfg))
    gw.wait_for_log("reloaded", since=mark, timeout=5)
    r = post(gw, chat_body("chain"))
    assert count(a) == 2, f"mock-a not retried after the config changed; route: {route_of(r)}"
    assert served_by(r) == "mock-a"
    # Checked last so the behaviour above is reported first.
    assert "mock-a/gpt-a: skipped (the provider refused its API key; fix the key and reload " \
           "the config)" in refused_route, refused_route


def test_host_enforces_refused_key_and_open_breaker_even_if_router_returns_them(mocks, gateways):
    """The testing router `hostile-router` ("reverse") returns every candidate, healthy or
    not: the host's own admission check must still keep a refused key and an open breaker
    away from the network, and say why; a real config change re-admits the refused key."""
    a = mocks.add("mock-a")
    c = mocks.add("mock-c")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": provider(b, ["gpt-b"]),
                   "mock-c": provider(c, ["gpt-c"])},
        # Reversed by the router: mock-a (or mock-c) first, then mock-b.
        models={"key": {"targets": ["mock-b/gpt-b", "mock-a/gpt-a"], "router": "hostile-router",
                        "settings": {"behaviour": "reverse"}},
                "brk": {"targets": ["mock-b/gpt-b", "mock-c/gpt-c"], "router": "hostile-router",
                        "settings": {"behaviour": "reverse"}}})
    hostile = {"hostile-router.wasm": TEST_PLUGINS_DIR / "hostile-router.wasm"}
    gw = gateways.start(cfg, env=keys_for(a, b, c), plugin_files=hostile)
    a.script(mo.error(401, mo.openai_error("Incorrect API key provided", "invalid_request_error",
                                           code="invalid_api_key")))
    assert served_by(post(gw, chat_body("key"))) == "mock-b"
    r = post(gw, chat_body("key"))
    assert served_by(r) == "mock-b"
    assert count(a) == 1
    assert "mock-a/gpt-a: skipped (the provider refused its API key; fix the key and reload " \
           "the config)" in route_of(r), route_of(r)

    c.script(*[mo.server_error(503) for _ in range(5)])
    for _ in range(5):
        assert served_by(post(gw, chat_body("brk"))) == "mock-b"
    r = post(gw, chat_body("brk"))
    assert served_by(r) == "mock-b"
    assert count(c) == 5
    assert re.search(r"mock-c/gpt-c: skipped \(circuit open after repeated failures, next probe "
                     r"in 1[45]s\)", route_of(r)), route_of(r)

    cfg = tomllib.loads(gw.config_path.read_text())
    cfg["models"]["other"] = {"targets": ["mock-b/gpt-b"]}
    mark = gw.log_mark()
    gw.config_path.write_text(to_toml(cfg))
    gw.wait_for_log("reloaded", since=mark, timeout=5)
    r = post(gw, chat_body("key"))
    assert served_by(r) == "mock-a", route_of(r)
    assert count(a) == 2


# =============================================================================================
# 7. Router plugins on crafted state
# =============================================================================================


def test_least_busy_avoids_target_with_request_in_flight(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    gw = start(gateways, [a, b], {"mock-a": provider(a, ["gpt-a"]),
                                  "mock-b": provider(b, ["gpt-b"])},
               {"lb": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"], "router": "least-busy"}},
               routers=True)
    # Idle: ties keep the configured order.
    assert served_by(post(gw, chat_body("lb"))) == "mock-a"

    a.script(mo.text("one two three four", event_gap=0.3))
    got: dict[str, Any] = {}

    def slow_stream() -> None:
        with gw.http() as h:
            with h.stream("POST", "/v1/chat/completions",
                          json=chat_body("lb", stream=True)) as r:
                got["provider"] = r.headers.get("x-freeway-provider")
                got["headers_at"] = time.monotonic()
                got["body"] = r.read()
                got["done_at"] = time.monotonic()

    t = threading.Thread(target=slow_stream)
    t.start()
    try:
        deadline = time.monotonic() + 5
        while "headers_at" not in got:
            assert time.monotonic() < deadline, "the stream never started"
            time.sleep(0.02)
        assert got["provider"] == "mock-a"
        r = post(gw, chat_body("lb"))
        assert "done_at" not in got, "the stream ended too early for the check"
        assert served_by(r) == "mock-b", route_of(r)
    finally:
        t.join(10)
    assert served_by(post(gw, chat_body("lb"))) == "mock-a", "idle again: configured order"


def test_lowest_latency_prefers_the_faster_target(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    gw = start(gateways, [a, b], {"mock-a": provider(a, ["gpt-a"]),
                                  "mock-b": provider(b, ["gpt-b"])},
               {"ll": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"], "router": "lowest-latency",
                       "settings": {"explore": True}}},
               routers=True)
    a.script(*[mo.text("slow", delay=0.3) for _ in range(10)])
    # Unmeasured: configured order, then (explore) the unmeasured one.
    first = [served_by(post(gw, chat_body("ll"))) for _ in range(2)]
    assert first == ["mock-a", "mock-b"], first
    # Both measured: the faster one, though configured second.
    later = [served_by(post(gw, chat_body("ll"))) for _ in range(4)]
    assert later == ["mock-b"] * 4, later
    assert count(a) == 1


@pytest.fixture
def cheap(mocks, gateways):
    """mock-a paid (configured first), mock-b free."""
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    prices = {"paid": {"input_price": 1.0, "output_price": 2.0},
              "free": {"input_price": 0, "output_price": 0}}
    targets = ["mock-a/gpt-a", "mock-b/gpt-b"]
    gw = start(gateways, [a, b],
               {"mock-a": limited(a, "gpt-a", **prices["paid"]),
                "mock-b": limited(b, "gpt-b", **prices["free"])},
               {"cheap": {"targets": targets, "router": "cheapest"},
                "free-only": {"targets": targets, "router": "cheapest",
                              "settings": {"allow_paid": False}},
                "capped": {"targets": targets, "router": "cheapest",
                           "settings": {"max_price": 0.0001}}},
               routers=True)
    return gw, a, b


def test_cheapest_prefers_free_and_escalates_to_paid(cheap):
    gw, a, b = cheap
    r = post(gw, chat_body("cheap"))
    assert served_by(r) == "mock-b", route_of(r)
    assert count(a) == 0
    b.script(mo.server_error(503))
    r = post(gw, chat_body("cheap"))
    assert served_by(r) == "mock-a", route_of(r)
    assert route_of(r).index("mock-b/gpt-b: 503") < route_of(r).index("mock-a/gpt-a: ok")


def test_cheapest_honours_client_max_price(cheap):
    gw, a, b = cheap
    # Estimate on mock-a: (2 prompt tokens x $1 + 256 x $2) / 1e6 = ~$0.000514.
    b.script(mo.server_error(503))
    r = post(gw, chat_body("cheap", "hi", metadata={"max_price": "0.0001"}))
    assert r.status_code == 503, r.text
    assert count(a) == 0, "a paid target over the client's budget must never be contacted"
    assert "mock-a/gpt-a: skipped (not chosen by router 'cheapest')" in error_body(r)["message"]
    b.script(mo.server_error(503))
    r = post(gw, chat_body("cheap", "hi", metadata={"max_price": "0.001"}))
    assert served_by(r) == "mock-a", "within budget: escalate to the paid target"


def test_cheapest_client_cannot_raise_operator_cap_and_bad_budget_means_free(cheap):
    gw, a, b = cheap
    # "capped" has an operator max_price of $0.0001, under mock-a's ~$0.000514 estimate.
    b.script(mo.server_error(503))
    r = post(gw, chat_body("capped", "hi", metadata={"max_price": "1"}))
    assert r.status_code == 503, r.text
    assert count(a) == 0, "a client budget must not raise the operator's cap"
    # A budget that is not a number is read as 0: free targets only.
    b.script(mo.server_error(503))
    r = post(gw, chat_body("cheap", "hi", metadata={"max_price": "lots"}))
    assert r.status_code == 503, r.text
    assert count(a) == 0


def test_cheapest_allow_paid_false_never_pays(cheap):
    gw, a, b = cheap
    b.script(mo.server_error(503))
    r = post(gw, chat_body("free-only"))
    assert r.status_code == 503, r.text
    assert count(a) == 0


def test_classify_routes_by_request_features(mocks, gateways):
    names = ["plain", "vision", "tools", "code", "long"]
    ms = {n: mocks.add(n) for n in names}
    providers = {n: provider(ms[n], [f"m-{n}"]) for n in names}
    providers["vision"]["tags"] = ["vision"]
    providers["long"]["tags"] = ["long-context"]
    rules = [
        {"when": {"has_images": True}, "prefer": ["tag:vision"], "only": True},
        {"when": {"has_tools": True}, "prefer": ["tools"]},
        {"when": {"tags_any": ["code"]}, "prefer": ["code/m-code"]},
        {"when": {"min_prompt_tokens": 500}, "prefer": ["tag:long-context"]},
    ]
    gw = start(gateways, list(ms.values()), providers,
               {"auto": {"targets": [f"{n}/m-{n}" for n in names], "router": "classify",
                         "settings": {"rules": rules}},
                "strict": {"targets": [f"{n}/m-{n}" for n in names], "router": "classify",
                           "settings": {"rules": rules[:1], "default": "none"}}},
               routers=True)
    image = [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    cases = [
        ("plain", chat_body("auto"), None),
        ("vision", {"model": "auto", "messages": image}, None),
        ("tools", chat_body("auto", tools=tools), None),
        ("code", chat_body("auto"), {"x-freeway-tags": "code"}),
        ("long", chat_body("auto", "word " * 500), None),
    ]
    for want, body, headers in cases:
        r = post(gw, body, headers)
        assert served_by(r) == want, (want, route_of(r))
    assert [count(ms[n]) for n in names] == [1, 1, 1, 1, 1]
    # `only`: an image request never goes elsewhere, even when the vision target fails.
    ms["vision"].script(mo.server_error(503))
    r = post(gw, {"model": "auto", "messages": image})
    assert r.status_code == 503, r.text
    assert [count(ms[n]) for n in names] == [1, 2, 1, 1, 1]
    # `default = "none"`: a request no rule matches goes nowhere.
    r = post(gw, chat_body("strict"))
    assert r.status_code == 503, r.text
    assert "not chosen by router 'classify'" in error_body(r)["message"]
    assert served_by(post(gw, {"model": "strict", "messages": image})) == "vision"
    assert [count(ms[n]) for n in names] == [1, 3, 1, 1, 1]


def test_weighted_zero_weight_is_only_a_backup(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    gw = start(gateways, [a, b], {"mock-a": provider(a, ["gpt-a"]),
                                  "mock-b": provider(b, ["gpt-b"])},
               {"w": {"targets": ["mock-b/gpt-b", "mock-a/gpt-a"], "router": "weighted",
                      "settings": {"weights": {"mock-a/gpt-a": 1, "mock-b": 0}}}},
               routers=True)
    got = [served_by(post(gw, chat_body("w", f"q{i}"))) for i in range(12)]
    assert got == ["mock-a"] * 12, got
    assert count(b) == 0
    a.script(mo.server_error(503))
    r = post(gw, chat_body("w"))
    assert served_by(r) == "mock-b", route_of(r)
    assert route_of(r).index("mock-a/gpt-a: 503") < route_of(r).index("mock-b/gpt-b: ok")


def test_most_capacity_prefers_more_remaining_requests(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    # Only the catalog limits count: the mocks' own x-ratelimit-* headers would add a
    # remaining-tokens figure to whichever was contacted (and decide the ties).
    a.ratelimit_headers, b.ratelimit_headers = {}, {}
    gw = start(gateways, [a, b], {"mock-a": limited(a, "gpt-a", rpm=2),
                                  "mock-b": limited(b, "gpt-b", rpm=3)},
               {"mc": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"], "router": "most-capacity"}},
               routers=True)
    # Remaining (A, B): (2, 3) -> B; (2, 2) tie -> A; (1, 2) -> B; (1, 1) -> A.
    got = [served_by(post(gw, chat_body("mc"))) for _ in range(4)]
    assert got == ["mock-b", "mock-a", "mock-b", "mock-a"], got


def test_most_capacity_one_left_loses_to_ten(mocks, gateways):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    a.ratelimit_headers, b.ratelimit_headers = {}, {}
    gw = start(gateways, [a, b], {"mock-a": limited(a, "gpt-a", rpm=2),
                                  "mock-b": limited(b, "gpt-b", rpm=10)},
               {"mc": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"], "router": "most-capacity"}},
               routers=True)
    assert served_by(post(gw, chat_body("mock-a/gpt-a"))) == "mock-a"  # direct: A has 1 left
    r = post(gw, chat_body("mc"))
    assert served_by(r) == "mock-b", route_of(r)
    assert count(a) == 1


# =============================================================================================
# 5 (end of module). The breaker's single probe, once its 15 s are over
# =============================================================================================


def test_breaker_lets_exactly_one_probe_through_after_open_period(breaker):
    gw, a, c = breaker["gw"], breaker["a"], breaker["c"]
    time.sleep(max(0.0, breaker["opened"] + BREAKER_OPEN_S + 0.3 - time.monotonic()))
    n_a, n_c = count(a), count(c)
    assert (n_a, n_c) == (5, 5), "nothing reached the open targets meanwhile"

    # Three requests at once: one probe reaches brk-a (slow, succeeds); the others skip it.
    a.script(mo.text("probe ok", delay=0.8))
    with ThreadPoolExecutor(3) as pool:
        futures = []
        for i in range(3):
            futures.append(pool.submit(post, gw, chat_body("ab", f"p{i}")))
            time.sleep(0.1)
        answers = [f.result() for f in futures]
    providers = sorted(served_by(r) for r in answers)
    assert count(a) == n_a + 1, f"exactly one probe; brk-a got {count(a) - n_a}"
    assert providers == ["brk-a", "brk-b", "brk-b"], providers
    skipped = [route_of(r) for r in answers if served_by(r) == "brk-b"]
    assert all(re.search(r"brk-a/gpt-a: skipped \(circuit open", s) for s in skipped), skipped
    # The probe succeeded: closed again.
    assert served_by(post(gw, chat_body("ab"))) == "brk-a"

    # brk-c's probe fails: re-opened for twice as long (30 s), no further call.
    c.script(mo.server_error(503))
    r = post(gw, chat_body("cb"))
    assert served_by(r) == "brk-b"
    assert count(c) == n_c + 1
    r = post(gw, chat_body("cb"))
    assert served_by(r) == "brk-b"
    assert count(c) == n_c + 1, "a failed probe re-opens the breaker"
    assert re.search(r"brk-c/gpt-c: skipped \(circuit open after repeated failures, next probe "
                     r"in (29|30)s\)", route_of(r)), route_of(r)
