"""The `stream-decoder` resource of {{name}}'s `adapter` export: server-sent events in, one
chunk per `data:` event out (OpenAI's own stream format).

componentize-py looks up the class implementing an exported resource in a top-level module
named after the interface that declares it, so this file must be called `adapter.py`.
"""

import json
from typing import List

from wit_world.exports import adapter as wit_adapter
from wit_world.imports import types
from componentize_py_types import Err

import app


class StreamDecoder(wit_adapter.StreamDecoder):
    def __init__(self, target: wit_adapter.Target) -> None:
        self.buffer = b""

    def push(self, data: bytes) -> List[wit_adapter.Chunk]:
        self.buffer += bytes(data)
        chunks = []
        # Events end with a blank line; a frame may split anywhere, so keep the tail.
        while b"\n\n" in self.buffer.replace(b"\r", b""):
            normalised = self.buffer.replace(b"\r", b"")
            event, _, rest = normalised.partition(b"\n\n")
            self.buffer = rest
            for line in event.decode("utf-8", "replace").split("\n"):
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload in ("", "[DONE]"):
                    continue
                try:
                    parsed = json.loads(payload)
                except ValueError as problem:
                    raise Err(app.error(types.ErrorKind.INVALID_RESPONSE,
                                        f"a stream event is not JSON: {problem}"))
                chunks.append(wit_adapter.Chunk(data=payload, usage=app.usage_of(parsed)))
        return chunks

    def finish(self) -> List[wit_adapter.Chunk]:
        return []
