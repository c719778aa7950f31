"""Threads of their own for each blocking receipt sink without ``awrite`` (a third party's).

Async code runs such a sink's ``write`` in a worker thread, never on the event loop and never
in the loop's default executor (see :mod:`policyroute._blocking`). Each sink gets a pool of its
own, of :data:`SINK_WORKERS` threads: a sink whose writes block for seconds (a network service
down, a full queue) holds only its own threads, and every other sink's receipts go on being
written meanwhile. Its own further writes queue for its threads, in order, and run once it
answers again; none is dropped.

Pools are kept for the :data:`MAX_POOLS` sinks used last, so a process that makes a sink per
call (rather than one for its life) still holds at most ``MAX_POOLS * SINK_WORKERS`` threads
idling for them. A sink used after its pool was let go gets a new one; the old one's threads
finish what was queued for them first. Sinks are told apart by identity (``id``), so any
object will do, hashable or not; a sink that has been collected leaves its pool to whichever
sink later gets its ``id``, which shares it with no live sink. As every
:class:`~policyroute._blocking.BlockingPool`'s, the threads are daemons, end after 30 s idle and
with each event loop that used them, and a child made by ``fork()`` starts with none.

Example:
    >>> class Slow:
    ...     def write(self, record): ...
    ...     def close(self): ...
    >>> sink = Slow()
    >>> pool_for(sink) is pool_for(sink)
    True
"""

from __future__ import annotations

import collections
from typing import Final

from policyroute._blocking import BlockingPool
from policyroute._fork import ForkSafeLock

__all__ = ["MAX_POOLS", "SINK_WORKERS", "pool_for"]

SINK_WORKERS: Final = 4
"""How many writes of one sink run at once from async code (each may wait on a network
service); more wait their turn."""

MAX_POOLS: Final = 16
"""How many sinks keep a pool of their own at once (the ones used last)."""

_pools: collections.OrderedDict[int, BlockingPool] = collections.OrderedDict()
_lock = ForkSafeLock()  # free in a child made by fork(), whichever thread held it


def pool_for(sink: object) -> BlockingPool:
    """The threads ``sink``'s writes run in from async code."""
    key = id(sink)
    with _lock:
        pool = _pools.get(key)
        if pool is not None:
            _pools.move_to_end(key)
            return pool
        pool = _pools[key] = BlockingPool(f"policyroute-sink-{type(sink).__name__}", SINK_WORKERS)
        evicted = _pools.popitem(last=False)[1] if len(_pools) > MAX_POOLS else None
    if evicted is not None:
        # Its threads end once what is queued for them is written.
        evicted.close()
    return pool
