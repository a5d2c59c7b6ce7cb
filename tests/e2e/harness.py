"""Harness that runs the real `freeway` binary against local mock upstreams.

Everything binds 127.0.0.1 port 0: the gateway prints the port it got
(`freeway listening on http://127.0.0.1:PORT`) and the mocks report theirs. A gateway's stderr is
collected by a reader thread, so tests can wait for a log line and failures show what the gateway
said.

Paths come from the environment so CI and developers can point elsewhere:
  FREEWAY_BIN               the gateway binary (default target/release/freeway)
  FREEWAY_PLUGINS_DIR       bundled plugins (default plugins/dist)
  FREEWAY_TEST_PLUGINS_DIR  testing plugins (default target/test-plugins)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Callable, Optional, Union

import httpx
import openai
import pytest

from mock_openai import MockOpenAI

REPO = Path(__file__).resolve().parents[2]
FREEWAY_BIN = Path(os.environ.get("FREEWAY_BIN", REPO / "target/release/freeway"))
PLUGINS_DIR = Path(os.environ.get("FREEWAY_PLUGINS_DIR", REPO / "plugins/dist"))
TEST_PLUGINS_DIR = Path(os.environ.get("FREEWAY_TEST_PLUGINS_DIR", REPO / "target/test-plugins"))

BUNDLED = ("openai-compatible", "priority-fallback")
# Bundled adapters for non-OpenAI APIs: built into FREEWAY_PLUGINS_DIR with the others, but only
# copied into a gateway's plugin folder when a test asks for them.
ADAPTERS = ("anthropic", "gemini")

#: The upstream model each bundled adapter's mock serves in the tests that cover every adapter.
ADAPTER_MODELS = {"openai-compatible": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5",
                  "gemini": "gemini-2.5-flash"}


def adapter_provider(kind: str, mock: Any, models: list[str]) -> tuple[str, dict, dict]:
    """A provider for one adapter's mock: its name (`openai`, `anthropic`, `gemini`), its
    `[providers]` entry and the environment holding its key."""
    name = kind.split("-")[0]
    key_env = f"{name.upper()}_KEY"
    return name, {"adapter": kind, "base_url": mock.base_url, "api_key_env": key_env,
                  "models": models}, {key_env: mock.api_key}
TESTING = ("hostile", "hostile-router", "test-guard")
# Bundled filters: built into FREEWAY_PLUGINS_DIR by `make plugins`, copied into a gateway's
# plugin folder only when a test asks for them.
FILTERS = ("pii",)
# Bundled context fitters and the cascade router (0.2.1), copied in when a test asks for them.
FITTERS = ("middle-out", "summarize", "cascade")
# Plugins written in Python and JavaScript, built by `make test-plugins` (polyglot-plugins).
POLYGLOT = ("keyword-guard", "tag-router")

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
LISTEN_RE = re.compile(r"^freeway listening on (http://127\.0\.0\.1:(\d+))$")
# Printed on a second stdout line only when `[admin] listen` is configured.
ADMIN_LISTEN_RE = re.compile(r"^freeway admin listening on (http://127\.0\.0\.1:(\d+))$")
# The same lines from a gateway told to listen on every interface (exposure tests): clients
# still reach it through the loopback address.
ANY_LISTEN_RE = re.compile(r"^freeway listening on http://0\.0\.0\.0:(\d+)$")
ANY_ADMIN_LISTEN_RE = re.compile(r"^freeway admin listening on http://0\.0\.0\.0:(\d+)$")
# Generous: the first start of a session compiles every plugin (later starts hit the cache).
START_TIMEOUT = float(os.environ.get("FREEWAY_START_TIMEOUT", "90"))

# Environment variables a test's gateway must not inherit from the developer's shell.
_SCRUBBED_PREFIXES = ("MOCK_", "FREEWAY_TEST_", "OPENAI_", "GROQ_", "CEREBRAS_", "MISTRAL_",
                      "DEEPSEEK_", "OPENROUTER_", "OLLAMA_")


# ---------------------------------------------------------------------------------------------
# TOML writing (the stdlib reads TOML but does not write it)
# ---------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


# Tables written inline (`settings = {...}`) rather than as [sections]: they are values.
_INLINE_KEYS = {"settings"}


def to_toml(doc: dict[str, Any]) -> str:
    lines: list[str] = []

    def table(prefix: list[str], d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items()
                   if not isinstance(v, dict) or k in _INLINE_KEYS}
        tables = {k: v for k, v in d.items() if isinstance(v, dict) and k not in _INLINE_KEYS}
        if prefix and (scalars or not tables):
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {_value(v)}")
        if prefix and (scalars or not tables):
            lines.append("")
        for k, v in tables.items():
            table(prefix + [k], v)

    table([], doc)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The gateway process
# ---------------------------------------------------------------------------------------------


# Every gateway started and not yet stopped; conftest shows their stderr when a test fails.
LIVE: list["Gateway"] = []


class Gateway:
    """A running `freeway serve`."""

    def __init__(self, proc: subprocess.Popen, config_path: Path) -> None:
        LIVE.append(self)
        self.proc = proc
        self.config_path = config_path
        # How it was started, so GatewayFactory.restart can start it again the same way.
        self.env: Optional[dict[str, str]] = None
        self.cwd: Optional[Path] = None
        self.listen: Optional[str] = "127.0.0.1:0"
        self.url = ""
        self.admin_url = ""  # set by wait_admin(), when `[admin] listen` is configured
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self._stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any, sink: list[str]) -> None:
        for line in iter(stream.readline, ""):
            # Log lines are matched as text: colour codes (if the gateway emits any) are dropped.
            with self._cond:
                sink.append(ANSI_RE.sub("", line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    # -- output -------------------------------------------------------------------------------

    @property
    def stdout_lines(self) -> list[str]:
        with self._cond:
            return list(self._stdout)

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self._stderr)

    def stderr_since(self, mark: int) -> str:
        with self._cond:
            return "\n".join(self._stderr[mark:])

    def log_mark(self) -> int:
        """A position in stderr; `wait_for_log(..., since=mark)` only looks after it."""
        with self._cond:
            return len(self._stderr)

    def wait_for_log(self, pattern: Union[str, re.Pattern], *, since: int = 0,
                     timeout: float = 5.0) -> str:
        """Wait until a stderr line (after `since`) matches; return it."""
        rx = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._stderr[since:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no stderr line matching {rx.pattern!r} within {timeout}s; stderr:\n"
                        + "\n".join(self._stderr[-80:]))
                self._cond.wait(left)

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stdout:
                if self.proc.poll() is not None and not self._threads[0].is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
            first = self._stdout[0] if self._stdout else None
        if first is None:
            code = self.proc.poll()
            self.stop()
            state = f"exited with {code}" if code is not None else f"silent after {timeout}s"
            pytest.fail(f"gateway did not start ({state}); stderr:\n{self.stderr}", pytrace=False)
        m = LISTEN_RE.match(first)
        any_m = ANY_LISTEN_RE.match(first)
        if any_m:
            self.url = f"http://127.0.0.1:{any_m.group(1)}"
            return
        if not m:
            self.stop()
            pytest.fail(f"unexpected first stdout line {first!r} (want 'freeway listening on "
                        f"http://127.0.0.1:PORT'); stderr:\n{self.stderr}", pytrace=False)
        self.url = m.group(1)

    def wait_admin(self, timeout: float = 10.0) -> str:
        """Wait for the `freeway admin listening on http://127.0.0.1:PORT` stdout line (printed
        after the public one when `[admin] listen` is set); remember and return its URL."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._stdout:
                    m = ADMIN_LISTEN_RE.match(line)
                    if m:
                        self.admin_url = m.group(1)
                        return self.admin_url
                    m = ANY_ADMIN_LISTEN_RE.match(line)
                    if m:
                        self.admin_url = f"http://127.0.0.1:{m.group(1)}"
                        return self.admin_url
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._threads[0].is_alive()):
                    raise AssertionError(
                        f"no 'freeway admin listening on' stdout line within {timeout}s; "
                        f"stdout={self._stdout!r}; stderr:\n" + "\n".join(self._stderr[-40:]))
                self._cond.wait(min(left, 0.2))

    @property
    def plugin_dir(self) -> Path:
        """The plugin folder GatewayFactory.write made for this gateway."""
        return self.config_path.parent / "plugins"

    # -- clients ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL clients are given."""
        return self.url + "/v1"

    def client(self, **kw: Any) -> openai.OpenAI:
        kw.setdefault("timeout", 30.0)
        return openai.OpenAI(base_url=self.base_url, api_key="anything", max_retries=0, **kw)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def admin(self, key: Optional[str] = None) -> httpx.Client:
        """A client for the admin listener (see wait_admin), with `Authorization: Bearer key`."""
        assert self.admin_url, "no admin listener (configure [admin] listen; see wait_admin)"
        headers = {"authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.admin_url, timeout=30.0, headers=headers)

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        if self in LIVE:
            LIVE.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(2)
        return self.proc.returncode


def gateway_env(env: Optional[dict[str, str]]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    base.update(env or {})
    return base


def plugin_path(plugin: str) -> Path:
    """Where the built `.wasm` of `plugin` is: bundled plugins and adapters, or testing ones."""
    bundled = plugin in BUNDLED or plugin in ADAPTERS or plugin in FILTERS or plugin in FITTERS
    return (PLUGINS_DIR if bundled else TEST_PLUGINS_DIR) / f"{plugin}.wasm"


def check_artifacts(plugins: tuple[str, ...] | list[str]) -> None:
    missing = [] if FREEWAY_BIN.is_file() else [str(FREEWAY_BIN)]
    for p in plugins:
        src = plugin_path(p)
        if not src.is_file():
            missing.append(str(src))
    if missing:
        pytest.fail("missing build artifacts (run `make build plugins test-plugins`): "
                    + ", ".join(missing), pytrace=False)


class GatewayFactory:
    """Writes a config and a plugin folder under `root`, starts gateways, stops them all."""

    def __init__(self, root: Path, cache_dir: Path) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self.running: list[Gateway] = []
        self._n = 0

    def write(self, config: Union[dict[str, Any], str], *,
              plugins: tuple[str, ...] | list[str] = BUNDLED,
              plugin_files: Optional[dict[str, Path]] = None) -> Path:
        """Prepare a folder with `plugins` copied in and `config` written; return the config path.

        `plugin_files` copies more files in under other names ({"flip-router.wasm": src}).
        A dict config gets `[plugins] dir/cache_dir` and `[server]` filled in when absent."""
        self._n += 1
        d = self.root / f"gw{self._n}"
        plugin_dir = d / "plugins"
        plugin_dir.mkdir(parents=True)
        check_artifacts(plugins)
        for p in plugins:
            src = plugin_path(p)
            shutil.copy(src, plugin_dir / f"{p}.wasm")
        for name, src in (plugin_files or {}).items():
            if not Path(src).is_file():
                pytest.fail(f"missing build artifact (run `make test-plugins`): {src}", pytrace=False)
            shutil.copy(src, plugin_dir / name)
        if isinstance(config, dict):
            config = json.loads(json.dumps(config))  # private deep copy
            server = config.setdefault("server", {})
            server.setdefault("listen", "127.0.0.1:0")
            server.setdefault("max_body_bytes", 65536)
            pl = config.setdefault("plugins", {})
            pl.setdefault("dir", str(plugin_dir))
            pl.setdefault("cache_dir", str(self.cache_dir))
            text = to_toml(config)
        else:
            text = config.replace("@PLUGINS_DIR@", str(plugin_dir)).replace(
                "@CACHE_DIR@", str(self.cache_dir))
        path = d / "gateway.toml"
        path.write_text(text)
        return path

    def spawn(self, config_path: Path, env: Optional[dict[str, str]] = None,
              cwd: Optional[Path] = None, *, listen: Optional[str] = "127.0.0.1:0",
              honour_file_modes: bool = False) -> subprocess.Popen:
        """Run `freeway serve --config config_path` (with `--listen listen` unless None, so
        `server.listen` applies). `honour_file_modes`: when the tests run as root, start the
        gateway without root's power to write files whose mode says read-only (as any other
        user would be), so a `chmod 0444` store really is read-only to it."""
        argv = [str(FREEWAY_BIN), "serve", "--config", str(config_path)]
        if listen is not None:
            argv += ["--listen", listen]
        if honour_file_modes and os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("setpriv (util-linux) is missing: a root gateway ignores file modes")
            caps = "-dac_override,-dac_read_search,-fowner"
            argv = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *argv]
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", env=gateway_env(env),
            cwd=str(cwd or config_path.parent))

    def start(self, config: Union[dict[str, Any], str], *, env: Optional[dict[str, str]] = None,
              plugins: tuple[str, ...] | list[str] = BUNDLED, cwd: Optional[Path] = None,
              plugin_files: Optional[dict[str, Path]] = None,
              listen: Optional[str] = "127.0.0.1:0") -> Gateway:
        path = self.write(config, plugins=plugins, plugin_files=plugin_files)
        gw = Gateway(self.spawn(path, env, cwd, listen=listen), path)
        gw.env, gw.cwd, gw.listen = env, cwd, listen
        self.running.append(gw)
        gw.wait_listening(START_TIMEOUT)
        if isinstance(config, dict) and (config.get("admin") or {}).get("listen"):
            gw.wait_admin()
        return gw

    def launch(self, config_path: Path, *, env: Optional[dict[str, str]] = None,
               cwd: Optional[Path] = None, listen: Optional[str] = "127.0.0.1:0",
               honour_file_modes: bool = False) -> Gateway:
        """Start a gateway on a config already written (by `write`, or edited by the test);
        wait for its admin listener too when the file configures one."""
        gw = Gateway(self.spawn(config_path, env, cwd, listen=listen,
                                honour_file_modes=honour_file_modes), config_path)
        gw.env, gw.cwd, gw.listen = env, cwd, listen
        self.running.append(gw)
        gw.wait_listening(START_TIMEOUT)
        with open(config_path, "rb") as f:
            if (tomllib.load(f).get("admin") or {}).get("listen"):
                gw.wait_admin()
        return gw

    def restart(self, gw: Gateway, *, env: Optional[dict[str, str]] = None) -> Gateway:
        """Stop `gw` with SIGTERM (asserting a clean exit) and start a new gateway on the same
        config file, environment and working folder: what an operator's restart does."""
        code = gw.stop()
        if gw in self.running:
            self.running.remove(gw)
        assert code == 0, f"gateway exited with {code} on SIGTERM; stderr:\n{gw.stderr[-3000:]}"
        return self.launch(gw.config_path, env=gw.env if env is None else env, cwd=gw.cwd,
                           listen=gw.listen)

    def cli(self, config_path: Path, *args: str, env: Optional[dict[str, str]] = None,
            cwd: Optional[Path] = None, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run `freeway ARGS... --config config_path` (e.g. `cli(path, "keys", "list",
        "--json")`) with the gateway's environment; with `check`, assert it exits 0."""
        argv = [str(FREEWAY_BIN), *args, "--config", str(config_path)]
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", env=gateway_env(env),
                              cwd=str(cwd or config_path.parent), timeout=timeout)
        if check:
            assert proc.returncode == 0, (
                f"`freeway {' '.join(args)}` exited with {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def start_refused(self, config: Union[dict[str, Any], str], *,
                      env: Optional[dict[str, str]] = None,
                      plugins: tuple[str, ...] | list[str] = BUNDLED,
                      listen: Optional[str] = "127.0.0.1:0") -> str:
        """Start a gateway on `config` and expect a refusal: it exits non-zero without
        listening and says why on stderr, which is returned."""
        path = self.write(config, plugins=plugins)
        proc = self.spawn(path, env, listen=listen)
        try:
            out, err = proc.communicate(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"gateway kept running on an invalid config; stdout={out!r} stderr={err!r}")
        assert proc.returncode != 0, f"exit code 0 for an invalid config; stderr:\n{err}"
        assert "listening" not in out, out
        assert err.strip(), "the refusal must be explained on stderr"
        return err

    def stop_all(self) -> None:
        for gw in self.running:
            gw.stop()
        self.running.clear()


class Mocks:
    """Named mock upstreams, each expecting its own key."""

    def __init__(self) -> None:
        self.by_name: dict[str, MockOpenAI] = {}

    def one_per_adapter(self, tag: str) -> dict[str, Any]:
        """A started mock upstream for each bundled adapter, keyed by adapter name (names and
        keys carry `tag`), for tests that go through every adapter."""
        from mock_anthropic import MockAnthropic
        from mock_gemini import MockGemini
        return {
            "openai-compatible": self.add(f"{tag}-oai"),
            "anthropic": self.adopt(MockAnthropic(f"{tag}-claude", f"sk-ant-{tag}").start()),
            "gemini": self.adopt(MockGemini(f"{tag}-gem", f"AIza-{tag}").start()),
        }

    def add(self, name: str, api_key: Optional[str] = None) -> MockOpenAI:
        m = MockOpenAI(name, api_key=api_key or f"sk-{name}-secret").start()
        self.by_name[name] = m
        return m

    def adopt(self, mock: Any) -> Any:
        """Register an already started mock of another kind (mock_anthropic, mock_gemini), so
        reset() and stop() cover it too."""
        self.by_name[mock.name] = mock
        return mock

    def __getitem__(self, name: str) -> MockOpenAI:
        return self.by_name[name]

    def reset(self) -> None:
        for m in self.by_name.values():
            m.reset()

    def stop(self) -> None:
        for m in self.by_name.values():
            m.stop()


def key_env(name: str) -> str:
    """The env variable holding mock `name`'s key, e.g. mock-a -> MOCK_A_KEY."""
    return name.upper().replace("-", "_") + "_KEY"


def provider(mock: MockOpenAI, models: list[str], **extra: Any) -> dict[str, Any]:
    """A `[providers.X]` table for an openai-compatible provider served by `mock`."""
    p: dict[str, Any] = {"adapter": "openai-compatible", "base_url": mock.base_url,
                         "api_key_env": key_env(mock.name), "models": models}
    p.update(extra)
    return p


def keys_for(*mocks: MockOpenAI) -> dict[str, str]:
    return {key_env(m.name): m.api_key or "" for m in mocks}


def base_config(**sections: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "plugins": {"defaults": {"instances": "fresh", "pool_size": 4, "timeout_ms": 100,
                                 "memory_mb": 64}},
        "pipeline": {"filters": [], "default_router": "priority-fallback"},
    }
    cfg.update(sections)
    return cfg


def error_body(resp: httpx.Response) -> dict[str, Any]:
    """Assert `resp` carries OpenAI's error shape; return the inner `error` object."""
    assert resp.headers.get("content-type", "").startswith("application/json"), (
        f"error answers are JSON; got content-type {resp.headers.get('content-type')!r}: "
        f"{resp.text[:300]!r}")
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"], err
    return err


def chat_body(model: str = "smart", content: str = "Say hello", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return body


def sse_events(raw: str) -> list[str]:
    """The `data:` payloads of an SSE body, asserting OpenAI framing (`data: X\\n\\n`)."""
    assert raw.endswith("\n\n"), f"SSE body must end with a blank line: {raw[-80:]!r}"
    events = []
    for block in raw.split("\n\n")[:-1]:
        assert block.startswith("data: "), f"unexpected SSE block {block!r}"
        events.append(block[len("data: "):])
    return events


def replace_atomically(dest: Path, data: Union[bytes, Path]) -> None:
    """Write `data` (bytes, or a file's content) next to `dest` under a temporary name that is
    not `*.wasm`/the config's name, then rename it into place: readers see old or new, never
    half a file."""
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    if isinstance(data, Path):
        shutil.copyfile(data, tmp)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, dest)


def poll(cond: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02,
         what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Operations: the store, virtual keys, the ledger, Prometheus metrics
# ---------------------------------------------------------------------------------------------

STORE_NAME = "freeway.db"


def priced(mock: MockOpenAI, model: str, *, input_price: float, output_price: float,
           **info: Any) -> dict[str, Any]:
    """A `[providers.X]` table whose one model carries catalog prices (USD per million
    tokens) and any other catalog facts (`rpd`, ...)."""
    p = provider(mock, [])
    p["models"] = {model: {"input_price": input_price, "output_price": output_price, **info}}
    return p


def cost(prompt_tokens: int, completion_tokens: int, input_price: float,
         output_price: float) -> float:
    """What a request costs by the catalog's prices (USD per million tokens)."""
    return (prompt_tokens * input_price + completion_tokens * output_price) / 1_000_000


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of `sql` on the SQLite file `db` (read by Python's own sqlite3, never written)."""
    con = sqlite3.connect(str(db), timeout=10)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()


def db_tables(db: Path) -> list[str]:
    return [r["name"] for r in db_rows(db, "SELECT name FROM sqlite_master WHERE type='table'")]


def scrape(text: str) -> list[Any]:
    """Every sample of a Prometheus text exposition (parsed by prometheus_client, which must
    accept the whole text)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def sample_sum(samples: list[Any], name: str, **labels: str) -> Optional[float]:
    """The sum of the samples called `name` whose labels include `labels`; None if none."""
    hits = [s.value for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(hits) if hits else None


def clear_of_a_minute_boundary() -> None:
    """Gateway keys' rpm/tpm count in calendar minutes (unix time / 60): a test whose requests
    straddle a minute's end would see the count start again. Wait out the last 3 s of a
    minute."""
    left = 60 - time.time() % 60
    if left < 3:
        time.sleep(left + 0.05)


def utc_midnight_in() -> float:
    """Seconds from now to the next UTC midnight (a daily allowance's reset)."""
    return 86400 - time.time() % 86400


class Ops:
    """A gateway deployment with a store: its config file, environment, the `freeway` CLI on
    that config, and (after `launch`) the running gateway. `factory.write` the config first so
    keys can be created before the gateway starts, as an operator would."""

    def __init__(self, factory: GatewayFactory, config: dict[str, Any], env: dict[str, str],
                 *, plugins: tuple[str, ...] | list[str] = BUNDLED) -> None:
        self.factory = factory
        self.env = env
        self.path = factory.write(config, plugins=plugins)
        self.gw: Optional[Gateway] = None

    @property
    def db(self) -> Path:
        return self.path.parent / STORE_NAME

    def launch(self, **kw: Any) -> Gateway:
        self.gw = self.factory.launch(self.path, env=self.env, **kw)
        return self.gw

    def restart(self) -> Gateway:
        assert self.gw is not None
        self.gw = self.factory.restart(self.gw)
        return self.gw

    def cli(self, *args: str, check: bool = True, cwd: Optional[Path] = None
            ) -> subprocess.CompletedProcess:
        return self.factory.cli(self.path, *args, env=self.env, check=check, cwd=cwd)

    def create_key(self, name: str, *flags: str) -> dict[str, Any]:
        """`freeway keys create --name NAME FLAGS --json`: the one JSON object it prints."""
        out = self.cli("keys", "create", "--name", name, *flags, "--json").stdout
        try:
            obj = json.loads(out)
        except ValueError:
            raise AssertionError(f"`keys create --json` must print one JSON object: {out!r}")
        assert isinstance(obj, dict) and obj.get("name") == name, obj
        assert isinstance(obj.get("key"), str) and obj["key"].startswith("fw-"), obj
        return obj

    def list_keys(self) -> list[dict[str, Any]]:
        out = self.cli("keys", "list", "--json").stdout
        keys = json.loads(out)
        assert isinstance(keys, list), keys
        return keys

    def key_entry(self, name: str) -> dict[str, Any]:
        entries = [k for k in self.list_keys() if k.get("name") == name]
        assert len(entries) == 1, entries
        return entries[0]

    def wait_key(self, name: str, field: str, want: float, timeout: float = 5.0
                 ) -> dict[str, Any]:
        """Wait until `keys list --json` shows `field` of key `name` at `want` (a running
        gateway may write usage to the store a moment after answering); return the entry."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.key_entry(name)
            got = entry.get(field)
            if isinstance(got, (int, float)) and abs(got - want) <= 1e-9 + 1e-6 * abs(want):
                return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"key {name}: {field} = {got!r}, want {want} "
                                     f"(after {timeout}s): {entry}")
            time.sleep(0.2)

    def client(self, key: str, **kw: Any) -> openai.OpenAI:
        assert self.gw is not None
        kw.setdefault("timeout", 30.0)
        return openai.OpenAI(base_url=self.gw.base_url, api_key=key, max_retries=0, **kw)

    def post(self, key: Optional[str], body: dict[str, Any],
             headers: Optional[dict[str, str]] = None) -> httpx.Response:
        assert self.gw is not None
        h = dict(headers or {})
        if key is not None:
            h["authorization"] = f"Bearer {key}"
        with self.gw.http() as c:
            return c.post("/v1/chat/completions", json=body, headers=h)

    def admin(self) -> httpx.Client:
        assert self.gw is not None
        return self.gw.admin()

    def metrics(self) -> list[Any]:
        with self.admin() as a:
            r = a.get("/metrics")
        assert r.status_code == 200, r.text[:500]
        return scrape(r.text)

    def ledger(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return db_rows(self.db, f"SELECT * FROM ledger {where}", params)

    def ledger_count(self) -> int:
        return db_rows(self.db, "SELECT count(*) AS n FROM ledger")[0]["n"]


# ---------------------------------------------------------------------------------------------
# Redis: a real redis-server for shared-state tests (several gateways on one Redis)
# ---------------------------------------------------------------------------------------------

REDIS_SERVER = Path(os.environ.get("FREEWAY_REDIS_SERVER", "/usr/bin/redis-server"))


def _resp_read(f: Any) -> Any:
    """One RESP reply from the file `f`; an error reply is returned as a RedisReplyError."""
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisReplyError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ValueError(f"not a RESP reply: {line!r}")


class RedisReplyError(str):
    """An error reply (`-ERR ...`) from Redis."""


class RedisServer:
    """A `redis-server` on a free loopback port, with nothing saved to disk; stopped by pid.

    `kill()` (SIGKILL) and `start()` again bring it back on the same port, empty, as a crashed
    and restarted Redis would be."""

    def __init__(self, root: Path, *, password: Optional[str] = None,
                 port: Optional[int] = None) -> None:
        self.root = root
        self.password = password
        self.port = port or 0
        self.proc: Optional[subprocess.Popen] = None
        self._log_n = 0

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        """Start (or restart, on the same port) and wait until it answers PING. A port taken
        by someone else between choosing and binding is replaced on the first start only."""
        from mock_openai import closed_port

        if not REDIS_SERVER.is_file():
            pytest.skip(f"{REDIS_SERVER} is missing (apt-get install redis-server)")
        first = self.port == 0
        said = ""
        for _ in range(5 if first else 1):
            if first:
                self.port = closed_port()
            self._log_n += 1
            log = self.root / f"redis-{self.port}-{self._log_n}.log"
            argv = [str(REDIS_SERVER), "--port", str(self.port), "--save", "",
                    "--appendonly", "no", "--bind", "127.0.0.1", "--dir", str(self.root),
                    "--logfile", str(log)]
            if self.password:
                argv += ["--requirepass", self.password]
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self.ping():
                    return self
                time.sleep(0.02)
            code = self.proc.poll()
            self._reap()
            said = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            if code is None:
                raise AssertionError(f"redis-server on port {self.port} did not answer PING "
                                     f"within {timeout}s (exit {code}); its log:\n{said}")
        raise AssertionError(f"redis-server would not start on port {self.port}; its log:\n"
                             f"{said}")

    def ping(self) -> bool:
        """True when something answers `PING` like Redis on the port (a password-protected
        server answers -NOAUTH, which is alive too)."""
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                got = s.recv(64)
        except OSError:
            return False
        return got.startswith(b"+PONG") or got.startswith(b"-NOAUTH")

    def command(self, *args: Union[str, int], timeout: float = 5.0) -> Any:
        """Send one command (authenticating first when the server has a password); return
        the decoded reply."""
        import socket

        def frame(parts: tuple[Union[str, int], ...]) -> bytes:
            out = [b"*%d\r\n" % len(parts)]
            for p in parts:
                b = str(p).encode()
                out.append(b"$%d\r\n%s\r\n" % (len(b), b))
            return b"".join(out)

        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(frame(("AUTH", self.password)))
                ok = _resp_read(f)
                assert ok == "OK", ok
            s.sendall(frame(args))
            return _resp_read(f)

    def keys(self) -> list[str]:
        """Every key, by SCAN (never KEYS on a server in use)."""
        cursor, found = "0", []
        while True:
            cursor, batch = self.command("SCAN", cursor, "COUNT", 1000)
            found.extend(batch)
            if cursor == "0":
                return sorted(set(found))

    def _reap(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, the port closes at once."""
        assert self.proc is not None and self.proc.poll() is None, "redis is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers, as a hung or overloaded Redis."""
        assert self.proc is not None and self.proc.poll() is None, "redis is not running"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "redis is not running"
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
