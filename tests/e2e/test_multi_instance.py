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
- Redis dying mid-traffic fails no request: each instance says "redis unavailable" once,
  `/admin/state` says "down", and when Redis is back each says "redis is back" and "up";
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
from typing import Any, Optional

import httpx
import pytest

import mock_openai as mo
from harness import (REDIS_SERVER, Ops, RedisServer, base_config, chat_body, error_body,
                     keys_for, poll, priced, provider, sample_sum, utc_midnight_in)

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
        self.results: list[tuple[float, int, Any]] = []  # (sent at, instance, status | error)
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
                    self.results.append((sent, n, got))
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
            for sent, n, got in self.results:
                if sent >= t and got == 200:
                    out[n] += 1
            return out

    def wait_served(self, t: float, n: int, timeout: float = 10.0) -> None:
        poll(lambda: min(self.served_since(t).values()) >= n, timeout=timeout, interval=0.05,
             what=f"{n} answers from each instance")

    def failures(self) -> list[tuple[float, int, Any]]:
        with self._lock:
            return [x for x in self.results if x[2] != 200]


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


def test_without_redis_url_state_is_in_memory(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = config(None, {"mock-a": provider(a, ["gpt-a"])}, {"m": {"targets": ["mock-a/gpt-a"]}})
    o = Ops(gateways, cfg, keys_for(a))
    o.launch()
    assert served_by(post(o, chat_body("m"))) == "mock-a"
    state = admin_state(o)
    assert state["backend"] == "memory" and state["redis"] is None, state
    assert not lines_with(o, UNAVAILABLE)
