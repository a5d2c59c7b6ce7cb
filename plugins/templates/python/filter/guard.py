"""The `stream-filter` resource of {{name}}'s `guard` export: streams pass unchanged.

componentize-py looks up the class implementing an exported resource in a top-level module
named after the interface that declares it, so this file must be called `guard.py`.
"""

from typing import List, Optional

from wit_world.exports import guard as wit_guard


class StreamFilter(wit_guard.StreamFilter):
    def __init__(self, info: wit_guard.RequestInfo, state: Optional[str], settings: str) -> None:
        pass

    def on_chunk(self, chunk: str) -> wit_guard.ChunkVerdict:
        return wit_guard.ChunkVerdict_Pass()

    def finish(self) -> List[str]:
        return []
