"""{{name}}: a Freeway router that tries the cheapest ready candidate first.

Ready means healthy and not cooling down; candidates that are not ready come after the ready
ones (also cheapest first), so failover can still reach them.
"""

from __future__ import annotations

import json
from typing import List

import wit_world
from wit_world import exports
from wit_world.exports import policy
from wit_world.imports import types
from componentize_py_types import Err


def no_settings(settings: str) -> None:
    """This router takes no settings: anything but an empty object is refused (ValueError)."""
    if settings.strip() in ("", "{}"):
        return
    try:
        parsed = json.loads(settings)
    except ValueError:
        parsed = None
    if parsed != {}:
        raise ValueError(f"{{name}} takes no settings, got {settings}")


def by_price(candidates: List[policy.Candidate]) -> List[int]:
    """Ready candidates first, then the rest; cheapest (prompt + completion price) first."""
    def key(c: policy.Candidate):
        ready = c.healthy and c.cooldown_ms == 0
        return (not ready, c.input_price + c.output_price)
    return [c.id for c in sorted(candidates, key=key)]


def internal(message: str) -> types.Error:
    return types.Error(kind=types.ErrorKind.INTERNAL, retryable=False, message=message,
                       status=None, retry_after_ms=None, code=None, param=None)


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(name="{{name}}", version="0.1.0", kind=types.PluginKind.ROUTER,
                                    description="tries the cheapest ready candidate first")

    def check_settings(self, settings: str) -> None:
        try:
            no_settings(settings)
        except ValueError as problem:
            raise Err(str(problem))


class Policy(exports.Policy):
    def route(self, request: policy.RequestInfo, candidates: List[policy.Candidate],
              settings: str) -> List[int]:
        try:
            no_settings(settings)
        except ValueError as problem:
            raise Err(internal(str(problem)))
        return by_price(candidates)
