"""A scriptable, wire-faithful mock of Anthropic's Messages API, for end-to-end tests.

The gateway's `anthropic` adapter talks to this server exactly as it would talk to
api.anthropic.com, so the shapes follow Anthropic's public API reference:

- `POST /v1/messages` answers a `message` object (`{"id": "msg_...", "type": "message", "role":
  "assistant", "content": [text | tool_use blocks], "stop_reason", "stop_sequence", "usage":
  {"input_tokens", "output_tokens", ...}}`), or, when the request says `"stream": true`, a
  `text/event-stream` of named events, each framed `event: <type>\\ndata: <json>\\n\\n`:
  `message_start` (the message with empty content and the input usage), `ping`, then per content
  block `content_block_start` / `content_block_delta` (`text_delta`, or `input_json_delta` with a
  `partial_json` fragment of a tool's input) / `content_block_stop`, then `message_delta` (the
  `stop_reason` and cumulative output usage) and `message_stop`. There is no `[DONE]`.
- Errors use `{"type": "error", "error": {"type", "message"}, "request_id"}` with Anthropic's
  types: `invalid_request_error` (400), `authentication_error` (401), `not_found_error` (404),
  `rate_limit_error` (429, with a `retry-after` header in seconds), `api_error` (500),
  `overloaded_error` (529). A stream may also carry an `error` event after it started.
- Every answer carries a `request-id` and the `anthropic-ratelimit-*` headers.
- What the real API refuses is refused here, before any scripted behaviour is taken: a missing
  or wrong `x-api-key` (401), a missing `anthropic-version` header, a body that is not JSON, a
  missing `model`, `max_tokens` or `messages`, a `system` (or any other non user/assistant) role
  inside `messages`, a conversation that does not start with `user` or whose roles do not
  alternate, malformed content blocks (image sources that are not base64 of a supported media
  type), `tool_result` blocks whose `tool_use_id` does not answer a `tool_use` of the previous
  assistant turn (and `tool_use` blocks left unanswered, and `tool_result` blocks that do not
  come first in their message), tools without `name` / `input_schema`; `thinking` blocks
  without a `signature` and `cache_control` anywhere but on text, image, document, tool_use,
  tool_result blocks, system blocks and tools (never on thinking blocks) or with a `type` other
  than `ephemeral`; with `thinking` enabled, a budget under 1024 or not under `max_tokens`, and
  an assistant turn in the tool-use loop that does not begin with its `thinking` block
  ("Expected `thinking` or `redacted_thinking`, but found `tool_use`").
- `thinking(...)` answers with a signed thinking block first (streamed as `thinking_delta`s
  and a `signature_delta`), then its text or tool calls.

Scripting works like mock_openai: a FIFO queue of behaviours (`text`, `tool_calls`, `error`,
`rate_limited`, `overloaded`, `bad_request`, `stream_error`, `stream_then_drop`), and a plain text answer
("hello from <name>") when the queue is empty. Every request is recorded, accepted or not.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any, Optional

import mock_openai as mo
from mock_openai import Behaviour, Recorded

MESSAGES_PATH = "/v1/messages"
API_VERSIONS = ("2023-06-01", "2023-01-01")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# ---------------------------------------------------------------------------------------------
# Behaviours (mock_openai's Behaviour record; `finish_reason` holds Anthropic's stop_reason)
# ---------------------------------------------------------------------------------------------


def text(content: str, *, pieces: Optional[list[str]] = None, stop_reason: str = "end_turn",
         input_tokens: int = 11, output_tokens: int = 7, delay: float = 0.0,
         event_gap: float = 0.0, write_size: int = 0) -> Behaviour:
    """A text answer: a `message`, or the event stream of one text block in `pieces`."""
    return Behaviour("text", delay=delay, content=content, pieces=pieces,
                     finish_reason=stop_reason, prompt_tokens=input_tokens,
                     completion_tokens=output_tokens, event_gap=event_gap,
                     write_size=write_size)


def tool_calls(calls: list[tuple[str, str]], *, ids: Optional[list[str]] = None,
               preamble: str = "", input_tokens: int = 11, output_tokens: int = 7) -> Behaviour:
    """An answer calling tools: one `tool_use` block per (name, arguments JSON) in `calls`,
    after an optional text block. Streamed, each input arrives in several `input_json_delta`s
    (the first one empty, as Anthropic sends it); an empty input (a tool without parameters)
    streams as that one empty `partial_json` only, as Anthropic does."""
    blocks = []
    for i, (name, arguments) in enumerate(calls):
        parsed = json.loads(arguments)  # the script must be valid JSON
        blocks.append({
            "id": ids[i] if ids else "toolu_01" + uuid.uuid4().hex[:22],
            "name": name, "arguments": arguments,
            "_pieces": [""] + (mo._split(arguments, 3) if parsed else []),
        })
    return Behaviour("tool_call", content=preamble, tool_calls=blocks, finish_reason="tool_use",
                     prompt_tokens=input_tokens, completion_tokens=output_tokens)


def thinking(thought: str, then: Behaviour, *, signature: str = "EqQBCkYIBxgCKkBsig==",
             redacted: str = "") -> Behaviour:
    """`then` (a text or tool-call answer) preceded by a signed thinking block (and a
    `redacted_thinking` block when `redacted` is given)."""
    then.extra["thinking"] = {"thinking": thought, "signature": signature, "redacted": redacted}
    return then


def error(status: int, error_type: str, message: str, *,
          headers: Optional[dict[str, str]] = None) -> Behaviour:
    return Behaviour("error", status=status, body=anthropic_error(error_type, message),
                     headers=dict(headers or {}))


def rate_limited(retry_after_s: int = 17) -> Behaviour:
    """Anthropic's 429: a `rate_limit_error` with `retry-after` (seconds) and spent windows."""
    headers = {
        "retry-after": str(retry_after_s),
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
    }
    return error(429, "rate_limit_error",
                 "This request would exceed the rate limit for your organization of 50 requests "
                 "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
                 "You can see the response headers for current usage. Please reduce the prompt "
                 "length or the maximum tokens requested, or try again later.", headers=headers)


def overloaded() -> Behaviour:
    """Anthropic's 529 (not a standard status): the API is temporarily overloaded."""
    return error(529, "overloaded_error", "Overloaded")


def server_error() -> Behaviour:
    return error(500, "api_error", "Internal server error")


def bad_request(message: str = "max_tokens: 64000 > 8192, which is the maximum allowed number "
                               "of output tokens for claude-sonnet-4-5") -> Behaviour:
    return error(400, "invalid_request_error", message)


def stream_error(error_type: str = "overloaded_error", message: str = "Overloaded", *,
                 pieces: Optional[list[str]] = None) -> Behaviour:
    """A stream accepted with 200 that reports an `error` event (how Anthropic reports overload
    once a stream has begun): right after `message_start`, or after a text block streamed
    `pieces`."""
    return Behaviour("stream_error", body=anthropic_error(error_type, message),
                     pieces=list(pieces or []))


def stream_then_drop(content: str, events_before_drop: int, *,
                     pieces: Optional[list[str]] = None) -> Behaviour:
    """Start a 200 stream of a text answer, send `events_before_drop` events (message_start is
    the first), then cut the connection without finishing the chunked body."""
    return Behaviour("drop", content=content, pieces=pieces,
                     events_before_drop=events_before_drop)


def anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message},
            "request_id": "req_011" + uuid.uuid4().hex[:21]}


class Refused(Exception):
    """A request the real API would refuse: (status, error type, message)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _invalid(message: str) -> Refused:
    return Refused(400, "invalid_request_error", message)


# ---------------------------------------------------------------------------------------------
# Request validation (what api.anthropic.com refuses)
# ---------------------------------------------------------------------------------------------


def validate_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise _invalid("There was an issue with your request body: expected a JSON object")
    for field in ("model", "messages", "max_tokens"):
        if field not in body:
            raise _invalid(f"{field}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise _invalid("model: Input should be a valid string")
    mt = body["max_tokens"]
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        raise _invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    if "system" in body:
        _validate_system(body["system"])
    thinking_on = _validate_thinking(body.get("thinking"), mt)
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    previous_role = None
    previous_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        role = message.get("role")
        if role == "system":
            raise _invalid('messages: Unexpected role "system". The Messages API accepts a '
                           'top-level `system` parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _invalid('messages: first message must use the "user" role')
        if role == previous_role:
            raise _invalid('messages: roles must alternate between "user" and "assistant", but '
                           f'found multiple "{role}" roles in a row')
        if "content" not in message:
            raise _invalid(f"messages.{i}.content: Field required")
        blocks = _validate_content(message["content"], f"messages.{i}.content", role)
        kinds = [b.get("type") for b in blocks]
        if any(k != "tool_result" for k in kinds[:kinds.count("tool_result")]):
            raise _invalid(f"messages.{i}.content: `tool_result` blocks must come first in a "
                           "user message, before any other content")
        results = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"}
        if previous_tool_uses and not previous_tool_uses <= results:
            missing = ", ".join(sorted(previous_tool_uses - results))
            raise _invalid(f"messages.{i}: `tool_use` ids were found without `tool_result` "
                           f"blocks immediately after: {missing}. Each `tool_use` block must "
                           "have a corresponding `tool_result` block in the next message.")
        stray = results - previous_tool_uses
        if stray:
            raise _invalid(f"messages.{i}.content: unexpected `tool_use_id` found in "
                           f"`tool_result` blocks: {', '.join(sorted(stray))}. Each "
                           "`tool_result` block must have a corresponding `tool_use` block in "
                           "the previous message.")
        previous_tool_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        previous_role = role
    _validate_tool_loop(messages, thinking_on)
    if previous_tool_uses:
        raise _invalid(f"messages: `tool_use` ids were found without `tool_result` blocks "
                       f"immediately after: {', '.join(sorted(previous_tool_uses))}")
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not tool.get("name"):
            raise _invalid(f"tools.{i}.name: Field required")
        _validate_cache_control(tool, f"tools.{i}")
        if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
            raise _invalid(f"tools.{i}.custom.input_schema: Field required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _invalid("stream: Input should be a valid boolean")


def _validate_thinking(thinking: Any, max_tokens: int) -> bool:
    if thinking is None:
        return False
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        raise _invalid("thinking.type: Input tag does not match 'enabled' or 'disabled'")
    if thinking["type"] == "disabled":
        return False
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise _invalid("thinking.enabled.budget_tokens: Input should be greater than or equal "
                       "to 1024")
    if budget >= max_tokens:
        raise _invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    return True


def _validate_tool_loop(messages: list[Any], thinking_on: bool) -> None:
    """With thinking on, the assistant turn whose tool calls the last user turn answers must
    start with its thinking block, signature intact."""
    if not thinking_on or len(messages) < 2:
        return
    last, previous = messages[-1], messages[-2]
    if last.get("role") != "user" or previous.get("role") != "assistant":
        return
    content = previous.get("content")
    if not isinstance(content, list) or not any(
            isinstance(b, dict) and b.get("type") == "tool_use" for b in content):
        return
    first = content[0].get("type") if isinstance(content[0], dict) else None
    if first not in ("thinking", "redacted_thinking"):
        raise _invalid(f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
                       f"`redacted_thinking`, but found `{first}`. When `thinking` is enabled, "
                       "a final `assistant` message must start with a thinking block (preceeding "
                       "the lastmost set of `tool_use` and `tool_result` blocks).")


CACHEABLE = ("text", "image", "document", "tool_use", "tool_result")


def _validate_cache_control(block: dict[str, Any], at: str) -> None:
    cache = block.get("cache_control")
    if cache is None:
        return
    if block.get("type") not in CACHEABLE + (None,):
        raise _invalid(f"{at}.{block.get('type')}.cache_control: Extra inputs are not permitted")
    if not isinstance(cache, dict) or cache.get("type") != "ephemeral":
        raise _invalid(f"{at}.cache_control.type: Input should be 'ephemeral'")


def _validate_system(system: Any) -> None:
    if isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _invalid("system: Input should be a valid string or list of text blocks")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or \
                not isinstance(block.get("text"), str):
            raise _invalid(f"system.{i}: Input should be a text block")
        _validate_cache_control(block, f"system.{i}")


def _validate_content(content: Any, where: str, role: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if not content and role == "user":
            raise _invalid(f"{where}: user messages must have non-empty content")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _invalid(f"{where}: Input should be a valid string or list")
    if not content:
        raise _invalid(f"{where}: all messages must have non-empty content except for the "
                       "optional final assistant message")
    for j, block in enumerate(content):
        at = f"{where}.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind is not None:
            _validate_cache_control(block, at)
        if kind in ("thinking", "redacted_thinking"):
            if role != "assistant":
                raise _invalid(f"{at}: thinking blocks are only allowed in assistant messages")
            if kind == "thinking" and not (isinstance(block.get("signature"), str)
                                           and block["signature"]):
                raise _invalid(f"{at}.thinking.signature: Field required")
            if kind == "redacted_thinking" and not isinstance(block.get("data"), str):
                raise _invalid(f"{at}.redacted_thinking.data: Field required")
        elif kind == "text":
            if not isinstance(block.get("text"), str) or not block["text"]:
                raise _invalid(f"{at}.text: text content blocks must be non-empty")
        elif kind == "image":
            if role != "user":
                raise _invalid(f"{at}: image blocks are only allowed in user messages")
            _validate_image(block.get("source"), f"{at}.source")
        elif kind == "document":
            pass
        elif kind == "tool_use":
            if role != "assistant":
                raise _invalid(f"{at}: tool_use blocks are only allowed in assistant messages")
            if not block.get("id") or not block.get("name") or \
                    not isinstance(block.get("input"), dict):
                raise _invalid(f"{at}: tool_use blocks need `id`, `name` and an object `input`")
        elif kind == "tool_result":
            if role != "user":
                raise _invalid(f"{at}: tool_result blocks are only allowed in user messages")
            if not block.get("tool_use_id"):
                raise _invalid(f"{at}.tool_use_id: Field required")
            inner = block.get("content")
            if inner is not None and not isinstance(inner, str):
                for k, part in enumerate(inner):
                    if part.get("type") not in ("text", "image", "document", "search_result"):
                        raise _invalid(f"{at}.content.{k}: invalid tool_result content block")
        else:
            raise _invalid(f"{at}.type: Input tag {kind!r} found using 'type' does not match any "
                           "of the expected tags: 'text', 'image', 'document', 'tool_use', "
                           "'tool_result', 'thinking', 'redacted_thinking'")
    return content


def _validate_image(source: Any, at: str) -> None:
    if not isinstance(source, dict):
        raise _invalid(f"{at}: Field required")
    if source.get("type") == "url":
        if not isinstance(source.get("url"), str):
            raise _invalid(f"{at}.url: Field required")
        return
    if source.get("type") != "base64":
        raise _invalid(f"{at}.type: Input tag {source.get('type')!r} does not match 'base64', "
                       "'url' or 'file'")
    media = source.get("media_type")
    if media not in IMAGE_MEDIA_TYPES:
        raise _invalid(f"{at}.media_type: Input should be 'image/jpeg', 'image/png', "
                       "'image/gif' or 'image/webp'")
    try:
        base64.b64decode(source.get("data", ""), validate=True)
    except (ValueError, TypeError):
        raise _invalid(f"{at}.data: The image data is not valid base64") from None


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class _Handler(mo._Handler):
    server: mo._Server

    def _common_headers(self) -> None:
        mock = self.server.mock
        self.send_header("request-id", "req_011" + uuid.uuid4().hex[:21])
        self.send_header("anthropic-organization-id", "00000000-0000-4000-8000-000000000000")
        for k, v in mock.ratelimit_headers.items():
            self.send_header(k, v)

    def _refuse(self, rec: Recorded, refused: Refused) -> None:
        self._send_json(rec, refused.status, anthropic_error(refused.error_type, refused.message))

    def _dispatch(self, mock: "MockAnthropic", rec: Recorded) -> None:  # type: ignore[override]
        path = self.path.split("?", 1)[0]
        if path != MESSAGES_PATH:
            return self._refuse(rec, Refused(404, "not_found_error", "Not Found"))
        if self.command != "POST":
            return self._refuse(rec, Refused(405, "invalid_request_error",
                                             f"Method {self.command} not allowed"))
        key = rec.headers.get("x-api-key")
        if not key:
            return self._refuse(rec, Refused(401, "authentication_error",
                                             "x-api-key header is required"))
        if key != mock.api_key:
            return self._refuse(rec, Refused(401, "authentication_error", "invalid x-api-key"))
        version = rec.headers.get("anthropic-version")
        if not version:
            return self._refuse(rec, _invalid("anthropic-version: header is required"))
        if version not in API_VERSIONS:
            return self._refuse(rec, _invalid(f"anthropic-version: invalid version {version!r}"))
        if rec.json is None:
            return self._refuse(rec, _invalid("There was an issue with your request body: "
                                              "the body is not valid JSON"))
        try:
            validate_body(rec.json)
        except Refused as refused:
            return self._refuse(rec, refused)

        b = mock._next_behaviour()
        if b.delay and mock._stopping.wait(b.delay):
            self.close_connection = True
            return
        body = rec.json
        model = body["model"]
        stream = body.get("stream") is True
        if b.kind == "error":
            return self._send_json(rec, b.status, b.body, b.headers)
        if b.kind == "close":
            return self._cut()
        if b.kind == "stream_error":
            if not stream:
                return self._send_json(rec, 529, b.body)
            events = mock._events(b, model)[:1]  # message_start
            if b.pieces:
                events = mock._events(b, model)[:-3]  # up to the last text delta
            return self._send_events(rec, events + [("error", b.body)], b)
        if b.kind == "drop":
            return self._send_events(rec, mock._events(b, model), b,
                                     drop_after=b.events_before_drop)
        if stream:
            return self._send_events(rec, mock._events(b, model), b)
        return self._send_json(rec, 200, mock._message(b, model))

    def _send_events(self, rec: Recorded, events: list[tuple[str, Any]], b: Behaviour,
                     drop_after: Optional[int] = None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self._common_headers()
        rec.status = 200  # before the bytes go out (see mock_openai._send_json)
        self.end_headers()
        self.wfile.flush()
        frames = [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]
        if b.write_size > 0:
            raw = b"".join(frames)
            frames = [raw[i:i + b.write_size] for i in range(0, len(raw), b.write_size)]
        stopping = self.server.mock._stopping
        for i, frame in enumerate(frames):
            if drop_after is not None and i >= drop_after:
                return self._cut()
            if i and b.event_gap and stopping.wait(b.event_gap):
                return self._cut()
            self._write_chunk(frame)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class MockAnthropic(mo.MockOpenAI):
    """One mock Anthropic upstream (start()/stop(), or a context manager)."""

    def __init__(self, name: str = "anthropic", api_key: Optional[str] = "sk-ant-mock") -> None:
        super().__init__(name, api_key=api_key)
        self.ratelimit_headers = {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "anthropic-ratelimit-input-tokens-remaining": "29000",
            "anthropic-ratelimit-input-tokens-reset": "2030-01-01T00:00:00Z",
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "7900",
            "anthropic-ratelimit-output-tokens-reset": "2030-01-01T00:00:00Z",
        }

    def start(self) -> "MockAnthropic":
        self._server = mo._Server(("127.0.0.1", 0), _Handler)
        self._server.mock = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"mock-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        """What an anthropic provider's `base_url` should be (ending in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.split("?")[0] == MESSAGES_PATH]

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return text(f"hello from {self.name}")

    # -- wire objects -------------------------------------------------------------------------

    @staticmethod
    def _usage(b: Behaviour, output_tokens: Optional[int] = None) -> dict[str, Any]:
        """`b.extra["usage"]` overrides counts (e.g. `cache_read_input_tokens`)."""
        usage = {"input_tokens": b.prompt_tokens, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0,
                 "output_tokens": b.completion_tokens if output_tokens is None else output_tokens,
                 "service_tier": "standard"}
        usage.update(b.extra.get("usage", {}))
        return usage

    @staticmethod
    def _thinking_blocks(b: Behaviour) -> list[dict[str, Any]]:
        thought = b.extra.get("thinking")
        if not thought:
            return []
        blocks = [{"type": "thinking", "thinking": thought["thinking"],
                   "signature": thought["signature"]}]
        if thought["redacted"]:
            blocks.append({"type": "redacted_thinking", "data": thought["redacted"]})
        return blocks

    def _blocks(self, b: Behaviour) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = self._thinking_blocks(b)
        if b.content:
            blocks.append({"type": "text", "text": b.content})
        for call in b.tool_calls:
            blocks.append({"type": "tool_use", "id": call["id"], "name": call["name"],
                           "input": json.loads(call["arguments"])})
        return blocks

    def _message(self, b: Behaviour, model: str, started: bool = False) -> dict[str, Any]:
        return {
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [] if started else self._blocks(b),
            "stop_reason": None if started else b.finish_reason,
            "stop_sequence": None,
            "usage": self._usage(b, 1 if started else None),
        }

    def _events(self, b: Behaviour, model: str) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = [
            ("message_start", {"type": "message_start",
                               "message": self._message(b, model, started=True)}),
        ]
        index = 0
        for block in self._thinking_blocks(b):
            if block["type"] == "redacted_thinking":
                events.append(("content_block_start", {"type": "content_block_start",
                                                       "index": index, "content_block": block}))
            else:
                events.append(("content_block_start", {
                    "type": "content_block_start", "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
                for p in mo._words(block["thinking"]):
                    events.append(("content_block_delta", {
                        "type": "content_block_delta", "index": index,
                        "delta": {"type": "thinking_delta", "thinking": p}}))
                events.append(("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        if b.content or not b.tool_calls:
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
            events.append(("ping", {"type": "ping"}))
            pieces = b.pieces if b.pieces is not None else mo._words(b.content)
            for p in pieces:
                events.append(("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": p}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        for call in b.tool_calls:
            events.append(("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": call["id"], "name": call["name"],
                                  "input": {}}}))
            for p in call["_pieces"]:
                events.append(("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": p}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": b.finish_reason, "stop_sequence": None},
            "usage": {"output_tokens": b.completion_tokens}}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events
