"""Hot reload with zero failed requests, through the real binary.

The gateway watches its plugin folder and its config file; a completed write, a create, a
rename into place or a delete triggers (debounced) a reload: config and folder are re-read,
unchanged plugins reused, changed ones compiled, the whole validated and swapped in atomically.
A broken plugin or config is refused with one stderr line and the previous version keeps
serving; state (cooldowns, counters) survives.

The router used to see *when* a swap happened is the testing plugin `flip-router`, built twice
under one name: v1 (1.0.0) keeps the configured target order, v2 (2.0.0) reverses it. With
targets [mock-a, mock-b], v1 answers from mock-a and v2 from mock-b, so the
`x-freeway-provider` header of every response says which version served it.

Load runs as client threads looping chat requests for the whole test (bounded in time); every
status and provider is recorded, and "zero failed requests" means every one was a 200.
Switches are detected by polling with deadlines; the measured write -> new-behaviour latencies
are printed at the end of the module (run with -s to see them).

Sections 1-7 follow the issue ("Hot reload with zero failed requests"); the last section probes
edges around it (slow copies, duplicate plugin names, deleted config, catalogs, bursts of
writes, admin exposure changes, a plugin folder swapped wholesale).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest

import mock_openai as mo
from harness import (BUNDLED, TEST_PLUGINS_DIR, Gateway, base_config, chat_body, error_body,
                     keys_for, poll, provider, replace_atomically, to_toml)

V1 = TEST_PLUGINS_DIR / "flip-router-v1.wasm"
V2 = TEST_PLUGINS_DIR / "flip-router-v2.wasm"
HOSTILE = TEST_PLUGINS_DIR / "hostile.wasm"
TEST_GUARD = TEST_PLUGINS_DIR / "test-guard.wasm"

SWITCH_BUDGET = 1.0  # seconds from a write to the new behaviour (the promise)
DETECT = 5.0  # how long we look for the new behaviour before declaring it missing
LATENCIES: dict[str, float] = {}  # measured write -> new behaviour, printed at the end


# ================================================================================================
# Load
# ================================================================================================


@dataclass
class Result:
    t0: float  # monotonic, request sent
    t1: float  # monotonic, answer read
    status: Optional[int]  # None: transport error
    provider: Optional[str]
    detail: str = ""


class Load:
    """`threads` clients looping POST /v1/chat/completions for `model` until stopped (or
    `max_seconds`), recording every outcome."""

    def __init__(self, gw: Gateway, model: str, *, threads: int = 4, max_seconds: float = 20.0):
        self.gw, self.model = gw, model
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _run(self, i: int) -> None:
        body = chat_body(self.model, f"load {i}")
        with httpx.Client(base_url=self.gw.url, timeout=10.0) as h:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                t0 = time.monotonic()
                try:
                    r = h.post("/v1/chat/completions", json=body)
                    res = Result(t0, time.monotonic(), r.status_code,
                                 r.headers.get("x-freeway-provider"),
                                 "" if r.status_code == 200 else r.text[:300])
                except Exception as e:  # noqa: BLE001 - a transport failure is a failed request
                    res = Result(t0, time.monotonic(), None, None, repr(e))
                with self._lock:
                    self.results.append(res)

    def snapshot(self) -> list[Result]:
        with self._lock:
            return list(self.results)

    def wait_count(self, n: int, timeout: float = 10.0) -> None:
        poll(lambda: len(self.snapshot()) >= n, timeout, what=f"{n} load requests")

    def first(self, pred: Callable[[Result], bool], timeout: float) -> Optional[Result]:
        """The earliest-finished result satisfying `pred`, waiting up to `timeout` for one."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [r for r in self.snapshot() if pred(r)]
            if hits:
                return min(hits, key=lambda r: r.t1)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)

    def assert_no_failures(self) -> None:
        results = self.snapshot()
        bad = [r for r in results if r.status != 200]
        assert results, "the load produced no requests"
        assert not bad, (f"{len(bad)} of {len(results)} requests failed; first: "
                         + "; ".join(f"{r.status} {r.detail}" for r in bad[:3]))

    def providers_between(self, start: float, end: float = float("inf")) -> set[Optional[str]]:
        return {r.provider for r in self.snapshot() if start <= r.t0 and r.t1 <= end}


# ================================================================================================
# Gateways
# ================================================================================================

ADMIN_KEY = "adm-5f0c1e7a-not-for-logs"


def flip_gateway(gateways, mocks, *, plugins=BUNDLED, plugin_files=None, env=None,
                 extra: Optional[Callable[[dict], None]] = None) -> tuple[Gateway, Any, Any]:
    """mock-a and mock-b behind model `flip` (router flip-router v1) and `smart`
    (priority-fallback, [mock-a, mock-b]); an admin listener without a key."""
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    cfg = base_config(
        admin={"listen": "127.0.0.1:0"},
        providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": provider(b, ["gpt-b"])},
        models={
            "flip": {"router": "flip-router", "targets": ["mock-a/gpt-a", "mock-b/gpt-b"]},
            "smart": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]},
        },
    )
    if extra:
        extra(cfg)
    files = {"flip-router.wasm": V1}
    files.update(plugin_files or {})
    gw = gateways.start(cfg, env={**keys_for(a, b), **(env or {})}, plugins=plugins,
                        plugin_files=files)
    return gw, a, b


def read_config(gw: Gateway) -> dict[str, Any]:
    return tomllib.loads(gw.config_path.read_text())


def write_config(gw: Gateway, cfg: dict[str, Any], *, atomic: bool = False) -> None:
    text = to_toml(cfg)
    if atomic:
        replace_atomically(gw.config_path, text.encode())
    else:
        gw.config_path.write_text(text)  # truncate + write + close: a Close(Write) event


def admin_plugins(gw: Gateway, key: Optional[str] = None) -> dict[str, Any]:
    with gw.admin(key) as h:
        r = h.get("/admin/plugins")
    assert r.status_code == 200, r.text
    return r.json()


def loaded(gw: Gateway) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in admin_plugins(gw)["plugins"]}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def serve_once(gw: Gateway, model: str) -> httpx.Response:
    with gw.http() as h:
        return h.post("/v1/chat/completions", json=chat_body(model))


@pytest.fixture(scope="module", autouse=True)
def _report_latencies():
    yield
    if LATENCIES:
        print("\nwrite -> new behaviour latencies: "
              + ", ".join(f"{k}={v * 1000:.0f} ms" for k, v in LATENCIES.items()))


# ================================================================================================
# 1. Router swapped under load
# ================================================================================================


@pytest.mark.parametrize("how", ["rename", "overwrite"])
def test_router_swap_under_load_switches_within_a_second(gateways, mocks, how):
    gw, a, b = flip_gateway(gateways, mocks)
    dest = gw.plugin_dir / "flip-router.wasm"
    assert loaded(gw)["flip-router"]["version"] == "1.0.0"
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(40)
        mark = gw.log_mark()
        t_write = time.monotonic()
        if how == "rename":
            replace_atomically(dest, V2)
        else:
            shutil.copyfile(V2, dest)
        first_b = load.first(lambda r: r.provider == "mock-b", DETECT)
        if first_b is not None:
            # Keep the load going a little after the switch, to see that it sticks.
            settle = time.monotonic() + 0.5
            poll(lambda: time.monotonic() > settle and len(
                [r for r in load.snapshot() if r.t0 > first_b.t1]) >= 20, 10,
                what="requests after the switch")
    load.assert_no_failures()
    assert first_b is not None, f"mock-b never answered within {DETECT}s of the write"
    latency = first_b.t1 - t_write
    LATENCIES[f"router-{how}"] = latency
    assert latency <= SWITCH_BUDGET, f"v2 answered {latency * 1000:.0f} ms after the write"
    before = load.providers_between(0, t_write)
    assert before == {"mock-a"}, f"before the write: {before}"
    after = [r for r in load.snapshot() if r.t0 > first_b.t1]
    stragglers = [r for r in after if r.provider != "mock-b"]
    assert not stragglers, (f"{len(stragglers)} of {len(after)} requests sent after v2 first "
                            f"answered still went to {stragglers[0].provider}")
    line = gw.wait_for_log("reloaded", since=mark, timeout=2)
    assert "flip-router 2.0.0" in line, line
    p = loaded(gw)["flip-router"]
    assert p["version"] == "2.0.0" and p["sha256"] == sha256_of(V2), p
    # Compiled once, cached by content hash in plugins.cache_dir.
    assert list(gateways.cache_dir.glob(f"{sha256_of(V2)}-*.cwasm")), "v2 not in the cache"


def test_request_in_flight_finishes_on_old_snapshot(gateways, mocks):
    """A streamed answer in flight while the router and config change completes intact."""
    gw, a, b = flip_gateway(gateways, mocks)
    a.script(mo.text("one two three four five six", first_event_delay=0.3, event_gap=0.15))
    with gw.http() as h:
        with h.stream("POST", "/v1/chat/completions",
                      json=chat_body("flip", stream=True)) as r:
            assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-a"
            mark = gw.log_mark()
            replace_atomically(gw.plugin_dir / "flip-router.wasm", V2)
            gw.wait_for_log("reloaded", since=mark, timeout=3)
            raw = "".join(r.iter_text())
    assert raw.rstrip().endswith("data: [DONE]"), raw[-200:]
    assert "six" in raw
    assert serve_once(gw, "flip").headers["x-freeway-provider"] == "mock-b"


# ================================================================================================
# 2. New adapter + provider in either arrival order
# ================================================================================================


def add_fresh_provider(cfg: dict[str, Any], c) -> None:
    cfg["providers"]["mock-c"] = provider(c, ["echo"], adapter="hostile")
    cfg["models"]["fresh"] = {"targets": ["mock-c/echo"]}


def wait_reachable(gw: Gateway, model: str, since: float, timeout: float = DETECT) -> float:
    """Probe `model` until it answers 200; return seconds from `since` to that answer."""
    deadline = time.monotonic() + timeout
    with gw.http() as h:
        while True:
            r = h.post("/v1/chat/completions", json=chat_body(model))
            if r.status_code == 200:
                return time.monotonic() - since
            if time.monotonic() > deadline:
                raise AssertionError(f"{model} not reachable {timeout}s after the write: "
                                     f"{r.status_code} {r.text[:300]}")
            time.sleep(0.01)


@pytest.mark.parametrize("order", ["adapter-first", "config-first"])
def test_new_adapter_and_provider_in_either_order(gateways, mocks, order):
    c = mocks.add("mock-c")
    gw, a, b = flip_gateway(gateways, mocks, env=keys_for(c))
    cfg = read_config(gw)
    add_fresh_provider(cfg, c)
    assert serve_once(gw, "fresh").status_code == 404
    with Load(gw, "smart", max_seconds=15) as load:
        load.wait_count(20)
        if order == "adapter-first":
            mark = gw.log_mark()
            shutil.copyfile(HOSTILE, gw.plugin_dir / "hostile.wasm")
            gw.wait_for_log(re.compile(r"reloaded: .*hostile"), since=mark, timeout=DETECT)
            assert serve_once(gw, "fresh").status_code == 404  # not configured yet
            t_write = time.monotonic()
            write_config(gw, cfg)
        else:
            mark = gw.log_mark()
            write_config(gw, cfg)
            line = gw.wait_for_log("reload refused", since=mark, timeout=DETECT)
            assert "no provider plugin named 'hostile'" in line, line
            assert "providers.mock-c.adapter" in line, line
            assert serve_once(gw, "fresh").status_code == 404  # the old config keeps serving
            t_write = time.monotonic()
            shutil.copyfile(HOSTILE, gw.plugin_dir / "hostile.wasm")
        latency = wait_reachable(gw, "fresh", t_write)
        load.wait_count(len(load.snapshot()) + 20)
    LATENCIES[f"new-provider-{order}"] = latency
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}
    assert c.chat_requests, "the new provider was never called"
    assert latency <= SWITCH_BUDGET, f"reachable {latency * 1000:.0f} ms after the last write"
    assert loaded(gw)["hostile"]["kind"] == "provider"


# ================================================================================================
# 3. Broken plugins are refused; the previous version keeps serving
# ================================================================================================


def test_garbage_plugin_is_refused_and_listed(gateways, mocks):
    gw, a, b = flip_gateway(gateways, mocks)
    garbage = b"\x00asm this is not a component " * 64
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(20)
        mark = gw.log_mark()
        (gw.plugin_dir / "x.wasm").write_bytes(garbage)
        gw.wait_for_log(re.compile(r"x\.wasm"), since=mark, timeout=DETECT)
        time.sleep(0.3)  # any second (duplicate) log line would show up by now
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}
    lines = [ln for ln in gw.stderr_since(mark).splitlines() if "x.wasm" in ln]
    assert len(lines) == 1, lines
    assert "ERROR" in lines[0] and "refused" in lines[0], lines[0]
    view = admin_plugins(gw)
    rejected = [r for r in view["rejected"] if r["file"].endswith("/x.wasm")]
    assert len(rejected) == 1, view["rejected"]
    assert rejected[0]["sha256"] == hashlib.sha256(garbage).hexdigest()
    assert rejected[0]["reason"], rejected[0]
    assert {p["name"] for p in view["plugins"]} >= {"flip-router", "openai-compatible"}
    assert serve_once(gw, "flip").headers["x-freeway-provider"] == "mock-a"
    # Removing the file removes the entry.
    mark = gw.log_mark()
    (gw.plugin_dir / "x.wasm").unlink()
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    assert admin_plugins(gw)["rejected"] == []


def test_plugin_built_for_another_contract_version_is_refused_and_listed(gateways, mocks):
    """v2 of flip-router with its freeway:plugin interfaces renamed to @0.1.9 (WASI's untouched),
    i.e. what a plugin built against an older wit/freeway.wit exports: refused with the version
    it speaks and what to do, never loaded, and the v1 router keeps serving."""
    old = re.sub(rb"(freeway:plugin/[a-z-]+)@0\.2\.\d", rb"\1@0.1.9", V2.read_bytes())
    assert old != V2.read_bytes() and b"@0.1.9" in old
    gw, a, b = flip_gateway(gateways, mocks)
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(20)
        mark = gw.log_mark()
        replace_atomically(gw.plugin_dir / "flip-router.wasm", old)
        line = gw.wait_for_log(re.compile(r"refused"), since=mark, timeout=DETECT)
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert "built for freeway:plugin@0.1.9" in line and "speaks freeway:plugin@0.2.1" in line, line
    assert "rebuild it against wit/freeway.wit" in line, line
    assert loaded(gw)["flip-router"]["version"] == "1.0.0"
    rejected = [r for r in admin_plugins(gw)["rejected"] if r["file"].endswith("/flip-router.wasm")]
    assert rejected and "0.1.9" in rejected[0]["reason"], admin_plugins(gw)["rejected"]


def test_wrong_kind_over_router_file_is_refused_and_listed(gateways, mocks):
    """test-guard (a valid filter component) copied over flip-router.wasm: the router must keep
    serving v1, one stderr line must name the file and why, and /admin/plugins must list the
    file as rejected."""
    gw, a, b = flip_gateway(gateways, mocks)
    dest = gw.plugin_dir / "flip-router.wasm"
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(20)
        mark = gw.log_mark()
        shutil.copyfile(TEST_GUARD, dest)
        gw.wait_for_log(re.compile(r"refused"), since=mark, timeout=DETECT)
        time.sleep(0.3)
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}, "the old router (v1) must keep serving"
    assert serve_once(gw, "flip").headers["x-freeway-provider"] == "mock-a"
    assert loaded(gw)["flip-router"]["version"] == "1.0.0"
    refusals = [ln for ln in gw.stderr_since(mark).splitlines() if "refused" in ln]
    assert len(refusals) == 1, refusals
    assert "flip-router.wasm" in refusals[0], (
        f"the refusal must name the file that was refused: {refusals[0]}")
    rejected = [r for r in admin_plugins(gw)["rejected"] if r["file"].endswith("/flip-router.wasm")]
    assert rejected and rejected[0]["sha256"] == sha256_of(TEST_GUARD), (
        f"/admin/plugins rejected: {admin_plugins(gw)['rejected']}")


def test_wrong_kind_file_loads_once_the_config_stops_using_the_old_plugin(gateways, mocks):
    """The refusal above exists because the config still uses flip-router. Once a config change
    stops using it, the file is a valid filter plugin like any other and must load (a refusal
    remembered by file hash must not outlive its reason)."""
    gw, a, b = flip_gateway(gateways, mocks)
    mark = gw.log_mark()
    shutil.copyfile(TEST_GUARD, gw.plugin_dir / "flip-router.wasm")
    gw.wait_for_log(re.compile(r"refused"), since=mark, timeout=DETECT)
    cfg = read_config(gw)
    cfg["models"]["flip"]["router"] = "priority-fallback"
    mark = gw.log_mark()
    write_config(gw, cfg)
    # The first refusal's own "reloaded" line may land after `mark`: poll for the outcome.
    deadline = time.monotonic() + DETECT
    plugins = loaded(gw)
    while "test-guard" not in plugins and time.monotonic() < deadline:
        time.sleep(0.05)
        plugins = loaded(gw)
    assert "test-guard" in plugins and "flip-router" not in plugins, (
        f"loaded: {sorted(plugins)}; rejected: {admin_plugins(gw)['rejected']}")
    assert plugins["test-guard"]["source"].endswith("/flip-router.wasm")


# ================================================================================================
# 4. Invalid configs are refused; the previous config keeps serving
# ================================================================================================


def break_unknown_key(cfg: dict[str, Any]) -> tuple[str, ...]:
    cfg["providers"]["mock-a"]["base_ulr"] = "http://nowhere"
    return ("providers.mock-a", "base_ulr")


def break_unknown_target(cfg: dict[str, Any]) -> tuple[str, ...]:
    cfg["models"]["smart"]["targets"].append("nope/gpt-x")
    return ("models.smart.targets[2]", "nope")


def break_adapter_settings(cfg: dict[str, Any]) -> tuple[str, ...]:
    """Valid TOML and a known key, but a value only the adapter plugin can judge."""
    cfg["providers"]["mock-a"]["settings"] = {"auth": "sometimes"}
    return ("providers.mock-a.settings", "openai-compatible", "sometimes")


@pytest.mark.parametrize("breakage", [break_unknown_key, break_unknown_target,
                                      break_adapter_settings],
                         ids=["unknown-key", "unknown-provider-in-targets", "adapter-settings"])
def test_invalid_config_is_refused(gateways, mocks, breakage):
    gw, a, b = flip_gateway(gateways, mocks)
    good = read_config(gw)
    bad = read_config(gw)
    # Also a visible change (mock-b first), so "applied" and "refused" can be told apart.
    bad["models"]["smart"]["targets"] = ["mock-b/gpt-b", "mock-a/gpt-a"]
    needles = breakage(bad)
    with Load(gw, "smart", max_seconds=15) as load:
        load.wait_count(20)
        mark = gw.log_mark()
        write_config(gw, bad)
        line = gw.wait_for_log("reload refused", since=mark, timeout=DETECT)
        for needle in needles:
            assert needle in line, f"{needle!r} missing from {line!r}"
        with gw.admin() as h:
            r = h.post("/admin/reload")
            assert r.status_code == 409, r.text
            err = error_body(r)
            assert err["code"] == "reload_refused", err
            assert needles[0] in err["message"], err
            last = h.get("/admin/config").json()["last_reload"]
            assert last and last["ok"] is False, last
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}, "the refused config must not be applied"
    assert b.chat_requests == []
    lines = [ln for ln in gw.stderr_since(mark).splitlines() if "refused" in ln]
    assert len(lines) == 2, lines  # the file change and the admin request: one line each
    # Fixing the file is picked up again.
    mark = gw.log_mark()
    write_config(gw, good)
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    with gw.admin() as h:
        assert h.post("/admin/reload").status_code == 200


# ================================================================================================
# 5. Deleting plugins
# ================================================================================================


def test_deleting_plugins(gateways, mocks):
    gw, a, b = flip_gateway(gateways, mocks, plugin_files={"hostile.wasm": HOSTILE})
    assert {"flip-router", "hostile"} <= set(loaded(gw))
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(20)
        # In use: the model `flip` routes with it.
        mark = gw.log_mark()
        (gw.plugin_dir / "flip-router.wasm").unlink()
        warn = gw.wait_for_log("flip-router", since=mark, timeout=DETECT)
        assert "WARN" in warn and "still uses it" in warn, warn
        load.wait_count(len(load.snapshot()) + 20)
        assert loaded(gw)["flip-router"]["version"] == "1.0.0"
        # Unused: nothing references `hostile`.
        mark = gw.log_mark()
        (gw.plugin_dir / "hostile.wasm").unlink()
        gw.wait_for_log(re.compile(r"unloaded.*hostile|hostile.*unloaded"), since=mark,
                        timeout=DETECT)
        poll(lambda: "hostile" not in loaded(gw), 2, what="hostile gone from /admin/plugins")
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}
    assert "flip-router" in loaded(gw)
    # Once the config stops using the deleted plugin, the next reload unloads it.
    cfg = read_config(gw)
    cfg["models"]["flip"]["router"] = "priority-fallback"
    mark = gw.log_mark()
    write_config(gw, cfg)
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    assert "flip-router" not in loaded(gw)
    assert serve_once(gw, "flip").headers["x-freeway-provider"] == "mock-a"


# ================================================================================================
# 6. State survives reloads
# ================================================================================================


def test_cooldown_and_counters_survive_reload(gateways, mocks):
    gw, a, b = flip_gateway(gateways, mocks)
    a.script(mo.rate_limited(30))
    r = serve_once(gw, "smart")
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-b", r.headers
    assert len(a.chat_requests) == 1
    calls_before = loaded(gw)["openai-compatible"]["calls"]
    assert calls_before > 0

    # Touch: identical content plus a comment.
    mark = gw.log_mark()
    gw.config_path.write_text(gw.config_path.read_text() + "\n# touched\n")
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    r = serve_once(gw, "smart")
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-b", r.headers
    assert len(a.chat_requests) == 1, "mock-a is cooling down (Retry-After: 30) across a reload"
    assert loaded(gw)["openai-compatible"]["calls"] >= calls_before, "plugin counters reset"

    # A real change (another model, another plugin file) keeps the cooldown too.
    mark = gw.log_mark()
    cfg = read_config(gw)
    cfg["models"]["other"] = {"targets": ["mock-b/gpt-b"]}
    write_config(gw, cfg, atomic=True)
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    mark = gw.log_mark()
    replace_atomically(gw.plugin_dir / "flip-router.wasm", V2)
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    assert serve_once(gw, "other").status_code == 200
    r = serve_once(gw, "smart")
    assert r.headers["x-freeway-provider"] == "mock-b", r.headers
    assert len(a.chat_requests) == 1


# ================================================================================================
# 7. Admin API: auth, masking, where it is served
# ================================================================================================

SECRET = "sk-upstream-9d1b7c-should-never-show"


def secret_settings(cfg: dict[str, Any]) -> None:
    cfg["admin"]["api_key_env"] = "ADMIN_KEY"
    cfg["providers"]["mock-a"]["settings"] = {
        "headers": {"Authorization": "Bearer ${SECRET}", "X-Title": "Freeway"}}


def test_admin_needs_key_and_masks_secrets(gateways, mocks):
    gw, a, b = flip_gateway(gateways, mocks, env={"ADMIN_KEY": ADMIN_KEY, "SECRET": SECRET},
                            extra=secret_settings)
    for key in (None, "wrong", ADMIN_KEY + "x"):
        with gw.admin(key) as h:
            for method, path in (("GET", "/admin/plugins"), ("GET", "/admin/config"),
                                 ("POST", "/admin/reload")):
                r = h.request(method, path)
                assert r.status_code == 401, (key, path, r.status_code, r.text)
                assert error_body(r)["code"] == "invalid_admin_key"
    assert "reloaded" not in gw.stderr, "an unauthenticated POST /admin/reload must not reload"
    with httpx.Client(base_url=gw.admin_url, headers={"authorization": ADMIN_KEY}) as h:
        assert h.get("/admin/plugins").status_code == 401, "the Bearer scheme is required"

    with gw.admin(ADMIN_KEY) as h:
        view = h.get("/admin/plugins")
        assert view.status_code == 200, view.text
        plugins = {p["name"]: p for p in view.json()["plugins"]}
        assert set(plugins) == {"openai-compatible", "priority-fallback", "flip-router"}
        assert view.json()["rejected"] == []
        fields = {"name", "kind", "version", "world", "sha256", "source", "loaded_at",
                  "instances", "calls", "faults", "last_error"}
        for p in plugins.values():
            assert fields <= set(p), (p["name"], fields - set(p))
        fr = plugins["flip-router"]
        assert fr["kind"] == "router" and fr["version"] == "1.0.0"
        assert fr["world"].startswith("freeway:plugin/router"), fr["world"]
        assert fr["sha256"] == sha256_of(V1)
        assert fr["source"].endswith("/flip-router.wasm")
        assert abs(fr["loaded_at"] - time.time()) < 600
        assert plugins["openai-compatible"]["kind"] == "provider"

        r = h.get("/admin/config")
        assert r.status_code == 200
        text = r.text
        assert SECRET not in text and ADMIN_KEY not in text and "sk-mock-a-secret" not in text
        doc = r.json()
        assert re.fullmatch(r"[0-9a-f]{64}", doc["digest"]), doc["digest"]
        assert isinstance(doc["loaded_at"], int) and "last_reload" in doc
        headers = doc["config"]["providers"]["mock-a"]["settings"]["headers"]
        assert headers == {"Authorization": "***", "X-Title": "Freeway"}, headers
        assert doc["config"]["models"]["flip"]["router"] == "flip-router"

        r = h.post("/admin/reload")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "reloaded" and r.json()["message"], r.json()
        last = h.get("/admin/config").json()["last_reload"]
        assert last and last["ok"] is True, last
        assert h.get("/admin/reload").status_code == 405
        assert h.get("/healthz").status_code == 200

    # Not on the public listener by default: not even with the key.
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as h:
        for method, path in (("GET", "/admin/plugins"), ("GET", "/admin/config"),
                             ("POST", "/admin/reload")):
            assert h.request(method, path).status_code == 404, path
        assert h.post("/v1/chat/completions", json=chat_body("flip")).status_code == 200


def test_admin_on_public_listener_when_asked(gateways, mocks):
    def on_public(cfg):
        secret_settings(cfg)
        cfg["admin"] = {"api_key_env": "ADMIN_KEY", "on_public_listener": True}

    gw, a, b = flip_gateway(gateways, mocks, env={"ADMIN_KEY": ADMIN_KEY, "SECRET": SECRET},
                            extra=on_public)
    assert len(gw.stdout_lines) == 1, gw.stdout_lines  # no admin listener of its own
    with gw.http() as h:
        assert h.get("/admin/plugins").status_code == 401
        r = h.get("/admin/config", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200 and SECRET not in r.text
        assert h.post("/v1/chat/completions", json=chat_body("flip")).status_code == 200


def test_admin_masks_expanded_secrets_under_any_key(gateways, mocks):
    """A `${VAR}` expanded into a setting whose name does not look secret (a custom auth
    header) must not come back from /admin/config either: the value is a secret because it came
    from the environment, whatever the key is called."""
    def custom_header(cfg):
        cfg["providers"]["mock-a"]["settings"] = {"headers": {"X-Upstream-Auth": "${SECRET}"}}

    gw, a, b = flip_gateway(gateways, mocks, env={"SECRET": SECRET}, extra=custom_header)
    with gw.admin() as h:
        text = h.get("/admin/config").text
    assert SECRET not in text, "an env-expanded secret is shown by /admin/config"


# ================================================================================================
# More edges of the watcher and the folder reconcile
# ================================================================================================


def test_slow_copy_of_new_plugin_is_not_refused(gateways, mocks):
    """A new plugin file written in two parts 250 ms apart (a slow `cp`, a large Python plugin,
    a network file system): the reload must wait for the completed write, not refuse the half
    file it sees after the Create event."""
    gw, a, b = flip_gateway(gateways, mocks)
    data = HOSTILE.read_bytes()
    mark = gw.log_mark()
    with open(gw.plugin_dir / "hostile.wasm", "wb") as f:
        f.write(data[: len(data) // 3])
        f.flush()
        time.sleep(0.25)
        f.write(data[len(data) // 3:])
    poll(lambda: "hostile" in loaded(gw), DETECT, what="hostile loaded")
    refusals = [ln for ln in gw.stderr_since(mark).splitlines() if "refused" in ln]
    assert not refusals, f"a file still being written was refused: {refusals}"
    assert admin_plugins(gw)["rejected"] == []


@pytest.mark.parametrize("newcomer", ["flip-router-copy.wasm", "zz-flip-router.wasm"])
def test_second_file_with_a_loaded_name_does_not_displace_it(gateways, mocks, newcomer):
    """Dropping another file whose plugin has the name of a loaded one (here flip-router v2
    under another file name) is refused; the loaded plugin keeps serving, whatever the new file
    is called (the file name must not decide by sort order)."""
    gw, a, b = flip_gateway(gateways, mocks)
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(20)
        mark = gw.log_mark()
        shutil.copyfile(V2, gw.plugin_dir / newcomer)
        gw.wait_for_log(re.compile(r"refused|reloaded"), since=mark, timeout=DETECT)
        time.sleep(0.3)
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}, (
        f"{newcomer} displaced the loaded flip-router: {load.providers_between(0)}")
    fr = loaded(gw)["flip-router"]
    assert fr["version"] == "1.0.0" and fr["source"].endswith("/flip-router.wasm"), fr
    rejected = [r["file"].rsplit("/", 1)[-1] for r in admin_plugins(gw)["rejected"]]
    assert rejected == [newcomer], rejected
    refusals = [ln for ln in gw.stderr_since(mark).splitlines() if "refused" in ln]
    assert len(refusals) == 1 and newcomer in refusals[0], refusals


def test_config_deleted_then_restored(gateways, mocks):
    gw, a, b = flip_gateway(gateways, mocks)
    text = gw.config_path.read_text()
    with Load(gw, "flip", max_seconds=15) as load:
        load.wait_count(20)
        mark = gw.log_mark()
        gw.config_path.unlink()
        line = gw.wait_for_log("reload refused", since=mark, timeout=DETECT)
        assert "gateway.toml" in line, line
        load.wait_count(len(load.snapshot()) + 20)
        mark = gw.log_mark()
        gw.config_path.write_text(text)
        gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
        load.wait_count(len(load.snapshot()) + 20)
    load.assert_no_failures()
    assert load.providers_between(0) == {"mock-a"}


def catalog_text(mock) -> str:
    return to_toml({"providers": {"mock-c": {
        "adapter": "openai-compatible", "base_url": mock.base_url, "api_key_env": "MOCK_C_KEY",
        "models": ["gpt-c"]}}})


@pytest.mark.parametrize("when", ["at-start", "added-by-reload"])
def test_catalog_file_is_watched(gateways, mocks, when):
    """A catalog file's change is picked up like the config's, also for a catalog the config
    started naming in a later reload."""
    c, d = mocks.add("mock-c"), mocks.add("mock-d", api_key="sk-mock-c-secret")

    def with_catalog(cfg):
        cfg["models"]["cat"] = {"targets": ["mock-c/gpt-c"]}
        cfg["catalog"] = [str(path)]

    # In a folder of its own (not the config's), so it needs a watch of its own.
    path = gateways.root / f"catalogs-{when}" / "providers.toml"
    path.parent.mkdir(parents=True)
    path.write_text(catalog_text(c))
    if when == "at-start":
        gw, a, b = flip_gateway(gateways, mocks, env=keys_for(c), extra=with_catalog)
    else:
        gw, a, b = flip_gateway(gateways, mocks, env=keys_for(c))
        cfg = read_config(gw)
        with_catalog(cfg)
        mark = gw.log_mark()
        write_config(gw, cfg)
        gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    r = serve_once(gw, "cat")
    assert r.status_code == 200 and r.text.count("hello from mock-c") == 1, r.text
    # Point mock-c at mock-d's server, in the catalog only.
    mark = gw.log_mark()
    t_write = time.monotonic()
    path.write_text(catalog_text(d))
    gw.wait_for_log(re.compile(r"reloaded|reload refused"), since=mark, timeout=DETECT)
    latency = wait_reachable_on(gw, "cat", "hello from mock-d", t_write)
    LATENCIES[f"catalog-{when}"] = latency
    assert latency <= SWITCH_BUDGET


def wait_reachable_on(gw: Gateway, model: str, needle: str, since: float,
                      timeout: float = DETECT) -> float:
    deadline = time.monotonic() + timeout
    with gw.http() as h:
        while True:
            r = h.post("/v1/chat/completions", json=chat_body(model))
            if r.status_code == 200 and needle in r.text:
                return time.monotonic() - since
            if time.monotonic() > deadline:
                raise AssertionError(f"{model}: no answer containing {needle!r} {timeout}s after "
                                     f"the write; last {r.status_code} {r.text[:200]}")
            time.sleep(0.01)


def test_burst_of_writes_is_debounced_and_last_write_wins(gateways, mocks):
    """Ten config writes 10 ms apart (an editor, a deploy script): a few reloads at most, and
    the gateway ends on the last version."""
    gw, a, b = flip_gateway(gateways, mocks)
    cfg = read_config(gw)
    mark = gw.log_mark()
    written = []
    for i in range(10):
        cfg["models"]["smart"]["targets"] = (["mock-b/gpt-b", "mock-a/gpt-a"] if i % 2 else
                                             ["mock-a/gpt-a", "mock-b/gpt-b"])
        write_config(gw, cfg)
        written.append(time.monotonic())
        time.sleep(0.01)
    # A starved test process may leave more than the debounce between two writes: each such
    # gap may (rightly) cost one more reload.
    slow_gaps = sum(1 for x, y in zip(written, written[1:]) if y - x > 0.04)
    # The last write puts mock-b first.
    t_last = time.monotonic()
    latency = wait_reachable_on(gw, "smart", "hello from mock-b", t_last)
    time.sleep(0.3)  # any late reload would show up by now
    reloads = [ln for ln in gw.stderr_since(mark).splitlines() if "reloaded" in ln]
    assert 1 <= len(reloads) <= 2 + slow_gaps, (
        f"{len(reloads)} reloads for one burst of 10 writes ({slow_gaps} gaps over 40 ms)")
    for _ in range(5):
        assert serve_once(gw, "smart").headers["x-freeway-provider"] == "mock-b"
    LATENCIES["burst-last-write"] = latency


@pytest.mark.parametrize("change", ["admin-off-public", "admin-listener-added"])
def test_admin_exposure_change_needs_restart_is_applied_or_warned(gateways, mocks, change):
    """Where the admin API is served is decided at start. A reload that changes it must not be
    silently ignored: either it takes effect or a warning says a restart is needed (as the
    host does for server.listen). Above all, turning on_public_listener off must not leave the
    admin API on the public listener without a word."""
    def setup(cfg):
        cfg["admin"] = ({"api_key_env": "ADMIN_KEY", "on_public_listener": True}
                        if change == "admin-off-public" else {"api_key_env": "ADMIN_KEY"})

    gw, a, b = flip_gateway(gateways, mocks, env={"ADMIN_KEY": ADMIN_KEY}, extra=setup)
    cfg = read_config(gw)
    cfg["admin"] = ({"api_key_env": "ADMIN_KEY"} if change == "admin-off-public" else
                    {"api_key_env": "ADMIN_KEY", "listen": "127.0.0.1:0"})
    mark = gw.log_mark()
    write_config(gw, cfg)
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    time.sleep(0.1)
    warned = [ln for ln in gw.stderr_since(mark).splitlines()
              if "WARN" in ln and "admin" in ln and "restart" in ln]
    if change == "admin-off-public":
        with gw.http() as h:
            status = h.get("/admin/plugins",
                           headers={"authorization": f"Bearer {ADMIN_KEY}"}).status_code
        assert status == 404 or warned, (
            f"on_public_listener turned off by a reload, yet the public listener still serves "
            f"/admin/plugins ({status}) and nothing was logged")
    else:
        new_line = [ln for ln in gw.stdout_lines if ln.startswith("freeway admin listening")]
        assert new_line or warned, ("admin.listen added by a reload: no admin listener and no "
                                    "warning that a restart is needed")


def test_plugin_folder_swapped_wholesale(gateways, mocks):
    """Deploying a new plugin folder by renaming it into place (the way volume and
    symlink-swap deploys do): the new folder's contents must be picked up, and later changes in
    it too."""
    gw, a, b = flip_gateway(gateways, mocks)
    d = gw.plugin_dir
    staged = d.with_name("plugins.new")
    shutil.copytree(d, staged)
    shutil.copyfile(V2, staged / "flip-router.wasm")
    mark = gw.log_mark()
    t_write = time.monotonic()
    d.rename(d.with_name("plugins.old"))
    staged.rename(d)
    latency = wait_reachable_on(gw, "flip", "hello from mock-b", t_write)
    LATENCIES["folder-swap"] = latency
    # ...and the watcher follows the new folder.
    mark = gw.log_mark()
    replace_atomically(d / "flip-router.wasm", V1)
    gw.wait_for_log("reloaded", since=mark, timeout=DETECT)
    assert serve_once(gw, "flip").headers["x-freeway-provider"] == "mock-a"
