"""A raw TCP upstream for faults an HTTP server library will not produce: garbage instead of a
status line, a reset before or after the head, invalid chunked encoding, a body cut short, a
byte a second, a connection accepted and never answered.

Each connection reads one request (head and `Content-Length` body, recorded) and then plays the
next scripted `Fault`: a list of steps, each one of

- `("send", bytes)`: write these bytes;
- `("drip", bytes, seconds)`: write them one byte at a time, `seconds` apart;
- `("sleep", seconds)`;
- `("reset",)`: close with SO_LINGER 0, so the peer gets a TCP RST;
- `("close",)`: close normally (FIN);
- `("hang",)`: keep the connection open, writing nothing, until the peer leaves or the
  server stops.

An empty queue answers a valid OpenAI `chat.completion` ("hello from <name>"), so a test
scripts only the faulty attempt. Helpers at the bottom build the usual byte sequences.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

Step = tuple


@dataclass
class Fault:
    steps: list[Step]


@dataclass
class RawRequest:
    head: bytes
    body: bytes
    # What happened after the fault played: "done", or "peer-closed" when the gateway left
    # while the fault was still playing (a hang or a drip it cut).
    outcome: str = ""
    ended_at: float = 0.0


@dataclass
class RawUpstream:
    name: str = "raw"
    _queue: list[Fault] = field(default_factory=list)
    requests: list[RawRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name=f"raw-{self.name}", daemon=True)
        self._accept.start()

    # -- the mock interface the harness expects (reset/stop/base_url) ----------------------------

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def api_key(self) -> str:
        return f"sk-{self.name}-secret"

    def script(self, *faults: Fault) -> "RawUpstream":
        with self._lock:
            self._queue.extend(faults)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def stop(self) -> None:
        self._stop.set()
        self._accept.join(timeout=2)
        self._sock.close()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[RawRequest]:
        """Wait until `n` requests have finished playing their faults."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = [r for r in self.requests if r.outcome]
            if len(done) >= n:
                return done
            time.sleep(0.02)
        raise AssertionError(f"raw upstream {self.name}: {n} finished requests expected, "
                             f"got {[r.outcome for r in self.requests]}")

    # -- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            t.start()

    def _next(self) -> Fault:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return Fault([("send", ok_json(f"hello from {self.name}"))])

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(10)
        try:
            request = _read_request(conn)
        except (OSError, ValueError):
            conn.close()
            return
        if request is None:
            conn.close()
            return
        with self._lock:
            self.requests.append(request)
        fault = self._next()
        try:
            closed = self._play(conn, fault)
            request.outcome = "done" if not closed else "peer-closed"
        except OSError:
            request.outcome = "peer-closed"
        request.ended_at = time.monotonic()
        try:
            conn.close()
        except OSError:
            pass

    def _play(self, conn: socket.socket, fault: Fault) -> bool:
        """Play the steps; True when the peer closed the connection first."""
        for step in fault.steps:
            kind = step[0]
            if kind == "send":
                conn.sendall(step[1])
            elif kind == "drip":
                for i in range(len(step[1])):
                    conn.sendall(step[1][i:i + 1])
                    if _peer_closed(conn, step[2]) or self._stop.is_set():
                        return True
            elif kind == "sleep":
                if self._stop.wait(step[1]):
                    return False
            elif kind == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return False
            elif kind == "close":
                conn.shutdown(socket.SHUT_RDWR)
                return False
            elif kind == "hang":
                while not self._stop.is_set():
                    if _peer_closed(conn, 0.1):
                        return True
                return False
            else:
                raise AssertionError(f"unknown step {step!r}")
        return False


def _peer_closed(conn: socket.socket, wait: float) -> bool:
    """Wait up to `wait` seconds; True if the peer closed (or reset) meanwhile."""
    conn.settimeout(max(wait, 0.001))
    try:
        data = conn.recv(1, socket.MSG_PEEK)
        return data == b""
    except socket.timeout:
        return False
    except OSError:
        return True
    finally:
        conn.settimeout(10)


def _read_request(conn: socket.socket) -> Optional[RawRequest]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawRequest(head, rest[:length])


# -- byte builders -----------------------------------------------------------------------------


def completion(content: str = "hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-raw", "object": "chat.completion", "created": int(time.time()),
        "model": "gpt-raw",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def head(status: str = "200 OK", headers: Optional[dict[str, str]] = None) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ok_json(content: str = "hello", *, encoding: Optional[str] = None) -> bytes:
    """A whole 200 answer with a content-length, optionally gzip- or brotli-encoded."""
    body = json.dumps(completion(content)).encode()
    headers = {"content-type": "application/json"}
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    elif encoding == "br":
        import brotli  # from tests/requirements.txt
        body = brotli.compress(body)
        headers["content-encoding"] = "br"
    headers["content-length"] = str(len(body))
    return head("200 OK", headers) + body


def sse_head(extra: Optional[dict[str, str]] = None) -> bytes:
    return head("200 OK", {"content-type": "text/event-stream", "transfer-encoding": "chunked",
                           **(extra or {})})


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_event(content: str, *, role: bool = False, finish: Optional[str] = None) -> bytes:
    delta: dict[str, Any] = {"content": content}
    if role:
        delta["role"] = "assistant"
    obj = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 0,
           "model": "gpt-raw", "choices": [{"index": 0, "delta": delta,
                                            "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"
