"""Waiting for capacity (`models.<m>.queue_wait_ms`, `queue_max`): when every target of a model
is rate-limited or cooling down and the gateway knows when one frees up — a bucket refill at the
catalog's rate, the end of an upstream's Retry-After — the request waits for that moment in the
model's line instead of failing: the highest priority first (a key's `priority`, lowered by
`x-freeway-priority`), keys taking turns within a priority, first come first served within a
key; a key's `queue_wait_ms` caps the model's. A request that would wait past its
limit gets a 429 with a Retry-After computed from the real refill time, in its client's dialect;
a client that goes away leaves the line. Metrics: queue depth and wait time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
import time
from typing import Any, Optional

import anthropic
import httpx
import openai
import pytest

import mock_openai as mo
from harness import (REDIS_SERVER, Ops, RedisServer, base_config, keys_for, poll, provider,
                     sample_sum, scrape)


@pytest.fixture
def world(mocks, gateways) -> dict[str, Any]:
    q = mocks.add("mock-q")
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        providers={"mock-q": provider(q, {"gpt-q": {}, "gpt-rpm": {"rpm": 60}})},
        models={
            "waits": {"targets": ["mock-q/gpt-q"], "queue_wait_ms": 4000},
            "impatient": {"targets": ["mock-q/gpt-q"], "queue_wait_ms": 500},
            "short-line": {"targets": ["mock-q/gpt-q"], "queue_wait_ms": 4000, "queue_max": 1},
            "metered": {"targets": ["mock-q/gpt-rpm"], "queue_wait_ms": 3000},
            "fails-fast": {"targets": ["mock-q/gpt-q"]},
        },
    )
    gw = gateways.start(cfg, env=keys_for(q))
    gw.wait_admin()
    return {"gw": gw, "q": q}


def metrics(gw) -> list[Any]:
    with gw.admin() as admin:
        return scrape(admin.get("/metrics").text)


def ask(gw, model: str, content: str = "hi", **kw: Any) -> Any:
    return gw.client(**kw).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}])


def start_cooldown(gw, key: Optional[str] = None) -> None:
    """Send one request to a model that does not wait: its 429 starts the target's cooldown."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with gw.http() as http:
        r = http.post("/v1/chat/completions", headers=headers, json={
            "model": "fails-fast", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 429, r.text


def test_a_request_waits_out_a_known_cooldown_instead_of_failing(world):
    gw, q = world["gw"], world["q"]
    q.script(mo.rate_limited(1, model="gpt-q"))
    t0 = time.monotonic()
    raw = ask(gw, "waits")
    took = time.monotonic() - t0
    assert raw.parse().choices[0].message.content == "hello from mock-q"
    assert 0.9 <= took < 2.0, took
    route = raw.headers["x-freeway-route"]
    assert "mock-q/gpt-q: 429" in route and "queue: waited" in route, route
    first, second = q.chat_requests
    assert 0.95 <= second.at - first.at < 1.3, "woken at the cooldown's end, not later"
    samples = metrics(gw)
    assert sample_sum(samples, "freeway_queue_wait_seconds_count", model="waits") == 1
    assert sample_sum(samples, "freeway_queue_depth", model="waits") == 0


def test_a_request_over_the_catalog_rate_waits_for_the_bucket_to_refill(world):
    gw, q = world["gw"], world["q"]
    with gw.http() as http:
        def one(_: int) -> int:
            return http.post("/v1/chat/completions", json={
                "model": "metered", "messages": [{"role": "user", "content": "x"}]}).status_code

        # rpm = 60: the bucket holds 60 and refills one a second; drain it well within it.
        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(one, range(60))) == {200}
        r = http.post("/v1/chat/completions", json={
            "model": "metered", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200, r.text
    assert "requests per minute limit" in r.headers["x-freeway-route"]
    calls = q.chat_requests
    assert len(calls) == 61
    # The bucket had one request again a second after the first was taken.
    assert 0.95 <= calls[-1].at - calls[0].at < 1.3, calls[-1].at - calls[0].at


def test_fifo_within_the_line(world):
    gw, q = world["gw"], world["q"]
    q.script(mo.rate_limited(1, model="gpt-q"))
    start_cooldown(gw)
    order: list[str] = []

    def call(name: str) -> None:
        ask(gw, "waits", content=name)
        order.append(name)

    threads = []
    for name in ("first", "second", "third"):
        t = threading.Thread(target=call, args=(name,))
        t.start()
        threads.append(t)
        time.sleep(0.1)
    for t in threads:
        t.join(10)
    served = [r.json["messages"][0]["content"] for r in q.chat_requests[1:]]
    assert served == ["first", "second", "third"], served


@pytest.mark.parametrize("dialect", ["chat", "messages", "responses"])
def test_a_wait_past_the_limit_is_a_429_with_the_real_retry_after(world, dialect):
    gw, q = world["gw"], world["q"]
    q.script(mo.rate_limited(3, model="gpt-q"))
    t0 = time.monotonic()
    if dialect == "messages":
        sdk = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as caught:
            sdk.messages.create(model="impatient", max_tokens=10,
                                messages=[{"role": "user", "content": "hi"}])
        assert caught.value.body["error"]["type"] == "rate_limit_error"
    elif dialect == "responses":
        with pytest.raises(openai.RateLimitError) as caught:
            gw.client().responses.create(model="impatient", input="hi")
    else:
        with pytest.raises(openai.RateLimitError) as caught:
            ask(gw, "impatient")
        assert caught.value.code == "rate_limited"
    assert time.monotonic() - t0 < 1.5, "a wait that cannot succeed (3 s > 500 ms) is refused at once"
    assert caught.value.response.headers["retry-after"] == "3"
    assert "queue_wait_ms of 500 ms" in str(caught.value)


def test_a_full_line_refuses_at_once(world):
    gw, q = world["gw"], world["q"]
    q.script(mo.rate_limited(2, model="gpt-q"))
    start_cooldown(gw)
    waiter = threading.Thread(target=ask, args=(gw, "short-line"))
    waiter.start()
    poll(lambda: sample_sum(metrics(gw), "freeway_queue_depth", model="short-line") == 1,
         what="the first request waiting")
    with pytest.raises(openai.RateLimitError) as caught:
        ask(gw, "short-line")
    assert "queue_max" in str(caught.value)
    waiter.join(10)


def test_a_client_that_goes_away_leaves_the_line(world):
    gw, q = world["gw"], world["q"]
    q.script(mo.rate_limited(3, model="gpt-q"))
    start_cooldown(gw)
    with pytest.raises(httpx.ReadTimeout):
        with gw.http() as http:
            http.post("/v1/chat/completions", timeout=0.5, json={
                "model": "waits", "messages": [{"role": "user", "content": "bye"}]})
    poll(lambda: sample_sum(metrics(gw), "freeway_queue_depth", model="waits") == 0,
         what="the abandoned request leaving the line")
    time.sleep(3)
    assert len(q.chat_requests) == 1, "nobody waits for the cooldown's end any more"


def test_queue_settings_are_validated(gateways, mocks):
    m = mocks.add("m")
    for bad, says in [({"queue_wait_ms": 0}, "queue_wait_ms"),
                      ({"queue_max": 3}, "queue_wait_ms"),
                      ({"queue_wait_ms": 100, "queue_max": 0}, "queue_max")]:
        cfg = base_config(providers={"m": provider(m, ["x"])},
                          models={"x": {"targets": ["m/x"], **bad}})
        out = gateways.start_refused(cfg, env=keys_for(m))
        assert f"models.x.{says}" in out, out


# =============================================================================================
# Priority, fairness across keys, a key's own wait limit
# =============================================================================================

KEYS = {"GW_BUSY": "fw-busy-secret-0001", "GW_QUIET": "fw-quiet-secret-001"}


@pytest.fixture
def keyed(mocks, gateways) -> dict[str, Any]:
    """Two keys from the config (`busy`, `quiet`) and two made by `freeway keys create`
    (`vip` with --priority 9, `hasty` with --queue-wait-ms 500), all in front of one model."""
    q = mocks.add("mock-q")
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        store={"path": "freeway.db"},
        auth={"keys": [{"name": "busy", "key_env": "GW_BUSY"},
                       {"name": "quiet", "key_env": "GW_QUIET", "priority": 5}]},
        providers={"mock-q": provider(q, {"gpt-q": {}})},
        models={"waits": {"targets": ["mock-q/gpt-q"], "queue_wait_ms": 8000},
                "fails-fast": {"targets": ["mock-q/gpt-q"]}},
    )
    o = Ops(gateways, cfg, {**keys_for(q), **KEYS})
    secrets = {**{name: KEYS[f"GW_{name.upper()}"] for name in ("busy", "quiet")},
               "vip": o.create_key("vip", "--priority", "9")["key"],
               "hasty": o.create_key("hasty", "--queue-wait-ms", "500")["key"]}
    o.launch().wait_admin()
    return {"o": o, "q": q, "keys": secrets}


def keyed_ask(o: Ops, key: str, content: str,
              headers: Optional[dict[str, str]] = None) -> httpx.Response:
    return o.post(key, {"model": "waits", "messages": [{"role": "user", "content": content}]},
                  headers)


def test_higher_priority_first_and_keys_take_turns_within_a_priority(keyed):
    o, q, keys = keyed["o"], keyed["q"], keyed["keys"]
    q.script(mo.rate_limited(3, model="gpt-q"))
    start_cooldown(o.gw, keys["busy"])
    arrivals = [  # (key, content, x-freeway-priority) in the order they join the line
        ("busy", "b1", None), ("busy", "b2", None), ("busy", "b3", None),
        ("busy", "b4", "9"),  # asks for more than its key allows (5): stays at 5
        ("quiet", "q1", None),
        ("vip", "v1", None),  # the key's priority 9
        ("vip", "v-low", "1"),  # a key may lower its own request's priority
    ]
    answers: dict[str, int] = {}

    def call(key: str, content: str, priority: Optional[str]) -> None:
        headers = {"x-freeway-priority": priority} if priority else None
        answers[content] = keyed_ask(o, keys[key], content, headers).status_code

    threads = []
    for n, arrival in enumerate(arrivals, 1):
        t = threading.Thread(target=call, args=arrival)
        t.start()
        threads.append(t)
        poll(lambda: sample_sum(metrics(o.gw), "freeway_queue_depth", model="waits") == n,
             what=f"{n} requests in the line")
    for t in threads:
        t.join(15)
    assert set(answers.values()) == {200}, answers
    served = [r.json["messages"][0]["content"] for r in q.chat_requests[1:]]
    # b1 held the head when the others came; then priority 9, then busy and quiet take turns
    # at priority 5 (busy's three others do not all go before quiet's one), then priority 1.
    assert served == ["b1", "v1", "b2", "q1", "b3", "b4", "v-low"], served


def test_a_keys_queue_wait_caps_the_models(keyed):
    o, q, keys = keyed["o"], keyed["q"], keyed["keys"]
    assert (o.key_entry("hasty")["queue_wait_ms"], o.key_entry("vip")["priority"]) == (500, 9)
    q.script(mo.rate_limited(2, model="gpt-q"))
    start_cooldown(o.gw, keys["busy"])
    t0 = time.monotonic()
    r = keyed_ask(o, keys["hasty"], "in a hurry")
    assert r.status_code == 429, r.text
    assert time.monotonic() - t0 < 1.0, "a 2 s wait is past hasty's 500 ms: refused at once"
    assert "queue_wait_ms of 500 ms" in r.json()["error"]["message"], r.text
    assert r.headers["retry-after"] in ("1", "2"), r.headers
    r = keyed_ask(o, keys["quiet"], "can wait")
    assert r.status_code == 200, r.text
    assert len(q.chat_requests) == 2, "the model's 8 s still holds for the other keys"


def test_priority_settings_are_validated(keyed, gateways, mocks):
    o, keys = keyed["o"], keyed["keys"]
    for bad in ("10", "high", "-1"):
        r = keyed_ask(o, keys["busy"], "x", {"x-freeway-priority": bad})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "x-freeway-priority", r.text
    refused = o.cli("keys", "create", "--name", "greedy", "--priority", "12", check=False)
    assert refused.returncode != 0 and "priority must be from 0 to 9" in refused.stderr, refused
    m = mocks.add("m")
    cfg = base_config(providers={"m": provider(m, ["x"])}, models={"x": {"targets": ["m/x"]}},
                      auth={"keys": [{"name": "k", "key_env": "GW_K", "priority": 10}]})
    out = gateways.start_refused(cfg, env={**keys_for(m), "GW_K": "fw-k-secret-00001"})
    assert "auth.keys[0].priority" in out, out


# =============================================================================================
# With state in Redis
# =============================================================================================


@pytest.mark.skipif(not REDIS_SERVER.is_file(),
                    reason=f"{REDIS_SERVER} is missing (apt-get install redis-server)")
def test_a_cooldown_learnt_by_another_instance_is_waited_out(mocks, gateways, tmp_path):
    """Two gateways on one Redis: instance A gets the upstream's 429 with Retry-After 2;
    instance B never saw it, yet its request waits for the cooldown's end (a timer at the end
    it reads from Redis) instead of calling the upstream early or failing."""
    redis = RedisServer(tmp_path).start()
    try:
        q = mocks.add("mock-q")
        cfg = base_config(
            admin={"listen": "127.0.0.1:0"},
            state={"redis_url": redis.url, "redis_timeout_ms": 500},
            providers={"mock-q": provider(q, {"gpt-q": {}})},
            models={"waits": {"targets": ["mock-q/gpt-q"], "queue_wait_ms": 5000},
                    "fails-fast": {"targets": ["mock-q/gpt-q"]}},
        )
        a, b = Ops(gateways, cfg, keys_for(q)), Ops(gateways, cfg, keys_for(q))
        a.launch().wait_admin()
        b.launch().wait_admin()
        q.script(mo.rate_limited(2, model="gpt-q"))
        start_cooldown(a.gw)
        raw = ask(b.gw, "waits")
        assert raw.parse().choices[0].message.content == "hello from mock-q"
        assert "queue: waited" in raw.headers["x-freeway-route"], raw.headers["x-freeway-route"]
        first, second = q.chat_requests
        assert 1.9 <= second.at - first.at < 2.6, "B woke at the cooldown's end A learnt"
        assert sample_sum(metrics(b.gw), "freeway_queue_wait_seconds_count", model="waits") == 1
    finally:
        redis.stop()
