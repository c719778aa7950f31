"""The body of a response a sync attempt's deadline watches: cut only while it is unread.

httpx closes a response read to its end, which hands its connection back to the pool, where
the next request of any thread may take it at once. A deadline passing while the last bytes
come in must not shut down that socket after the hand-back: it would end another call's
request (a user's own, or policyroute's). :func:`guard_body` puts a lock between the two:
the body's connection goes back to the pool only once no cut is under way, and
:func:`cut_unread` cuts only a body whose reader has not begun to close it.

Example:
    >>> import httpx
    >>> response = httpx.Response(200, content=b"{}")
    >>> guard_body(response)
    >>> response.read()
    b'{}'
    >>> cut_unread(response)  # read to its end: its connection is another call's now
    False
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx

from policyroute.execution.stream_io import cut

__all__ = ["cut_unread", "guard_body"]


class _GuardedBody(httpx.SyncByteStream):
    """A response's body whose close (the hand-back of its connection) waits for a cut."""

    def __init__(self, body: httpx.SyncByteStream) -> None:
        self._body = body
        # Reentrant: a cut closes the response, which closes this body, under the lock.
        self.lock = threading.RLock()
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body

    def close(self) -> None:
        with self.lock:  # a cut under way shuts the socket down while it is still ours
            if self.closed:
                return
            self.closed = True
            self._body.close()


def guard_body(response: Any) -> None:
    """Make ``response``'s body (an httpx response's, not yet read) wait for a cut to end
    before it hands its connection back; anything else is left alone."""
    body = getattr(response, "stream", None)
    if isinstance(body, httpx.SyncByteStream) and not isinstance(body, _GuardedBody):
        response.stream = _GuardedBody(body)


def cut_unread(response: Any) -> bool:
    """Cut ``response`` (:func:`~policyroute.execution.stream_io.cut`) unless its reader has
    begun to close it: whether it was cut. A response :func:`guard_body` did not guard is
    cut unless it is closed."""
    body = getattr(response, "stream", None)
    if not isinstance(body, _GuardedBody):
        if getattr(response, "is_closed", True):
            return False
        cut(response)
        return True
    with body.lock:
        if body.closed or getattr(response, "is_closed", True):
            return False  # read to its end (or failed): the reader is handing it back
        cut(response)
    return True
