"""Several gateways, one Redis: `[state] redis_url` makes the free-tier buckets, cooldowns,
sticky sessions and gateway keys' usage shared state, so two `freeway serve` behind a load
balancer behave as one gateway.

What a user notices, asserted here through two real gateways on one real `redis-server`
(started by the test on a free port, empty, nothing saved):
- a catalog rpm of 10 lets exactly 10 requests a minute reach the upstream, whichever instance
  they came through; the others get 429 `rate_limited` with Retry-After;
- an upstream's `Retry-After: 60` seen by one instance keeps the other away from it too, and
  its `x-freeway-route` says so;
- a virtual key's hard budget holds across instances under concurrency;
- a conversation (x-freeway-session) stays on its target whichever instance it comes through;
- Redis dying mid-traffic (SIGKILL) or hanging (SIGSTOP) fails no request and costs no
  request more than the deadline: each instance says "redis unavailable" once, `/admin/state`
  says "down", and when Redis is back each says "redis is back" and "up";
- what an instance counted while Redis was away (key requests and spend, target requests,
  cooldowns) is folded in when it returns, once: caps, rpd and budgets still hold, and a
  request in flight across the return neither leaves a hold behind nor erases another's;
- a Redis that does not answer at start does not stop the gateway;
- `/admin/state` and `/metrics` (`freeway_state_redis_up`) show the backend, the password
  masked.

Each test has its own Redis and its own gateways (state must not leak between tests). The
gateways' store is `memory` except where a test needs the SQLite store (virtual keys): then
both point at the same file, as instances sharing a volume would. `redis_timeout_ms` is raised
from its 50 ms default to 500 ms so a loaded test machine does not turn into spurious
fallbacks; a test whose counts depend on Redis asserts no fallback happened, so a miscount
caused by one says so.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest

import mock_openai as mo
from harness import (REDIS_SERVER, Ops, RedisServer, base_config, chat_body,
                     clear_of_a_minute_boundary, db_rows, error_body, keys_for, poll, priced,
                     provider, sample_sum, utc_midnight_in)

pytestmark = pytest.mark.skipif(
    not REDIS_SERVER.is_file(),
    reason=f"{REDIS_SERVER} is missing: these tests need a real redis-server "
           "(apt-get install redis-server; CI installs it)")

TIMEOUT_MS = 500
UNAVAILABLE = "redis unavailable"
BACK = "redis is back"

OUT_PRICE = 250.0  # USD per million completion tokens (see test_keys.py)
PER_REQUEST = 0.25  # max_tokens = 1,000 answered with 1,000 completion tokens
BIG = 1000


# ---------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def redis(tmp_path: Path):
    r = RedisServer(tmp_path).start()
    yield r
    r.stop()


def state_section(url: str, prefix: str = "freeway") -> dict[str, Any]:
    return {"redis_url": url, "redis_timeout_ms": TIMEOUT_MS, "redis_prefix": prefix}


def config(url: Optional[str], providers: dict[str, Any], models: dict[str, Any], *,
           store: str = "memory", prefix: str = "freeway", **sections: Any) -> dict[str, Any]:
    cfg = base_config(admin={"listen": "127.0.0.1:0"}, store={"path": store},
                      providers=providers, models=models, **sections)
    if url is not None:
        cfg["state"] = state_section(url, prefix)
    return cfg


def pair(gateways, cfg: dict[str, Any], env: dict[str, str],
         cfg_b: Optional[dict[str, Any]] = None) -> tuple[Ops, Ops]:
    """Two gateways on the same config (each in its own folder), both started."""
    a = Ops(gateways, cfg, env)
    b = Ops(gateways, cfg_b or cfg, env)
    a.launch()
    b.launch()
    return a, b


def on_one_store(gateways, cfg: dict[str, Any], env: dict[str, str], root: Path
                 ) -> tuple[Ops, Ops]:
    """Two deployments (not started) whose configs point at the same SQLite file, so a key
    created through either exists on both."""
    shared = root / "shared-store"
    shared.mkdir(exist_ok=True)
    cfg = dict(cfg, store={"path": str(shared / "freeway.db")})
    return Ops(gateways, cfg, env), Ops(gateways, cfg, env)


def big_body(model: str = "m") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": BIG}


def big(mock: mo.MockOpenAI, n: int = 1) -> None:
    """Script `n` answers that each report 1,000 completion tokens (0.25 USD)."""
    mock.script(*[mo.text("a long answer", completion_tokens=BIG) for _ in range(n)])


def chain(a: mo.MockOpenAI, b: mo.MockOpenAI, a_info: Optional[dict] = None
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """mock-a then mock-b behind "chain" (priority-fallback), mock-a alone behind "solo"."""
    providers = {a.name: priced(a, "gpt-a", input_price=0.0, output_price=0.0, **(a_info or {})),
                 b.name: priced(b, "gpt-b", input_price=0.0, output_price=0.0)}
    models = {"chain": {"targets": [f"{a.name}/gpt-a", f"{b.name}/gpt-b"]},
              "solo": {"targets": [f"{a.name}/gpt-a"]}}
    return providers, models


def post(o: Ops, body: dict[str, Any], headers: Optional[dict[str, str]] = None,
         key: Optional[str] = None) -> httpx.Response:
    return o.post(key, body, headers)


def served_by(r: httpx.Response) -> str:
    assert r.status_code == 200, f"{r.status_code}: {r.text[:400]}"
    return r.headers.get("x-freeway-provider", "")


def route_of(r: httpx.Response) -> str:
    return r.headers.get("x-freeway-route", "")


def retry_60() -> mo.Behaviour:
    """A 429 whose only hint is `Retry-After: 60`."""
    return mo.error(429, mo.openai_error("slow down", "requests", code="rate_limit_exceeded"),
                    headers={"retry-after": "60"})


def admin_state(o: Ops) -> dict[str, Any]:
    with o.admin() as adm:
        r = adm.get("/admin/state")
    assert r.status_code == 200, f"GET /admin/state: {r.status_code} {r.text[:300]}"
    return r.json()


def wait_state(o: Ops, redis_is: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll GET /admin/state until `redis` says `redis_is`; return the last answer."""
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        last = admin_state(o)
        return last.get("redis") == redis_is

    try:
        poll(check, timeout=timeout, interval=0.1, what=f"/admin/state redis = {redis_is!r}")
    except AssertionError:
        raise AssertionError(f"/admin/state did not say redis = {redis_is!r} within "
                             f"{timeout}s; last answer: {last}") from None
    return last


def metric(o: Ops, name: str) -> Optional[float]:
    return sample_sum(o.metrics(), name)


def lines_with(o: Ops, text: str) -> list[str]:
    assert o.gw is not None
    return [ln for ln in o.gw.stderr.splitlines() if text in ln]


def redis_key_usage(redis: RedisServer) -> dict[str, Any]:
    """Every gateway-key hash in Redis (for failure messages)."""
    out = {}
    for k in redis.keys():
        if ":key:" in k:
            flat = redis.command("HGETALL", k)
            out[k] = dict(zip(flat[::2], flat[1::2]))
    return out


def assert_no_fallback(*instances: Ops) -> None:
    """Counts that depend on shared state are only meaningful if Redis was used throughout."""
    for o in instances:
        said = lines_with(o, UNAVAILABLE)
        assert not said, f"{o.gw.url} fell back to local state during the test: {said}"


# =============================================================================================
# Shared token buckets and cooldowns
# =============================================================================================


def test_rpm_is_shared_by_two_instances(redis, mocks, gateways):
    """rpm = 10 in the catalog; 50 requests alternating between the instances from threads:
    exactly 10 reach the upstream, the other 40 get 429 rate_limited with Retry-After.
    Without shared state each instance would let its own 10 through."""
    a = mocks.add("mock-a")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=0.0, rpm=10)}
    cfg = config(redis.url, providers, {"solo": {"targets": ["mock-a/gpt-a"]}})
    ga, gb = pair(gateways, cfg, keys_for(a))
    instances = (ga, gb)

    def one(i: int) -> tuple[int, httpx.Response]:
        return i % 2, post(instances[i % 2], chat_body("solo", f"q{i}"))

    t0 = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(one, range(50)))
    elapsed = time.monotonic() - t0
    # The bucket frees one request every 6 s: the count is exact only within the first 6 s.
    assert elapsed < 6, f"50 requests took {elapsed:.1f}s: the rpm bucket refilled meanwhile"

    statuses = [r.status_code for _, r in answers]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 40, statuses
    assert len(a.chat_requests) == 10, f"the upstream saw {len(a.chat_requests)} requests"
    for _, r in answers:
        if r.status_code == 429:
            err = error_body(r)
            assert err["code"] == "rate_limited", err
            assert "requests per minute limit" in err["message"], err
            assert 1 <= int(r.headers["retry-after"]) <= 60, r.headers
    served_through = {i for i, r in answers if r.status_code == 200}
    refused_through = {i for i, r in answers if r.status_code == 429}
    assert refused_through == {0, 1}, "both instances refuse once the shared bucket is empty"
    assert served_through, served_through
    assert_no_fallback(ga, gb)


def test_retry_after_seen_by_one_instance_cools_the_target_for_the_other(redis, mocks,
                                                                         gateways):
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b)
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))

    a.script(retry_60())
    r = post(ga, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    assert len(a.chat_requests) == 1

    # Instance B never heard from mock-a, yet does not call it.
    r = post(gb, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    m = re.search(r"mock-a/gpt-a: skipped \(cooldown (\d+)s\)", route_of(r))
    assert m, f"B's route should say mock-a is cooling down: {route_of(r)!r}"
    assert 50 <= int(m.group(1)) <= 60, route_of(r)
    assert r.headers.get("x-freeway-attempts") == "1", r.headers

    r = post(gb, chat_body("solo"))
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "rate_limited"
    assert 50 <= int(r.headers["retry-after"]) <= 60, r.headers
    assert len(a.chat_requests) == 1, "instance B must not call an upstream cooling down"
    assert_no_fallback(ga, gb)


def test_remaining_zero_reported_to_one_instance_holds_for_the_other(redis, mocks, gateways):
    """mock-a answers fine but says no request is left until its reset in 20 s: instance B
    does not make the doomed call either."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b)
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))
    a.ratelimit_headers = {**a.ratelimit_headers, "x-ratelimit-remaining-requests": "0",
                           "x-ratelimit-reset-requests": "20s"}
    assert served_by(post(ga, chat_body("chain"))) == "mock-a", "the answer itself is fine"
    r = post(gb, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    assert re.search(r"mock-a/gpt-a: skipped \(cooldown (1\d|20)s\)", route_of(r)), route_of(r)
    assert len(a.chat_requests) == 1
    assert_no_fallback(ga, gb)


def test_rpd_is_shared(redis, mocks, gateways):
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b, {"rpd": 3})
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))
    assert [served_by(post(o, chat_body("chain"))) for o in (ga, gb, ga)] == ["mock-a"] * 3
    r = post(gb, chat_body("chain"))
    assert served_by(r) == "mock-b", route_of(r)
    assert "mock-a/gpt-a: skipped (requests per day limit reached" in route_of(r), route_of(r)
    r = post(ga, chat_body("solo"))
    assert r.status_code == 429, r.text
    assert "requests per day limit" in error_body(r)["message"]
    assert 3600 < int(r.headers["retry-after"]) <= 86400, r.headers
    assert len(a.chat_requests) == 3
    assert_no_fallback(ga, gb)


def test_tpm_is_shared_and_corrected_by_reported_usage(redis, mocks, gateways):
    """tpm = 1000. A 2,000-character prompt with max_tokens 100 is estimated at 600 tokens;
    the answer through A reports 600 used. B's next 600-token request does not fit (~400 are
    left) and goes elsewhere; a small one still fits."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b, {"tpm": 1000})
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))
    a.script(mo.text("big", prompt_tokens=500, completion_tokens=100))
    assert served_by(post(ga, chat_body("chain", "x" * 2000, max_tokens=100))) == "mock-a"
    r = post(gb, chat_body("chain", "y" * 2000, max_tokens=100))
    assert served_by(r) == "mock-b", route_of(r)
    assert "mock-a/gpt-a: skipped (tokens per minute limit reached" in route_of(r), route_of(r)
    assert len(a.chat_requests) == 1
    r = post(gb, chat_body("chain", "hi", max_tokens=10))
    assert served_by(r) == "mock-a", route_of(r)
    assert_no_fallback(ga, gb)


def test_instances_with_different_prefixes_share_nothing(redis, mocks, gateways):
    """`redis_prefix` is the namespace: two gateways on one Redis with different prefixes
    keep their own state, and every key either wrote starts with its prefix, carries a hash
    tag and expires."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b, {"rpm": 100})
    ga, gb = pair(gateways, config(redis.url, providers, models, prefix="fw-one"),
                  keys_for(a, b),
                  cfg_b=config(redis.url, providers, models, prefix="fw-two"))

    a.script(retry_60())
    assert served_by(post(ga, chat_body("chain"))) == "mock-b"
    r = post(gb, chat_body("chain"))
    assert served_by(r) == "mock-a", f"another prefix is another gateway: {route_of(r)!r}"
    assert len(a.chat_requests) == 2
    # Sessions too, so their keys are among those checked below.
    assert served_by(post(ga, chat_body("chain", "sticky"), {"x-freeway-session": "s-1"}))
    assert served_by(post(gb, chat_body("chain", "sticky"), {"x-freeway-session": "s-2"}))

    keys = redis.keys()
    assert any(k.startswith("fw-one") for k in keys), keys
    assert any(k.startswith("fw-two") for k in keys), keys
    for k in keys:
        assert k.startswith(("fw-one", "fw-two", "{fw-one", "{fw-two")), \
            f"key {k!r} is outside both namespaces"
        assert re.search(r"\{[^{}]+\}", k), f"key {k!r} has no hash tag (Redis Cluster)"
        ttl = redis.command("TTL", k)
        assert isinstance(ttl, int) and ttl > 0, f"key {k!r} has TTL {ttl!r}: it never expires"
    assert_no_fallback(ga, gb)


# =============================================================================================
# Gateway keys: a hard budget across instances
# =============================================================================================


def test_hard_budget_holds_across_instances(redis, mocks, gateways, tmp_path):
    """A virtual key with a daily budget for 5.5 big requests (5 fit), 20 requests at once
    split over both instances: exactly 5 are served and reach the upstream, 15 get 429
    budget_exceeded. Both instances use the same SQLite store, so the key exists on both."""
    a = mocks.add("mock-a")
    shared = tmp_path / "shared"
    shared.mkdir()
    db = shared / "freeway.db"
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE)}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}}, store=str(db))
    ga = Ops(gateways, cfg, keys_for(a))
    gb = Ops(gateways, cfg, keys_for(a))
    secret = ga.create_key("burst", "--daily-usd", str(5.5 * PER_REQUEST))["key"]
    assert [k["name"] for k in gb.list_keys()] == ["burst"], "both configs read the same store"
    ga.launch()
    gb.launch()
    instances = (ga, gb)

    a.script(*[mo.text("a long answer", completion_tokens=BIG, delay=0.3) for _ in range(20)])
    barrier = threading.Barrier(20)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": BIG}

    def one(i: int) -> httpx.Response:
        with instances[i % 2].gw.http() as h:
            barrier.wait(10)
            return h.post("/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {secret}"})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 15, statuses
    for r in answers:
        if r.status_code == 429:
            assert error_body(r)["code"] == "budget_exceeded", r.text
            assert abs(int(r.headers["retry-after"]) - utc_midnight_in()) <= 5, r.headers
    assert len(a.chat_requests) == 5, f"the upstream saw {len(a.chat_requests)} requests"

    # Settled at the real cost (1.25 USD): nothing more fits, through either instance.
    for o in instances:
        r = post(o, body, key=secret)
        assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text
    assert len(a.chat_requests) == 5
    ga.wait_key("burst", "spent_usd_today", 5 * PER_REQUEST)
    assert_no_fallback(ga, gb)


def test_virtual_key_rpm_is_shared(redis, mocks, gateways, tmp_path):
    a = mocks.add("mock-a")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE)}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}})
    ga, gb = on_one_store(gateways, cfg, keys_for(a), tmp_path)
    secret = ga.create_key("slow", "--rpm", "2")["key"]
    ga.launch()
    gb.launch()
    body = chat_body("m", max_tokens=10)
    clear_of_a_minute_boundary()
    assert post(ga, body, key=secret).status_code == 200
    assert post(gb, body, key=secret).status_code == 200
    for o in (ga, gb):
        r = post(o, body, key=secret)
        assert r.status_code == 429, r.text
        assert error_body(r)["code"] == "key_rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60, r.headers
    assert len(a.chat_requests) == 2
    assert_no_fallback(ga, gb)


def test_env_key_daily_request_cap_is_shared(redis, mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(redis.url, {"mock-a": provider(a, ["gpt-a"])},
                 {"m": {"targets": ["mock-a/gpt-a"]}},
                 auth={"keys": [{"name": "team", "key_env": "GW_TEAM", "daily_requests": 3}]})
    ga, gb = pair(gateways, cfg, {**keys_for(a), "GW_TEAM": "fw-team-key-0001"})
    for o in (ga, gb, ga):
        assert post(o, chat_body("m"), key="fw-team-key-0001").status_code == 200
    for o in (gb, ga):
        r = post(o, chat_body("m"), key="fw-team-key-0001")
        assert r.status_code == 429, r.text
        assert error_body(r)["code"] == "daily_cap_reached"
        assert abs(int(r.headers["retry-after"]) - utc_midnight_in()) <= 5, r.headers
    assert len(a.chat_requests) == 3
    assert_no_fallback(ga, gb)


def test_streamed_answer_on_one_instance_counts_against_the_budget_on_the_other(
        redis, mocks, gateways, tmp_path):
    """0.3 USD a day: a big streamed answer through A (0.25) leaves no room for another big
    request through B."""
    a = mocks.add("mock-a")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE)}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}})
    ga, gb = on_one_store(gateways, cfg, keys_for(a), tmp_path)
    secret = ga.create_key("streamer", "--daily-usd", "0.3")["key"]
    ga.launch()
    gb.launch()
    big(a, 1)
    chunks = list(ga.client(secret).chat.completions.create(stream=True, **big_body()))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "a long answer"
    r = post(gb, big_body(), key=secret)
    assert r.status_code == 429, r.text
    assert error_body(r)["code"] == "budget_exceeded"
    assert len(a.chat_requests) == 1
    # A small request still fits through B: 0.25 + 10 x 250 / 1e6 <= 0.3.
    assert post(gb, chat_body("m", max_tokens=10), key=secret).status_code == 200
    ga.wait_key("streamer", "spent_usd_today", PER_REQUEST + 7 * OUT_PRICE / 1e6)
    assert_no_fallback(ga, gb)


def test_a_redis_that_forgot_does_not_reset_budgets(redis, mocks, gateways, tmp_path):
    """A lifetime budget for 2.5 big requests: 2 are served, then Redis loses everything
    (FLUSHALL, as a restart without persistence would). The key's spend is read back from the
    ledger before Redis counts it again, so the third big request is still refused; a restart
    of both gateways on the flushed Redis changes nothing either."""
    a = mocks.add("mock-a")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE)}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}})
    ga, gb = on_one_store(gateways, cfg, keys_for(a), tmp_path)
    secret = ga.create_key("thrifty", "--budget-usd", str(2.5 * PER_REQUEST))["key"]
    ga.launch()
    gb.launch()
    big(a, 4)
    assert post(ga, big_body(), key=secret).status_code == 200
    assert post(gb, big_body(), key=secret).status_code == 200
    ga.wait_key("thrifty", "spent_usd_total", 2 * PER_REQUEST)
    # The ledger rows are written off the request path: wait until both are in.
    db = tmp_path / "shared-store" / "freeway.db"  # see on_one_store
    poll(lambda: len(db_rows(db, "SELECT * FROM ledger WHERE key = 'thrifty'")) == 2,
         timeout=5, what="two ledger rows for the key")
    assert redis.command("FLUSHALL") == "OK"
    r = post(gb, big_body(), key=secret)
    assert r.status_code == 429 and error_body(r)["code"] == "budget_exceeded", r.text
    assert "seeded in redis from the ledger" in gb.gw.stderr
    fields = redis.command("HGETALL", next(k for k in redis.keys() if ":key:" in k))
    usage = dict(zip(fields[::2], fields[1::2]))
    assert abs(float(usage["usd_total"]) - 2 * PER_REQUEST) < 1e-9, usage
    # A small request still fits: 0.5 + 10 x 250 / 1e6 <= 0.625.
    assert post(ga, chat_body("m", max_tokens=10), key=secret).status_code == 200
    assert len(a.chat_requests) == 3
    assert_no_fallback(ga, gb)


# =============================================================================================
# Sticky sessions
# =============================================================================================


def test_session_started_on_one_instance_continues_on_the_other(redis, mocks, gateways):
    """priority-fallback puts mock-a first; a 503 on instance A lands the conversation on
    mock-b. Through instance B (which never saw mock-a fail) it stays on mock-b; when mock-b
    fails on B it moves to mock-a, and A follows the move."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b)
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))
    session = {"x-freeway-session": "conv-42"}

    a.script(mo.server_error(503))
    assert served_by(post(ga, chat_body("chain"), session)) == "mock-b"
    for _ in range(3):
        r = post(gb, chat_body("chain"), session)
        assert served_by(r) == "mock-b", f"B must continue A's conversation: {route_of(r)!r}"
    assert len(a.chat_requests) == 1, "B never tried mock-a for this conversation"
    # Without the session, B follows its configured order.
    assert served_by(post(gb, chat_body("chain"))) == "mock-a"

    b.script(mo.server_error(503))
    assert served_by(post(gb, chat_body("chain"), session)) == "mock-a"
    assert served_by(post(ga, chat_body("chain"), session)) == "mock-a"
    assert served_by(post(ga, chat_body("chain"), session)) == "mock-a"
    assert_no_fallback(ga, gb)


def test_user_conversation_session_is_shared(redis, mocks, gateways):
    """A session keyed by `user` plus how the conversation began, without a header."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b)
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))
    first_turn = chat_body("chain", content="Plan my trip to Porto", user="alice")
    a.script(mo.server_error(503))
    assert served_by(post(ga, first_turn)) == "mock-b"
    second_turn = dict(first_turn)
    second_turn["messages"] = first_turn["messages"] + [
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Two days only."},
    ]
    assert served_by(post(gb, second_turn)) == "mock-b"
    assert served_by(post(gb, chat_body("chain", content="Something else", user="alice"))) \
        == "mock-a"
    assert_no_fallback(ga, gb)


# =============================================================================================
# Redis down, Redis back
# =============================================================================================


class Traffic:
    """A thread sending requests alternately to each instance until stopped, recording every
    answer (or exception) with the time it was sent."""

    def __init__(self, instances: tuple[Ops, ...], body: dict[str, Any]) -> None:
        self.instances = instances
        self.body = body
        # (sent at, instance, 200 | what went wrong, seconds it took)
        self.results: list[tuple[float, int, Any, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        clients = [o.gw.http() for o in self.instances]
        try:
            i = 0
            while not self._stop.is_set():
                n = i % len(clients)
                sent = time.monotonic()
                try:
                    r = clients[n].post("/v1/chat/completions", json=self.body)
                    got: Any = r.status_code if r.status_code == 200 else \
                        f"{r.status_code}: {r.text[:200]}"
                except Exception as e:  # noqa: BLE001 -- a failed request is what we count
                    got = repr(e)
                with self._lock:
                    self.results.append((sent, n, got, time.monotonic() - sent))
                i += 1
                self._stop.wait(0.01)
        finally:
            for c in clients:
                c.close()

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(40)

    def served_since(self, t: float) -> dict[int, int]:
        """Successful answers per instance among requests sent after `t`."""
        with self._lock:
            out = {n: 0 for n in range(len(self.instances))}
            for sent, n, got, _ in self.results:
                if sent >= t and got == 200:
                    out[n] += 1
            return out

    def wait_served(self, t: float, n: int, timeout: float = 10.0) -> None:
        poll(lambda: min(self.served_since(t).values()) >= n, timeout=timeout, interval=0.05,
             what=f"{n} answers from each instance")

    def failures(self) -> list[tuple[float, int, Any, float]]:
        with self._lock:
            return [x for x in self.results if x[2] != 200]

    def slowest_between(self, t0: float, t1: float) -> float:
        """The longest a request sent between `t0` and `t1` took."""
        with self._lock:
            return max((took for sent, _, _, took in self.results if t0 <= sent <= t1),
                       default=0.0)


def test_redis_killed_mid_traffic_fails_no_request_and_comes_back(redis, mocks, gateways):
    a = mocks.add("mock-a")
    providers = {"mock-a": provider(a, ["gpt-a"])}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}})
    ga, gb = pair(gateways, cfg, keys_for(a))
    instances = (ga, gb)
    for o in instances:
        assert wait_state(o, "up")["backend"] == "redis"
        assert metric(o, "freeway_state_redis_up") == 1

    with Traffic(instances, chat_body("m")) as traffic:
        traffic.wait_served(0, 5)

        killed_at = time.monotonic()
        redis.kill()
        for o in instances:
            o.gw.wait_for_log(UNAVAILABLE, timeout=10)
            state = wait_state(o, "down")
            assert isinstance(state.get("fallbacks"), int) and state["fallbacks"] >= 1, state
            assert metric(o, "freeway_state_redis_up") == 0
            assert (metric(o, "freeway_state_fallbacks_total") or 0) >= 1
        # Requests keep flowing on local state, through both instances.
        traffic.wait_served(killed_at, 20)

        redis.start()
        back_at = time.monotonic()
        for o in instances:
            o.gw.wait_for_log(BACK, timeout=10)
            wait_state(o, "up", timeout=10)
            assert metric(o, "freeway_state_redis_up") == 1
        traffic.wait_served(back_at, 10)

    assert traffic.failures() == [], "no client request may fail while Redis dies and returns"
    total = len(traffic.results)
    for o in instances:
        said = lines_with(o, UNAVAILABLE)
        assert len(said) == 1, (f"{o.gw.url}: want one '{UNAVAILABLE}' line for the outage "
                                f"(not one per request; {total} requests), got {len(said)}: "
                                f"{said[:5]}")
        back = lines_with(o, BACK)
        assert len(back) == 1, f"{o.gw.url}: want one '{BACK}' line, got {back[:5]}"


def test_cooldown_learnt_while_redis_was_down_is_folded_in_when_it_returns(redis, mocks,
                                                                           gateways):
    """Instance A hears `Retry-After: 60` from mock-a while Redis is down (kept locally);
    when Redis is back, A folds it in, and instance B stays away from mock-a too."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b)
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b))

    redis.kill()
    assert served_by(post(ga, chat_body("chain"))) == "mock-a"  # noticed on this request
    wait_state(ga, "down")
    a.script(retry_60())
    assert served_by(post(ga, chat_body("chain"))) == "mock-b"
    assert len(a.chat_requests) == 2

    redis.start()
    ga.gw.wait_for_log(BACK, timeout=10)
    wait_state(ga, "up")
    wait_state(gb, "up")
    r = post(gb, chat_body("chain"))
    assert served_by(r) == "mock-b", f"the cooldown A learnt was not shared: {route_of(r)!r}"
    assert re.search(r"mock-a/gpt-a: skipped \(cooldown \d+s\)", route_of(r)), route_of(r)
    assert len(a.chat_requests) == 2


def outage(redis: RedisServer, instances: tuple[Ops, ...], during: Callable[[], None],
           probe_key: Optional[str] = None) -> None:
    """Kill Redis; make each instance notice (a request to model "free" with `probe_key`,
    which must be served) and wait until its /admin/state says down; run `during`; start
    Redis again on the same port and wait until every instance says it is back."""
    redis.kill()
    for o in instances:
        r = post(o, chat_body("free"), key=probe_key)
        assert r.status_code == 200, f"a request while Redis is down: {r.status_code} {r.text}"
        wait_state(o, "down")
    during()
    redis.start()
    for o in instances:
        o.gw.wait_for_log(BACK, timeout=10)
        wait_state(o, "up")


def test_key_usage_counted_during_an_outage_is_added_when_redis_returns(redis, mocks,
                                                                       gateways):
    """A daily cap of 3 requests. Redis down: A serves 2, B serves 1 (each under the cap on
    its own count). Redis back: each folds its count in, the shared count is 3, and both
    instances refuse."""
    a, f = mocks.add("mock-a"), mocks.add("mock-free")
    cfg = config(redis.url, {"mock-a": provider(a, ["gpt-a"]),
                             "mock-free": provider(f, ["gpt-f"])},
                 {"m": {"targets": ["mock-a/gpt-a"]}, "free": {"targets": ["mock-free/gpt-f"]}},
                 auth={"keys": [{"name": "team", "key_env": "GW_TEAM", "daily_requests": 3},
                                {"name": "probe", "key_env": "GW_PROBE"}]})
    env = {**keys_for(a, f), "GW_TEAM": "fw-team-key-0001", "GW_PROBE": "fw-probe-key-0001"}
    ga, gb = pair(gateways, cfg, env)
    team = "fw-team-key-0001"

    def during() -> None:
        for o in (ga, ga, gb):
            assert post(o, chat_body("m"), key=team).status_code == 200

    # The requests that make each instance notice the outage use another key.
    outage(redis, (ga, gb), during, probe_key="fw-probe-key-0001")

    for o in (gb, ga):
        r = post(o, chat_body("m"), key=team)
        assert r.status_code == 429, f"{o.gw.url} after the fold: {r.status_code} {r.text}"
        assert error_body(r)["code"] == "daily_cap_reached"
    assert len(a.chat_requests) == 3


def test_spend_during_an_outage_is_added_when_redis_returns(redis, mocks, gateways, tmp_path):
    """0.875 USD a day (3.5 big requests). Redis down: A serves 2 big requests, B one (0.75
    in all, each instance under the budget on its own). Redis back: the spend is folded in
    and another big request (worst case 0.25) is refused on both."""
    a, f = mocks.add("mock-a"), mocks.add("mock-free")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE),
                 "mock-free": provider(f, ["gpt-f"])}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]},
                                         "free": {"targets": ["mock-free/gpt-f"]}})
    ga, gb = on_one_store(gateways, cfg, keys_for(a, f), tmp_path)
    secret = ga.create_key("spender", "--daily-usd", "0.875")["key"]
    probe = ga.create_key("probe")["key"]
    ga.launch()
    gb.launch()

    def during() -> None:
        big(a, 3)
        for o in (ga, ga, gb):
            assert post(o, big_body(), key=secret).status_code == 200

    outage(redis, (ga, gb), during, probe_key=probe)

    for o in (gb, ga):
        r = post(o, big_body(), key=secret)
        assert r.status_code == 429, f"{o.gw.url} after the fold: {r.status_code} {r.text}"
        assert error_body(r)["code"] == "budget_exceeded"
    assert len(a.chat_requests) == 3


def test_target_requests_counted_during_an_outage_are_folded_in(redis, mocks, gateways):
    """rpd = 3 in the catalog. Redis crashes; A sends 2 requests to mock-a meanwhile (counted
    locally). Redis restarts (empty) and A folds its count in: one more request reaches
    mock-a, through either instance, and the next goes to mock-b."""
    a, b, f = mocks.add("mock-a"), mocks.add("mock-b"), mocks.add("mock-free")
    providers, models = chain(a, b, {"rpd": 3})
    providers["mock-free"] = provider(f, ["gpt-f"])
    models["free"] = {"targets": ["mock-free/gpt-f"]}
    ga, gb = pair(gateways, config(redis.url, providers, models), keys_for(a, b, f))

    def during() -> None:
        assert [served_by(post(ga, chat_body("chain"))) for _ in range(2)] == ["mock-a"] * 2

    outage(redis, (ga, gb), during)
    got = [served_by(post(o, chat_body("chain"))) for o in (gb, ga, gb)]
    assert got == ["mock-a", "mock-b", "mock-b"], (
        f"rpd 3, two requests counted during the outage: the next three went to {got}; "
        f"redis keys: {redis.keys()}")
    assert len(a.chat_requests) == 3


def test_hung_redis_costs_requests_no_more_than_the_deadline(redis, mocks, gateways):
    """Redis stops answering (SIGSTOP: connections open, nothing read). With a 100 ms
    deadline, requests keep being served without waiting on it; one "redis unavailable" per
    instance; when Redis answers again, "redis is back"."""
    a = mocks.add("mock-a")
    cfg = config(redis.url, {"mock-a": provider(a, ["gpt-a"])},
                 {"m": {"targets": ["mock-a/gpt-a"]}})
    cfg["state"]["redis_timeout_ms"] = 100
    ga, gb = pair(gateways, cfg, keys_for(a))
    instances = (ga, gb)
    with Traffic(instances, chat_body("m")) as traffic:
        traffic.wait_served(0, 5)
        paused_at = time.monotonic()
        redis.pause()
        try:
            for o in instances:
                o.gw.wait_for_log(UNAVAILABLE, timeout=10)
                wait_state(o, "down")
            traffic.wait_served(paused_at, 20)
            resumed_at = time.monotonic()
        finally:
            redis.resume()
        for o in instances:
            o.gw.wait_for_log(BACK, timeout=10)
            wait_state(o, "up")
        traffic.wait_served(time.monotonic(), 5)

    assert traffic.failures() == [], "no client request may fail while Redis hangs"
    slowest = traffic.slowest_between(paused_at, resumed_at)
    assert slowest < 1.0, f"a request took {slowest:.2f}s while Redis hung (deadline 100 ms)"
    for o in instances:
        assert len(lines_with(o, UNAVAILABLE)) == 1, lines_with(o, UNAVAILABLE)[:5]
        assert len(lines_with(o, BACK)) == 1, lines_with(o, BACK)[:5]


def test_a_request_during_a_hang_is_counted_once(redis, mocks, gateways):
    """A daily cap of 3 requests. Redis hangs (SIGSTOP) while the first request is admitted:
    the gateway stops waiting after its deadline and counts the request locally; Redis, when
    it wakes, still runs the command it had been sent. When it is back, the key has used 1
    of its 3 requests, not 2: exactly 3 are served in all."""
    a = mocks.add("mock-a")
    cfg = config(redis.url, {"mock-a": provider(a, ["gpt-a"])},
                 {"m": {"targets": ["mock-a/gpt-a"]}},
                 auth={"keys": [{"name": "team", "key_env": "GW_TEAM", "daily_requests": 3}]})
    cfg["state"]["redis_timeout_ms"] = 100
    team = "fw-team-key-0001"
    ga, gb = pair(gateways, cfg, {**keys_for(a), "GW_TEAM": team})

    redis.pause()
    try:
        assert post(ga, chat_body("m"), key=team).status_code == 200
        ga.gw.wait_for_log(UNAVAILABLE, timeout=5)
    finally:
        redis.resume()
    ga.gw.wait_for_log(BACK, timeout=10)
    wait_state(ga, "up")

    got = [post(o, chat_body("m"), key=team).status_code for o in (gb, ga, gb)]
    assert got == [200, 200, 429], (
        f"daily cap 3, one request served during the hang: the next three got {got} "
        f"(want [200, 200, 429]); redis says {redis_key_usage(redis)}")
    assert len(a.chat_requests) == 3


def test_a_target_request_during_a_hang_is_counted_once(redis, mocks, gateways):
    """rpd = 3 in the catalog. Redis hangs while the first request is routed: it is counted
    locally and folded in when Redis is back, once. Two more reach mock-a, the fourth goes
    to mock-b."""
    a, b = mocks.add("mock-a"), mocks.add("mock-b")
    providers, models = chain(a, b, {"rpd": 3})
    cfg = config(redis.url, providers, models)
    cfg["state"]["redis_timeout_ms"] = 100
    ga, gb = pair(gateways, cfg, keys_for(a, b))

    redis.pause()
    try:
        assert served_by(post(ga, chat_body("chain"))) == "mock-a"
        ga.gw.wait_for_log(UNAVAILABLE, timeout=5)
    finally:
        redis.resume()
    ga.gw.wait_for_log(BACK, timeout=10)
    wait_state(ga, "up")

    got = [served_by(post(o, chat_body("chain"))) for o in (gb, ga, gb)]
    assert got == ["mock-a", "mock-a", "mock-b"], (
        f"rpd 3, one request served during the hang: the next three went to {got}")
    assert len(a.chat_requests) == 3


def test_spend_of_a_request_settled_during_a_hang_is_counted_once(redis, mocks, gateways,
                                                                  tmp_path):
    """A budget for 5 big requests (1.375 USD). Redis hangs (SIGSTOP) while the first one is
    at the upstream, so it is settled after the deadline, locally. When Redis is back that
    request has cost 0.25, once: four more big requests are served, the fifth is refused."""
    a = mocks.add("mock-a")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE)}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}})
    cfg["state"] = dict(cfg["state"], redis_timeout_ms=100)
    ga, gb = on_one_store(gateways, cfg, keys_for(a), tmp_path)
    secret = ga.create_key("spender", "--daily-usd", str(5.5 * PER_REQUEST))["key"]
    ga.launch()
    gb.launch()

    a.script(mo.text("a long answer", completion_tokens=BIG, delay=1.0))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, ga, big_body(), None, secret)
        a.wait_for_requests(1, timeout=10)  # admitted and held in Redis, now at the upstream
        redis.pause()
        try:
            assert first.result(30).status_code == 200
            ga.gw.wait_for_log(UNAVAILABLE, timeout=5)
        finally:
            redis.resume()
    ga.gw.wait_for_log(BACK, timeout=10)
    wait_state(ga, "up")

    big(a, 4)
    got = [post(o, big_body(), key=secret).status_code for o in (gb, ga, gb, ga, gb)]
    assert got == [200, 200, 200, 200, 429], (
        f"budget for 5, one served across the hang: the next five got {got} "
        f"(want four 200 then 429); redis says {redis_key_usage(redis)}")
    assert len(a.chat_requests) == 5
    ga.wait_key("spender", "spent_usd_today", 5 * PER_REQUEST)


def test_hard_budget_holds_for_a_request_in_flight_while_redis_returns(redis, mocks, gateways,
                                                                       tmp_path):
    """A budget for 2 big requests (0.55 USD). X is admitted on A during an outage (its worst
    case held locally) and is still at the upstream when Redis returns. Y is then admitted
    on B (held in Redis). When X settles, Y's hold must survive: with X's 0.25 spent and Y's
    0.25 held, a third big request does not fit. The upstream sees 2 requests, never 3."""
    a, f = mocks.add("mock-a"), mocks.add("mock-free")
    providers = {"mock-a": priced(a, "gpt-a", input_price=0.0, output_price=OUT_PRICE),
                 "mock-free": provider(f, ["gpt-f"])}
    cfg = config(redis.url, providers, {"m": {"targets": ["mock-a/gpt-a"]},
                                         "free": {"targets": ["mock-free/gpt-f"]}})
    ga, gb = on_one_store(gateways, cfg, keys_for(a, f), tmp_path)
    secret = ga.create_key("pair", "--daily-usd", "0.55")["key"]
    probe = ga.create_key("probe")["key"]
    ga.launch()
    gb.launch()
    a.script(*[mo.text("a long answer", completion_tokens=BIG, delay=1.5) for _ in range(3)])

    with ThreadPoolExecutor(2) as pool:
        redis.kill()
        assert post(ga, chat_body("free"), key=probe).status_code == 200
        wait_state(ga, "down")
        x = pool.submit(post, ga, big_body(), None, secret)
        a.wait_for_requests(1, timeout=10)
        redis.start()
        ga.gw.wait_for_log(BACK, timeout=10)
        wait_state(ga, "up")
        y = pool.submit(post, gb, big_body(), None, secret)
        a.wait_for_requests(2, timeout=10)
        assert x.result(30).status_code == 200
        z = post(ga, big_body(), key=secret)
        assert y.result(30).status_code == 200
    assert z.status_code == 429, (
        f"a third big request was admitted on a budget for two ({z.status_code}); "
        f"redis says {redis_key_usage(redis)}")
    assert error_body(z)["code"] == "budget_exceeded"
    assert len(a.chat_requests) == 2


def test_gateway_starts_when_redis_does_not_answer(mocks, gateways, tmp_path):
    """A redis_url nothing listens on: the gateway still starts, serves on local state, says
    "redis unavailable" once, and switches to Redis when one starts on that port."""
    a = mocks.add("mock-a")
    late = RedisServer(tmp_path, port=mo.closed_port())
    providers = {"mock-a": provider(a, ["gpt-a"])}
    o = Ops(gateways, config(late.url, providers, {"m": {"targets": ["mock-a/gpt-a"]}}),
            keys_for(a))
    t0 = time.monotonic()
    o.launch()
    started_in = time.monotonic() - t0
    try:
        for i in range(5):
            assert served_by(post(o, chat_body("m", f"q{i}"))) == "mock-a"
        o.gw.wait_for_log(UNAVAILABLE, timeout=5)
        state = wait_state(o, "down")
        assert late.url.split("@")[-1].removeprefix("redis://") in state.get("redis_url", ""), \
            state
        assert metric(o, "freeway_state_redis_up") == 0
        assert len(lines_with(o, UNAVAILABLE)) == 1, lines_with(o, UNAVAILABLE)

        late.start()
        wait_state(o, "up", timeout=10)
        assert served_by(post(o, chat_body("m"))) == "mock-a"
        assert metric(o, "freeway_state_redis_up") == 1
    finally:
        late.stop()
    assert started_in < 30, f"starting took {started_in:.1f}s without Redis"


# =============================================================================================
# What operators see: /admin/state and /metrics
# =============================================================================================


def test_admin_state_and_metrics_while_redis_is_up(redis, mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(redis.url, {"mock-a": provider(a, ["gpt-a"])},
                 {"m": {"targets": ["mock-a/gpt-a"]}})
    o = Ops(gateways, cfg, keys_for(a))
    o.launch()
    assert served_by(post(o, chat_body("m"))) == "mock-a"
    state = wait_state(o, "up")
    assert state["backend"] == "redis", state
    assert f"127.0.0.1:{redis.port}" in state["redis_url"], state
    assert state["fallbacks"] == 0, state
    samples = o.metrics()
    assert sample_sum(samples, "freeway_state_redis_up") == 1, \
        [s for s in samples if s.name.startswith("freeway_state")]
    assert sample_sum(samples, "freeway_state_fallbacks_total") == 0, \
        [s for s in samples if s.name.startswith("freeway_state")]


def test_redis_password_is_used_and_never_shown(mocks, gateways, tmp_path):
    secret = "s3cret-redis-pw-7781"
    r = RedisServer(tmp_path, password=secret).start()
    try:
        a = mocks.add("mock-a")
        cfg = config(r.url, {"mock-a": provider(a, ["gpt-a"])},
                     {"m": {"targets": ["mock-a/gpt-a"]}})
        o = Ops(gateways, cfg, keys_for(a))
        o.launch()
        assert served_by(post(o, chat_body("m"), {"x-freeway-session": "pw"})) == "mock-a"
        state = wait_state(o, "up")
        assert state["backend"] == "redis", state
        assert f"127.0.0.1:{r.port}" in state["redis_url"], state
        assert r.keys(), "the gateway wrote to the password-protected Redis"
        shown = []
        with o.admin() as adm:
            for path in ("/admin/state", "/admin/config", "/metrics"):
                got = adm.get(path)
                assert got.status_code == 200, (path, got.status_code)
                shown.append((path, got.text))
        gw = o.gw
        assert gw.stop() == 0
        shown.append(("stderr", gw.stderr))
        shown.append(("stdout", "\n".join(gw.stdout_lines)))
        for where, text in shown:
            assert secret not in text, f"the Redis password appears in {where}"
    finally:
        r.stop()


def test_wrong_redis_password_falls_back_without_showing_it(mocks, gateways, tmp_path):
    wrong = "wrong-redis-pw-5512"
    r = RedisServer(tmp_path, password="the-right-pw-9034").start()
    try:
        a = mocks.add("mock-a")
        url = f"redis://:{wrong}@127.0.0.1:{r.port}"
        cfg = config(url, {"mock-a": provider(a, ["gpt-a"])},
                     {"m": {"targets": ["mock-a/gpt-a"]}})
        o = Ops(gateways, cfg, keys_for(a))
        o.launch()
        assert served_by(post(o, chat_body("m"))) == "mock-a"
        o.gw.wait_for_log(UNAVAILABLE, timeout=5)
        state = wait_state(o, "down")
        shown = [("/admin/state", str(state))]
        with o.admin() as adm:
            for path in ("/admin/config", "/metrics"):
                shown.append((path, adm.get(path).text))
        gw = o.gw
        assert gw.stop() == 0
        shown.append(("stderr", gw.stderr))
        for where, text in shown:
            assert wrong not in text, f"the Redis password appears in {where}"
        assert r.keys() == [], "nothing was written without the right password"
    finally:
        r.stop()


@pytest.mark.parametrize("state, field", [
    ({"redis_url": "http://127.0.0.1:6379"}, "state.redis_url"),
    ({"redis_url": "redis://127.0.0.1:notaport"}, "state.redis_url"),
    ({"redis_url": "redis://127.0.0.1:1", "redis_timeout_ms": 0}, "state.redis_timeout_ms"),
    ({"redis_url": "redis://127.0.0.1:1", "redis_prefix": "has space"}, "state.redis_prefix"),
    ({"redis_uri": "redis://127.0.0.1:1"}, "redis_uri"),
])
def test_bad_state_settings_are_refused_at_start(mocks, gateways, state, field):
    a = mocks.add("mock-a")
    cfg = config(None, {"mock-a": provider(a, ["gpt-a"])}, {"m": {"targets": ["mock-a/gpt-a"]}})
    cfg["state"] = state
    err = gateways.start_refused(cfg, env=keys_for(a))
    assert field in err, f"the refusal should name {field}: {err[-600:]}"


def test_without_redis_url_state_is_in_memory(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(None, {"mock-a": provider(a, ["gpt-a"])}, {"m": {"targets": ["mock-a/gpt-a"]}})
    o = Ops(gateways, cfg, keys_for(a))
    o.launch()
    assert served_by(post(o, chat_body("m"))) == "mock-a"
    state = admin_state(o)
    assert state["backend"] == "memory" and state["redis"] is None, state
    assert not lines_with(o, UNAVAILABLE)
