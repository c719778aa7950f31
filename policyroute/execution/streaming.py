"""Streaming with failover until the first token, and no silent truncation after it.

Chunks that carry no content (the role chunk some providers send first) are held back until
the first content or tool-call chunk arrives; until then any failure (an error, the
first-token timeout, a stream that ends empty) is retried or falls over like a non-streamed
call, and the caller sees nothing of it. Once content has reached the caller, a failure ends
the stream with :class:`~policyroute.errors.StreamInterruptedError` carrying the partial text;
:class:`~policyroute.execution.result.StreamDone` is only sent for a complete answer.

Timeouts: the first-token deadline (``defaults.first_token_timeout``) covers opening the
stream and every chunk until the first content; the idle deadline (``defaults.idle_timeout``)
covers the wait for progress after it. How each driver enforces them is told in
:mod:`~policyroute.execution.stream_async` (exactly, around each ``__anext__``) and
:mod:`~policyroute.execution.stream_sync` (httpx's read timeout, a check per chunk, and a
:class:`~policyroute.execution.watchdog.Watchdog` thread for reads that never yield).

Leases: while chunks flow, the attempt's budget reservation is renewed every third of its
lease (:mod:`policyroute.execution.lease`), so a stream longer than the lease is settled to
its actual cost instead of being reclaimed at its worst case.

Abandoned streams (the consumer stops iterating, closes the generator, or its task is
cancelled) still settle the attempt and finish the call, from the generators' ``finally``;
streams still open when ``asyncio.run()`` ends are settled too (see :func:`untracked_first`).
A sync stream may be closed from another thread than the one reading it
(:mod:`~policyroute.execution.stream_closer`).

The parts: :mod:`~policyroute.execution.stream_run` (one attempt's state, usage and
outcome), :mod:`~policyroute.execution.stream_deadlines` (timeout messages and errors),
:mod:`~policyroute.execution.stream_io` (litellm's stream objects),
:mod:`~policyroute.execution.stream_choices` (the answer of each choice),
:mod:`~policyroute.execution.stream_closer` (closing from another thread), and the drivers.

Example:
    >>> for event in stream_sync(executor, request):  # doctest: +SKIP
    ...     if isinstance(event, StreamDone):
    ...         print(event.result)
"""

from __future__ import annotations

from policyroute.execution.stream_async import closable_stream_async, untracked_first
from policyroute.execution.stream_sync import stream_sync

# What Executor.astream returns: the call's generator (stream_async.stream_async) in a wrapper
# whose aclose() works from any task.
stream_async = closable_stream_async

__all__ = ["stream_async", "stream_sync", "untracked_first"]
