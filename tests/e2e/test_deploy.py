"""Running behind a load balancer: graceful drain on SIGTERM, and the `deploy/local` example
(two instances, one Redis, nginx in front) started with its own script.

What an operator notices:
- after SIGTERM, `/healthz` answers 503 `draining` for `server.drain_delay_s` while requests
  are still served; then no new connections; a stream in flight finishes whole and is in the
  ledger; the process exits 0; past `server.drain_timeout_s` it stops waiting and says so;
- `deploy/local/run.sh` brings up Redis, two instances and nginx; traffic through nginx
  reaches both instances, which share cached answers; stopping one instance mid-traffic
  fails no request; SIGTERM to the script stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import mock_openai as mo
from harness import (FREEWAY_BIN, REDIS_SERVER, Ops, base_config, chat_body, keys_for, poll,
                     provider, sse_events)

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "deploy" / "local" / "run.sh"
NGINX = next((p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(p, os.X_OK)), None)


def drain_config(a: mo.MockOpenAI, **server: Any) -> dict[str, Any]:
    return base_config(store={"path": "freeway.db"}, server=server,
                       providers={a.name: provider(a, ["gpt-a"])},
                       models={"m": {"targets": [f"{a.name}/gpt-a"]}})


def test_sigterm_drains_healthz_first_then_finishes_streams(mocks, gateways):
    a = mocks.add("mock-a")
    o = Ops(gateways, drain_config(a, drain_delay_s=1, drain_timeout_s=20), keys_for(a))
    gw = o.launch()
    pieces = [f"part{i} " for i in range(8)]
    a.script(mo.text("".join(pieces), pieces=pieces, event_gap=0.3))
    got: dict[str, Any] = {}

    def stream() -> None:
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            r = c.post("/v1/chat/completions", json=chat_body("m", stream=True))
            got["status"], got["text"] = r.status_code, r.text

    t = threading.Thread(target=stream)
    t.start()
    a.wait_for_requests(1)
    gw.proc.send_signal(signal.SIGTERM)
    sent_at = time.monotonic()
    health = poll(lambda: (lambda r: r if r.status_code == 503 else None)(
        httpx.get(f"{gw.url}/healthz", timeout=2)), timeout=2, what="/healthz 503")
    assert health.json() == {"status": "draining"}
    # Still serving while the balancer notices.
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body("m", "during the delay"),
                   timeout=5)
    assert r.status_code == 200, r.text
    assert time.monotonic() - sent_at < 1.0, "the check must run inside the drain delay"

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", int(gw.url.rsplit(":", 1)[1])), 0.2).close()
            return False
        except OSError:
            return True

    poll(refused, timeout=5, what="the listener closed after the drain delay")
    assert t.is_alive(), "the stream is still in flight when the listener closes"
    t.join(15)
    assert got["status"] == 200
    events = sse_events(got["text"])
    assert events[-1] == "[DONE]"
    assert gw.proc.wait(15) == 0, gw.stderr[-2000:]
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(pieces), "the in-flight stream finished whole"
    assert "draining: /healthz answers 503" in gw.stderr
    rows = o.ledger("WHERE stream = 1")
    assert len(rows) == 1 and rows[0]["outcome"] == "ok", rows


def test_drain_timeout_bounds_the_wait(mocks, gateways):
    a = mocks.add("mock-a")
    gw = gateways.start(drain_config(a, drain_timeout_s=1), env=keys_for(a))
    a.script(mo.text("too late", delay=8.0))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: httpx.post(f"{gw.url}/v1/chat/completions",
                                                 json=chat_body("m"), timeout=20))
        a.wait_for_requests(1)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(10)
        took = time.monotonic() - started
        with pytest.raises(httpx.HTTPError):
            pending.result(timeout=10).raise_for_status()
    assert code == 0
    assert took < 5, f"exited {took:.1f}s after SIGTERM; drain_timeout_s is 1"
    assert "still in flight after 1 s" in gw.stderr


def test_drain_settings_are_checked(mocks, gateways):
    a = mocks.add("mock-a")
    err = gateways.start_refused(drain_config(a, drain_delay_s=9999), env=keys_for(a))
    assert "server.drain_delay_s" in err


# =============================================================================================
# deploy/local: two instances, Redis, nginx
# =============================================================================================


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (all bound at once, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def deployment(mocks, tmp_path: Path):
    if NGINX is None or not REDIS_SERVER.is_file():
        pytest.skip("deploy/local needs nginx and redis-server (CI installs both)")
    mock = mocks.adopt(mo.MockOpenAI("ollama", api_key=None).start())  # keyless, like Ollama
    names = ("LB_PORT", "A_PORT", "B_PORT", "A_ADMIN_PORT", "B_ADMIN_PORT", "REDIS_PORT")
    ports = {n: str(p) for n, p in zip(names, free_ports(len(names)))}
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(ports, RUN_DIR=str(run_dir), FREEWAY_BIN=str(FREEWAY_BIN), NGINX_BIN=NGINX,
               REDIS_SERVER=str(REDIS_SERVER), OLLAMA_BASE_URL=mock.base_url,
               FREEWAY_LOG="info")
    proc = subprocess.Popen([str(RUN_SH)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        poll(lambda: any(ln.startswith("freeway on") for ln in lines) or proc.poll() is not None,
             timeout=120, interval=0.1, what="run.sh's ready line")
        assert proc.poll() is None, "".join(lines)
        yield proc, mock, ports, run_dir, lines
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def served_lines(run_dir: Path, name: str) -> int:
    path = run_dir / f"{name}.log"
    return path.read_text().count("request served") if path.exists() else 0


def test_the_local_deployment_balances_shares_and_survives_a_restart(deployment):
    proc, mock, ports, run_dir, lines = deployment
    lb = f"http://127.0.0.1:{ports['LB_PORT']}"
    with httpx.Client(base_url=lb, timeout=10) as c:
        for i in range(12):
            r = c.post("/v1/chat/completions", json=chat_body("local", f"hello {i}"))
            assert r.status_code == 200, r.text
            assert r.headers["x-freeway-provider"] == "ollama"
        poll(lambda: served_lines(run_dir, "a") and served_lines(run_dir, "b"), timeout=5,
             what="both instances served requests")
        # A cached answer written by one instance is read by the other.
        body = chat_body("local", "cache me", temperature=0)
        assert c.post("/v1/chat/completions", json=body).headers["x-freeway-cache"] == "miss"
        time.sleep(0.3)  # the Redis write is off the request path
        caches = {c.post("/v1/chat/completions", json=body).headers["x-freeway-cache"]
                  for _ in range(4)}
        assert caches == {"hit"}, caches

    # Stop instance a mid-traffic: nginx moves to b, no client sees a failure.
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=lb, timeout=10) as c:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = c.post("/v1/chat/completions", json=chat_body("local", f"during {i}"))
                    if r.status_code != 200:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    failures.append(repr(e))

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    a_pid = int((run_dir / "a.pid").read_text())
    os.kill(a_pid, signal.SIGTERM)
    poll(lambda: not Path(f"/proc/{a_pid}").exists() or
         "zombie" in Path(f"/proc/{a_pid}/status").read_text().lower(),
         timeout=15, what="instance a exited after draining")
    time.sleep(1.0)
    stop.set()
    for w in workers:
        w.join(15)
    assert not failures, failures[:5]
    assert "shutting down" in (run_dir / "a.log").read_text()

    # SIGTERM to the script (only) stops everything it started, in order.
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    poll(lambda: "run.sh: stopped" in "".join(lines), timeout=10, what="run.sh: stopped")
    for name in ("LB_PORT", "B_PORT", "REDIS_PORT"):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(ports[name])), 0.5).close()
