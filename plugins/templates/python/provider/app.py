"""{{name}}: a Freeway provider adapter for an OpenAI-compatible API
(`{base_url}/chat/completions`, Bearer key). Requests pass through with `model` set to the
upstream's id; answers pass back as they are; errors become typed errors the gateway's
failover understands. The stream decoder is in adapter.py (componentize-py looks exported
resources up in a module named after the interface).
"""

from __future__ import annotations

import json
from typing import List, Optional, Tuple

import wit_world
from wit_world import exports
from wit_world.exports import adapter
from wit_world.imports import types
from componentize_py_types import Err

# (status, kind, retryable); any other non-2xx status is `unavailable`, retryable.
STATUS_KINDS = {
    400: (types.ErrorKind.BAD_REQUEST, False),
    422: (types.ErrorKind.BAD_REQUEST, False),
    401: (types.ErrorKind.AUTH, True),
    403: (types.ErrorKind.PERMISSION, True),
    404: (types.ErrorKind.NOT_FOUND, True),
    408: (types.ErrorKind.TIMEOUT, True),
    504: (types.ErrorKind.TIMEOUT, True),
    429: (types.ErrorKind.RATE_LIMITED, True),
}


def error(kind: types.ErrorKind, message: str, status: Optional[int] = None,
          retryable: bool = False) -> types.Error:
    return types.Error(kind=kind, retryable=retryable, message=message, status=status,
                       retry_after_ms=None, code=None, param=None)


def usage_of(answer: dict) -> Optional[types.Usage]:
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return None
    try:
        return types.Usage(prompt_tokens=int(usage["prompt_tokens"]),
                           completion_tokens=int(usage["completion_tokens"]))
    except (KeyError, TypeError, ValueError):
        return None


def rewrite(request: str, model: str, stream: bool) -> bytes:
    """The client's body with the upstream's model id and the stream fields of this attempt."""
    try:
        body = json.loads(request)
    except ValueError as problem:
        raise Err(error(types.ErrorKind.BAD_REQUEST, f"the request is not JSON: {problem}"))
    if not isinstance(body, dict):
        raise Err(error(types.ErrorKind.BAD_REQUEST, "the request is not a JSON object"))
    body["model"] = model
    body.pop("stream_options", None)
    if stream:
        # The gateway needs token usage: ask for it on every stream.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream", None)
    return json.dumps(body).encode()


def upstream_error(status: int, text: str) -> types.Error:
    kind, retryable = STATUS_KINDS.get(status, (types.ErrorKind.UNAVAILABLE, True))
    message = f"the upstream answered {status}"
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return error(kind, str(message), status, retryable)


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(name="{{name}}", version="0.1.0", kind=types.PluginKind.PROVIDER,
                                    description="pass-through adapter for an OpenAI-compatible API")

    def check_settings(self, settings: str) -> None:
        if settings.strip() not in ("", "{}"):
            raise Err(f"{{name}} takes no settings, got {settings}")


class Adapter(exports.Adapter):
    def build_request(self, target: adapter.Target, request: str) -> adapter.HttpRequest:
        return adapter.HttpRequest(
            method="POST",
            url=target.base_url.rstrip("/") + "/chat/completions",
            headers=[("content-type", "application/json")],
            body=rewrite(request, target.model, target.stream),
            auth=adapter.Auth_Bearer(),
        )

    def parse_response(self, target: adapter.Target, status: int,
                       headers: List[Tuple[str, str]], body: bytes) -> adapter.Completion:
        text = bytes(body).decode("utf-8", "replace")
        if not 200 <= status < 300:
            raise Err(upstream_error(status, text))
        try:
            answer = json.loads(text)
        except ValueError as problem:
            raise Err(error(types.ErrorKind.INVALID_RESPONSE,
                            f"the upstream answered non-JSON: {problem}", status))
        return adapter.Completion(body=text, usage=usage_of(answer))

    def read_rate_limits(self, status: int, headers: List[Tuple[str, str]],
                         body: bytes) -> types.RateLimits:
        def number(name: str) -> Optional[int]:
            for key, value in headers:
                if key == name and value.strip().isdigit():
                    return int(value.strip())
            return None
        retry = number("retry-after")
        return types.RateLimits(
            retry_after_ms=retry * 1000 if retry is not None else None,
            limit_requests=number("x-ratelimit-limit-requests"),
            remaining_requests=number("x-ratelimit-remaining-requests"),
            reset_requests_ms=None,
            limit_tokens=number("x-ratelimit-limit-tokens"),
            remaining_tokens=number("x-ratelimit-remaining-tokens"),
            reset_tokens_ms=None,
        )
