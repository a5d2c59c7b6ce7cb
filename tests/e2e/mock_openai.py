"""A scriptable, wire-faithful mock of OpenAI's Chat Completions API, for end-to-end tests.

The gateway under test talks to this server exactly as it would talk to api.openai.com (or any
OpenAI-compatible provider), so the shapes here follow OpenAI's public API reference:

- `POST /v1/chat/completions` answers a `chat.completion` object, or, when the request says
  `"stream": true`, a `text/event-stream` of `chat.completion.chunk` objects framed as
  `data: <json>\\n\\n` and closed by `data: [DONE]\\n\\n` (chunked transfer encoding, as OpenAI does).
  Tool calls stream the way OpenAI streams them: `index`, `id`, `type` and `function.name` on the
  first delta of a call only, `function.arguments` split over several deltas. A final usage chunk
  with `"choices": []` is sent only when the request asked for `stream_options.include_usage`
  (and then every chunk carries `"usage": null`, as OpenAI does).
- Every answer carries OpenAI's `x-ratelimit-*` headers and an `x-request-id`; errors use OpenAI's
  `{"error": {"message", "type", "param", "code"}}` body.
- `POST /v1/embeddings` is served by `mock_embeddings` (after the key check).
- What OpenAI refuses is refused here first: a missing or wrong bearer key (401, before anything
  else), a body that is not JSON, a missing `model` or `messages`, `messages` that is not a list
  (400), an unknown top-level argument such as Anthropic's `thinking` (400), unknown paths
  (404).

Tests script each mock with a FIFO queue of behaviours (see the constructors at the bottom:
`text`, `tool_call`, `error`, `rate_limited`, `server_error`, `stream_then_drop`, `close`, each
with an optional `delay` before the response headers). A chat request that passes validation
takes the next behaviour; when the queue is empty the mock answers a plain text reply
("hello from <name>"), so a test only scripts what is special about it. Every request is recorded
(method, path, lower-cased headers, raw body, parsed JSON, arrival time) whether or not it was
accepted.

A mock's `streaming` says what it accepts: "both" (default), "never" (a streamed request is
refused with OpenAI's 400 naming `stream`, as endpoints that disable streaming do) or "only" (a
request without `"stream": true` is refused the same way).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

import mock_embeddings

CHAT_PATH = "/v1/chat/completions"

# ---------------------------------------------------------------------------------------------
# Behaviours
# ---------------------------------------------------------------------------------------------


@dataclass
class Behaviour:
    """One scripted answer. `kind` selects what the handler does; `delay` (seconds) is waited
    before anything is written, so a gateway's per-attempt timeout can be exercised."""

    kind: str  # "text" | "tool_call" | "error" | "drop" | "close"
    delay: float = 0.0
    content: str = ""
    # Streamed text is sent in these pieces (defaults to a split of `content` into words).
    pieces: Optional[list[str]] = None
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    # For errors.
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # For "drop": how many SSE events to send before the connection is cut.
    events_before_drop: int = 0
    # Extra top-level fields merged into the chat.completion object (non-streaming answers).
    extra: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 11
    completion_tokens: int = 7
    # Of the prompt tokens, how many the upstream served from its prompt cache
    # (`usage.prompt_tokens_details.cached_tokens`).
    cached_tokens: int = 0
    # Stream pacing and framing (streamed answers only):
    first_event_delay: float = 0.0  # after the 200 headers, before the first event
    event_gap: float = 0.0  # between later events
    write_size: int = 0  # >0: cut the byte stream into writes of this size (splits events, UTF-8)
    sse_comments: bool = False  # send ": keep-alive" comment lines between events, as some providers do


def text(content: str, *, pieces: Optional[list[str]] = None, delay: float = 0.0,
         finish_reason: str = "stop", extra: Optional[dict[str, Any]] = None,
         prompt_tokens: int = 11, completion_tokens: int = 7, first_event_delay: float = 0.0,
         event_gap: float = 0.0, write_size: int = 0, sse_comments: bool = False,
         cached_tokens: int = 0) -> Behaviour:
    """A successful text answer: JSON, or an SSE stream when the request asked for one. The
    usage it reports is `prompt_tokens` (of which `cached_tokens` came from the prompt cache)
    and `completion_tokens`."""
    return Behaviour("text", delay=delay, content=content, pieces=pieces,
                     finish_reason=finish_reason, extra=dict(extra or {}),
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                     first_event_delay=first_event_delay, event_gap=event_gap,
                     write_size=write_size, sse_comments=sse_comments,
                     cached_tokens=cached_tokens)


def tool_call(name: str, arguments: str, *, call_id: Optional[str] = None,
              argument_pieces: Optional[list[str]] = None, delay: float = 0.0) -> Behaviour:
    """A successful answer calling one function tool (finish_reason "tool_calls").

    Streamed, `arguments` arrives in `argument_pieces` (default: about four pieces)."""
    call = {
        "id": call_id or "call_" + uuid.uuid4().hex[:24],
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    if argument_pieces is not None:
        assert "".join(argument_pieces) == arguments, "pieces must join to the arguments"
    call["_pieces"] = argument_pieces or _split(arguments, 4)
    return Behaviour("tool_call", delay=delay, tool_calls=[call], finish_reason="tool_calls")


def error(status: int, body: Any = None, *, headers: Optional[dict[str, str]] = None,
          delay: float = 0.0) -> Behaviour:
    """An error answer with OpenAI's error body (or the given body, verbatim if it is bytes/str)."""
    if body is None:
        body = openai_error(f"mock error {status}", "server_error" if status >= 500 else
                            "invalid_request_error")
    return Behaviour("error", delay=delay, status=status, body=body, headers=dict(headers or {}))


def rate_limited(retry_after_s: Optional[int] = 20, *, model: str = "gpt-4o-mini") -> Behaviour:
    """OpenAI's 429 for an exhausted per-minute request window."""
    headers = {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{retry_after_s or 20}s",
    }
    if retry_after_s is not None:
        headers["retry-after"] = str(retry_after_s)
    body = openai_error(
        f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
        f"Limit 3, Used 3, Requested 1. Please try again in {retry_after_s or 20}s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "requests", code="rate_limit_exceeded")
    return Behaviour("error", status=429, body=body, headers=headers)


def server_error(status: int = 500, *, delay: float = 0.0) -> Behaviour:
    """OpenAI's 500 / 503 answers."""
    message = ("The server had an error while processing your request. Sorry about that!"
               if status == 500 else
               "The engine is currently overloaded, please try again later")
    return Behaviour("error", delay=delay, status=status, body=openai_error(message, "server_error"))


def bad_request(message: str, *, param: Optional[str] = None, code: Optional[str] = None) -> Behaviour:
    return Behaviour("error", status=400,
                     body=openai_error(message, "invalid_request_error", param=param, code=code))


def context_length_exceeded() -> Behaviour:
    return bad_request(
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 130517 tokens. Please reduce the length of the messages.",
        param="messages", code="context_length_exceeded")


def cut_off(content: str, **kw: Any) -> Behaviour:
    """An answer cut off by the token limit (`finish_reason: "length"`), as OpenAI sends one
    when `max_tokens` runs out mid-answer."""
    return text(content, finish_reason="length", **kw)


def empty(**kw: Any) -> Behaviour:
    """An answer with no text at all (`content: ""`, finish_reason "stop"), as small models
    on free tiers sometimes send."""
    return text("", completion_tokens=0, **kw)


def last_user_text(body: dict[str, Any]) -> str:
    """The newest user message's text of a chat request (what a judge is asked about)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


def stream_then_drop(content: str, events_before_drop: int, *,
                     pieces: Optional[list[str]] = None) -> Behaviour:
    """Start a 200 stream, send `events_before_drop` SSE events (the first one is the role
    chunk), then cut the connection without finishing the chunked body."""
    return Behaviour("drop", content=content, pieces=pieces, events_before_drop=events_before_drop)


def close(*, delay: float = 0.0) -> Behaviour:
    """Read the request, then close the connection without writing a byte."""
    return Behaviour("close", delay=delay)


def openai_error(message: str, type_: str, *, param: Optional[str] = None,
                 code: Optional[str] = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _split(s: str, n: int) -> list[str]:
    if not s:
        return [""]
    size = max(1, -(-len(s) // n))
    return [s[i:i + size] for i in range(0, len(s), size)]


# ---------------------------------------------------------------------------------------------
# Recorded requests
# ---------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any  # parsed body, or None when it was not JSON
    status: int = 0  # what the mock answered (0 = connection closed / dropped)
    # "complete": the whole answer was written; "cut": the mock cut it on purpose (script);
    # "aborted": the peer (the gateway) went away while the mock was still answering.
    outcome: str = ""
    # When the request arrived (time.monotonic()).
    at: float = field(default_factory=time.monotonic)

    @property
    def authorization(self) -> Optional[str]:
        return self.headers.get("authorization")


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    mock: "MockOpenAI"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle holds the body
        # until the gateway's delayed ACK (~40 ms per answer on a kept-alive connection).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Silence the default stderr access log; the recorded requests say what happened.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _rec_outcome(self, outcome: str) -> None:
        rec = getattr(self, "_current", None)
        if rec is not None and not rec.outcome:
            rec.outcome = outcome

    def _handle(self) -> None:
        mock = self.server.mock
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        rec = Recorded(self.command, self.path, headers, raw, parsed)
        self._current = rec
        mock._record(rec)
        try:
            self._dispatch(mock, rec)
            if not rec.outcome:
                rec.outcome = "complete"
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            # The gateway gave up on us (timeout, or its client went away).
            rec.outcome = "aborted"
            self.close_connection = True

    def _dispatch(self, mock: "MockOpenAI", rec: Recorded) -> None:
        path = self.path.split("?", 1)[0]
        if path not in (CHAT_PATH, mock_embeddings.OPENAI_PATH):
            return self._send_json(rec, 404, openai_error(
                f"Invalid URL ({self.command} {path})", "invalid_request_error"))
        if self.command != "POST":
            return self._send_json(rec, 405, openai_error(
                f"Invalid method for URL ({self.command} {path})", "invalid_request_error"))

        # Authentication comes first at OpenAI: a bad key is refused before the body is read.
        auth = rec.headers.get("authorization")
        if mock.api_key is not None:
            if not auth:
                return self._send_json(rec, 401, openai_error(
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                    "or as the password field (with blank username) if you're accessing the API "
                    "from your browser and are prompted for a username and password. You can "
                    "obtain an API key from https://platform.openai.com/account/api-keys.",
                    "invalid_request_error"))
            if auth != f"Bearer {mock.api_key}":
                shown = auth.removeprefix("Bearer ")
                shown = (shown[:3] + "*" * 4 + shown[-4:]) if len(shown) > 8 else shown
                return self._send_json(rec, 401, openai_error(
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error", code="invalid_api_key"))

        if path == mock_embeddings.OPENAI_PATH:
            return mock_embeddings.serve_openai(self, mock, rec)
        body = rec.json
        if not isinstance(body, dict):
            return self._send_json(rec, 400, openai_error(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
                "this, please contact us through our help center at help.openai.com.)",
                "invalid_request_error"))
        if "model" not in body:
            return self._send_json(rec, 400, openai_error(
                "you must provide a model parameter", "invalid_request_error"))
        if not isinstance(body["model"], str):
            return self._send_json(rec, 400, openai_error(
                f"Invalid type for 'model': expected a string, but got {type(body['model']).__name__} "
                "instead.", "invalid_request_error", param="model", code="invalid_type"))
        if "messages" not in body:
            return self._send_json(rec, 400, openai_error(
                "Missing required parameter: 'messages'.", "invalid_request_error",
                param="messages", code="missing_required_parameter"))
        if not isinstance(body["messages"], list):
            return self._send_json(rec, 400, openai_error(
                f"Invalid type for 'messages': expected an array, but got "
                f"{type(body['messages']).__name__} instead.", "invalid_request_error",
                param="messages", code="invalid_type"))
        if "thinking" in body:
            # OpenAI has no such parameter; unknown top-level arguments are refused.
            return self._send_json(rec, 400, openai_error(
                "Unrecognized request argument supplied: thinking", "invalid_request_error"))
        if len(body["messages"]) == 0:
            return self._send_json(rec, 400, openai_error(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.", "invalid_request_error", param="messages",
                code="empty_array"))

        stream = bool(body.get("stream"))
        if mock.streaming == "never" and stream:
            # What providers that disable streaming answer (e.g. some free OpenAI-compatible
            # endpoints and reasoning models): a 400 naming the parameter.
            return self._send_json(rec, 400, openai_error(
                "Streaming is not supported for this model. Set 'stream' to false.",
                "invalid_request_error", param="stream", code="unsupported_value"))
        if mock.streaming == "only" and not stream:
            return self._send_json(rec, 400, openai_error(
                "This endpoint only supports streaming: 'stream' must be true.",
                "invalid_request_error", param="stream", code="unsupported_value"))

        b = mock._next_behaviour(body)
        if b.delay:
            # Interruptible, so stopping the mock never waits for a scripted delay.
            if mock._stopping.wait(b.delay):
                self.close_connection = True
                return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and stream
        model = body["model"]

        if b.kind == "close":
            self._cut()
            return
        if b.kind == "error":
            return self._send_json(rec, b.status, b.body, b.headers)
        if b.kind in ("text", "tool_call"):
            if stream:
                events = mock._stream_events(b, model, include_usage)
                return self._send_stream(rec, events, drop_after=None, b=b)
            return self._send_json(rec, 200, mock._completion(b, model))
        if b.kind == "drop":
            events = mock._stream_events(b, model, include_usage)
            return self._send_stream(rec, events, drop_after=b.events_before_drop)
        raise AssertionError(f"unknown behaviour {b.kind}")

    # -- writing ------------------------------------------------------------------------------

    def _common_headers(self) -> None:
        mock = self.server.mock
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        self.send_header("openai-version", "2020-10-01")
        self.send_header("openai-processing-ms", "42")
        for k, v in mock.ratelimit_headers.items():
            self.send_header(k, v)

    def _send_json(self, rec: Recorded, status: int, body: Any,
                   headers: Optional[dict[str, str]] = None) -> None:
        if isinstance(body, (bytes, bytearray)):
            data, ctype = bytes(body), "application/octet-stream"
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        headers = dict(headers or {})
        ctype = headers.pop("content-type", ctype)
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self._common_headers()
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        # Recorded before the bytes go out: the gateway may act on the answer (and a test assert
        # on this record) before this thread runs again.
        rec.status = status
        self.wfile.write(data)
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_stream(self, rec: Recorded, events: list[bytes], drop_after: Optional[int],
                     b: Optional[Behaviour] = None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self._common_headers()
        rec.status = 200
        self.end_headers()
        self.wfile.flush()
        stopping = self.server.mock._stopping
        if b is not None and b.sse_comments:
            events = [x for ev in events for x in (b": keep-alive\n\n", ev)]
        events = events + [b"data: [DONE]\n\n"]
        if b is not None and b.write_size > 0:
            data = b"".join(events)
            events = [data[i:i + b.write_size] for i in range(0, len(data), b.write_size)]
        for i, ev in enumerate(events):
            if drop_after is not None and i >= drop_after:
                self._cut()
                return
            pause = (b.first_event_delay if i == 0 else b.event_gap) if b is not None else 0.0
            if pause and stopping.wait(pause):
                self._cut()
                return
            self._write_chunk(ev)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Close the TCP connection abruptly (mid-response or instead of one)."""
        self.close_connection = True
        self._rec_outcome("cut")
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()


class MockOpenAI:
    """One mock upstream. Use as a context manager or call start()/stop()."""

    def __init__(self, name: str = "mock", api_key: Optional[str] = "sk-mock-secret") -> None:
        self.name = name
        # None: accept any (or no) key, like a local Ollama.
        self.api_key = api_key
        # "both" (default); "never": a streamed request is refused with a 400 naming `stream`;
        # "only": a request without `"stream": true` is refused the same way.
        self.streaming = "both"
        self.ratelimit_headers = {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999980",
            "x-ratelimit-reset-tokens": "0s",
        }
        self._lock = threading.Condition()
        self._queue: list[Behaviour] = []
        # Answers requests the script does not cover from what they ask (a scripted judge).
        self._rule: Optional[Callable[[dict[str, Any]], Behaviour]] = None
        self._requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "MockOpenAI":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.mock = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"mock-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "MockOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "mock not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What a provider's `base_url` should be (OpenAI style, ending in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ----------------------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> "MockOpenAI":
        with self._lock:
            self._queue.extend(behaviours)
        return self

    def respond_with(self, rule: Optional[Callable[[dict[str, Any]], Behaviour]]
                     ) -> "MockOpenAI":
        """Answer every request the script does not cover with `rule(request_body)`: a
        scripted judge or summarizer that answers from what it is asked. None: the default
        answer again."""
        with self._lock:
            self._rule = rule
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self.streaming = "both"
            self._rule = None

    @property
    def pending(self) -> int:
        """Scripted behaviours not consumed yet."""
        with self._lock:
            return len(self._queue)

    def _next_behaviour(self, body: Optional[dict[str, Any]] = None) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            rule = self._rule
        if rule is not None and body is not None:
            return rule(body)
        return text(f"hello from {self.name}")

    # -- recording ----------------------------------------------------------------------------

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)
            self._lock.notify_all()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.split("?")[0] == CHAT_PATH]

    def last(self) -> Recorded:
        reqs = self.chat_requests
        assert reqs, f"mock {self.name} received no chat request"
        return reqs[-1]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"mock {self.name}: expected {n} requests, got {len(self._requests)}")
                self._lock.wait(left)
            return list(self._requests)

    # -- wire objects -------------------------------------------------------------------------

    @staticmethod
    def _usage(b: Behaviour) -> dict[str, Any]:
        return {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": b.completion_tokens,
            "total_tokens": b.prompt_tokens + b.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": b.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        }

    def _completion(self, b: Behaviour, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if b.kind == "tool_call":
            message["content"] = None
            message["tool_calls"] = [
                {k: v for k, v in call.items() if k != "_pieces"} for call in b.tool_calls
            ]
        else:
            message["content"] = b.content
        obj = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": b.finish_reason,
            }],
            "usage": self._usage(b),
            "service_tier": "default",
            "system_fingerprint": "fp_mock0001",
        }
        obj.update(b.extra)
        return obj

    def _stream_events(self, b: Behaviour, model: str, include_usage: bool) -> list[bytes]:
        cid = "chatcmpl-" + uuid.uuid4().hex[:29]
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: Optional[str] = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "service_tier": "default", "system_fingerprint": "fp_mock0001",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}],
            }
            if include_usage:
                c["usage"] = None
            return c

        chunks: list[dict[str, Any]] = []
        if b.kind == "tool_call":
            for i, call in enumerate(b.tool_calls):
                pieces = call["_pieces"]
                first = {"index": i, "id": call["id"], "type": "function",
                         "function": {"name": call["function"]["name"], "arguments": ""}}
                delta: dict[str, Any] = {"tool_calls": [first]}
                if i == 0:
                    delta = {"role": "assistant", "content": None, "tool_calls": [first],
                             "refusal": None}
                chunks.append(chunk(delta))
                for p in pieces:
                    chunks.append(chunk({"tool_calls": [{"index": i,
                                                         "function": {"arguments": p}}]}))
        else:
            chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            pieces = b.pieces if b.pieces is not None else _words(b.content)
            for p in pieces:
                chunks.append(chunk({"content": p}))
        chunks.append(chunk({}, b.finish_reason))
        if include_usage:
            chunks.append({
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "service_tier": "default", "system_fingerprint": "fp_mock0001",
                "choices": [], "usage": self._usage(b),
            })
        return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]


def _words(s: str) -> list[str]:
    """Split text into OpenAI-like token pieces: each word keeps its leading space."""
    out: list[str] = []
    cur = ""
    for ch in s:
        if ch == " " and cur:
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out or [""]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released), for refused connections."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
