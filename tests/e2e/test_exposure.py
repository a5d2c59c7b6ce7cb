"""Safe exposure: a public listener beyond loopback with no gateway key at all, or an admin
listener beyond loopback with no admin key, refuses to start: it exits non-zero before
listening and names the setting that allows it. With that setting (or with a key) it starts.

Binding 0.0.0.0 port 0 is harmless here; clients still reach the gateway on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from harness import Ops, base_config, chat_body, error_body, keys_for, provider


@pytest.fixture
def mock(mocks):
    return mocks.add("mock-a")


def config(m, **sections) -> dict:
    return base_config(providers={"mock-a": provider(m, ["gpt-a"])},
                       models={"m": {"targets": ["mock-a/gpt-a"]}}, **sections)


@pytest.mark.parametrize("how", ["server.listen", "--listen"])
def test_public_listener_beyond_loopback_without_keys_is_refused(mock, gateways, how):
    if how == "server.listen":
        err = gateways.start_refused(config(mock, server={"listen": "0.0.0.0:0"}),
                                     env=keys_for(mock), listen=None)
    else:
        err = gateways.start_refused(config(mock), env=keys_for(mock), listen="0.0.0.0:0")
    assert "server.allow_unauthenticated" in err, err


def test_admin_listener_beyond_loopback_without_admin_key_is_refused(mock, gateways):
    err = gateways.start_refused(config(mock, admin={"listen": "0.0.0.0:0"}),
                                 env=keys_for(mock))
    assert "admin.allow_unauthenticated" in err, err


def test_allow_flags_let_both_listeners_start(mock, gateways):
    cfg = config(mock, server={"listen": "0.0.0.0:0", "allow_unauthenticated": True},
                 admin={"listen": "0.0.0.0:0", "allow_unauthenticated": True})
    gw = gateways.start(cfg, env=keys_for(mock), listen=None)
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("m"))
        assert r.status_code == 200, r.text
    with gw.admin() as adm:
        assert adm.get("/admin/config").status_code == 200


def test_a_gateway_key_makes_the_public_listener_safe(mock, gateways):
    cfg = config(mock, auth={"keys": [{"name": "k", "key_env": "GW_KEY"}]})
    gw = gateways.start(cfg, env={**keys_for(mock), "GW_KEY": "fw-exposed-0001"},
                        listen="0.0.0.0:0")
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("m"))
        assert r.status_code == 401 and error_body(r)["code"] == "invalid_api_key", r.text
        r = h.post("/v1/chat/completions", json=chat_body("m"),
                   headers={"authorization": "Bearer fw-exposed-0001"})
        assert r.status_code == 200, r.text


def test_a_virtual_key_in_the_store_makes_the_public_listener_safe(mock, gateways):
    o = Ops(gateways, config(mock, store={"path": "freeway.db"}), keys_for(mock))
    secret = o.create_key("only")["key"]
    o.launch(listen="0.0.0.0:0")
    r = o.post(None, chat_body("m"))
    assert r.status_code == 401, r.text
    assert o.post(secret, chat_body("m")).status_code == 200


def test_an_admin_key_makes_the_admin_listener_safe(mock, gateways):
    cfg = config(mock, admin={"listen": "0.0.0.0:0", "api_key_env": "ADMIN_KEY"})
    gw = gateways.start(cfg, env={**keys_for(mock), "ADMIN_KEY": "adm-secret-0001"})
    with gw.admin() as adm:
        assert adm.get("/admin/config").status_code == 401
    with gw.admin("adm-secret-0001") as adm:
        assert adm.get("/admin/config").status_code == 200
