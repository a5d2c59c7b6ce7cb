"""{{name}}: a Freeway filter that blocks requests whose text contains a keyword.

The check is case-insensitive and reads the whole request body. Answers pass unchanged; the
stream resource is in guard.py (componentize-py looks it up in a module named after the
interface).
"""

from __future__ import annotations

import json
from typing import Optional

import wit_world
from wit_world import exports
from wit_world.exports import guard
from wit_world.imports import types
from componentize_py_types import Err

# Requests containing this word are refused with a 400 naming it.
BLOCKED = "forbidden"


def verdict(body: str) -> guard.RequestVerdict:
    if BLOCKED in body.lower():
        return guard.RequestVerdict_Block(f'the request contains the blocked word "{BLOCKED}"')
    return guard.RequestVerdict_Allow()


def no_settings(settings: str) -> None:
    """This filter takes no settings: anything but an empty object is refused (ValueError)."""
    if settings.strip() in ("", "{}"):
        return
    try:
        parsed = json.loads(settings)
    except ValueError:
        parsed = None
    if parsed != {}:
        raise ValueError(f"{{name}} takes no settings, got {settings}")


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(name="{{name}}", version="0.1.0", kind=types.PluginKind.FILTER,
                                    description=f'blocks requests containing "{BLOCKED}"')

    def check_settings(self, settings: str) -> None:
        try:
            no_settings(settings)
        except ValueError as problem:
            raise Err(str(problem))


class Guard(exports.Guard):
    def on_request(self, info: guard.RequestInfo, body: str, settings: str) -> guard.RequestOutcome:
        try:
            no_settings(settings)
        except ValueError as problem:
            raise Err(types.Error(kind=types.ErrorKind.INTERNAL, retryable=False,
                                  message=str(problem), status=None, retry_after_ms=None,
                                  code=None, param=None))
        return guard.RequestOutcome(verdict=verdict(body), tags=[], state=None)

    def on_response(self, info: guard.RequestInfo, state: Optional[str], body: str,
                    settings: str) -> guard.ResponseVerdict:
        return guard.ResponseVerdict_Allow()
