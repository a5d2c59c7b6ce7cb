#!/usr/bin/env python3
"""Freeway throughput / latency / memory benchmark.

A program that prints figures, not a test. In one run, with the same load generator (wrk) and the
same ~600-byte chat request, it measures:

  direct                    wrk -> upstream (an nginx answering a fixed chat.completion body)
  nginx proxy               wrk -> nginx reverse proxy (keep-alive upstream pool) -> upstream
  hyper proxy               wrk -> freeway-floor-proxy -> upstream: Freeway's runtime and HTTP
                            libraries passing requests through, no gateway work (the stack's floor)
  freeway default (pooled)  wrk -> freeway -> upstream, the default config: the `pii` filter,
                            the `priority-fallback` router and the `openai-compatible` adapter,
                            pooled wasm instances (reused within one gateway key)
  freeway fresh (isolated)  the same with a fresh wasm instance per request and plugin

and the same paths again for a streamed answer (`stream: true`, a fixed 54-event SSE body): time
to the first `data:` event at concurrency 1 (a raw-socket client in this script) and chunks
relayed per second at saturation (wrk).

The plain nginx proxy is the reference for what "just proxying" costs on this machine; Freeway's
targets are stated relative to it and to the direct path (see TARGETS).

Run from the repository root:  .venv/bin/python tests/bench/bench.py  (or `make bench`).
Python standard library only. See tests/bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# Targets Freeway is held to (see README "Targets"; issue #11).
TARGETS = {
    # The default config (pooled instances): req/s >= 70% of the plain nginx proxy's ...
    "default_throughput_vs_nginx_min": 0.70,
    "default_added_p50_us_max": 50.0,  # ... added latency over direct at concurrency 1 ...
    "default_added_p99_us_max": 200.0,
    "default_added_ttfb_p50_us_max": 100.0,  # ... and added time to first byte of a stream.
    # Per-request isolation (`instances = "fresh"`): req/s >= 35% of the nginx proxy's.
    "isolated_throughput_vs_nginx_min": 0.35,
    # Every Freeway row.
    "rss_idle_mib_max": 30.0,
    "rss_load_mib_max": 80.0,
    "start_warm_cache_ms_max": 50.0,
}

# Above this share of one core used by other processes during a measurement, say so.
BACKGROUND_WARN = 0.10

UPSTREAM_KEY = "bench-upstream-key"  # the upstream refuses any other bearer token
EXPECTED_CONTENT = (
    "Failover means that when one provider fails or is rate limited, the gateway retries the "
    "same request on the next target in the list, before any byte has reached the client."
)
# A realistic OpenAI chat.completion body. It is embedded in nginx's `return` directive, so it
# must contain no single quote, no backslash and no `$`.
UPSTREAM_BODY = json.dumps(
    {
        "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
        "object": "chat.completion",
        "created": 1732233600,
        "model": "bench-model",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": EXPECTED_CONTENT, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 142,
            "completion_tokens": 38,
            "total_tokens": 180,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    },
    separators=(",", ":"),
)
assert not set("'\\$") & set(UPSTREAM_BODY)

REQUEST_BODY = json.dumps(
    {
        "model": "bench",
        "messages": [
            {
                "role": "system",
                "content": (
                    "You are a concise technical assistant for a platform engineering team. "
                    "Answer in plain English, at most three sentences, without markdown. If the "
                    "question is ambiguous, state the assumption you made. Never invent "
                    "configuration keys; say when you are not sure."
                ),
            },
            {
                "role": "user",
                "content": (
                    "Our service calls several hosted LLM providers through one OpenAI-compatible "
                    "gateway. In one or two sentences, what does failover mean in that setup, and "
                    "when is it no longer possible to fail over to another provider during a "
                    "streamed response?"
                ),
            },
        ],
        "temperature": 0.2,
    },
    separators=(",", ":"),
)
assert "]==]" not in REQUEST_BODY

# ---- the streamed answer --------------------------------------------------------------------
# The same request with `stream: true`, for another public model (`bench-stream`) whose provider's
# base URL ends in /stream/v1: the upstream tells the two answers apart by path, not by body.
STREAM_MODEL = "bench-stream"
STREAM_PATH = "/stream/v1/chat/completions"
STREAM_REQUEST_BODY = json.dumps(
    {**json.loads(REQUEST_BODY), "model": STREAM_MODEL, "stream": True}, separators=(",", ":"))
assert "]==]" not in STREAM_REQUEST_BODY

STREAM_CHUNKS = 50  # content chunks in the streamed answer


def _split(text: str, n: int) -> list[str]:
    """`text` in `n` consecutive pieces of near-equal length (token-sized for this text)."""
    q, r = divmod(len(text), n)
    out, i = [], 0
    for k in range(n):
        j = i + q + (1 if k < r else 0)
        out.append(text[i:j])
        i = j
    return out


STREAM_DELTAS = _split(EXPECTED_CONTENT, STREAM_CHUNKS)


def _stream_body() -> str:
    """An OpenAI chat.completion.chunk stream as the API sends it with
    `stream_options.include_usage`: a role chunk, the content chunks, a finish chunk, a usage
    chunk, then `data: [DONE]`."""
    head = {"id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz013", "object": "chat.completion.chunk",
            "created": 1732233600, "model": "bench-model",
            "system_fingerprint": "fp_0ba0d124f1"}

    def chunk(delta, finish=None, usage=False):
        doc = dict(head)
        doc["choices"] = [] if usage else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        doc["usage"] = json.loads(UPSTREAM_BODY)["usage"] if usage else None
        return "data: " + json.dumps(doc, separators=(",", ":")) + "\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": d}) for d in STREAM_DELTAS]
    events += [chunk({}, "stop"), chunk(None, usage=True), "data: [DONE]\n\n"]
    return "".join(events)


STREAM_BODY = _stream_body()
STREAM_EVENTS = STREAM_BODY.count("data: ")  # 54: role, 50 content, finish, usage, [DONE]
# Embedded in nginx's config like UPSTREAM_BODY (its newlines written as \n escapes).
assert not set("'\\$") & set(STREAM_BODY)

WRK_SCRIPT = """-- generated by tests/bench/bench.py
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"

-- One machine-readable line with wrk's exact figures (latencies in microseconds).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"bytes\\":%%d," ..
    "\\"p50\\":%%.1f,\\"p90\\":%%.1f,\\"p99\\":%%.1f,\\"p999\\":%%.1f,\\"min\\":%%.1f," ..
    "\\"max\\":%%.1f,\\"mean\\":%%.1f,\\"err_connect\\":%%d,\\"err_read\\":%%d," ..
    "\\"err_write\\":%%d,\\"err_status\\":%%d,\\"err_timeout\\":%%d}\\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.min, latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_script(body: str) -> str:
    return WRK_SCRIPT % {"body": body, "key": UPSTREAM_KEY}


class BenchError(Exception):
    """A failure that must stop the benchmark loudly (bad response, server died...)."""


# --------------------------------------------------------------------------------------------
# Processes: everything started goes through Procs so that it is stopped on any exit path.
# --------------------------------------------------------------------------------------------


class Procs:
    def __init__(self) -> None:
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        # Own session = own process group, so nginx's workers die with their master.
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.items.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, grace: float = 3.0) -> None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(grace)
        else:
            # The leader is gone; make sure nothing it left in its group survives.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.items = [(n, q) for (n, q) in self.items if q is not p]

    def stop_all(self) -> None:
        for _, p in reversed(list(self.items)):
            self.stop(p)


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def group_rss_kib(pids: list[int]) -> int:
    return sum(rss_kib(p) or 0 for p in pids)


class Background:
    """CPU time used over a window by processes other than the benchmark's own (a build, another
    job): the machine's user+system time from /proc/stat minus that of the servers, of wrk (a
    waited-for child) and of this script. Reported as a fraction of one core."""

    def __init__(self, own_pids: list[int]) -> None:
        self.own_pids = own_pids

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            user, nice, system = (int(x) for x in f.readline().split()[1:4])
        return (user + nice + system) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        return c.ru_utime + c.ru_stime + me.ru_utime + me.ru_stime

    def __enter__(self):
        self.t0, self.busy0 = time.monotonic(), self._busy()
        self.own0, self.ours0 = cpu_seconds(self.own_pids), self._ours()
        return self

    def __exit__(self, *exc):
        elapsed = time.monotonic() - self.t0
        other = ((self._busy() - self.busy0) - (cpu_seconds(self.own_pids) - self.own0)
                 - (self._ours() - self.ours0))
        self.cores = max(0.0, other / elapsed) if elapsed > 0 else 0.0


class RssSampler:
    """Samples the summed VmRSS of `pids` every `interval` seconds in a background thread."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids, self.interval = pids, interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(group_rss_kib(self.pids))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def peak_kib(self) -> int:
        return max(self.samples) if self.samples else 0


def post(port: int, path: str = "/v1/chat/completions") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body=REQUEST_BODY.encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {UPSTREAM_KEY}",
            },
        )
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def check_response(name: str, port: int, exact: bool) -> None:
    """Fail loudly unless the path answers 200 with the expected chat.completion."""
    for _ in range(3):  # a few times: also exercises keep-alive/pooled paths once
        status, headers, body = post(port)
        if status != 200:
            raise BenchError(f"{name}: expected 200, got {status}: {body[:500]!r}")
        if exact:
            if body.decode(errors="replace") != UPSTREAM_BODY:
                raise BenchError(f"{name}: body differs from the upstream's:\n{body[:800]!r}")
            continue
        try:
            doc = json.loads(body)
            ok = (
                doc.get("object") == "chat.completion"
                and doc["choices"][0]["message"]["content"] == EXPECTED_CONTENT
                and doc["choices"][0]["message"]["role"] == "assistant"
                and doc["choices"][0]["finish_reason"] == "stop"
                and doc["usage"]["total_tokens"] == 180
            )
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise BenchError(f"{name}: response is not the expected chat.completion ({e}):\n"
                             f"{body[:800]!r}") from e
        if not ok:
            raise BenchError(f"{name}: unexpected chat.completion:\n{body[:800]!r}")
        if "application/json" not in headers.get("content-type", ""):
            raise BenchError(f"{name}: content-type is {headers.get('content-type')!r}")


class StreamClient:
    """A raw-socket HTTP/1.1 client for the streamed answer: one keep-alive connection, one
    request at a time, recording for each request the time from just before `sendall` to the
    return of the `recv` that brought the first `data:` bytes of the body (time to first byte,
    TTFB) and to the end of the response. Reads Content-Length and chunked bodies.

    wrk cannot give this figure: its latency is the time to the *complete* response, and its Lua
    `response` hook also runs only once the response is complete. The client's own cost (a
    `sendall` and one `recv` in Python, a few µs) is the same for every path, so it cancels out
    of the *added* TTFB (path minus direct)."""

    def __init__(self, port: int, path: str, body: str) -> None:
        self.port = port
        payload = body.encode()
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {UPSTREAM_KEY}\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def once(self) -> tuple[int, dict, bytes, float, float]:
        """One request: (status, headers, decoded body, TTFB s, total s)."""
        try:
            return self._once()
        except (OSError, ValueError, IndexError) as e:
            self.close()
            raise BenchError(f"streamed request to 127.0.0.1:{self.port} failed: {e!r}") from e

    def _once(self) -> tuple[int, dict, bytes, float, float]:
        if self.sock is None:
            self.sock = self._connect()
        sock, clock = self.sock, time.perf_counter
        buf = bytearray()
        t0 = clock()
        sock.sendall(self.request)
        head_end = -1
        status, headers = 0, {}
        ttfb = None
        length = None  # Content-Length, or None for chunked
        body = bytearray()
        pos = 0  # chunked: where the next chunk-size line starts in buf
        while True:
            data = sock.recv(262144)
            now = clock()
            if not data:
                self.close()
                raise BenchError("connection closed in the middle of a response")
            buf += data
            if head_end < 0:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                head_end += 4
                pos = head_end
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    length = None
                else:
                    length = int(headers.get("content-length", "0"))
            if ttfb is None and buf.find(b"data:", head_end) >= 0:
                ttfb = now - t0
            if length is not None:
                if len(buf) - head_end >= length:
                    body = buf[head_end:head_end + length]
                    break
                continue
            done = False
            while True:  # decode every complete chunk now in buf
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if size == 0:
                    if len(buf) >= eol + 4:  # no trailers: "0\r\n\r\n"
                        done = True
                    break
                if len(buf) < eol + 2 + size + 2:
                    break
                body += buf[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
            if done:
                break
        total = clock() - t0
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, bytes(body), (ttfb if ttfb is not None else total), total

    def measure(self, seconds: float) -> dict:
        """Sequential requests for `seconds`: TTFB and total-time percentiles in µs."""
        ttfbs, totals, non2xx = [], [], 0
        gc_was = gc.isenabled()
        gc.disable()  # no collector pause inside a timed request
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                status, _, _, ttfb, total = self.once()
                if status != 200:
                    non2xx += 1
                ttfbs.append(ttfb * 1e6)
                totals.append(total * 1e6)
        finally:
            if gc_was:
                gc.enable()
        ttfbs.sort()
        totals.sort()
        return {"requests": len(ttfbs), "non2xx": non2xx,
                "ttfb_p50": pct(ttfbs, 50), "ttfb_p90": pct(ttfbs, 90),
                "ttfb_p99": pct(ttfbs, 99), "ttfb_p999": pct(ttfbs, 99.9),
                "total_p50": pct(totals, 50), "total_p99": pct(totals, 99)}


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def sse_events(body: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    out = []
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("data:"):
            out.append(line[5:].strip())
    return out


def check_stream(name: str, port: int, path: str, exact: bool) -> int:
    """Fail loudly unless the path streams 200 with the expected events; returns the number of
    `data:` events in the response (what one streamed request relays)."""
    client = StreamClient(port, path, STREAM_REQUEST_BODY)
    try:
        for _ in range(3):  # over one keep-alive connection, as the TTFB measurement does
            status, headers, body, _, _ = client.once()
            if status != 200:
                raise BenchError(f"{name} (stream): expected 200, got {status}: {body[:500]!r}")
            if "text/event-stream" not in headers.get("content-type", ""):
                raise BenchError(f"{name} (stream): content-type is "
                                 f"{headers.get('content-type')!r}")
            if exact:
                if body.decode(errors="replace") != STREAM_BODY:
                    raise BenchError(f"{name} (stream): body differs from the upstream's:\n"
                                     f"{body[:800]!r}")
                continue
            events = sse_events(body)
            deltas, finish = [], None
            try:
                for e in events[:-1]:
                    doc = json.loads(e)
                    for c in doc.get("choices") or []:
                        text = (c.get("delta") or {}).get("content")
                        if text:
                            deltas.append(text)
                        finish = c.get("finish_reason") or finish
            except (ValueError, AttributeError, TypeError) as e:
                raise BenchError(f"{name} (stream): an event is not a chat.completion.chunk "
                                 f"({e}):\n{body[:800]!r}") from e
            if not events or events[-1] != "[DONE]":
                raise BenchError(f"{name} (stream): does not end with data: [DONE]:\n"
                                 f"{body[-800:]!r}")
            if deltas != STREAM_DELTAS:
                raise BenchError(f"{name} (stream): content deltas differ from the upstream's: "
                                 f"{deltas!r}")
            if finish != "stop":
                raise BenchError(f"{name} (stream): finish_reason {finish!r}, expected 'stop'")
        return len(sse_events(body))
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------

NGINX_COMMON = """
# generated by tests/bench/bench.py
daemon off;
master_process on;
worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
%(servers)s
}
"""

UPSTREAM_SERVER = """
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location = /v1/chat/completions {
            if ($request_method != POST) { return 405; }
            if ($http_authorization != "Bearer %(key)s") { return 401; }
            default_type application/json;
            return 200 '%(body)s';
        }
        location = %(stream_path)s {
            if ($request_method != POST) { return 405; }
            if ($http_authorization != "Bearer %(key)s") { return 401; }
%(stream_sets)s
            default_type text/event-stream;
            return 200 '%(stream_vars)s';
        }
        location / { return 404; }
    }
"""


def upstream_server(port: int) -> str:
    """The upstream's server block. nginx reads a config token into a 4 KiB buffer, so the
    ~13 KiB SSE body cannot be one `return` string: it is cut at event boundaries into pieces
    held by `set` variables, and `return` joins them (a few memcpy per request)."""
    pieces, cur = [], ""
    for event in STREAM_BODY.split("\n\n")[:-1]:
        ev = event.replace("\n", "\\n") + "\\n\\n"
        if cur and len(cur) + len(ev) > 3000:
            pieces.append(cur)
            cur = ""
        cur += ev
    pieces.append(cur)
    sets = "\n".join(f"            set $sse{i} '{piece}';" for i, piece in enumerate(pieces))
    return UPSTREAM_SERVER % {
        "port": port, "key": UPSTREAM_KEY, "body": UPSTREAM_BODY, "stream_path": STREAM_PATH,
        "stream_sets": sets, "stream_vars": "".join(f"$sse{i}" for i in range(len(pieces)))}

PROXY_SERVER = """
    upstream bench_upstream {
        server 127.0.0.1:%(upstream)d;
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 120s;
    }
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        # The streamed answer, proxied as a streaming deployment does (deploy/local): events are
        # passed on as they arrive, not buffered.
        location = %(stream_path)s {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
"""


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    pids: list[int]
    log: Path
    extra: dict = field(default_factory=dict)


def start_nginx(procs: Procs, nginx: str, name: str, workdir: Path, server_block: str,
                port: int, workers: int) -> Server:
    workdir.mkdir(parents=True)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_COMMON % {"workers": workers, "dir": workdir, "servers": server_block})
    log = workdir / "error.log"
    # -e: the error log before the config is read (else nginx tries /var/log/nginx).
    argv = [nginx, "-p", str(workdir), "-c", str(conf), "-e", str(log)]
    p = procs.start(name, argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=open(workdir / "stderr.log", "wb"))
    wait_port(port, p, name, workdir / "stderr.log")
    time.sleep(0.2)  # let the workers come up before counting them
    return Server(name, port, p, [p.pid] + children(p.pid), log)


def start_freeway(procs: Procs, binary: Path, name: str, workdir: Path, config: str,
                  env_extra: dict, timeout: float = 120.0) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "gateway.toml"
    cfg.write_text(config)
    log = workdir / "stderr.log"
    env = dict(os.environ)
    env.update(env_extra)
    t0 = time.monotonic()
    p = procs.start(name, [str(binary), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(log, "wb"),
                    env=env)
    found: dict = {}
    ready = threading.Event()
    stdout_log = workdir / "stdout.log"

    def drain():  # read the ready line, then keep the pipe drained for the process's lifetime
        with open(stdout_log, "wb") as out:
            for line in p.stdout:
                out.write(line)
                out.flush()
                m = re.search(rb"freeway listening on http://127\.0\.0\.1:(\d+)", line)
                if m and not ready.is_set():
                    found["port"] = int(m.group(1))
                    ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1) and time.monotonic() < deadline:
        # Tolerate the ready line on stderr too (the contract says stdout).
        m = re.search(r"freeway listening on http://127\.0\.0\.1:(\d+)",
                      log.read_text(errors="replace"))
        if m:
            found["port"] = int(m.group(1))
            break
    if "port" not in found:
        if p.poll() is None:
            procs.stop(p)
            raise BenchError(f"{name} printed no 'freeway listening on' line within {timeout}s:\n"
                             f"{tail(log)}")
        raise BenchError(f"{name} exited with {p.returncode} before listening:\n"
                         f"stdout:\n{tail(stdout_log)}\nstderr:\n{tail(log)}")
    startup = time.monotonic() - t0
    return Server(name, found["port"], p, [p.pid], log, {"startup_s": startup})


def start_floor(procs: Procs, binary: Path, workdir: Path, upstream_port: int) -> Server:
    """The `hyper proxy` row: Freeway's runtime and HTTP libraries with no gateway in them."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "stderr.log"
    p = procs.start("hyper proxy", [str(binary), str(upstream_port)], stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=open(log, "wb"))
    line = p.stdout.readline().decode(errors="replace")
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        raise BenchError(f"hyper proxy printed no listening line: {line!r}\n{tail(log)}")
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return Server("hyper proxy", int(m.group(1)), p, [p.pid], log)


SHIPPED_CONFIG = REPO / "config/gateway.toml"


def toml_value(v) -> str:
    """A TOML literal for a value read from the shipped config (strings, numbers, booleans,
    arrays, tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(
            f"{k if re.fullmatch(r'[A-Za-z0-9_-]+', k) else json.dumps(k)} = {toml_value(x)}"
            for k, x in v.items()) + " }"
    raise BenchError(f"cannot write {v!r} as TOML")


def shipped_settings(path: Path = SHIPPED_CONFIG) -> dict:
    """What the generated config copies from the shipped config/gateway.toml, so the Freeway rows
    run what `make serve` runs: `[plugins.defaults]` (limits, pool size; not `instances`, which
    the row sets) and `[pipeline.settings.pii]` (the filter's settings), when present."""
    try:
        import tomllib  # Python 3.11+
        doc = tomllib.loads(path.read_text())
    except (ImportError, OSError, ValueError) as e:
        print(f"bench: not mirroring {path} ({e}); using the gateway's defaults", file=sys.stderr)
        return {"plugin_defaults": {}, "pii_settings": {}}
    defaults = dict(doc.get("plugins", {}).get("defaults", {}))
    defaults.pop("instances", None)
    pii = dict(doc.get("pipeline", {}).get("settings", {}).get("pii", {}))
    return {"plugin_defaults": defaults, "pii_settings": pii}


def freeway_config(plugins_dir: Path, cache_dir: Path, upstream_port: int, mode: str,
                   redis_port: int | None = None, shipped: dict | None = None) -> str:
    """`mode` is an instance mode (`fresh`, `pooled`) with optional `+` extras: `+memory` keeps
    the store in memory (no SQLite, no ledger), `+redis` puts shared state on a local Redis.

    Every request passes the `pii` filter, the `priority-fallback` router and the
    `openai-compatible` adapter, as in the default config. Two providers on the same upstream:
    `upstream` (model `bench`, the JSON answer) and `stream` (model `bench-stream`, base URL
    .../stream/v1, the SSE answer). No gateway keys: every request is the anonymous tenant, so
    pooled instances are shared by all of them (as they are by the requests of one key)."""
    instances, *extras = mode.split("+")
    shipped = shipped or {"plugin_defaults": {}, "pii_settings": {}}
    defaults = "".join(f"{k} = {toml_value(v)}\n" for k, v in shipped["plugin_defaults"].items())
    pii = "".join(f"{k} = {toml_value(v)}\n" for k, v in shipped["pii_settings"].items())
    pii = f"\n[pipeline.settings.pii]\n{pii}" if pii else ""
    # Without +memory the gateway's default applies: a SQLite store with the ledger on.
    store = '[store]\npath = "memory"\n' if "memory" in extras else ""
    state = (f'[state]\nredis_url = "redis://127.0.0.1:{redis_port}"\n'
             if "redis" in extras and redis_port else "")
    return f"""# generated by tests/bench/bench.py
[server]
listen = "127.0.0.1:0"

{store}
{state}
[plugins]
dir = "{plugins_dir}"
cache_dir = "{cache_dir}"

[plugins.defaults]
instances = "{instances}"
{defaults}
[pipeline]
filters = ["pii"]
default_router = "priority-fallback"
{pii}
[providers.upstream]
adapter = "openai-compatible"
base_url = "http://127.0.0.1:{upstream_port}/v1"
api_key_env = "BENCH_KEY"
models = ["bench-model"]

[providers.stream]
adapter = "openai-compatible"
base_url = "http://127.0.0.1:{upstream_port}{STREAM_PATH.removesuffix('/chat/completions')}"
api_key_env = "BENCH_KEY"
models = ["bench-model"]

[models.bench]
targets = ["upstream/bench-model"]

[models.{STREAM_MODEL}]
targets = ["stream/bench-model"]
"""


def row_name(mode: str) -> str:
    """The table's name for a Freeway row: which one is the default config, which one isolates
    every request."""
    return {"pooled": "freeway default (pooled)",
            "fresh": "freeway fresh (isolated)"}.get(mode, f"freeway {mode}")


# --------------------------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------------------------


def run_wrk(wrk: str, script: Path, port: int, threads: int, conns: int, seconds: float,
            latency: bool = False, path: str = "/v1/chat/completions") -> dict:
    argv = [wrk, f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    if latency:
        argv.append("--latency")
    argv.append(f"http://127.0.0.1:{port}{path}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                       start_new_session=True)
    if r.returncode != 0:
        raise BenchError(f"wrk failed ({r.returncode}): {r.stderr}\n{r.stdout}")
    m = re.search(r"^BENCH_RESULT (\{.*\})$", r.stdout, re.M)
    if not m:
        raise BenchError(f"wrk printed no BENCH_RESULT line:\n{r.stdout}\n{r.stderr}")
    res = json.loads(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", r.stdout)
    res["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    res["socket_errors"] = sum(res[k] for k in ("err_connect", "err_read", "err_write",
                                                "err_timeout"))
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6) if res["duration_us"] else 0.0
    res["wrk_output"] = r.stdout
    return res


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def machine_info(nginx: str, wrk: str, freeway: Path | None) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def out(argv, must_succeed=True):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=5,
                               stdin=subprocess.DEVNULL)
            if must_succeed and r.returncode != 0:
                return "unknown"
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "unknown"

    commit = out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "nginx": out([nginx, "-v"]),
        "wrk": out([wrk, "-v"], must_succeed=False),  # prints its version, exits 1
        "freeway": out([str(freeway), "--version"]) if freeway else None,
        "commit": commit if re.fullmatch(r"[0-9a-f]{4,40}", commit) else None,
    }


def fmt_us(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} µs"


def fmt_added(v: float | None) -> str:
    return "-" if v is None else f"{v:+,.0f} µs"


def fmt_ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}×"


def print_table(rows: list[dict]) -> None:
    head = ["path", "req/s", "×direct", "×nginx", "CPU/req", "p50 c=1", "p99 c=1",
            "added p50", "added p99", "non-2xx", "sock err"]
    data = []
    for r in rows:
        data.append([
            r["path"],
            f"{r['rps']:,.0f}",
            fmt_ratio(r.get("x_direct")),
            fmt_ratio(r.get("x_nginx")),
            fmt_us(r.get("cpu_us_per_req")),
            fmt_us(r["p50_us"]),
            fmt_us(r["p99_us"]),
            fmt_added(r.get("added_p50_us")),
            fmt_added(r.get("added_p99_us")),
            str(r["non2xx"]),
            str(r["socket_errors"]),
        ])
    print_grid(head, data)


def print_stream_table(rows: list[dict]) -> None:
    head = ["path (stream)", "TTFB p50", "TTFB p99", "added p50", "added p99", "full p50",
            "req/s", "events/s", "×nginx", "CPU/resp", "non-2xx", "sock err"]
    data = []
    for r in rows:
        s = r["stream"]
        data.append([
            r["path"],
            fmt_us(s["ttfb_p50_us"]),
            fmt_us(s["ttfb_p99_us"]),
            fmt_added(s.get("added_ttfb_p50_us")),
            fmt_added(s.get("added_ttfb_p99_us")),
            fmt_us(s["total_p50_us"]),
            f"{s['rps']:,.0f}",
            f"{s['events_per_s']:,.0f}",
            fmt_ratio(s.get("x_nginx")),
            fmt_us(s.get("cpu_us_per_resp")),
            str(s["non2xx"]),
            str(s["socket_errors"]),
        ])
    print_grid(head, data)


def print_grid(head: list[str], data: list[list[str]]) -> None:
    widths = [max(len(h), *(len(d[i]) for d in data)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))
    print(line)
    print("-" * len(line))
    for d in data:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(d, widths))))


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def find_tools() -> tuple[str | None, str | None]:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
    return nginx, shutil.which("wrk")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0,
                    help="seconds of each measured wrk run (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of the warm-up run before each measurement (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 3 s measurements, 1 s warm-ups")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every measurement N times, interleaving the paths, and report "
                         "the median (default 1)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads at saturation (2)")
    ap.add_argument("--connections", type=int, default=64,
                    help="wrk connections at saturation (64)")
    ap.add_argument("--nginx-workers", type=int, default=0,
                    help="worker processes of the nginx proxy and upstream (0 = nproc)")
    ap.add_argument("--floor", type=Path, default=REPO / "target/release/freeway-floor-proxy",
                    help="the hyper proxy row's binary: Freeway's runtime and HTTP stack with no "
                         "gateway in it (built by `make build`)")
    ap.add_argument("--freeway", type=Path, default=REPO / "target/release/freeway",
                    help="freeway binary (default target/release/freeway)")
    ap.add_argument("--plugins-dir", type=Path, default=REPO / "plugins/dist",
                    help="bundled plugins folder (default plugins/dist)")
    ap.add_argument("--minimal-plugins", action="store_true",
                    help="load only the three plugins every request passes (pii, "
                         "priority-fallback, openai-compatible; default: every *.wasm in the "
                         "plugins folder, as `make serve` does)")
    ap.add_argument("--modes", default="pooled,fresh",
                    help="Freeway rows, comma-separated: an instance mode (pooled = the default "
                         "config, fresh = per-request isolation) with optional extras, e.g. "
                         "pooled+memory (no SQLite store or ledger), pooled+redis (shared state "
                         "on a local redis-server)")
    ap.add_argument("--no-stream", action="store_true",
                    help="skip the streaming (SSE) measurements")
    ap.add_argument("--log-level", default="warn",
                    help="FREEWAY_LOG filter (default warn: no per-request log line, as nginx runs "
                         "with access_log off; `info` measures with Freeway's request log)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder (configs, logs) and print its path")
    ap.add_argument("--fail-on-miss", action="store_true",
                    help="exit 1 when a Freeway target is missed (default: figures only, exit 0)")
    a = ap.parse_args(argv)
    if a.quick:
        a.duration, a.warmup = 3.0, 1.0
    if a.duration < 1 or a.rounds < 1:
        ap.error("--duration must be >= 1 and --rounds >= 1")
    return a


# The plugins every benchmarked request passes through: a filter, the router, the adapter.
REQUIRED_PLUGINS = ("pii.wasm", "priority-fallback.wasm", "openai-compatible.wasm")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    nginx, wrk = find_tools()
    missing = [n for n, p in (("nginx", nginx), ("wrk", wrk)) if p is None]
    if missing:
        print(f"bench: missing {', '.join(missing)}. Install with:\n\n"
              f"    apt-get install -y {' '.join(missing)}\n", file=sys.stderr)
        return 2

    freeway_skip = None
    if not args.freeway.is_file() or not os.access(args.freeway, os.X_OK):
        freeway_skip = f"no Freeway binary at {args.freeway} (run `make build`)"
    else:
        absent = [p for p in REQUIRED_PLUGINS if not (args.plugins_dir / p).is_file()]
        if absent:
            freeway_skip = (f"bundled plugins missing in {args.plugins_dir}: {', '.join(absent)} "
                            f"(run `make plugins`)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        base, *extras = m.split("+")
        if base not in ("fresh", "pooled") or any(e not in ("memory", "redis") for e in extras):
            print(f"bench: unknown mode {m!r} (fresh, pooled)", file=sys.stderr)
            return 2
    if len(set(modes)) != len(modes):
        print(f"bench: a mode is repeated in --modes {args.modes}", file=sys.stderr)
        return 2
    stream = not args.no_stream
    shipped = shipped_settings()

    # Explicitly, so Ctrl-C cleans up even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="freeway-bench-"))
    workers = args.nginx_workers or len(os.sched_getaffinity(0))
    info = machine_info(nginx, wrk, None if freeway_skip else args.freeway)
    rows: list[dict] = []
    try:
        print("Freeway benchmark")
        print(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), kernel {info['kernel']}")
        print(f"tools:   {info['nginx']}; {info['wrk'].split(' Copyright')[0]}"
              + (f"; {info['freeway']}" if info.get("freeway") not in (None, "unknown") else ""))
        print(f"load:    saturation wrk -t{args.threads} -c{args.connections} "
              f"-d{args.duration:g}s after {args.warmup:g}s warm-up; latency wrk -t1 -c1 "
              f"-d{args.duration:g}s; {args.rounds} round(s); request {len(REQUEST_BODY)} B, "
              f"response {len(UPSTREAM_BODY)} B; nginx workers {workers}")
        if stream:
            print(f"stream:  the same request with stream: true, answered with {STREAM_EVENTS} "
                  f"SSE events ({len(STREAM_BODY)} B, {STREAM_CHUNKS} content chunks); "
                  f"saturation wrk as above; TTFB: {args.duration:g}s of sequential requests "
                  f"on one keep-alive connection (raw-socket client in this script)")
        if freeway_skip:
            print(f"\nSKIPPING the Freeway rows: {freeway_skip}.")
        else:
            loaded = (list(REQUIRED_PLUGINS) if args.minimal_plugins
                      else sorted(p.name for p in args.plugins_dir.glob("*.wasm")))
            print(f"freeway: {args.freeway}, {len(loaded)} plugins loaded "
                  f"({', '.join(n.removesuffix('.wasm') for n in loaded)}), "
                  f"FREEWAY_LOG={args.log_level}")
            mirrored = ", ".join(f"{k} = {toml_value(v)}" for k, v in
                                 shipped["plugin_defaults"].items()) or "none"
            pii = ", ".join(f"{k} = {toml_value(v)}" for k, v in
                            shipped["pii_settings"].items()) or "the filter's defaults"
            print(f"         pipeline: filter pii ({pii}), router priority-fallback, adapter "
                  f"openai-compatible; [plugins.defaults] from {SHIPPED_CONFIG.relative_to(REPO)}:"
                  f" {mirrored}")
        print(flush=True)

        script = tmp / "post.lua"
        script.write_text(wrk_script(REQUEST_BODY))
        stream_script = tmp / "stream.lua"
        stream_script.write_text(wrk_script(STREAM_REQUEST_BODY))

        # ---- start every server, check every path, then measure ---------------------------
        up_port = free_port()
        upstream = start_nginx(procs, nginx, "upstream", tmp / "upstream",
                               upstream_server(up_port),
                               up_port, workers)
        px_port = free_port()
        proxy = start_nginx(procs, nginx, "nginx proxy", tmp / "proxy",
                            PROXY_SERVER % {"port": px_port, "upstream": up_port,
                                            "stream_path": STREAM_PATH},
                            px_port, workers)
        paths: list[tuple[str, Server]] = [("direct", upstream), ("nginx proxy", proxy)]
        if args.floor.is_file() and os.access(args.floor, os.X_OK):
            paths.append(("hyper proxy", start_floor(procs, args.floor, tmp / "floor", up_port)))
        else:
            print(f"no {args.floor} (run `make build`): no hyper proxy row", flush=True)

        redis_port = None
        if any("redis" in m.split("+")[1:] for m in modes):
            redis_bin = shutil.which("redis-server")
            if not redis_bin:
                raise BenchError("a +redis row needs redis-server (apt-get install -y redis-server)")
            redis_port = free_port()
            procs.start("redis", [redis_bin, "--port", str(redis_port), "--save", "",
                                  "--appendonly", "no", "--bind", "127.0.0.1"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", redis_port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise BenchError("redis-server did not start within 10 s")
                    time.sleep(0.05)

        fw_extra: dict[str, dict] = {}
        if not freeway_skip:
            plugin_dir = args.plugins_dir.resolve()
            if args.minimal_plugins:
                plugin_dir = tmp / "plugins"
                plugin_dir.mkdir()
                for name in REQUIRED_PLUGINS:
                    (plugin_dir / name).symlink_to(args.plugins_dir.resolve() / name)
            cache = tmp / "cache"
            env = {"BENCH_KEY": UPSTREAM_KEY, "FREEWAY_LOG": args.log_level}
            # Prime the plugin cache once (cold start = compile), so every measured row starts
            # the way a restarted gateway does (cache hit). Both start times are reported.
            cold = start_freeway(procs, args.freeway, "freeway (cache priming)", tmp / "prime",
                                 freeway_config(plugin_dir, cache, up_port,
                                                modes[0] if modes else "fresh", redis_port,
                                                shipped), env)
            cold_rss = rss_kib(cold.proc.pid)
            procs.stop(cold.proc)
            fw_extra["cold_start"] = {"startup_s": cold.extra["startup_s"],
                                      "rss_kib_after_start": cold_rss}
            for mode in modes:
                name = row_name(mode)
                s = start_freeway(procs, args.freeway, name, tmp / mode.replace(" ", "-"),
                                  freeway_config(plugin_dir, cache, up_port, mode, redis_port,
                                                 shipped),
                                  env)
                s.extra["mode"] = mode
                time.sleep(1.0)  # idle: after start, before any request
                s.extra["rss_idle_kib"] = rss_kib(s.proc.pid)
                paths.append((name, s))

        for name, s in paths:
            check_response(name, s.port, exact=not name.startswith("freeway"))
        print("checked: every path answers 200 with the expected chat.completion", flush=True)
        # The path each one takes for the streamed answer: the upstream's own stream location
        # (direct, and nginx proxying it), Freeway's /v1 route to the `bench-stream` model.
        stream_url = {name: ("/v1/chat/completions" if name.startswith("freeway")
                             else STREAM_PATH) for name, _ in paths}
        stream_events: dict[str, int] = {}
        if stream:
            for name, s in paths:
                stream_events[name] = check_stream(name, s.port, stream_url[name],
                                                   exact=not name.startswith("freeway"))
            print(f"checked: every path streams the same {STREAM_CHUNKS} content deltas and ends "
                  f"with data: [DONE]", flush=True)
        print(flush=True)

        all_pids = sorted({pid for _, s in paths for pid in s.pids})
        results: dict[str, list[dict]] = {name: [] for name, _ in paths}
        rss_peaks: dict[str, list[int]] = {name: [] for name, _ in paths}
        for rnd in range(args.rounds):
            for name, s in paths:
                if s.proc.poll() is not None:
                    raise BenchError(f"{name} died (exit {s.proc.returncode}):\n{tail(s.log)}")
                label = f"[{rnd + 1}/{args.rounds}] {name}" if args.rounds > 1 else name
                print(f"  {label}: saturation ...", end="", flush=True)
                run_wrk(wrk, script, s.port, args.threads, args.connections, args.warmup)
                cpu0 = cpu_seconds(s.pids)
                with Background(all_pids) as bg_sat, RssSampler(s.pids) as sampler:
                    sat = run_wrk(wrk, script, s.port, args.threads, args.connections,
                                  args.duration)
                cpu = cpu_seconds(s.pids) - cpu0
                sat["background_cores"] = bg_sat.cores
                # CPU the server under test (not wrk, not the upstream) spent per request.
                sat["cpu_us_per_req"] = cpu * 1e6 / sat["requests"] if sat["requests"] else None
                print(f" {sat['rps']:,.0f} req/s; c=1 latency ...", end="", flush=True)
                run_wrk(wrk, script, s.port, 1, 1, min(args.warmup, 1.0))
                with Background(all_pids) as bg_lat:
                    lat = run_wrk(wrk, script, s.port, 1, 1, args.duration, latency=True)
                lat["background_cores"] = bg_lat.cores
                busy = max(bg_sat.cores, bg_lat.cores)
                print(f" p50 {lat['p50']:,.0f} µs, p99 {lat['p99']:,.0f} µs"
                      + (f"  (busy machine: other processes used {busy:.0%} of a core)"
                         if busy > BACKGROUND_WARN else ""), flush=True)
                record = {"saturation": sat, "latency": lat}
                peak = sampler.peak_kib
                if stream:
                    url = stream_url[name]
                    print(f"  {label} (stream): saturation ...", end="", flush=True)
                    run_wrk(wrk, stream_script, s.port, args.threads, args.connections,
                            args.warmup, path=url)
                    cpu0 = cpu_seconds(s.pids)
                    with Background(all_pids) as bg_ss, RssSampler(s.pids) as sampler:
                        ss = run_wrk(wrk, stream_script, s.port, args.threads, args.connections,
                                     args.duration, path=url)
                    cpu = cpu_seconds(s.pids) - cpu0
                    ss["background_cores"] = bg_ss.cores
                    ss["cpu_us_per_resp"] = cpu * 1e6 / ss["requests"] if ss["requests"] else None
                    ss["events_per_s"] = ss["rps"] * stream_events[name]
                    peak = max(peak, sampler.peak_kib)
                    print(f" {ss['events_per_s']:,.0f} events/s; c=1 TTFB ...", end="",
                          flush=True)
                    client = StreamClient(s.port, url, STREAM_REQUEST_BODY)
                    try:
                        client.measure(min(args.warmup, 1.0))
                        with Background(all_pids) as bg_tt:
                            tt = client.measure(args.duration)
                    finally:
                        client.close()
                    tt["background_cores"] = bg_tt.cores
                    busy = max(bg_ss.cores, bg_tt.cores)
                    print(f" p50 {tt['ttfb_p50']:,.0f} µs, p99 {tt['ttfb_p99']:,.0f} µs"
                          + (f"  (busy machine: other processes used {busy:.0%} of a core)"
                             if busy > BACKGROUND_WARN else ""), flush=True)
                    record["stream_saturation"] = ss
                    record["ttfb"] = tt
                results[name].append(record)
                rss_peaks[name].append(peak)
                if s.proc.poll() is not None:
                    raise BenchError(f"{name} died during the run:\n{tail(s.log)}")

        for name, s in paths:
            runs = results[name]
            med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
            row = {
                "path": name,
                "rps": med(lambda r: r["saturation"]["rps"]),
                "p50_us": med(lambda r: r["latency"]["p50"]),
                "p90_us": med(lambda r: r["latency"]["p90"]),
                "p99_us": med(lambda r: r["latency"]["p99"]),
                "p999_us": med(lambda r: r["latency"]["p999"]),
                "max_us": max(r["latency"]["max"] for r in runs),
                "saturation_p50_us": med(lambda r: r["saturation"]["p50"]),
                "saturation_p99_us": med(lambda r: r["saturation"]["p99"]),
                "c1_rps": med(lambda r: r["latency"]["rps"]),
                "background_cores": max(max(r[k]["background_cores"] for k in r)
                                        for r in runs),
                "cpu_us_per_req": med(lambda r: r["saturation"]["cpu_us_per_req"] or 0.0),
                "non2xx": sum(r[k]["non2xx"] for r in runs for k in ("saturation", "latency")),
                "socket_errors": sum(r[k]["socket_errors"] for r in runs
                                     for k in ("saturation", "latency")),
                "requests": sum(r[k]["requests"] for r in runs for k in ("saturation", "latency")),
                "rss_idle_kib": s.extra.get("rss_idle_kib") if name.startswith("freeway")
                else group_rss_kib(s.pids),
                "rss_peak_kib": max(rss_peaks[name]),
                "rss_hwm_kib": hwm_kib(s.proc.pid) if name.startswith("freeway") else None,
                "startup_s": s.extra.get("startup_s"),
                "rounds": [{kind: {k: v for k, v in fig.items() if k != "wrk_output"}
                            for kind, fig in r.items()} for r in runs],
            }
            if stream:
                row["stream"] = {
                    "events_per_response": stream_events[name],
                    "ttfb_p50_us": med(lambda r: r["ttfb"]["ttfb_p50"]),
                    "ttfb_p90_us": med(lambda r: r["ttfb"]["ttfb_p90"]),
                    "ttfb_p99_us": med(lambda r: r["ttfb"]["ttfb_p99"]),
                    "ttfb_p999_us": med(lambda r: r["ttfb"]["ttfb_p999"]),
                    "total_p50_us": med(lambda r: r["ttfb"]["total_p50"]),
                    "total_p99_us": med(lambda r: r["ttfb"]["total_p99"]),
                    "rps": med(lambda r: r["stream_saturation"]["rps"]),
                    "events_per_s": med(lambda r: r["stream_saturation"]["events_per_s"]),
                    "cpu_us_per_resp": med(lambda r: r["stream_saturation"]["cpu_us_per_resp"]
                                           or 0.0),
                    "saturation_p50_us": med(lambda r: r["stream_saturation"]["p50"]),
                    "saturation_p99_us": med(lambda r: r["stream_saturation"]["p99"]),
                    "non2xx": sum(r["stream_saturation"]["non2xx"] + r["ttfb"]["non2xx"]
                                  for r in runs),
                    "socket_errors": sum(r["stream_saturation"]["socket_errors"] for r in runs),
                }
            row["mode"] = s.extra.get("mode")
            rows.append(row)
        direct = rows[0]
        ngx = rows[1]
        for r in rows:
            r["x_direct"] = r["rps"] / direct["rps"] if direct["rps"] else None
            r["x_nginx"] = r["rps"] / ngx["rps"] if ngx["rps"] else None
            if r is not direct:
                r["added_p50_us"] = r["p50_us"] - direct["p50_us"]
                r["added_p99_us"] = r["p99_us"] - direct["p99_us"]
            if stream:
                st, d, n = r["stream"], direct["stream"], ngx["stream"]
                st["x_nginx"] = (st["events_per_s"] / n["events_per_s"]
                                 if n["events_per_s"] else None)
                if r is not direct:
                    st["added_ttfb_p50_us"] = st["ttfb_p50_us"] - d["ttfb_p50_us"]
                    st["added_ttfb_p99_us"] = st["ttfb_p99_us"] - d["ttfb_p99_us"]
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    except BenchError as e:
        print(f"\nbench: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if args.keep:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- report --------------------------------------------------------------------------
    width = max(len(r["path"]) for r in rows)
    print()
    print_table(rows)
    print("\nreq/s: saturation (wrk -t%d -c%d); CPU/req: CPU time of that path's server alone "
          "(nginx: master+workers, not the upstream) per request at saturation;\n"
          "p50/p99: one connection, one request at a time; added = path minus direct."
          % (args.threads, args.connections))
    if stream:
        print()
        print_stream_table(rows)
        print(f"\nTTFB: from sending the request to receiving the first bytes of the first "
              f"data: event, one connection, one request at a time (raw-socket client); full: "
              f"to the end of the stream;\nreq/s, events/s: saturation (wrk -t{args.threads} "
              f"-c{args.connections}), events/s = req/s × data: events per response "
              f"({', '.join(sorted({str(n) for n in stream_events.values()}))}); ×nginx: "
              f"events/s over the nginx proxy's; CPU/resp: like CPU/req, per streamed response.")
    worst = max(r["background_cores"] for r in rows)
    print(f"\nbackground: other processes used at most {worst:.0%} of one core during any "
          f"measurement" + ("" if worst <= BACKGROUND_WARN else
                            " -- the machine was busy: treat these figures as noisy, re-run idle"))
    print("\nmemory (VmRSS; peak sampled every 100 ms during the saturation runs):")
    for r in rows:
        kind = "process" if r["path"].startswith(("freeway", "hyper")) else "master+workers"
        extra = ""
        if r.get("rss_hwm_kib"):
            extra += f", VmHWM {r['rss_hwm_kib'] / 1024:.1f} MiB"
        if r.get("startup_s") is not None:
            extra += f", start {r['startup_s'] * 1000:.0f} ms (warm cache)"
        print(f"  {r['path']:<{width}} idle {r['rss_idle_kib'] / 1024:6.1f} MiB, "
              f"peak {r['rss_peak_kib'] / 1024:6.1f} MiB ({kind}{extra})")
    if "cold_start" in fw_extra:
        c = fw_extra["cold_start"]
        print(f"  freeway cold start (compiling plugins into an empty cache): "
              f"{c['startup_s'] * 1000:.0f} ms")

    targets_out = []
    fw_rows = [r for r in rows if r["path"].startswith("freeway")]
    if fw_rows:
        print("\ntargets (Freeway; pooled rows: the default config's targets, fresh rows: "
              "per-request isolation's):")
        for r in fw_rows:
            pooled = (r.get("mode") or "").split("+")[0] == "pooled"
            x_nginx = r["x_nginx"] or 0
            if pooled:
                floor = TARGETS["default_throughput_vs_nginx_min"]
                checks = [
                    (f"throughput ≥ {floor:.0%} of nginx", x_nginx, x_nginx >= floor,
                     f"{x_nginx * 100:.0f}% of nginx"),
                    (f"added p50 ≤ {TARGETS['default_added_p50_us_max']:.0f} µs",
                     r["added_p50_us"], r["added_p50_us"] <= TARGETS["default_added_p50_us_max"],
                     f"{r['added_p50_us']:+.0f} µs"),
                    (f"added p99 ≤ {TARGETS['default_added_p99_us_max']:.0f} µs",
                     r["added_p99_us"], r["added_p99_us"] <= TARGETS["default_added_p99_us_max"],
                     f"{r['added_p99_us']:+.0f} µs"),
                ]
                if stream:
                    added = r["stream"]["added_ttfb_p50_us"]
                    bound = TARGETS["default_added_ttfb_p50_us_max"]
                    checks.append((f"added TTFB p50 ≤ {bound:.0f} µs", added, added <= bound,
                                   f"{added:+.0f} µs"))
            else:
                floor = TARGETS["isolated_throughput_vs_nginx_min"]
                checks = [(f"throughput ≥ {floor:.0%} of nginx", x_nginx, x_nginx >= floor,
                           f"{x_nginx * 100:.0f}% of nginx")]
            checks += [
                (f"RSS idle ≤ {TARGETS['rss_idle_mib_max']:.0f} MiB", r["rss_idle_kib"] / 1024,
                 r["rss_idle_kib"] / 1024 <= TARGETS["rss_idle_mib_max"],
                 f"{r['rss_idle_kib'] / 1024:.1f} MiB"),
                (f"RSS under load ≤ {TARGETS['rss_load_mib_max']:.0f} MiB",
                 r["rss_peak_kib"] / 1024, r["rss_peak_kib"] / 1024 <= TARGETS["rss_load_mib_max"],
                 f"{r['rss_peak_kib'] / 1024:.1f} MiB"),
                (f"start, warm cache ≤ {TARGETS['start_warm_cache_ms_max']:.0f} ms",
                 r["startup_s"] * 1000, r["startup_s"] * 1000 <= TARGETS["start_warm_cache_ms_max"],
                 f"{r['startup_s'] * 1000:.0f} ms"),
            ]
            for label, value, met, shown in checks:
                print(f"  {r['path']:<{width}} {label:<28} {shown:>14}   "
                      f"{'met' if met else 'MISSED'}")
                targets_out.append({"path": r["path"], "target": label, "value": value,
                                    "met": met})
    else:
        print(f"\ntargets: not evaluated (Freeway rows skipped: {freeway_skip})")

    if args.json:
        doc = {
            "machine": info,
            "settings": {"duration_s": args.duration, "warmup_s": args.warmup,
                         "rounds": args.rounds, "threads": args.threads,
                         "connections": args.connections, "nginx_workers": workers,
                         "request_bytes": len(REQUEST_BODY),
                         "response_bytes": len(UPSTREAM_BODY), "freeway_log": args.log_level,
                         "minimal_plugins": args.minimal_plugins, "modes": modes,
                         "stream": stream,
                         "stream_request_bytes": len(STREAM_REQUEST_BODY),
                         "stream_response_bytes": len(STREAM_BODY),
                         "stream_events": STREAM_EVENTS,
                         "mirrored_from_shipped_config": shipped},
            "freeway_skipped": freeway_skip,
            "freeway_cold_start": fw_extra.get("cold_start"),
            "targets": TARGETS,
            "rows": rows,
            "target_results": targets_out,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")

    if args.fail_on_miss and any(not t["met"] for t in targets_out):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
