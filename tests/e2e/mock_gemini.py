"""A scriptable, wire-faithful mock of Google's Gemini API (the Generative Language API), for
end-to-end tests.

The gateway's `gemini` adapter talks to this server exactly as it would talk to
generativelanguage.googleapis.com, so the shapes follow Google's public API reference:

- `POST /v1beta/models/{model}:generateContent` answers a `GenerateContentResponse`
  (`{"candidates": [{"content": {"role": "model", "parts": [{"text"} | {"functionCall":
  {"name", "args"}}]}, "finishReason": "STOP", "index": 0}], "usageMetadata":
  {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"}, "modelVersion",
  "responseId"}`). The model comes from the URL path; the body has none.
- `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` answers `text/event-stream`: each
  event is `data: <GenerateContentResponse>` framed with CRLF line ends (`\\r\\n\\r\\n`, as Google
  sends them), each holding the next piece of the candidate; function calls arrive whole (never
  in fragments), parallel calls as several parts of one event; the last event carries
  `finishReason` and the final `usageMetadata`. There is no `[DONE]`.
- Errors are `google.rpc.Status` bodies: `{"error": {"code", "message", "status", "details":
  [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}, ...]}}`, e.g.
  429 RESOURCE_EXHAUSTED (with QuotaFailure, Help and RetryInfo details), 503 UNAVAILABLE,
  400 INVALID_ARGUMENT, and a wrong key as 400 INVALID_ARGUMENT with an ErrorInfo reason
  `API_KEY_INVALID` (Gemini's way of saying 401).
- `:embedContent` and `:batchEmbedContents` are served by `mock_embeddings` (after the key
  check).
- What the real API refuses is refused here first: no `x-goog-api-key` header (nor `?key=`),
  a wrong key, a body that is not JSON or carries fields a GenerateContentRequest does not have
  (`model`, `messages`, ...: proto JSON refuses unknown names), `contents` missing or empty, a
  role other than "user" / "model" ("system", "assistant"), a part with no data or with two,
  `inlineData` without `mimeType` or with data that is not base64, a `streamGenerateContent`
  call without `alt=sse` (this mock only speaks SSE), and a function-call turn not followed by
  exactly as many `functionResponse` parts, named after the calls, a `candidateCount` outside
  1..8, a `thinkingConfig` with unknown fields or a budget outside -1..32768.
- `generationConfig.candidateCount` n gives n candidates (streamed: each event carries every
  candidate's next piece, the last one's text marked " (i)"); 2.5 Pro refuses a
  `thinkingBudget` under 128 (it cannot turn thinking off); with
  `thinkingConfig.includeThoughts`, a behaviour's `extra["thought"]` comes first as a part
  marked `"thought": true`.

Scripting works like mock_openai: a FIFO queue of behaviours (`text`, `tool_calls`, `error`,
`rate_limited`, `unavailable`, `bad_request`, `stream_error`, `stream_then_drop`), and a plain
text answer ("hello from <name>") when
the queue is empty. Every request is recorded, accepted or not.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from typing import Any, Optional

import mock_embeddings
import mock_openai as mo
from mock_openai import Behaviour, Recorded

PATH_RE = re.compile(r"^/v1beta/models/([A-Za-z0-9._-]+):(generateContent|streamGenerateContent)$")
REQUEST_FIELDS = {"contents", "systemInstruction", "system_instruction", "tools", "toolConfig",
                  "tool_config", "safetySettings", "safety_settings", "generationConfig",
                  "generation_config", "cachedContent", "cached_content", "labels"}
DATA_FIELDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
               "executableCode", "codeExecutionResult")
PART_FIELDS = set(DATA_FIELDS) | {"thought", "thoughtSignature", "videoMetadata",
                                  "mediaResolution"}

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

# ---------------------------------------------------------------------------------------------
# Behaviours (mock_openai's Behaviour record; `finish_reason` holds Gemini's finishReason)
# ---------------------------------------------------------------------------------------------


def text(content: str, *, pieces: Optional[list[str]] = None, finish_reason: str = "STOP",
         prompt_tokens: int = 11, completion_tokens: int = 7, delay: float = 0.0,
         event_gap: float = 0.0, write_size: int = 0) -> Behaviour:
    """A text answer: one response, or a stream of one event per piece."""
    return Behaviour("text", delay=delay, content=content, pieces=pieces,
                     finish_reason=finish_reason, prompt_tokens=prompt_tokens,
                     completion_tokens=completion_tokens, event_gap=event_gap,
                     write_size=write_size)


def tool_calls(calls: list[tuple[str, str]], *, preamble: str = "", prompt_tokens: int = 11,
               completion_tokens: int = 7) -> Behaviour:
    """An answer calling functions: one `functionCall` part per (name, arguments JSON), after an
    optional text part. Gemini's finishReason for a function call is STOP."""
    parts = [{"name": name, "arguments": arguments, "args": json.loads(arguments)}
             for name, arguments in calls]
    return Behaviour("tool_call", content=preamble, tool_calls=parts, finish_reason="STOP",
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def error(code: int, status: str, message: str, *, details: Optional[list[dict]] = None,
          headers: Optional[dict[str, str]] = None) -> Behaviour:
    return Behaviour("error", status=code, body=google_error(code, status, message, details),
                     headers=dict(headers or {}))


def rate_limited(retry_delay: str = "37s", *, per_day: bool = False) -> Behaviour:
    """Gemini's 429: RESOURCE_EXHAUSTED with QuotaFailure, Help and RetryInfo details. Gemini sends
    no Retry-After header; the wait is only in `RetryInfo.retryDelay`."""
    window = "PerDay" if per_day else "PerMinute"
    metric = ("generativelanguage.googleapis.com/generate_content_free_tier_requests")
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaMetric": metric,
                         "quotaId": f"GenerateRequests{window}PerProjectPerModel-FreeTier",
                         "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                         "quotaValue": "10"}]},
        {"@type": "type.googleapis.com/google.rpc.Help",
         "links": [{"description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type": RETRY_INFO, "retryDelay": retry_delay},
    ]
    return error(429, "RESOURCE_EXHAUSTED",
                 "You exceeded your current quota, please check your plan and billing details. "
                 "For more information on this error, head to: "
                 "https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for "
                 f"metric: {metric}, limit: 10, model: gemini-2.5-flash\nPlease retry in "
                 f"{retry_delay}.", details=details)


def unavailable() -> Behaviour:
    return error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def internal() -> Behaviour:
    return error(500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                                  "https://developers.generativeai.google/guide/troubleshooting")


def bad_request(message: str = "* GenerateContentRequest.generation_config.max_output_tokens: "
                               "max_output_tokens must be less than or equal to 65536.\n") \
        -> Behaviour:
    return error(400, "INVALID_ARGUMENT", message)


def stream_error(code: int = 503, status: str = "UNAVAILABLE",
                 message: str = "The model is overloaded. Please try again later.", *,
                 pieces: Optional[list[str]] = None) -> Behaviour:
    """A stream accepted with 200 whose text events (`pieces`) are followed by an event holding
    a `google.rpc.Status` error instead of a response."""
    return Behaviour("stream_error", body=google_error(code, status, message),
                     pieces=list(pieces or []))


def stream_then_drop(content: str, events_before_drop: int, *,
                     pieces: Optional[list[str]] = None) -> Behaviour:
    """Start a 200 stream of a text answer, send `events_before_drop` events, then cut the
    connection without finishing the chunked body (no event carried a finishReason)."""
    return Behaviour("drop", content=content, pieces=pieces,
                     events_before_drop=events_before_drop)


def google_error(code: int, status: str, message: str,
                 details: Optional[list[dict]] = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


class Refused(Exception):
    def __init__(self, code: int, status: str, message: str,
                 details: Optional[list[dict]] = None) -> None:
        super().__init__(message)
        self.body = google_error(code, status, message, details)
        self.code = code


def _invalid(message: str) -> Refused:
    return Refused(400, "INVALID_ARGUMENT", message)


def _unknown_name(name: str, where: str = "") -> Refused:
    msg = f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'
    return Refused(400, "INVALID_ARGUMENT", msg, [
        {"@type": "type.googleapis.com/google.rpc.BadRequest",
         "fieldViolations": [{"field": name, "description": msg}]}])


# ---------------------------------------------------------------------------------------------
# Request validation (what generativelanguage.googleapis.com refuses)
# ---------------------------------------------------------------------------------------------


THINKING_FIELDS = {"thinkingBudget", "includeThoughts", "thinkingLevel"}


def _validate_generation_config(config: dict[str, Any], model: str = "") -> None:
    """What Gemini checks of the generation settings the matrix uses."""
    count = config.get("candidateCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 8:
        raise _invalid("* GenerateContentRequest.generation_config.candidate_count: must be "
                       "between 1 and 8\n")
    thinking = config.get("thinkingConfig")
    if thinking is not None:
        for name in thinking:
            if name not in THINKING_FIELDS:
                raise _unknown_name(f"generation_config.thinking_config.{name}")
        budget = thinking.get("thinkingBudget", 0)
        if not isinstance(budget, int) or budget < -1 or budget > 32768:
            raise _invalid("* GenerateContentRequest.generation_config.thinking_config."
                           "thinking_budget: must be between -1 and 32768\n")
        # 2.5 Pro cannot turn thinking off: its budgets are 128..32768 (or -1, dynamic).
        if model.startswith("gemini-2.5-pro") and 0 <= budget < 128:
            raise _invalid(f"Budget {budget} is invalid. This model only works in thinking "
                           "mode.")


def validate_body(body: Any, model: str = "") -> None:
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in REQUEST_FIELDS:
            raise _unknown_name(name)
    contents = body.get("contents")
    if not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise _invalid('Invalid value at \'contents\': expected a list')
    for i, content in enumerate(contents):
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise _invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise _invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must "
                           "not be empty.\n")
        for j, part in enumerate(parts):
            _validate_part(part, f"contents[{i}].parts[{j}]")
    system = body.get("systemInstruction", body.get("system_instruction"))
    if system is not None:
        if not isinstance(system, dict) or not system.get("parts"):
            raise _invalid("* GenerateContentRequest.system_instruction.parts: must not be "
                           "empty\n")
        for j, part in enumerate(system["parts"]):
            _validate_part(part, f"system_instruction.parts[{j}]")
            if "text" not in part:
                raise _invalid("* GenerateContentRequest.system_instruction: only text parts "
                               "are supported\n")
    _validate_function_turns(contents)
    _validate_generation_config(body.get("generationConfig") or {}, model)
    for t, tool in enumerate(body.get("tools") or []):
        for d, decl in enumerate(tool.get("functionDeclarations") or []):
            if not decl.get("name"):
                raise _invalid(f"* GenerateContentRequest.tools[{t}].function_declarations[{d}]"
                               ".name: [FIELD_INVALID] Invalid function name.\n")


def _validate_part(part: Any, at: str) -> None:
    if not isinstance(part, dict):
        raise _invalid(f"Invalid value at '{at}': expected an object")
    for name in part:
        if name not in PART_FIELDS:
            raise _unknown_name(name, f" at '{at}'")
    data = [f for f in DATA_FIELDS if f in part]
    if len(data) != 1:
        raise _invalid(f"* GenerateContentRequest.{at}.data: required oneof field 'data' must "
                       "have one initialized field\n")
    if "inlineData" in part:
        inline = part["inlineData"]
        if not inline.get("mimeType"):
            raise _invalid(f"* GenerateContentRequest.{at}.inline_data.mime_type: "
                           "mime_type is required\n")
        try:
            base64.b64decode(inline.get("data", ""), validate=True)
        except (ValueError, TypeError):
            raise _invalid(f"Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 "
                           "decoding failed") from None
    if "functionCall" in part and not part["functionCall"].get("name"):
        raise _invalid(f"* GenerateContentRequest.{at}.function_call.name: name is required\n")
    if "functionResponse" in part:
        fr = part["functionResponse"]
        if not fr.get("name"):
            raise _invalid(f"* GenerateContentRequest.{at}.function_response.name: name is "
                           "required\n")
        if not isinstance(fr.get("response"), dict):
            raise _invalid(f"Invalid value at '{at}.function_response.response' "
                           "(type.googleapis.com/google.protobuf.Struct)")


def _validate_function_turns(contents: list[dict[str, Any]]) -> None:
    for i, content in enumerate(contents):
        calls = [p["functionCall"]["name"] for p in content["parts"] if "functionCall" in p]
        if not calls:
            continue
        following = contents[i + 1] if i + 1 < len(contents) else None
        if following is None:
            continue  # the last turn may be the model's own (continuation)
        responses = [p["functionResponse"]["name"] for p in following["parts"]
                     if "functionResponse" in p]
        if len(responses) != len(calls):
            raise _invalid("Please ensure that the number of function response parts is equal "
                           "to the number of function call parts of the function call turn.")
        if sorted(responses) != sorted(calls):
            raise _invalid("Please ensure that function response turn comes immediately after a "
                           "function call turn, with responses named after the calls.")


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class _Handler(mo._Handler):
    server: mo._Server

    def _common_headers(self) -> None:
        self.send_header("server", "scaffolding on HTTPServer2")
        self.send_header("server-timing", "gfet4t7; dur=412")
        self.send_header("vary", "Origin, X-Origin, Referer")
        self.send_header("x-content-type-options", "nosniff")

    def _refuse(self, rec: Recorded, refused: Refused) -> None:
        self._send_json(rec, refused.code, refused.body,
                        {"content-type": "application/json; charset=UTF-8"})

    def _dispatch(self, mock: "MockGemini", rec: Recorded) -> None:  # type: ignore[override]
        path, _, query = self.path.partition("?")
        m = PATH_RE.match(path)
        embed = mock_embeddings.GEMINI_PATH_RE.match(path)
        if not m and not embed:
            return self._refuse(rec, Refused(404, "NOT_FOUND",
                                             f"models/{path.rsplit('/', 1)[-1]} is not found for "
                                             "API version v1beta, or is not supported for "
                                             "generateContent."))
        if self.command != "POST":
            return self._refuse(rec, Refused(405, "INVALID_ARGUMENT", "Method not allowed"))
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        key = rec.headers.get("x-goog-api-key") or params.get("key")
        if not key:
            return self._refuse(rec, Refused(
                403, "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."))
        if key != mock.api_key:
            return self._refuse(rec, Refused(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                     "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                     "metadata": {"service": "generativelanguage.googleapis.com"}},
                    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                     "locale": "en-US",
                     "message": "API key not valid. Please pass a valid API key."}]))
        if embed:
            return mock_embeddings.serve_gemini(self, mock, rec, embed.group(1), embed.group(2))
        model, method = m.group(1), m.group(2)
        stream = method == "streamGenerateContent"
        if stream and params.get("alt") != "sse":
            return self._refuse(rec, _invalid("this mock answers streamGenerateContent only with "
                                              "alt=sse"))
        if rec.json is None:
            return self._refuse(rec, _invalid("Invalid JSON payload received. Unexpected token."))
        try:
            validate_body(rec.json, m.group(1))
        except Refused as refused:
            return self._refuse(rec, refused)

        b = mock._next_behaviour()
        if b.delay and mock._stopping.wait(b.delay):
            self.close_connection = True
            return
        if b.kind == "error":
            return self._send_json(rec, b.status, b.body,
                                   {"content-type": "application/json; charset=UTF-8",
                                    **b.headers})
        if b.kind == "close":
            return self._cut()
        if b.kind == "stream_error":
            events = [mock._response(b, model, parts=[{"text": p}], final=False)
                      for p in b.pieces or []]
            return self._send_events(rec, events + [b.body], b)
        if b.kind == "drop":
            return self._send_events(rec, mock._events(b, model), b,
                                     drop_after=b.events_before_drop)
        config = rec.json.get("generationConfig") or {}
        thoughts = bool((config.get("thinkingConfig") or {}).get("includeThoughts"))
        if stream:
            events = mock._events(b, model)
            # `candidateCount` streamed: every event carries each candidate's next piece.
            for event in events:
                first = event["candidates"][0]
                for i in range(1, config.get("candidateCount", 1)):
                    extra = json.loads(json.dumps(first))
                    extra["index"] = i
                    for part in extra["content"]["parts"]:
                        if "text" in part and "finishReason" in extra:
                            part["text"] += f" ({i + 1})"
                    event["candidates"].append(extra)
            if thoughts and b.extra.get("thought"):
                first = mock._response(b, model, final=False,
                                       parts=[{"text": b.extra["thought"], "thought": True}])
                events.insert(0, first)
            return self._send_events(rec, events, b)
        answer = mock._response(b, model, final=True)
        if thoughts and b.extra.get("thought"):
            answer["candidates"][0]["content"]["parts"].insert(
                0, {"text": b.extra["thought"], "thought": True})
        # `candidateCount`: that many candidates, each its own index (text ones numbered).
        for i in range(1, config.get("candidateCount", 1)):
            extra = json.loads(json.dumps(answer["candidates"][0]))
            extra["index"] = i
            for part in extra["content"]["parts"]:
                if "text" in part and not part.get("thought"):
                    part["text"] += f" ({i + 1})"
            answer["candidates"].append(extra)
        return self._send_json(rec, 200, answer,
                               {"content-type": "application/json; charset=UTF-8"})

    def _send_events(self, rec: Recorded, events: list[dict[str, Any]], b: Behaviour,
                     drop_after: Optional[int] = None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-disposition", "attachment")
        self.send_header("transfer-encoding", "chunked")
        self._common_headers()
        rec.status = 200  # before the bytes go out (see mock_openai._send_json)
        self.end_headers()
        self.wfile.flush()
        frames = [b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events]
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


class MockGemini(mo.MockOpenAI):
    """One mock Gemini upstream (start()/stop(), or a context manager)."""

    def __init__(self, name: str = "gemini", api_key: Optional[str] = "AIzaSy-mock-key") -> None:
        super().__init__(name, api_key=api_key)
        self.ratelimit_headers = {}

    def start(self) -> "MockGemini":
        self._server = mo._Server(("127.0.0.1", 0), _Handler)
        self._server.mock = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"mock-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        """What a gemini provider's `base_url` should be (ending in /v1beta)."""
        return f"http://127.0.0.1:{self.port}/v1beta"

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if PATH_RE.match(r.path.split("?")[0])]

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return text(f"hello from {self.name}")

    # -- wire objects -------------------------------------------------------------------------

    @staticmethod
    def _usage(b: Behaviour, final: bool) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": b.prompt_tokens,
            "totalTokenCount": b.prompt_tokens + (b.completion_tokens if final else 0),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": b.prompt_tokens}],
        }
        if final:
            usage["candidatesTokenCount"] = b.completion_tokens
            # `b.extra["usageMetadata"]` adds counts (e.g. `thoughtsTokenCount`).
            usage.update(b.extra.get("usageMetadata", {}))
        return usage

    def _response(self, b: Behaviour, model: str, *, parts: Optional[list[dict]] = None,
                  final: bool, response_id: Optional[str] = None) -> dict[str, Any]:
        if parts is None:
            parts = []
            if b.content:
                parts.append({"text": b.content})
            parts += [{"functionCall": {"name": c["name"], "args": c["args"]}}
                      for c in b.tool_calls]
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = b.finish_reason
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(b, final),
            "modelVersion": model,
            "responseId": response_id or uuid.uuid4().hex[:22],
        }

    def _events(self, b: Behaviour, model: str) -> list[dict[str, Any]]:
        rid = uuid.uuid4().hex[:22]
        pieces = b.pieces if b.pieces is not None else mo._words(b.content)
        if not b.content and b.tool_calls:
            pieces = []
        parts_per_event = [[{"text": p}] for p in pieces]
        if b.tool_calls:
            parts_per_event.append([{"functionCall": {"name": c["name"], "args": c["args"]}}
                                    for c in b.tool_calls])
        last = len(parts_per_event) - 1
        return [self._response(b, model, parts=parts, final=(i == last), response_id=rid)
                for i, parts in enumerate(parts_per_event)]
