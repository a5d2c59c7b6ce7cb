"""Plugin authoring through the real binary, the way a newcomer does it:
`freeway plugin new` for every language × kind (12 projects) → the project's own one-command
build (`make`) → `freeway plugin check` → `freeway plugin test` on the project's golden cases →
all 12 loaded into one gateway that serves requests through each of them.

Also: `plugin check`'s exit codes and messages for files that are not loadable plugins, and the
contract-version policy (same compatibility line loads, another line is refused naming both).

Toolchains: Rust (wasm32-wasip2), componentize-py (the venv of plugins/python/keyword-guard,
reused via FREEWAY_PY_VENV), componentize-qjs (npm), and for C Debian's clang + wasi-libc with
`wit-bindgen` and `wasm-tools` (installed by `make plugin-toolchains`). Builds share one Cargo
target folder, so only the first Rust project compiles wit-bindgen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import mock_openai as mo
from harness import (FREEWAY_BIN, REPO, TEST_PLUGINS_DIR, Gateway, base_config, error_body,
                     key_env, keys_for)

LANGS = ("rust", "python", "js", "c")
KINDS = ("provider", "router", "filter")
COMBOS = [(lang, kind) for lang in LANGS for kind in KINDS]
PY_VENV = REPO / "plugins/python/keyword-guard/.venv"
WIT_VERSION = re.search(r"package freeway:plugin@([0-9.]+);",
                        (REPO / "wit/freeway.wit").read_text()).group(1)


def freeway(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(FREEWAY_BIN), *args], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=ENV)


# What an author's shell would have, plus: one Cargo target folder for the Rust projects, the
# repository's componentize-py venv, and the run's compiled-plugin cache for `freeway plugin`.
ENV = dict(os.environ)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, plugin_cache: Path) -> dict[tuple[str, str], Path]:
    """Generate and build all 12 projects; return each one's .wasm. Prints build times."""
    root = tmp_path_factory.mktemp("authoring")
    ENV.update(CARGO_TARGET_DIR=str(root / "cargo-target"), FREEWAY=str(FREEWAY_BIN),
               FREEWAY_CACHE_DIR=str(plugin_cache))
    if (PY_VENV / "bin/componentize-py").is_file():
        ENV["FREEWAY_PY_VENV"] = str(PY_VENV)
    env = ENV
    out: dict[tuple[str, str], Path] = {}
    failures = []
    for lang, kind in COMBOS:
        name = f"{lang}-{kind}"
        project = root / name
        made = freeway("plugin", "new", name, "--kind", kind, "--lang", lang, "--dir", str(project))
        assert made.returncode == 0, made.stderr
        started = time.monotonic()
        proc = subprocess.run(["make"], cwd=project, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=900)
        took = time.monotonic() - started
        print(f"built {name} in {took:.1f} s")
        if proc.returncode != 0:
            failures.append(f"{name}: make exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            continue
        out[(lang, kind)] = project / f"{name}.wasm"
    assert not failures, "\n\n".join(failures)
    return out


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory, plugin_cache: Path) -> list[str]:
    """`--config` for check and test: the run's compiled-plugin cache, so each 18 MB Python
    component is compiled once for every command and gateway of the run."""
    path = tmp_path_factory.mktemp("check") / "gateway.toml"
    path.write_text(f'[plugins]\ndir = "."\ncache_dir = "{plugin_cache}"\n')
    return ["--config", str(path)]


@pytest.mark.parametrize("lang,kind", COMBOS, ids=[f"{l}-{k}" for l, k in COMBOS])
def test_generated_project_checks_and_passes_its_own_cases(built, cached, lang, kind):
    wasm = built[(lang, kind)]
    name = f"{lang}-{kind}"
    assert (wasm.parent / "README.md").read_text().count("\n1. **") == 1
    check = freeway("plugin", "check", str(wasm), "--kind", kind, *cached)
    assert check.returncode == 0, f"{check.stdout}\n{check.stderr}"
    for line in (f"name:        {name}", f"kind:        {kind}", "version:     0.1.0",
                 f"contract:    freeway:plugin@{WIT_VERSION}", "settings:    {} accepted"):
        assert line in check.stdout, check.stdout
    assert re.search(r"^sha256:\s+[0-9a-f]{64}$", check.stdout, re.M), check.stdout
    assert re.search(r"^peak memory: \d+\.\d MiB of 64 MiB$", check.stdout, re.M), check.stdout
    calls = {"provider": ["build-request", "parse-response", "read-rate-limits", "stream"],
             "router": ["route"], "filter": ["on-request", "on-response", "stream-filter"]}[kind]
    for call in calls:
        assert re.search(rf"^  {call}\s+\d+\.\d µs  ", check.stdout, re.M), check.stdout
    # The project's golden cases (the same JSON for every language of a kind).
    cases = freeway("plugin", "test", str(wasm), str(wasm.parent / "cases"), *cached)
    assert cases.returncode == 0, f"{cases.stdout}\n{cases.stderr}"
    assert re.search(r"^\d+ passed, 0 failed$", cases.stdout, re.M), cases.stdout
    # `make test`: its unit tests in its own language, then the same golden cases.
    tested = subprocess.run(["make", "test"], cwd=wasm.parent, env=ENV, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert tested.returncode == 0, f"{tested.stdout[-3000:]}\n{tested.stderr[-3000:]}"
    assert re.search(r"^\d+ passed, 0 failed$", tested.stdout, re.M), tested.stdout[-2000:]
    # --kind names the world it must be.
    other = "router" if kind != "router" else "filter"
    wrong = freeway("plugin", "check", str(wasm), "--kind", other, *cached)
    assert wrong.returncode == 3, wrong.stderr
    assert f"is a {kind} plugin ('{name}'), not a {other} plugin" in wrong.stderr


def authoring_config(ms: dict[str, mo.MockOpenAI]) -> dict[str, Any]:
    providers = {}
    models: dict[str, Any] = {}
    for lang in LANGS:
        # Each generated adapter fronts its own mock.
        providers[f"up-{lang}"] = {"adapter": f"{lang}-provider", "base_url": ms[lang].base_url,
                                   "api_key_env": key_env(ms[lang].name), "models": ["m"]}
        models[f"via-{lang}"] = {"targets": [f"up-{lang}/m"]}
        models[f"filtered-{lang}"] = {"targets": ["pricey/m"], "filters": [f"{lang}-filter"]}
        # The generated routers try the cheapest ready target first.
        models[f"cheapest-{lang}"] = {"router": f"{lang}-router", "targets": ["pricey/m", "cheap/m"]}
    providers["pricey"] = {"adapter": "rust-provider", "base_url": ms["pricey"].base_url,
                           "api_key_env": key_env(ms["pricey"].name),
                           "models": {"m": {"input_price": 5.0, "output_price": 15.0}}}
    providers["cheap"] = {"adapter": "rust-provider", "base_url": ms["cheap"].base_url,
                          "api_key_env": key_env(ms["cheap"].name),
                          "models": {"m": {"input_price": 0.1, "output_price": 0.2}}}
    cfg = base_config(providers=providers, models=models)
    cfg["pipeline"]["default_router"] = "rust-router"
    # Python and JavaScript guests are reused across requests (a fresh interpreter per call
    # costs milliseconds), under a deadline that allows for their first call.
    cfg["plugins"]["overrides"] = {f"{lang}-{kind}": {"instances": "pooled", "pool_size": 2,
                                                      "timeout_ms": 2000}
                                   for lang in ("python", "js") for kind in KINDS}
    return cfg


@pytest.fixture(scope="module")
def ms(module_mocks) -> dict[str, mo.MockOpenAI]:
    return {name: module_mocks.add(name) for name in (*LANGS, "pricey", "cheap")}


@pytest.fixture(scope="module")
def gw(built, ms, module_gateways) -> Gateway:
    files = {wasm.name: wasm for wasm in built.values()}
    return module_gateways.start(authoring_config(ms), env=keys_for(*ms.values()), plugins=(),
                                 plugin_files=files)


@pytest.fixture
def m(ms, gw) -> dict[str, mo.MockOpenAI]:
    for mock in ms.values():
        mock.reset()
    return ms


@pytest.mark.parametrize("lang", LANGS)
def test_generated_adapter_serves_json_and_streams(gw, m, lang):
    client = gw.client()
    answer = client.chat.completions.create(model=f"via-{lang}",
                                            messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == f"hello from {lang}"
    assert answer.usage.prompt_tokens > 0
    sent = m[lang].chat_requests[-1]
    assert sent.json["model"] == "m" and sent.authorization == f"Bearer {m[lang].api_key}"
    stream = client.chat.completions.create(model=f"via-{lang}", stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"hello from {lang}"
    assert m[lang].chat_requests[-1].json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("lang", LANGS)
def test_generated_router_tries_the_cheapest_first(gw, m, lang):
    resp = gw.http().post("/v1/chat/completions", json={
        "model": f"cheapest-{lang}", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-freeway-provider"] == "cheap"
    assert len(m["cheap"].chat_requests) == 1 and not m["pricey"].chat_requests


@pytest.mark.parametrize("lang", LANGS)
def test_generated_filter_blocks_its_keyword(gw, m, lang):
    http = gw.http()
    blocked = http.post("/v1/chat/completions", json={
        "model": f"filtered-{lang}", "messages": [{"role": "user", "content": "the FORBIDDEN plan"}]})
    assert blocked.status_code == 400, blocked.text
    assert 'blocked word "forbidden"' in error_body(blocked)["message"]
    assert not m["pricey"].chat_requests
    allowed = http.post("/v1/chat/completions", json={
        "model": f"filtered-{lang}", "messages": [{"role": "user", "content": "a fine plan"}]})
    assert allowed.status_code == 200, allowed.text


def rewrite_contract(wasm: Path, dest: Path, version: str) -> Path:
    """The component as if built against freeway:plugin@`version` (same length as the real one:
    the interface names are strings inside the binary)."""
    data = wasm.read_bytes()
    old = f"@{WIT_VERSION}".encode()
    assert len(version) == len(WIT_VERSION)
    new = re.sub(rb"(freeway:plugin/[a-z-]+)" + re.escape(old), rb"\1@" + version.encode(), data)
    assert new != data
    dest.write_bytes(new)
    return dest


def test_contract_versions_on_the_same_line_load_others_are_refused(built, tmp_path):
    major, minor, patch = (int(p) for p in WIT_VERSION.split("."))
    assert major == 0, "the policy below is the 0.x one: update this test with the contract"
    wasm = built[("rust", "router")]
    # Newer and (when there is one) older patch releases of the line load.
    same_line = [f"0.{minor}.{(patch + 7) % 10}"] + ([f"0.{minor}.{patch - 1}"] if patch else [])
    for version in same_line:
        check = freeway("plugin", "check", str(rewrite_contract(wasm, tmp_path / f"{version}.wasm", version)))
        assert check.returncode == 0, f"{version}: {check.stderr}"
        assert f"contract:    freeway:plugin@{version} (this gateway speaks {WIT_VERSION})" in check.stdout
    for version in (f"0.{minor - 1}.9" if minor else "0.0.9", f"0.{minor + 1}.0"):
        check = freeway("plugin", "check", str(rewrite_contract(wasm, tmp_path / f"{version}.wasm", version)))
        assert check.returncode == 4, f"{version}: {check.returncode} {check.stderr}"
        assert (f"built for freeway:plugin@{version}, but this gateway speaks "
                f"freeway:plugin@{WIT_VERSION} (compatible: the same 0.{minor}.x line)") in check.stderr


def test_check_exit_codes_name_what_is_wrong(built, tmp_path):
    # Not WebAssembly at all.
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm")
    r = freeway("plugin", "check", str(junk))
    assert r.returncode == 3 and "not a valid WebAssembly component" in r.stderr, r.stderr
    # A file that is not there.
    r = freeway("plugin", "check", str(tmp_path / "missing.wasm"))
    assert r.returncode == 1 and "cannot read" in r.stderr, r.stderr
    # A component whose `route` export is missing: the name renamed inside the binary.
    wasm = built[("c", "router")].read_bytes()
    assert wasm.count(b"route") >= 1
    broken = tmp_path / "missing-export.wasm"
    broken.write_bytes(wasm.replace(b"\x05route", b"\x05rowte"))
    r = freeway("plugin", "check", str(broken))
    assert r.returncode == 5, f"{r.returncode} {r.stderr}"
    assert "does not export the router world" in r.stderr, r.stderr
    # A plugin that traps: the testing `hostile` adapter traps when asked to.
    hostile = TEST_PLUGINS_DIR / "test-guard.wasm"
    r = freeway("plugin", "check", str(hostile), "--settings", '{"behaviour": "trap"}')
    assert r.returncode == 6, f"{r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "trapped in on-request" in r.stderr, r.stderr
    # Bad settings JSON is a usage error.
    r = freeway("plugin", "check", str(hostile), "--settings", "[1]")
    assert r.returncode == 1 and "--settings must be a JSON object" in r.stderr


def test_golden_case_failures_say_where_the_answer_differs(built, cached, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "wrong.json").write_text(json.dumps({
        "name": "expects the expensive one first", "call": "route",
        "input": {"candidates": [{"input_price": 9}, {"input_price": 1}]},
        "expect": {"order": [0, 1]}}))
    r = freeway("plugin", "test", str(built[("js", "router")]), str(cases), *cached)
    assert r.returncode == 1, r.stdout
    assert "FAIL wrong.json: expects the expensive one first" in r.stdout
    assert "$.order[0]: expected 0, got 1" in r.stdout
    assert "0 passed, 1 failed" in r.stdout
    # A case for another world fails rather than passing vacuously.
    (cases / "wrong.json").write_text(json.dumps({"call": "on-request", "input": {"body": "{}"},
                                                  "expect": {"verdict": "allow"}}))
    r = freeway("plugin", "test", str(built[("js", "router")]), str(cases), *cached)
    assert r.returncode == 1 and "on-request is a filter call, but js-router is a router plugin" in r.stdout


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    r = freeway("plugin", "new", "My_Router", "--kind", "router", "--lang", "rust", cwd=tmp_path)
    assert r.returncode == 1 and "is not a plugin name" in r.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    r = freeway("plugin", "new", "taken", "--kind", "router", "--lang", "rust", cwd=tmp_path)
    assert r.returncode == 1 and "already exists and is not empty" in r.stderr
    r = freeway("plugin", "new", "x", "--kind", "router", "--lang", "go", cwd=tmp_path)
    assert r.returncode == 2 and "invalid value 'go'" in r.stderr


@pytest.mark.parametrize("plugin,cases", [
    # The templates' provider cases describe what the bundled adapter does for OpenAI-compatible
    # upstreams, so a generated adapter starts out as a drop-in for it.
    ("openai-compatible", "plugins/templates/cases/provider"),
    ("anthropic", "plugins/anthropic/cases"),
])
def test_bundled_adapters_pass_their_recorded_cases(plugin, cases):
    r = freeway("plugin", "test", str(REPO / "plugins/dist" / f"{plugin}.wasm"), str(REPO / cases))
    assert r.returncode == 0, r.stdout
    assert re.search(r"^\d+ passed, 0 failed$", r.stdout, re.M), r.stdout
