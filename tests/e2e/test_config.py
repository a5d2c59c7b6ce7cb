"""Starting the gateway: a broken config is refused with a message naming the culprit, a valid
one starts even without any provider key, environment references expand, SIGTERM stops it."""

from __future__ import annotations

import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import mock_openai as mo
from harness import (FREEWAY_BIN, START_TIMEOUT, base_config, chat_body, error_body, gateway_env,
                     keys_for, provider)

GOOD = """
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536

[plugins]
dir = "@PLUGINS_DIR@"
cache_dir = "@CACHE_DIR@"

[plugins.defaults]
instances = "fresh"
timeout_ms = 100
memory_mb = 64

[pipeline]
filters = []
default_router = "priority-fallback"

[providers.mock-a]
adapter = "openai-compatible"
base_url = "@BASE_URL@"
api_key_env = "MOCK_A_KEY"
models = ["gpt-a"]

[models.smart]
targets = ["mock-a/gpt-a"]
"""


def refused(gateways, text: str, env=None) -> str:
    """Start the gateway on `text`; assert it exits non-zero without listening; return stderr."""
    return gateways.start_refused(text, env=env)


@pytest.fixture
def good(mocks):
    a = mocks.add("mock-a")
    return a, GOOD.replace("@BASE_URL@", a.base_url)


def test_good_config_starts_and_serves(gateways, good):
    a, text = good
    gw = gateways.start(text, env=keys_for(a))
    assert gw.stdout_lines == [f"freeway listening on {gw.url}"]
    c = gw.client().chat.completions.create(**chat_body("smart"))
    assert c.choices[0].message.content == "hello from mock-a"


def test_sigterm_right_after_ready_stops_gracefully(gateways, good):
    """A supervisor may stop the gateway the moment it reports ready: SIGTERM must then already
    be handled (exit 0), not kill the process. Three starts, since a race shows only sometimes."""
    a, text = good
    for _ in range(3):
        gw = gateways.start(text, env=keys_for(a))
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(10)
        assert code == 0, f"SIGTERM right after the listening line: exit {code}; stderr:\n{gw.stderr}"


def test_sigterm_lets_in_flight_request_finish(gateways, good):
    a, text = good
    gw = gateways.start(text, env=keys_for(a))
    a.script(mo.text("worth the wait", delay=1.0))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(gw.client().chat.completions.create, **chat_body("smart"))
        a.wait_for_requests(1)  # the request is in flight at the upstream
        gw.proc.send_signal(signal.SIGTERM)
        answer = pending.result(timeout=10)
    assert answer.choices[0].message.content == "worth the wait"
    assert gw.proc.wait(10) == 0, f"SIGTERM should exit 0; stderr:\n{gw.stderr}"


def test_unknown_top_level_key_refused(gateways, good):
    _, text = good
    err = refused(gateways, text + "\n[telemetry]\nenabled = true\n")
    assert "telemetry" in err


def test_unknown_nested_key_refused_with_path(gateways, good):
    _, text = good
    text = text.replace('api_key_env = "MOCK_A_KEY"', 'api_key_env = "MOCK_A_KEY"\nbase_ulr = "x"')
    err = refused(gateways, text)
    assert "base_ulr" in err
    assert "providers.mock-a" in err, err


def test_unknown_server_key_refused_with_path(gateways, good):
    _, text = good
    err = refused(gateways, text.replace("max_body_bytes = 65536",
                                         "max_body_bytes = 65536\nmax_bodybytes = 1"))
    assert "max_bodybytes" in err and "server" in err, err


def test_wrong_value_type_names_path(gateways, good):
    _, text = good
    err = refused(gateways, text.replace("max_body_bytes = 65536", 'max_body_bytes = "big"'))
    assert "server.max_body_bytes" in err, err


def test_wrong_nested_value_type_names_path(gateways, good):
    _, text = good
    err = refused(gateways, text.replace("timeout_ms = 100", 'timeout_ms = "soon"'))
    assert "plugins.defaults.timeout_ms" in err, err


def test_bad_instances_mode_refused(gateways, good):
    _, text = good
    err = refused(gateways, text.replace('instances = "fresh"', 'instances = "recycled"'))
    assert "instances" in err and "recycled" in err, err


def test_target_of_unknown_provider_refused(gateways, good):
    _, text = good
    err = refused(gateways, text.replace('targets = ["mock-a/gpt-a"]',
                                         'targets = ["mock-a/gpt-a", "mock-z/gpt-z"]'))
    assert "models.smart.targets[1]" in err and "mock-z" in err, err


def test_invalid_toml_refused(gateways, good):
    _, text = good
    err = refused(gateways, text + "\n[models.broken\n")
    assert "gateway.toml" in err or "TOML" in err or "parse" in err.lower(), err


def test_missing_config_file_refused(gateways, tmp_path):
    proc = gateways.spawn(tmp_path / "does-not-exist.toml")
    out, err = proc.communicate(timeout=START_TIMEOUT)
    assert proc.returncode != 0
    assert "does-not-exist.toml" in err


def test_missing_adapter_plugin_refused(gateways, good):
    _, text = good
    err = refused(gateways, text.replace('adapter = "openai-compatible"', 'adapter = "no-such-adapter"'))
    assert "no-such-adapter" in err, err


def test_missing_router_plugin_refused(gateways, good):
    _, text = good
    err = refused(gateways, text.replace('targets = ["mock-a/gpt-a"]',
                                         'targets = ["mock-a/gpt-a"]\nrouter = "smartest-router"'))
    assert "smartest-router" in err, err


def test_missing_filter_plugin_refused(gateways, good):
    _, text = good
    err = refused(gateways, text.replace("filters = []", 'filters = ["pii-scrubber"]'))
    assert "pii-scrubber" in err, err


def test_plugin_of_wrong_kind_refused(gateways, good):
    """A router named where an adapter is expected is a config error, not a runtime surprise."""
    _, text = good
    err = refused(gateways, text.replace('adapter = "openai-compatible"',
                                         'adapter = "priority-fallback"'))
    assert "priority-fallback" in err, err


def test_env_var_expansion(gateways, mocks):
    a = mocks.add("mock-a")
    text = GOOD.replace(
        "@BASE_URL@", "http://${FREEWAY_TEST_HOST:-127.0.0.1}:${FREEWAY_TEST_PORT}/v1")
    # FREEWAY_TEST_HOST is unset (default used), FREEWAY_TEST_PORT is set.
    gw = gateways.start(text, env={**keys_for(a), "FREEWAY_TEST_PORT": str(a.port)})
    c = gw.client().chat.completions.create(**chat_body("smart"))
    assert c.choices[0].message.content == "hello from mock-a"
    assert a.last().json["model"] == "gpt-a"


def test_unset_env_var_without_default_refused(gateways, mocks):
    a = mocks.add("mock-a")
    text = GOOD.replace("@BASE_URL@", "http://127.0.0.1:${FREEWAY_TEST_UNSET_PORT}/v1")
    err = refused(gateways, text, env=keys_for(a))
    assert "FREEWAY_TEST_UNSET_PORT" in err, err
    assert "providers.mock-a.base_url" in err, err


def test_relative_plugin_dir_is_relative_to_config_file(gateways, good):
    a, text = good
    # The config lives next to its "plugins" folder; start from another working directory.
    text = text.replace('dir = "@PLUGINS_DIR@"', 'dir = "plugins"')
    gw = gateways.start(text, env=keys_for(a), cwd=Path("/"))
    c = gw.client().chat.completions.create(**chat_body("smart"))
    assert c.choices[0].message.content == "hello from mock-a"


def test_no_api_keys_still_starts_and_says_why(gateways, mocks):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": provider(b, ["gpt-b"])},
        models={"smart": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}})
    gw = gateways.start(cfg, env={})  # neither MOCK_A_KEY nor MOCK_B_KEY
    for name, var in (("mock-a", "MOCK_A_KEY"), ("mock-b", "MOCK_B_KEY")):
        line = gw.wait_for_log(var)
        assert name in line, f"the log line naming {var} must name provider {name}: {line!r}"
    ids = [m.id for m in gw.client().models.list().data]
    assert "mock-a/gpt-a" not in ids and "mock-b/gpt-b" not in ids, ids
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("smart"))
        assert h.get("/healthz").status_code == 200
    assert r.status_code == 503
    err = error_body(r)
    assert err["code"] == "no_available_target"
    assert "MOCK_A_KEY" in err["message"] and "MOCK_B_KEY" in err["message"], err["message"]
    assert a.requests == [] and b.requests == []


def test_one_key_set_serves_with_the_other(gateways, mocks):
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": provider(b, ["gpt-b"])},
        models={"smart": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}})
    gw = gateways.start(cfg, env=keys_for(b))
    gw.wait_for_log("MOCK_A_KEY")
    raw = gw.client().chat.completions.with_raw_response.create(**chat_body("smart"))
    assert raw.headers["x-freeway-provider"] == "mock-b"
    assert a.requests == []


# ================================================================================================
# Plugin settings are checked by the plugins themselves (`check-settings`) before any request
# ================================================================================================


def test_bad_router_settings_refused_naming_the_key(gateways, good):
    _, text = good
    err = refused(gateways, text.replace('targets = ["mock-a/gpt-a"]',
                                         'targets = ["mock-a/gpt-a"]\n'
                                         'settings = { include_cooling = "yes" }'))
    assert "models.smart.settings" in err and "priority-fallback" in err, err
    assert "include_cooling" in err, err


def test_bad_adapter_settings_refused_naming_the_key(gateways, good):
    _, text = good
    err = refused(gateways, text.replace('models = ["gpt-a"]',
                                         'models = ["gpt-a"]\nsettings = { pathh = "/v2" }'))
    assert "providers.mock-a.settings" in err and "openai-compatible" in err, err
    assert "pathh" in err, err


def test_bad_filter_settings_refused_naming_the_key(gateways, good):
    _, text = good
    err = gateways.start_refused(
        text.replace("filters = []", 'filters = ["pii"]')
        + '\n[pipeline.settings.pii]\nactions = { card = "shred" }\n',
        plugins=("openai-compatible", "priority-fallback", "pii"))
    assert "pipeline.settings.pii" in err and "shred" in err, err


def test_settings_for_a_filter_nobody_uses_refused(gateways, good):
    """`[pipeline.settings.pi]` (a typo for `pii`) would otherwise be silently ignored."""
    _, text = good
    err = refused(gateways, text + '\n[pipeline.settings.pi]\nreversible = true\n')
    assert "pipeline.settings.pi" in err and "no filter named 'pi' is in use" in err, err


def test_freeway_check_runs_the_settings_checks(gateways, good):
    a, text = good
    ok = gateways.write(text)
    run = subprocess.run([str(FREEWAY_BIN), "check", "--config", str(ok)], capture_output=True,
                         text=True, env=gateway_env(keys_for(a)), timeout=START_TIMEOUT)
    assert run.returncode == 0, run.stderr
    assert "config and plugins OK" in run.stdout
    bad = gateways.write(text.replace('targets = ["mock-a/gpt-a"]',
                                      'targets = ["mock-a/gpt-a"]\nsettings = { seed = 1 }'))
    run = subprocess.run([str(FREEWAY_BIN), "check", "--config", str(bad)], capture_output=True,
                         text=True, env=gateway_env(keys_for(a)), timeout=START_TIMEOUT)
    assert run.returncode == 1, run.stdout
    assert "models.smart.settings" in run.stderr and "seed" in run.stderr, run.stderr
