"""The embeddings endpoints of the mock upstreams, wire-faithful to the public API references:

- OpenAI `POST /v1/embeddings` (served by `mock_openai`, after its key check): `model`, `input`
  (a string, a list of strings, a token array or a list of token arrays), `encoding_format`
  (`float` | `base64`: little-endian float32), `dimensions` (text-embedding-3 models only),
  `user`. Answers `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
  "model", "usage": {"prompt_tokens", "total_tokens"}}`. Refused as OpenAI refuses them: a
  missing `input`, an empty string or list, more than 2048 inputs, an input over 8192 tokens,
  an unknown `encoding_format`, `dimensions` to ada-002 or above the model's size, a model
  that is not an embedding model.
- Gemini `POST /v1beta/models/{model}:embedContent` (`{"content": {"parts": [{"text"}]},
  "taskType", "title", "outputDimensionality"}` → `{"embedding": {"values"}}`) and
  `:batchEmbedContents` (`{"requests": [EmbedContentRequest, ...]}` → `{"embeddings":
  [{"values"}]}`; served by `mock_gemini` after its key check). Refused as Google refuses them:
  unknown fields, no content or a part without text, more than 100 requests in a batch, a
  request whose `model` is not the URL's, `outputDimensionality` outside 1..3072, a model that
  does not embed (404).

Vectors are deterministic: `vector(text, size)` is what a test expects for an input. Scripted
behaviours apply as for chat: an `error` or `close` behaviour answers the next embeddings
request too; anything else is served.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import Any, Optional

OPENAI_PATH = "/v1/embeddings"
GEMINI_PATH_RE = re.compile(r"^/v1beta/models/([A-Za-z0-9._-]+):(embedContent|batchEmbedContents)$")

# Embedding models and their native sizes.
OPENAI_MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                 "text-embedding-ada-002": 1536}
GEMINI_MODELS = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
EMBED_FIELDS = {"model", "content", "taskType", "task_type", "title", "outputDimensionality",
                "output_dimensionality"}


def vector(text: str, size: int) -> list[float]:
    """The unit vector the mocks give `text` (a token array is embedded as its JSON text)."""
    out: list[float] = []
    counter = 0
    while len(out) < size:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    out = out[:size]
    norm = math.sqrt(sum(v * v for v in out)) or 1.0
    return [round(v / norm, 6) for v in out]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


# ---------------------------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------------------------


def serve_openai(handler: Any, mock: Any, rec: Any) -> None:
    from mock_openai import openai_error

    def refuse(status: int, message: str, param: Optional[str] = None,
               code: Optional[str] = None) -> None:
        handler._send_json(rec, status, openai_error(message, "invalid_request_error",
                                                     param=param, code=code))

    body = rec.json
    if not isinstance(body, dict):
        return refuse(400, "We could not parse the JSON body of your request.")
    if "model" not in body:
        return refuse(400, "you must provide a model parameter")
    model = body["model"]
    if model not in OPENAI_MODELS:
        if isinstance(model, str) and model.startswith(("gpt-", "o1", "o3", "o4")):
            return refuse(400, "You are not allowed to generate embeddings from this model")
        return handler._send_json(rec, 404, openai_error(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error", code="model_not_found"))
    if "input" not in body:
        return refuse(400, "'input' is a required property")
    invalid_input = ("'$.input' is invalid. Please check the API reference: "
                     "https://platform.openai.com/docs/api-reference.")
    raw = body["input"]
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(i, int) for i in raw):
        inputs = [str(raw)]
    elif isinstance(raw, list) and raw and all(isinstance(i, (str, list)) for i in raw):
        inputs = [i if isinstance(i, str) else str(i) for i in raw]
        if any(isinstance(i, list) and (not i or not all(isinstance(t, int) for t in i))
               for i in raw):
            return refuse(400, invalid_input)
    else:
        return refuse(400, invalid_input)
    if len(inputs) > 2048 or any(i == "" for i in inputs):
        return refuse(400, invalid_input)
    for text in inputs:
        if _tokens(text) > 8192:
            return refuse(400, f"This model's maximum context length is 8192 tokens, however "
                          f"you requested {_tokens(text)} tokens (0 in your prompt; "
                          f"{_tokens(text)} for the completion). Please reduce your prompt; "
                          "or completion length.")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        return refuse(400, f"'{encoding}' is not one of ['float', 'base64'] - "
                      "'encoding_format'", param="encoding_format")
    size = OPENAI_MODELS[model]
    if "dimensions" in body:
        if model == "text-embedding-ada-002":
            return refuse(400, "This model does not support specifying dimensions.")
        dims = body["dimensions"]
        if not isinstance(dims, int) or not 1 <= dims <= size:
            return refuse(400, f"Invalid value for 'dimensions' = {dims}. Must be between 1 "
                          f"and {size}.", param="dimensions")
        size = dims
    b = mock._next_behaviour()
    if b.kind == "error":
        return handler._send_json(rec, b.status, b.body, b.headers)
    if b.kind == "close":
        return handler._cut()
    data = []
    for index, text in enumerate(inputs):
        values = vector(text, size)
        embedding: Any = values
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{size}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(_tokens(t) for t in inputs)
    handler._send_json(rec, 200, {"object": "list", "data": data, "model": model,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


# ---------------------------------------------------------------------------------------------
# Gemini
# ---------------------------------------------------------------------------------------------


def serve_gemini(handler: Any, mock: Any, rec: Any, model: str, method: str) -> None:
    from mock_gemini import Refused, _invalid, _unknown_name

    json_headers = {"content-type": "application/json; charset=UTF-8"}

    def refuse(refused: Refused) -> None:
        handler._send_json(rec, refused.code, refused.body, json_headers)

    if model not in GEMINI_MODELS:
        return refuse(Refused(404, "NOT_FOUND", f"models/{model} is not found for API version "
                              f"v1beta, or is not supported for {method}."))
    body = rec.json
    if not isinstance(body, dict):
        return refuse(_invalid("Invalid JSON payload received. Unexpected token."))
    try:
        if method == "embedContent":
            requests = [_embed_request(body, model, "EmbedContentRequest")]
        else:
            for name in body:
                if name != "requests":
                    raise _unknown_name(name)
            requests = body.get("requests")
            if not isinstance(requests, list) or not requests:
                raise _invalid("* BatchEmbedContentsRequest.requests: requests is not "
                               "specified\n")
            if len(requests) > 100:
                raise _invalid("* BatchEmbedContentsRequest.requests: at most 100 requests "
                               "can be in one batch\n")
            requests = [_embed_request(r, model, f"BatchEmbedContentsRequest.requests[{i}]",
                                       batch=True) for i, r in enumerate(requests)]
    except Refused as refused:
        return refuse(refused)
    b = mock._next_behaviour()
    if b.kind == "error":
        return handler._send_json(rec, b.status, b.body, {**json_headers, **b.headers})
    if b.kind == "close":
        return handler._cut()
    vectors = [{"values": vector(text, size)} for text, size in requests]
    answer = ({"embedding": vectors[0]} if method == "embedContent"
              else {"embeddings": vectors})
    handler._send_json(rec, 200, answer, json_headers)


def _embed_request(request: Any, model: str, at: str, batch: bool = False) -> tuple[str, int]:
    """Validate one EmbedContentRequest; its text and output size."""
    from mock_gemini import Refused, _invalid, _unknown_name

    if not isinstance(request, dict):
        raise _invalid(f"Invalid value at '{at}': expected an object")
    for name in request:
        if name not in EMBED_FIELDS:
            raise _unknown_name(name, f" at '{at}'" if batch else "")
    named = request.get("model")
    if batch and named is None:
        raise _invalid(f"* {at}.model: model is required\n")
    if named is not None and named != f"models/{model}":
        raise Refused(400, "INVALID_ARGUMENT", f"* {at}.model: the model of each request "
                      f"must be models/{model}, the model of the call\n")
    parts = (request.get("content") or {}).get("parts")
    if not parts:
        raise _invalid(f"* {at}.content: contents is not specified\n")
    texts = [p.get("text") for p in parts if isinstance(p, dict)]
    if not texts or any(not isinstance(t, str) or t == "" for t in texts):
        raise _invalid(f"* {at}.content.parts: only non-empty text parts can be embedded\n")
    size = GEMINI_MODELS[model]
    dims = request.get("outputDimensionality", request.get("output_dimensionality"))
    if dims is not None:
        if not isinstance(dims, int) or not 1 <= dims <= size:
            raise _invalid(f"* {at}.output_dimensionality: must be between 1 and {size}\n")
        size = dims
    return "".join(texts), size
