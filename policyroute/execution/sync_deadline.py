"""The deadline of one sync attempt, watched from the moment its request is written.

litellm's sync clients (the OpenAI SDK's ``httpx.Client``, litellm's ``HTTPHandler``) hand
httpx a timeout that bounds each read, not the wait for an answer: a provider that never sends
its response headers, or sends them a few bytes at a time, holds the calling thread for as
long as it likes. A :class:`SyncDeadline` bounds that wait. While a deadline is active in the
thread that sends (:meth:`SyncDeadline.activate`, or ``with``), the request hook policyroute
puts on litellm's sync httpx clients (:func:`watch_responses`, called by
:mod:`~policyroute.execution.client_fill` as a call looks a client up or stores one, and by
the sync stream driver for litellm's module-level client) gives each request httpcore's
``trace`` extension (:class:`_HeadersTrace`), which httpcore calls, in the sending thread, as
the request is written and its answer's headers are about to be read. The connection's
network stream is handed to the deadline then; when the deadline passes before the response
hook has the response (its headers are in), one shared watcher thread shuts its socket down,
the read ends, and :attr:`SyncDeadline.cut` tells the attempt it failed for its deadline,
whatever error the cut read raised.

The connection is this request's alone from the moment its request is written until its
response is read to its end, which comes after the response hook: a stream shut down in that
span cannot be another call's, nor one back in the pool. httpcore does not tell a trace which
connection carries the request (a pooled one is reused without any event): it is the ``self``
of the frame that calls the trace, httpcore's public ``HTTP11Connection`` in its
``handle_request``, a few frames up the stack, and its stream that connection's
``_network_stream``. A httpcore laid out otherwise leaves the headers unwatched. HTTP/2
connections, whose one socket carries other calls too, are never shut down for one call's
headers. Connecting, the TLS handshake and writing the request are bounded by httpx's own
connect and write timeouts only.

What happens once the headers are in is the kind of deadline's own: a call that is not
streamed keeps watching the body (:class:`~policyroute.execution.unary_deadline.UnaryDeadline`);
a stream's own watchdog takes over from there (:mod:`~policyroute.execution.stream_sync`).
Outside an active deadline (the user's own litellm calls, a stream's consumer between two
chunks) the hooks do nothing. One thread serves every deadline; a forked child starts with
none of its parent's (their sockets are shared with the parent, and their calls go on there,
not in the child).

Example:
    >>> deadline = SyncDeadline(time.monotonic() + 1.0)
    >>> with deadline:
    ...     pass
    >>> deadline.cut
    False
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

from policyroute.execution.stream_io import shut_down_stream

__all__ = ["SyncDeadline", "watch_responses"]

_log = logging.getLogger("policyroute.execution")

# The attribute that marks a client of litellm's whose httpx client carries the hooks.
_MARK = "_policyroute_sync_deadline"

# The longest single wait of the watcher thread (a later deadline is waited for in steps).
_MAX_WAIT_S = 3600.0

_current: contextvars.ContextVar[SyncDeadline | None] = contextvars.ContextVar(
    "policyroute_sync_deadline", default=None
)


class SyncDeadline:
    """The deadline of one sync attempt at ``at`` (``time.monotonic()``): the answer headers
    of the requests sent while it is active must be in by then (see the module).

    ``with deadline:`` activates it in this thread and ends it on the way out;
    :meth:`activate` / :meth:`deactivate` make it active for a span only (a stream's reads,
    not its consumer's time between them), and :meth:`end` ends it.
    """

    __slots__ = ("_lock", "_passed", "_scheduled", "_streams", "_token", "at", "cut", "done")

    def __init__(self, at: float) -> None:
        self.at = at
        self.cut = False
        self.done = False
        self._lock = threading.Lock()
        self._streams: list[Any] = []  # connections whose answer's headers are being read
        self._scheduled = False
        self._passed = False
        self._token: contextvars.Token[SyncDeadline | None] | None = None

    def __enter__(self) -> SyncDeadline:
        self._token = self.activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            self.deactivate(self._token)
            self._token = None
        self.end()

    def activate(self) -> contextvars.Token[SyncDeadline | None]:
        """Make this the deadline of the requests this thread sends, until :meth:`deactivate`."""
        return _current.set(self)

    def deactivate(self, token: contextvars.Token[SyncDeadline | None]) -> None:
        """Undo the :meth:`activate` that returned ``token``."""
        _current.reset(token)

    def end(self) -> None:
        """The attempt is over: nothing is cut from now on; a cut under way ends first, so
        :attr:`cut` is final once this returns (idempotent)."""
        with self._lock:
            if self.done:
                return
            self.done = True
            self._streams.clear()
            self._released()
        if self._scheduled:
            _watcher.forget()

    def watch(self, response: Any) -> None:
        """The response hook: ``response``'s headers are in (its body is not read yet)."""
        with self._lock:
            if self.done:
                return
            self._streams.clear()  # the headers are in: their read is over
            if not self._headers_in(response):
                return
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            _watcher.add(self)

    def watch_headers(self, network_stream: Any) -> None:
        """Shut ``network_stream``'s socket down if the deadline passes while its request's
        answer headers are read (until :meth:`watch` gets the response)."""
        with self._lock:
            if self.done:
                return
            if self._passed:
                if shut_down_stream(network_stream):
                    self.cut = True
                return
            self._streams.append(network_stream)
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            _watcher.add(self)

    def expire(self) -> None:
        """The deadline has passed (the watcher's thread): cut what is still being read."""
        with self._lock:
            if self.done:
                return
            self._passed = True
            for stream in self._streams:
                if shut_down_stream(stream):
                    self.cut = True
            self._streams.clear()
            self._expired()

    # What a kind of deadline adds, called under its lock while it is not done.

    def _headers_in(self, response: Any) -> bool:
        """``response``'s headers are in: whether the deadline must still be kept for it."""
        return False

    def _expired(self) -> None:
        """The deadline passed: cut what it keeps besides answer headers."""

    def _released(self) -> None:
        """The deadline ended: drop what it keeps besides answer headers."""


# httpcore's trace event once a request is written and its answer's headers are to be read.
_HEADERS_STARTED = "http11.receive_response_headers.started"

# How many frames up from the trace extension httpcore's connection is looked for (it is 3:
# Trace.trace, Trace.__enter__, HTTP11Connection.handle_request).
_FRAMES_UP = 5


class _HeadersTrace:
    """httpcore's ``trace`` extension of a request sent within ``deadline``: hands the
    connection's stream to the deadline as the answer's headers start to be read, after
    calling the extension the request had (``previous``), if any."""

    __slots__ = ("deadline", "previous")

    def __init__(self, deadline: SyncDeadline, previous: Any) -> None:
        self.deadline = deadline
        self.previous = previous

    def __call__(self, name: str, info: Any) -> None:
        if self.previous is not None:
            self.previous(name, info)
        if name == _HEADERS_STARTED and not self.deadline.done:
            stream = _traced_connection_stream()
            if stream is not None:
                self.deadline.watch_headers(stream)


def _traced_connection_stream() -> Any:
    """The network stream of the httpcore HTTP/1.1 connection whose trace is being called:
    the ``self`` of its ``handle_request`` frame, a few frames up; ``None`` if not found."""
    connection_class = getattr(sys.modules.get("httpcore"), "HTTP11Connection", None)
    if not isinstance(connection_class, type):
        return None
    frame: FrameType | None = sys._getframe(2)  # the caller of _HeadersTrace.__call__
    for _ in range(_FRAMES_UP):
        if frame is None:
            return None
        if frame.f_code.co_name == "handle_request":
            owner = frame.f_locals.get("self")
            if isinstance(owner, connection_class):
                return getattr(owner, "_network_stream", None)
        frame = frame.f_back
    return None


def _on_request(request: Any) -> None:
    """httpx's request hook: traces a request sent within a deadline (see the module)."""
    deadline = _current.get()
    if deadline is None:
        return
    extensions = getattr(request, "extensions", None)
    if not isinstance(extensions, dict):
        return
    previous = extensions.get("trace")
    if isinstance(previous, _HeadersTrace) and previous.deadline is deadline:
        return  # a redirect: the same extensions, traced already
    extensions["trace"] = _HeadersTrace(deadline, previous)


def _on_response(response: Any) -> None:
    """httpx's response hook: runs in the thread that sends, once the headers are in."""
    deadline = _current.get()
    if deadline is not None:
        deadline.watch(response)


def watch_responses(client: Any) -> None:
    """Put the deadline's request and response hooks on ``client``'s sync httpx client (once).

    ``client`` is what litellm keeps in its client cache: an OpenAI SDK client (its httpx
    client is ``_client``), litellm's ``HTTPHandler`` (``client``), or something else, which is
    left alone, as are async clients.
    """
    if getattr(client, _MARK, False):
        return
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return
    for name in ("_client", "client"):
        http = getattr(client, name, None)
        if isinstance(http, httpx.Client):
            break
    else:
        return
    try:
        hooks = http.event_hooks
        if _on_request not in hooks["request"]:
            hooks["request"].append(_on_request)
        if _on_response not in hooks["response"]:
            hooks["response"].append(_on_response)
        setattr(client, _MARK, True)
    except (AttributeError, KeyError, TypeError):  # a client that takes no hook is left alone
        _log.debug("cannot watch the responses of %r", type(client), exc_info=True)


class _Watcher:
    """One thread that expires the deadlines of every sync attempt, earliest first."""

    # Deadlines that ended before passing stay in the heap until this many have piled up
    # (and are more than half of it): then the heap is rebuilt without them.
    _COMPACT_AT = 256

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, SyncDeadline]] = []
        self._order = itertools.count()
        self._ended = 0
        self._thread: threading.Thread | None = None

    def forked(self) -> None:
        """In a forked child: drop the parent's deadlines, whose threads the child has not
        (their responses' sockets are the parent's too), and the lock one may have held."""
        self._cond = threading.Condition(threading.Lock())
        self._heap = []
        self._ended = 0
        self._thread = None

    def add(self, deadline: SyncDeadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():  # first use
                self._thread = threading.Thread(
                    target=self._run, name="policyroute-sync-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._cond.notify()

    def forget(self) -> None:
        """A scheduled deadline ended: rebuild the heap once enough of them have."""
        with self._cond:
            self._ended += 1
            if self._ended >= self._COMPACT_AT and 2 * self._ended > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._ended = 0

    def _run(self) -> None:
        while True:
            due = self._next_due()
            if due.done:
                continue
            try:
                due.expire()
            except Exception:  # a cut is best effort; the watcher must keep going
                _log.debug("cutting a response past its deadline failed", exc_info=True)

    def _next_due(self) -> SyncDeadline:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, deadline = self._heap[0]
                if deadline.done:
                    heapq.heappop(self._heap)
                    self._ended = max(0, self._ended - 1)
                    continue
                wait = at - time.monotonic()
                if wait > 0:
                    # Woken at least hourly: a wait near the clock's range overflows the lock.
                    self._cond.wait(min(wait, _MAX_WAIT_S))
                    continue
                heapq.heappop(self._heap)
                return deadline


_watcher = _Watcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watcher.forked)
