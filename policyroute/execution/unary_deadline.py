"""The request timeout of a sync call that is not streamed, kept for the call as a whole.

litellm's sync clients (the OpenAI SDK's ``httpx.Client``, litellm's ``HTTPHandler``) hand the
call's ``timeout`` to httpx, which applies it to each read: a provider that keeps sending a
few bytes at a time holds the call for as long as it keeps them coming. The async path bounds
the whole call (the timeout plus a grace, in the caller's task); a sync call has no task to
cancel, so its HTTP response is closed instead.

A :class:`UnaryDeadline` is a :class:`~policyroute.execution.sync_deadline.SyncDeadline`: from
the moment the request is written until its answer's headers are in, the connection is shut
down when the deadline passes (a provider that sends its headers a few bytes at a time would
hold the call just as long). Once they are in, the response hook hands the response, before
its body is read, to the same watcher thread. When the deadline passes with a response not
yet read to its end, the thread shuts its socket down and closes it
(:func:`~policyroute.execution.stream_io.cut`): the read under way ends at once, the connection
leaves litellm's pool (the next attempt opens another) and :attr:`UnaryDeadline.cut` tells the
executor that the attempt failed for its deadline, whatever error the cut read raised. The
request was written, so the attempt is billed, as the async deadline bills a read it cancels.

Limits: a response read to its end before the deadline is never closed, and an answer
litellm returns is kept even if the deadline passed while it was being parsed. A response
whose last bytes come in as the deadline passes hands its connection back to the pool only
once the cut is over (:mod:`~policyroute.execution.unary_body`): the cut never reaches the
next request on that connection. The watcher holds responses by weak reference only.

Example:
    >>> deadline = UnaryDeadline.after(1.0, grace=1.0)
    >>> with deadline:
    ...     pass
    >>> deadline.cut
    False
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from policyroute.execution.stream_io import cut
from policyroute.execution.sync_deadline import SyncDeadline, watch_responses
from policyroute.execution.timeouts import call_seconds

__all__ = ["UnaryDeadline", "watch_responses"]


class UnaryDeadline(SyncDeadline):
    """The deadline of one sync attempt: responses that arrive within it are cut when it passes.

    Use :meth:`after` to build one from the attempt's ``timeout``; enter it around the
    litellm call (in the thread that makes it).
    """

    __slots__ = ("_responses", "seconds")

    def __init__(self, seconds: float, at: float) -> None:
        super().__init__(at)
        self.seconds = seconds
        self._responses: list[weakref.ref[Any]] = []

    @classmethod
    def after(cls, timeout: object, *, grace: float) -> UnaryDeadline | None:
        """The deadline ``timeout`` + ``grace`` seconds from now, ``timeout`` read as the call's
        (:func:`~policyroute.execution.timeouts.call_seconds`); ``None`` when it gives no
        number of seconds (httpx alone applies it then)."""
        seconds = call_seconds(timeout)
        if seconds is None:
            return None
        return cls(seconds, time.monotonic() + max(0.0, seconds) + grace)

    def _headers_in(self, response: Any) -> bool:
        if self._passed:  # a response that came after the deadline (litellm retried)
            self.cut = True
            cut(response)
            return False
        # httpx is loaded by now (the response is one of its); the executor does not load it.
        from policyroute.execution.unary_body import guard_body

        guard_body(response)
        self._responses.append(weakref.ref(response))
        return True

    def _expired(self) -> None:
        from policyroute.execution.unary_body import cut_unread

        for ref in self._responses:
            response = ref()
            if response is not None and cut_unread(response):
                self.cut = True
        self._responses.clear()

    def _released(self) -> None:
        self._responses.clear()
