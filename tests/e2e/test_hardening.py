"""Hostile clients and broken upstreams, through the real binary: every deadline is cut at its
configured time with the right status, every upstream fault has one defined client outcome,
and the request log cannot be forged.

Client-side faults are played on raw sockets (slow heads and bodies); upstream faults by
`raw_upstream.RawUpstream`, which writes exactly the bytes a test scripts.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import time

import httpx
import pytest

import mock_openai as mo
import raw_upstream as ru
from harness import base_config, chat_body, db_rows, error_body, keys_for, poll, provider, sse_events

# Short deadlines, so each test takes about a second.
SERVER = {"header_read_timeout_ms": 1000, "body_read_timeout_ms": 3000,
          "body_idle_timeout_ms": 1000, "request_timeout_ms": 3000,
          "max_response_bytes": 65536}
ATTEMPT_MS = 2000
STREAM_IDLE_MS = 1000


@pytest.fixture
def raw():
    upstream = ru.RawUpstream("raw")
    yield upstream
    upstream.stop()


@pytest.fixture
def gw(raw, gateways):
    cfg = base_config(
        server=SERVER,
        providers={"raw": {"adapter": "openai-compatible", "base_url": raw.base_url,
                           "api_key_env": "RAW_KEY", "models": ["gpt-raw", "gpt-raw2"],
                           "timeout_ms": ATTEMPT_MS,
                           "stream_idle_timeout_ms": STREAM_IDLE_MS}},
        models={"solo": {"targets": ["raw/gpt-raw"]},
                "pair": {"targets": ["raw/gpt-raw", "raw/gpt-raw2"]}})
    return gateways.start(cfg, env={"RAW_KEY": raw.api_key})


def post(gw, body, **kw):
    with gw.http() as h:
        return h.post("/v1/chat/completions", json=body, timeout=20, **kw)


def connect(gw) -> socket.socket:
    host, port = gw.base_url.removeprefix("http://").split("/")[0].split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def read_all(s: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        out += data
    return out


# -- hostile clients ----------------------------------------------------------------------------


def test_stalled_request_body_gets_408_after_the_idle_deadline(gw, raw):
    s = connect(gw)
    body = json.dumps(chat_body("solo")).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
              b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body[:10])
    t0 = time.monotonic()
    answer = read_all(s)
    took = time.monotonic() - t0
    s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"request_timeout"' in answer
    assert b"connection: close" in answer.lower()
    assert 0.8 < took < 2.5, took
    assert not raw.requests, "nothing reaches an upstream"


def test_dripped_request_body_gets_408_at_the_total_deadline(gw):
    """A byte every 0.5 s never trips the 1 s idle deadline; the 3 s total one cuts it."""
    s = connect(gw)
    body = json.dumps(chat_body("solo")).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
              b"\r\ncontent-length: %d\r\n\r\n" % len(body))
    t0 = time.monotonic()
    s.settimeout(0.5)
    answer = b""
    for byte in body:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            break
        try:
            data = s.recv(65536)
            if not data:
                break
            answer += data
            break
        except socket.timeout:
            continue
    s.settimeout(5)
    answer += read_all(s)
    took = time.monotonic() - t0
    s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"3000 ms" in answer, answer
    assert 2.8 < took < 4.5, took


def test_stalled_request_head_is_cut_at_the_header_deadline(gw):
    s = connect(gw)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
    t0 = time.monotonic()
    read_all(s)
    took = time.monotonic() - t0
    s.close()
    assert took < 2.5, f"the connection must be closed at the 1 s header deadline, took {took}"


def test_control_characters_cannot_forge_log_lines(gw):
    mark = gw.log_mark()
    forged = "nope\r\nX-Injected: 1 status=404 request_id=forged"
    r = post(gw, chat_body(forged))
    assert r.status_code == 404
    line = gw.wait_for_log(re.compile(r"request failed"), since=mark)
    logged = gw.stderr_since(mark)
    assert not any(ln.startswith("X-Injected") for ln in logged.splitlines()), logged
    assert "nope\\r\\nX-Injected: 1 status=404" in logged, logged
    assert line


# -- broken upstreams: one defined outcome each ---------------------------------------------------

BROKEN_ANSWERS = {
    "truncated-json": ru.Fault([("send", ru.head("200 OK", {"content-type": "application/json",
                                                              "content-length": "400"})
                                 + json.dumps(ru.completion())[:60].encode()), ("close",)]),
    "reset-mid-body": ru.Fault([("send", ru.head("200 OK", {"content-length": "400"})
                                 + b'{"id": "chatcmpl-x", "choi'), ("sleep", 0.1), ("reset",)]),
    "garbage-head": ru.Fault([("send", b"HTTP/1.1 200 OK\r\n\x00\x01\x02 garbage\r\n\r\n"),
                              ("close",)]),
    "garbage-status-line": ru.Fault([("send", b"\x16\x03\x01 not http at all\r\n\r\n"),
                                     ("close",)]),
    "garbage-body": ru.Fault([("send", ru.head("200 OK", {"content-length": "6"})
                               + b"\xff\xfe\x00zz!")]),
    "invalid-chunked": ru.Fault([("send", ru.head("200 OK", {"transfer-encoding": "chunked"})
                                  + b"zz\r\nhello\r\n0\r\n\r\n"), ("close",)]),
    "error-in-a-200": ru.Fault([("send", ru.head("200 OK", {"content-type": "application/json",
                                                             "content-length": "67"})
                                 + json.dumps({"error": {"message": "upstream overloaded",
                                                         "type": "server_error"}}
                                              ).encode().ljust(67))]),
    "oversized": ru.Fault([("send", ru.head("200 OK", {"content-length": "200000"})
                            + b"x" * 200000)]),
    "gzip-bomb": ru.Fault([("send", ru.head("200 OK", {
        "content-encoding": "gzip",
        "content-length": str(len(gzip.compress(b"0" * 20_000_000)))})
                            + gzip.compress(b"0" * 20_000_000))]),
    "unknown-encoding": ru.Fault([("send", ru.head("200 OK", {"content-encoding": "zstd",
                                                               "content-length": "4"})
                                   + b"abcd")]),
}


@pytest.mark.parametrize("fault", list(BROKEN_ANSWERS), ids=list(BROKEN_ANSWERS))
def test_broken_answers_are_502_upstream_error(gw, raw, fault):
    raw.script(BROKEN_ANSWERS[fault])
    r = post(gw, chat_body("solo"))
    assert r.status_code == 502, r.text
    err = error_body(r)
    assert err["code"] == "upstream_error", err
    assert "raw/gpt-raw" in err["message"], err
    if fault in ("oversized", "gzip-bomb"):
        assert "65536 bytes" in err["message"] and "max_response_bytes" in err["message"], err


@pytest.mark.parametrize("fault", ["reset-before-head", "closed-before-head"])
def test_upstream_gone_before_its_head_is_503(gw, raw, fault):
    step = ("reset",) if fault == "reset-before-head" else ("close",)
    raw.script(ru.Fault([step]))
    r = post(gw, chat_body("solo"))
    assert r.status_code == 503, r.text
    assert error_body(r)["code"] == "no_available_target"


def test_refused_connection_is_503(gateways):
    cfg = base_config(providers={"dead": {"adapter": "openai-compatible",
                                          "base_url": f"http://127.0.0.1:{mo.closed_port()}/v1",
                                          "api_key_env": "DEAD_KEY", "models": ["m"]}},
                      models={"solo": {"targets": ["dead/m"]}})
    gw = gateways.start(cfg, env={"DEAD_KEY": "sk-dead"})
    r = post(gw, chat_body("solo"))
    assert r.status_code == 503
    err = error_body(r)
    assert err["code"] == "no_available_target" and "cannot connect" in err["message"], err


def test_upstream_that_never_answers_is_cut_at_the_attempt_deadline(gw, raw):
    raw.script(ru.Fault([("hang",)]))
    t0 = time.monotonic()
    r = post(gw, chat_body("solo"))
    took = time.monotonic() - t0
    assert r.status_code == 504 and error_body(r)["code"] == "upstream_timeout", r.text
    assert 1.9 < took < 3.0, took
    assert raw.wait_for(1)[0].outcome == "peer-closed", "the gateway hangs up on it"


def test_upstream_dripping_a_byte_a_second_is_cut_at_its_deadline(gw, raw):
    raw.script(ru.Fault([("send", ru.head("200 OK", {"content-length": "300"})),
                         ("drip", json.dumps(ru.completion()).encode(), 1.0)]))
    t0 = time.monotonic()
    r = post(gw, chat_body("solo"))
    took = time.monotonic() - t0
    assert r.status_code == 504 and error_body(r)["code"] == "upstream_timeout", r.text
    assert 1.9 < took < 3.0, took
    assert raw.wait_for(1)[0].outcome == "peer-closed"


def test_request_deadline_bounds_failover(gw, raw):
    """Two targets that never answer, 2 s each: the 3 s request deadline ends it, not 4 s."""
    raw.script(ru.Fault([("hang",)]), ru.Fault([("hang",)]))
    t0 = time.monotonic()
    r = post(gw, chat_body("pair"))
    took = time.monotonic() - t0
    assert r.status_code == 504, r.text
    assert 2.9 < took < 3.6, took
    assert len(raw.requests) == 2


def test_stream_dripping_bytes_is_cut_after_the_stream_idle_deadline(gw, raw):
    """Committed by a first event, then one byte a second that never completes an event:
    bytes are not progress, so the 1 s stream idle deadline ends it with an error event."""
    raw.script(ru.Fault([("send", ru.sse_head() + ru.chunk(ru.sse_event("hi", role=True))),
                         ("drip", ru.chunk(ru.sse_event(" there" * 20)), 0.3)]))
    t0 = time.monotonic()
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("solo", stream=True), timeout=20)
    took = time.monotonic() - t0
    assert r.status_code == 200
    events = sse_events(r.text)
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "hi"
    last = json.loads(events[-1])
    assert last["error"]["code"] == "stream_interrupted", last
    assert "no chunk for 1000 ms" in last["error"]["message"], last
    assert "[DONE]" not in events
    assert 0.9 < took < 2.5, took


def test_truncated_sse_ends_with_an_error_event(gw, raw):
    raw.script(ru.Fault([("send", ru.sse_head() + ru.chunk(ru.sse_event("one", role=True))
                          + ru.chunk(b'data: {"id": "chatcmpl-raw", "obj')), ("close",)]))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("solo", stream=True), timeout=20)
    events = sse_events(r.text)
    assert json.loads(events[-1])["error"]["code"] == "stream_interrupted"


def test_sse_cut_before_its_first_event_is_502(gw, raw):
    raw.script(ru.Fault([("send", ru.sse_head() + ru.chunk(b'data: {"id": "chatc')),
                         ("close",)]))
    with gw.http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("solo", stream=True), timeout=20)
    assert r.status_code == 502, r.text
    assert error_body(r)["code"] == "upstream_error"


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_answers_are_decoded(gw, raw, encoding):
    raw.script(ru.Fault([("send", ru.ok_json("squeezed", encoding=encoding))]))
    r = post(gw, chat_body("solo"))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "squeezed"


def test_compressed_stream_is_decoded(gw, raw):
    events = (ru.sse_event("zip", role=True) + ru.sse_event("ped", finish="stop")
              + b"data: [DONE]\n\n")
    packed = gzip.compress(events)
    raw.script(ru.Fault([("send", ru.sse_head({"content-encoding": "gzip"})
                          + ru.chunk(packed[:20]) + ru.chunk(packed[20:]) + b"0\r\n\r\n")]))
    r = post(gw, chat_body("solo", stream=True))
    assert r.status_code == 200, r.text
    got = [json.loads(e) for e in sse_events(r.text) if e != "[DONE]"]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in got) == "zipped"


# -- a client that leaves mid-stream ----------------------------------------------------------


def test_client_leaving_mid_stream_has_its_own_outcome(mocks, gateways):
    a = mocks.add("mock-a")
    cfg = base_config(providers={"mock-a": provider(a, ["gpt-a"])},
                      models={"m": {"targets": ["mock-a/gpt-a"]}})
    gw = gateways.start(cfg, env=keys_for(a))
    a.script(mo.text(" ".join(f"w{i}" for i in range(40)), event_gap=0.1))
    mark = gw.log_mark()
    with httpx.Client(base_url=gw.base_url, timeout=10) as h:
        with h.stream("POST", "/chat/completions", json=chat_body("m", stream=True),
                      headers={"x-request-id": "leaver"}) as r:
            assert r.status_code == 200
            for _ in r.iter_bytes():
                break  # the first piece, then hang up
    line = gw.wait_for_log(re.compile(r"request_id=leaver"), since=mark, timeout=10)
    assert "outcome=client_closed" in line and "status=499" in line, line
    db = gw.config_path.parent / "freeway.db"
    rows = poll(lambda: db_rows(db, "SELECT status, outcome FROM ledger WHERE request_id = ?",
                                ("leaver",)), timeout=10, what="the ledger row")
    assert (rows[0]["status"], rows[0]["outcome"]) == (499, "client_closed"), rows
    assert not re.search(r"error=.*went away", gw.stderr_since(mark))


def test_client_leaving_before_a_json_answer_is_logged_and_settled(mocks, gateways):
    """The server drops a request whose client hung up; its record must still be finished:
    a log line and a ledger row saying client_closed, and the key's reservation released."""
    a = mocks.add("mock-a")
    cfg = base_config(providers={"mock-a": provider(a, ["gpt-a"])},
                      models={"m": {"targets": ["mock-a/gpt-a"]}},
                      auth={"keys": [{"name": "leaver-key", "key_env": "GW_LEAVER",
                                      "daily_requests": 2}]})
    gw = gateways.start(cfg, env={**keys_for(a), "GW_LEAVER": "fw-leaver-key-0000001"})
    a.script(mo.text("too late", delay=3.0))
    mark = gw.log_mark()
    with httpx.Client(base_url=gw.base_url, timeout=0.5) as h:
        with pytest.raises(httpx.ReadTimeout):
            h.post("/chat/completions", json=chat_body("m"),
                   headers={"x-request-id": "json-leaver",
                            "authorization": "Bearer fw-leaver-key-0000001"})
    line = gw.wait_for_log(re.compile(r"request_id=json-leaver"), since=mark, timeout=10)
    assert "outcome=client_closed" in line and "status=499" in line, line
    assert "key=leaver-key" in line, line
    db = gw.config_path.parent / "freeway.db"
    rows = poll(lambda: db_rows(db, "SELECT status, outcome, key FROM ledger "
                                    "WHERE request_id = ?", ("json-leaver",)),
                timeout=10, what="the ledger row")
    assert (rows[0]["status"], rows[0]["outcome"], rows[0]["key"]) == (
        499, "client_closed", "leaver-key"), rows
    # The abandoned request counted once against the key's 2 a day: one more is admitted.
    r = httpx.post(f"{gw.base_url}/chat/completions", json=chat_body("m"), timeout=10,
                   headers={"authorization": "Bearer fw-leaver-key-0000001"})
    assert r.status_code == 200, r.text
