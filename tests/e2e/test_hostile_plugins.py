"""Hostile plugins, contained: output the host refuses (not JSON, over the answer cap), a
plugin slow on every call quarantined after `quarantine_after` faults in a row — refused fast,
visible in /admin/plugins and /metrics, back after its backoff or an operator's release — and a
plugin importing a capability the host does not grant refused at load, naming the import.

Driven by the `hostile` adapter (models "bad-json", "huge", "loop" misbehave; others behave)
and the `greedy` router (imports `freeway:greedy/network`).
"""

from __future__ import annotations

import time

import pytest

import mock_openai as mo
from harness import BUNDLED, base_config, chat_body, error_body, keys_for, poll, provider, scrape, sample_sum

PLUGINS = BUNDLED + ("hostile",)


@pytest.fixture
def setup(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        providers={
            "mock-a": provider(a, ["gpt-a"]),
            "evil": {"adapter": "hostile", "base_url": a.base_url, "api_key_env": "MOCK_A_KEY",
                     "models": ["bad-json", "huge", "loop", "echo"]},
        },
        models={
            "bad-then-ok": {"targets": ["evil/bad-json", "mock-a/gpt-a"]},
            "bad": {"targets": ["evil/bad-json"]},
            "huge": {"targets": ["evil/huge"]},
            "slow": {"targets": ["evil/loop"]},
            "echo": {"targets": ["evil/echo"]},
        },
    )
    cfg["plugins"]["overrides"] = {"hostile": {"memory_mb": 256, "timeout_ms": 300,
                                               "quarantine_after": 3}}
    gw = gateways.start(cfg, env=keys_for(a), plugins=PLUGINS)
    return gw, a


def post(gw, body):
    with gw.http() as h:
        return h.post("/v1/chat/completions", json=body, timeout=30)


def hostile_view(gw) -> dict:
    with gw.admin() as c:
        plugins = c.get("/admin/plugins").json()["plugins"]
    return next(p for p in plugins if p["name"] == "hostile")


def test_invalid_json_from_an_adapter_is_contained(setup):
    gw, a = setup
    r = post(gw, chat_body("bad-then-ok"))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "hello from mock-a"
    assert "plugin error" in r.headers["x-freeway-route"]
    r = post(gw, chat_body("bad"))
    assert r.status_code == 500
    err = error_body(r)
    assert err["code"] == "plugin_error"
    assert "hostile" in err["message"] and "not valid JSON" in err["message"], err
    view = hostile_view(gw)
    assert view["faults"] >= 2 and "unusable output" in view["last_error"], view


def test_invalid_json_in_a_stream_is_refused_before_it_reaches_the_client(setup):
    gw, _ = setup
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("bad", stream=True), timeout=30)
    assert r.status_code == 500, r.text
    assert "not a JSON object" in error_body(r)["message"]


def test_huge_output_is_refused_at_the_answer_cap(setup):
    gw, _ = setup
    r = post(gw, chat_body("huge"))
    assert r.status_code == 500, r.text[:300]
    err = error_body(r)
    assert "max_response_bytes" in err["message"], err
    # Still serving, and the next answer is normal.
    assert post(gw, chat_body("echo")).status_code == 200


def test_plugin_slow_on_every_call_is_quarantined_and_comes_back(setup):
    gw, _ = setup
    for _ in range(3):
        r = post(gw, chat_body("slow"))
        assert r.status_code == 500 and "timed out" in error_body(r)["message"], r.text
    view = hostile_view(gw)["quarantine"]
    assert view["quarantined"] and view["times"] == 1 and 0 < view["left_ms"] <= 5000, view

    # Quarantined: refused at once, without running it (no 300 ms deadline spent).
    t0 = time.monotonic()
    r = post(gw, chat_body("echo"))
    assert time.monotonic() - t0 < 0.25
    assert r.status_code == 500 and "quarantined" in error_body(r)["message"], r.text
    with gw.admin() as c:
        samples = scrape(c.get("/metrics").text)
    assert sample_sum(samples, "freeway_plugin_quarantined", plugin="hostile") == 1
    assert sample_sum(samples, "freeway_plugin_quarantines_total", plugin="hostile") == 1

    # The operator's way back.
    with gw.admin() as c:
        released = c.post("/admin/plugins/hostile/release").json()
    assert released["was_quarantined"] and not released["quarantine"]["quarantined"]
    assert post(gw, chat_body("echo")).status_code == 200

    # The automatic way back: quarantined again, then served once the backoff is over.
    for _ in range(3):
        post(gw, chat_body("slow"))
    assert hostile_view(gw)["quarantine"]["quarantined"]
    left = hostile_view(gw)["quarantine"]["left_ms"] / 1000
    time.sleep(left + 0.1)
    r = post(gw, chat_body("echo"))
    assert r.status_code == 200, r.text
    view = hostile_view(gw)["quarantine"]
    assert not view["quarantined"] and view["consecutive_faults"] == 0, view
    with gw.admin() as c:
        samples = scrape(c.get("/metrics").text)
    assert sample_sum(samples, "freeway_plugin_quarantined", plugin="hostile") == 0
    assert sample_sum(samples, "freeway_plugin_quarantines_total", plugin="hostile") == 2


def test_a_looping_plugin_is_cut_at_its_deadline_after_the_gateway_idled(setup):
    """The deadline ticker sleeps while no plugin instance is leased; the next lease wakes it,
    so a plugin that loops is still cut at its `timeout_ms` (300 ms here)."""
    gw, _ = setup
    assert post(gw, chat_body("echo")).status_code == 200
    time.sleep(0.5)  # idle well past the ticker's 100 ms
    t0 = time.monotonic()
    r = post(gw, chat_body("slow"))
    elapsed = time.monotonic() - t0
    assert r.status_code == 500 and "timed out" in error_body(r)["message"], r.text
    assert elapsed < 3, f"the loop ran {elapsed:.2f} s past a 300 ms deadline"


def test_plugin_importing_an_ungranted_capability_is_refused_at_load(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = base_config(providers={"mock-a": provider(a, ["gpt-a"])},
                      models={"m": {"targets": ["mock-a/gpt-a"], "router": "greedy"}})
    err = gateways.start_refused(cfg, env=keys_for(a), plugins=BUNDLED + ("greedy",))
    assert "it imports freeway:greedy/network, which this gateway does not grant" in err, err
    assert "greedy.wasm" in err

    # Unused, it is listed as rejected with the same reason, and the gateway serves.
    cfg = base_config(admin={"listen": "127.0.0.1:0"},
                      providers={"mock-a": provider(a, ["gpt-a"])},
                      models={"m": {"targets": ["mock-a/gpt-a"]}})
    gw = gateways.start(cfg, env=keys_for(a), plugins=BUNDLED + ("greedy",))
    with gw.admin() as c:
        listing = c.get("/admin/plugins").json()
    assert "greedy" not in {p["name"] for p in listing["plugins"]}
    (rejected,) = [r for r in listing["rejected"] if r["file"].endswith("greedy.wasm")]
    assert "freeway:greedy/network" in rejected["reason"]
    assert post(gw, chat_body("m")).status_code == 200
