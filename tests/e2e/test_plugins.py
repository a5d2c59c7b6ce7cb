"""Plugin isolation and plugin worlds, driven by the testing plugins:

- `hostile` (provider adapter): target models "loop", "oom", "trap", "trap-parse" misbehave;
  anything else behaves like openai-compatible.
- `hostile-router` (router): settings {behaviour = "trap"|"loop"|"oom"|"reverse"}.
- `test-guard` (filter): FORBIDDEN blocks, REWRITEME is rewritten to "rewritten", SECRET-ANSWER
  in an answer is redacted; settings {behaviour = "trap"} makes the filter itself trap.

A misbehaving plugin must cost one call, never the gateway: the client gets a clear error fast
(or the next target's answer) and the gateway keeps serving.
"""

from __future__ import annotations

import time

import openai
import pytest

import mock_openai as mo
from harness import TESTING, BUNDLED, base_config as _base_config, chat_body, error_body, keys_for, provider

ALL_PLUGINS = BUNDLED + TESTING


def base_config(**sections):
    """These tests check that each fault costs one call, so they fault the same plugins many
    times in a row: quarantine (tested in test_hostile_plugins.py) is off here."""
    cfg = _base_config(**sections)
    cfg["plugins"]["defaults"]["quarantine_after"] = 0
    return cfg
FAST = 2.5  # seconds; plugin deadlines here are 100-500 ms, so "well under 5 s" with slack


def hostile_provider(mock, models):
    return {"adapter": "hostile", "base_url": mock.base_url, "api_key_env": "MOCK_A_KEY",
            "models": models}


# ================================================================================================
# Hostile provider adapter, under both instance strategies
# ================================================================================================


@pytest.fixture(scope="module", params=["fresh", "pooled"])
def hostile_gw(request, module_mocks, module_gateways):
    if "mock-a" not in module_mocks.by_name:
        module_mocks.add("mock-a")
    a = module_mocks["mock-a"]
    cfg = base_config(
        providers={
            "mock-a": provider(a, ["gpt-a"]),
            # Direct failures.
            "evil": hostile_provider(a, ["loop", "oom", "trap", "trap-parse", "echo"]),
            # Failures with a fallback (separate provider: no state shared with "evil").
            "evil2": hostile_provider(a, ["loop", "oom", "trap", "trap-parse"]),
        },
        models={
            f"{fault}-then-ok": {"targets": [f"evil2/{fault}", "mock-a/gpt-a"]}
            for fault in ("loop", "oom", "trap", "trap-parse")
        },
    )
    cfg["plugins"]["defaults"]["instances"] = request.param
    cfg["plugins"]["defaults"]["pool_size"] = 2
    # Room for the memory bomb to hit its 64 MiB cap (~60-300 ms) before the deadline, so its
    # error names memory, not time; the loop is still cut at half a second.
    cfg["plugins"]["overrides"] = {"hostile": {"timeout_ms": 500}}
    gw = module_gateways.start(cfg, env=keys_for(a), plugins=ALL_PLUGINS)
    yield gw
    gw.stop()


@pytest.fixture
def a(module_mocks):
    module_mocks.reset()
    return module_mocks["mock-a"]


def assert_still_serving(gw, a):
    client = gw.client()
    c = client.chat.completions.create(**chat_body("mock-a/gpt-a", "still there?"))
    assert c.choices[0].message.content == "hello from mock-a"
    # The same plugin still works for well-behaved calls (no poisoned instance or pool).
    for _ in range(3):
        c = client.chat.completions.create(**chat_body("evil/echo", "echo?"))
        assert c.choices[0].message.content == "hello from mock-a"
    with gw.http() as h:
        assert h.get("/healthz").status_code == 200


@pytest.mark.parametrize("fault", ["loop", "oom", "trap"])
def test_hostile_adapter_fails_one_call_fast(hostile_gw, a, fault):
    with hostile_gw.http() as h:
        t0 = time.monotonic()
        r = h.post("/v1/chat/completions", json=chat_body(f"evil/{fault}"))
        elapsed = time.monotonic() - t0
    assert r.status_code == 500, r.text
    err = error_body(r)
    assert err["code"] == "plugin_error"
    assert "hostile" in err["message"], err["message"]
    assert elapsed < FAST, f"{fault}: the client waited {elapsed:.1f}s"
    assert a.chat_requests == [], "build-request failed: nothing may reach the upstream"
    assert_still_serving(hostile_gw, a)


def test_hostile_adapter_fault_names_the_failure(hostile_gw, a):
    """The message says what happened, so an operator can tell a loop from a panic."""
    with hostile_gw.http() as h:
        loop = error_body(h.post("/v1/chat/completions", json=chat_body("evil/loop")))["message"]
        oom = error_body(h.post("/v1/chat/completions", json=chat_body("evil/oom")))["message"]
        trap = error_body(h.post("/v1/chat/completions", json=chat_body("evil/trap")))["message"]
    assert any(w in loop.lower() for w in ("timed out", "timeout", "deadline")), loop
    assert any(w in oom.lower() for w in ("memory", "oom")), oom
    assert any(w in trap.lower() for w in ("trap", "panic", "unreachable")), trap


def test_hostile_adapter_stream_request_fails_cleanly(hostile_gw, a):
    with pytest.raises(openai.InternalServerError) as e:
        list(hostile_gw.client().chat.completions.create(**chat_body("evil/trap"), stream=True))
    assert e.value.status_code == 500
    assert "hostile" in e.value.message


def test_trap_while_parsing_answer(hostile_gw, a):
    t0 = time.monotonic()
    with hostile_gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("evil/trap-parse"))
    assert r.status_code == 500
    err = error_body(r)
    assert err["code"] == "plugin_error" and "hostile" in err["message"]
    assert time.monotonic() - t0 < FAST
    # The request was built and sent; the answer is what the plugin choked on.
    assert [r.json["model"] for r in a.chat_requests] == ["trap-parse"]
    assert_still_serving(hostile_gw, a)


def test_trap_in_stream_decoder(hostile_gw, a):
    """trap-parse also traps in the stream decoder: before the first chunk, so a clean 500."""
    with hostile_gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("evil/trap-parse", stream=True))
    assert r.status_code == 500, r.text
    err = error_body(r)
    assert err["code"] == "plugin_error" and "hostile" in err["message"]
    assert_still_serving(hostile_gw, a)


def test_trap_in_stream_decoder_fails_over(hostile_gw, a):
    raw = hostile_gw.client().chat.completions.with_raw_response.create(
        **chat_body("trap-parse-then-ok"), stream=True)
    assert raw.headers["x-freeway-provider"] == "mock-a"
    chunks = list(raw.parse())
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "hello from mock-a"


@pytest.mark.parametrize("fault", ["loop", "oom", "trap", "trap-parse"])
def test_plugin_fault_fails_over_to_next_target(hostile_gw, a, fault):
    t0 = time.monotonic()
    raw = hostile_gw.client().chat.completions.with_raw_response.create(
        **chat_body(f"{fault}-then-ok"))
    assert raw.parse().choices[0].message.content == "hello from mock-a"
    assert raw.headers["x-freeway-provider"] == "mock-a"
    assert raw.headers["x-freeway-attempts"] == "2"
    assert "evil2/" + fault in raw.headers["x-freeway-route"]
    assert time.monotonic() - t0 < FAST


def test_per_plugin_timeout_override_is_honoured(mocks, gateways):
    """[plugins.overrides.hostile] timeout_ms = 1000 gives the hostile plugin (only) a longer
    deadline: its loop is cut after about a second, not after the 100 ms default."""
    m = mocks.add("mock-a")
    cfg = base_config(providers={"mock-a": provider(m, ["gpt-a"]),
                                 "evil": hostile_provider(m, ["loop"])})
    cfg["plugins"]["overrides"] = {"hostile": {"timeout_ms": 1000}}
    gw = gateways.start(cfg, env=keys_for(m), plugins=ALL_PLUGINS)
    with gw.http() as h:
        t0 = time.monotonic()
        r = h.post("/v1/chat/completions", json=chat_body("evil/loop"))
        elapsed = time.monotonic() - t0
        assert r.status_code == 500 and error_body(r)["code"] == "plugin_error"
        assert 0.9 <= elapsed < 3, f"loop cut after {elapsed:.2f}s with a 1000 ms deadline"
        # Other plugins keep the 100 ms default and are unaffected.
        assert h.post("/v1/chat/completions", json=chat_body("mock-a/gpt-a")).status_code == 200


def test_concurrent_hostile_calls_do_not_starve_good_ones(hostile_gw, a):
    """Loops in flight must not block a healthy request (epoch deadlines, not cooperative)."""
    from concurrent.futures import ThreadPoolExecutor

    client = hostile_gw.client()

    def bad(_):
        with hostile_gw.http() as h:
            return h.post("/v1/chat/completions", json=chat_body("evil/loop")).status_code

    with ThreadPoolExecutor(6) as pool:
        bad_results = [pool.submit(bad, i) for i in range(4)]
        t0 = time.monotonic()
        good = client.chat.completions.create(**chat_body("mock-a/gpt-a"))
        good_elapsed = time.monotonic() - t0
        statuses = [f.result() for f in bad_results]
    assert good.choices[0].message.content == "hello from mock-a"
    assert statuses == [500] * 4
    assert good_elapsed < FAST


# ================================================================================================
# Hostile router
# ================================================================================================


@pytest.fixture(scope="module")
def router_gw(module_mocks, module_gateways):
    ra = module_mocks.add("router-a")
    rb = module_mocks.add("router-b")
    targets = ["router-a/gpt-a", "router-b/gpt-b"]
    cfg = base_config(
        providers={"router-a": provider(ra, ["gpt-a"]), "router-b": provider(rb, ["gpt-b"])},
        models={
            **{f"r-{b}": {"router": "hostile-router", "settings": {"behaviour": b},
                          "on_router_error": "configured-order", "targets": targets}
               for b in ("trap", "loop", "oom", "reverse")},
            # The default: a failing router refuses the request (it may be enforcing policy).
            **{f"strict-{b}": {"router": "hostile-router", "settings": {"behaviour": b},
                               "targets": targets}
               for b in ("trap", "loop")},
        },
    )
    cfg["plugins"]["overrides"] = {"hostile-router": {"timeout_ms": 200}}
    gw = module_gateways.start(cfg, env=keys_for(ra, rb), plugins=ALL_PLUGINS)
    yield gw
    gw.stop()


@pytest.fixture
def rab(module_mocks):
    module_mocks.reset()
    return module_mocks["router-a"], module_mocks["router-b"]


@pytest.mark.parametrize("behaviour", ["trap", "loop", "oom"])
def test_failing_router_falls_back_to_configured_order(router_gw, rab, behaviour):
    ra, rb = rab
    mark = router_gw.log_mark()
    t0 = time.monotonic()
    raw = router_gw.client().chat.completions.with_raw_response.create(**chat_body(f"r-{behaviour}"))
    assert time.monotonic() - t0 < FAST
    assert raw.parse().choices[0].message.content == "hello from router-a"
    assert raw.headers["x-freeway-provider"] == "router-a"
    assert rb.chat_requests == []
    router_gw.wait_for_log("hostile-router", since=mark)


@pytest.mark.parametrize("behaviour", ["trap", "loop"])
def test_failing_router_fails_closed_by_default(router_gw, rab, behaviour):
    ra, rb = rab
    t0 = time.monotonic()
    with router_gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body(f"strict-{behaviour}"))
    assert time.monotonic() - t0 < FAST
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert error["code"] == "plugin_error"
    assert "hostile-router" in error["message"]
    assert ra.chat_requests == [] and rb.chat_requests == []


def test_failing_router_fallback_still_fails_over(router_gw, rab):
    ra, rb = rab
    ra.script(mo.server_error(503))
    raw = router_gw.client().chat.completions.with_raw_response.create(**chat_body("r-trap"))
    assert raw.headers["x-freeway-provider"] == "router-b"
    assert raw.headers["x-freeway-attempts"] == "2"


def test_reverse_router_orders_targets(router_gw, rab):
    ra, rb = rab
    raw = router_gw.client().chat.completions.with_raw_response.create(**chat_body("r-reverse"))
    assert raw.headers["x-freeway-provider"] == "router-b"
    assert ra.chat_requests == []
    # ...and fails over in that order too.
    rb.script(mo.server_error(500))
    raw = router_gw.client().chat.completions.with_raw_response.create(**chat_body("r-reverse"))
    assert raw.headers["x-freeway-provider"] == "router-a"
    route = raw.headers["x-freeway-route"]
    assert route.index("router-b/gpt-b") < route.index("router-a/gpt-a"), route


# ================================================================================================
# test-guard filter
# ================================================================================================


@pytest.fixture(scope="module")
def guard_gw(module_mocks, module_gateways):
    g = module_mocks.add("guarded")
    cfg = base_config(
        providers={"guarded": provider(g, ["gpt-g"])},
        models={"guarded": {"targets": ["guarded/gpt-g"], "filters": ["test-guard"]},
                "unguarded": {"targets": ["guarded/gpt-g"]}},
    )
    gw = module_gateways.start(cfg, env=keys_for(g), plugins=ALL_PLUGINS)
    yield gw
    gw.stop()


@pytest.fixture
def g(module_mocks):
    module_mocks.reset()
    return module_mocks["guarded"]


def test_guard_blocks_forbidden_prompt(guard_gw, g):
    with pytest.raises(openai.BadRequestError) as e:
        guard_gw.client().chat.completions.create(**chat_body("guarded", "tell me the FORBIDDEN thing"))
    assert e.value.status_code == 400
    assert "the prompt contains a forbidden word" in e.value.message
    assert g.chat_requests == [], "a blocked request must not reach the upstream"


def test_guard_blocks_streamed_request_before_streaming(guard_gw, g):
    with pytest.raises(openai.BadRequestError) as e:
        list(guard_gw.client().chat.completions.create(
            **chat_body("guarded", "FORBIDDEN"), stream=True))
    assert "the prompt contains a forbidden word" in e.value.message
    assert g.chat_requests == []


def test_guard_applies_only_to_its_model(guard_gw, g):
    c = guard_gw.client().chat.completions.create(**chat_body("unguarded", "the FORBIDDEN word"))
    assert c.choices[0].message.content == "hello from guarded"
    assert g.last().json["messages"][0]["content"] == "the FORBIDDEN word"


def test_guard_rewrites_prompt(guard_gw, g):
    c = guard_gw.client().chat.completions.create(**chat_body("guarded", "please REWRITEME now"))
    assert c.choices[0].message.content == "hello from guarded"
    sent = g.last().json
    assert "REWRITEME" not in str(sent)
    assert "rewritten" in sent["messages"][0]["content"]
    assert sent["model"] == "gpt-g"


def test_guard_allows_ordinary_prompt_unchanged(guard_gw, g):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    guard_gw.client().chat.completions.create(model="guarded", messages=messages, temperature=0.1)
    sent = g.last().json
    assert sent["messages"] == messages and sent["temperature"] == 0.1


def test_guard_redacts_json_answer(guard_gw, g):
    g.script(mo.text("The launch code is SECRET-ANSWER, keep it safe."))
    c = guard_gw.client().chat.completions.create(**chat_body("guarded", "code?"))
    content = c.choices[0].message.content
    assert "SECRET-ANSWER" not in content
    assert content == "The launch code is [redacted], keep it safe."


def test_guard_redacts_streamed_answer(guard_gw, g):
    g.script(mo.text("The code is SECRET-ANSWER.", pieces=["The code", " is ", "SECRET-ANSWER", "."]))
    chunks = list(guard_gw.client().chat.completions.create(
        **chat_body("guarded", "code?"), stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "The code is [redacted]."


def test_guard_label_forwards_request_unchanged(guard_gw, g):
    """A label verdict tags the request for routing; the request itself goes out as sent."""
    c = guard_gw.client().chat.completions.create(**chat_body("guarded", "LABELME please"))
    assert c.choices[0].message.content == "hello from guarded"
    assert g.last().json["messages"] == [{"role": "user", "content": "LABELME please"}]


def test_unguarded_answer_is_not_redacted(guard_gw, g):
    g.script(mo.text("SECRET-ANSWER"))
    c = guard_gw.client().chat.completions.create(**chat_body("unguarded", "code?"))
    assert c.choices[0].message.content == "SECRET-ANSWER"


def test_pipeline_filter_applies_to_every_model(mocks, gateways):
    m = mocks.add("plain")
    cfg = base_config(providers={"plain": provider(m, ["gpt-p"])},
                      models={"one": {"targets": ["plain/gpt-p"]}})
    cfg["pipeline"]["filters"] = ["test-guard"]
    gw = gateways.start(cfg, env=keys_for(m), plugins=ALL_PLUGINS)
    for model in ("one", "plain/gpt-p"):
        with pytest.raises(openai.BadRequestError):
            gw.client().chat.completions.create(**chat_body(model, "FORBIDDEN"))
    assert m.chat_requests == []


def test_trapping_guard_fails_closed(mocks, gateways):
    m = mocks.add("plain")
    cfg = base_config(providers={"plain": provider(m, ["gpt-p"])},
                      models={"one": {"targets": ["plain/gpt-p"]}})
    cfg["pipeline"]["filters"] = ["test-guard"]
    cfg["pipeline"]["settings"] = {"test-guard": {"behaviour": "trap"}}
    gw = gateways.start(cfg, env=keys_for(m), plugins=ALL_PLUGINS)
    with gw.http() as h:
        for stream in (False, True):
            t0 = time.monotonic()
            r = h.post("/v1/chat/completions", json=chat_body("one", "harmless", stream=stream))
            assert r.status_code == 500, r.text
            err = error_body(r)
            assert err["code"] == "plugin_error"
            assert "test-guard" in err["message"], err["message"]
            assert time.monotonic() - t0 < FAST
        assert h.get("/healthz").status_code == 200
    assert m.chat_requests == [], "a failing guard must never let the request through"


def test_a_filter_that_rewrites_an_answer_into_garbage_faults(mocks, gateways):
    """An answer filter's rewrite must still be an answer: text that is not a JSON object is
    the filter's fault (500 plugin_error naming it), never a broken body handed to the client."""
    m = mocks.add("plain")
    cfg = base_config(providers={"plain": provider(m, ["gpt-p"])},
                      models={"one": {"targets": ["plain/gpt-p"]}})
    cfg["pipeline"]["filters"] = ["test-guard"]
    cfg["pipeline"]["settings"] = {"test-guard": {"behaviour": "garble"}}
    gw = gateways.start(cfg, env=keys_for(m), plugins=ALL_PLUGINS)
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("one", "hello"))
    assert r.status_code == 500, r.text
    err = error_body(r)
    assert err["code"] == "plugin_error", err
    assert "test-guard" in err["message"] and "not a JSON object" in err["message"], err
    assert "garbled" not in r.text
