"""Running the Redis store's Lua scripts by SHA, or by their source where the server lacks them.

A script is sent by SHA (``EVALSHA``), its source only when the server answers ``NOSCRIPT``
(a restart, ``SCRIPT FLUSH``, another server behind the same address): then ``EVAL`` runs it
and caches it there for the next ``EVALSHA``. redis-py's own scripts instead load the source
(``SCRIPT LOAD``) and send the SHA again, which fails when that second command is retried on a
new connection to another server: after a failover, the demoted primary loads the script,
refuses to run it (``READONLY``), and the retry reaches the promoted replica, which has never
seen it. ``EVAL`` carries the source wherever the retry lands. ``NOSCRIPT`` means nothing ran,
so sending the script again never runs it twice.

Example:
    >>> import redis  # doctest: +SKIP
    >>> script = SyncScript(redis.Redis(), "return ARGV[1]")  # doctest: +SKIP
    >>> script(keys=[], args=["hi"])  # doctest: +SKIP
    b'hi'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

__all__ = ["AsyncScript", "SyncScript"]


def _no_script() -> type[BaseException]:
    from redis.exceptions import NoScriptError

    return NoScriptError


class SyncScript:
    """A Lua script on a sync redis-py client; called with ``keys`` and ``args``."""

    def __init__(self, client: Any, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, *, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return self._client.evalsha(self.sha, len(keys), *keys, *args)
        except _no_script():
            return self._client.eval(self.source, len(keys), *keys, *args)


class AsyncScript:
    """A Lua script on an async redis-py client; awaited with ``keys`` and ``args``."""

    def __init__(self, client: Any, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, *, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return await self._client.evalsha(self.sha, len(keys), *keys, *args)
        except _no_script():
            return await self._client.eval(self.source, len(keys), *keys, *args)
