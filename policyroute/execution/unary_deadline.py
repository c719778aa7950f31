"""The request timeout of a sync call that is not streamed, kept for the call as a whole.

litellm's sync clients (the OpenAI SDK's ``httpx.Client``, litellm's ``HTTPHandler``) hand the
call's ``timeout`` to httpx, which applies it to each read: a provider that keeps sending a
few bytes at a time holds the call for as long as it keeps them coming. The async path bounds
the whole call (the timeout plus a grace, in the caller's task); a sync call has no task to
cancel, so its HTTP response is closed instead.

While the executor makes a sync attempt inside a :class:`UnaryDeadline`, the response hook
policyroute puts on litellm's sync httpx clients (:func:`watch_responses`, called by
:mod:`~policyroute.execution.client_fill` as a call looks a client up or stores one) hands
each response, once its headers have arrived and before its body is read, to one shared
watcher thread. When the deadline passes with a response not yet read to its end, the thread
shuts its socket down and closes it (:func:`~policyroute.execution.stream_io.cut`): the read
under way ends at once, the connection leaves litellm's pool (the next attempt opens another)
and :attr:`UnaryDeadline.cut` tells the executor that the attempt failed for its deadline,
whatever error the cut read raised. The provider had answered its headers, so the request
reached it: the attempt is billed, as the async deadline bills a read it cancels.

The headers of an answer are read before there is a response to hand over: a provider that
sends them a few bytes at a time would hold the call just as long. So the request hook
policyroute puts on the same clients gives each request sent inside a deadline httpcore's
``trace`` extension (:class:`_HeadersTrace`), which httpcore calls, in the sending thread, as
the request is written and its answer's headers are about to be read. The connection's
network stream is handed to the deadline then; when the deadline passes before the response
hook has taken over (the headers are in), the watcher shuts its socket down, and the read
ends. The request was written, so the attempt is billed, as for a body cut. The connection
is this request's alone from then until its response is read to its end, which comes after
the response hook: a stream shut down in that span cannot be another call's. httpcore does
not tell a trace which connection carries the request (a pooled one is reused without any
event): it is the ``self`` of the frame that calls the trace, httpcore's public
``HTTP11Connection`` in its ``handle_request``, a few frames up the stack, and its stream
that connection's ``_network_stream``. A httpcore laid out otherwise leaves the headers
unwatched, as before. HTTP/2 connections, whose one socket carries other calls too, are
never shut down for one call's headers.

Limits: connecting, the TLS handshake and writing the request are bounded by httpx's own
connect and write timeouts only (a request cut there might not have reached the provider,
and must not be billed); a response read to its end before the deadline is never closed,
and an answer litellm returns is kept even if the deadline passed while it was being
parsed. A response whose last bytes come in as the deadline passes hands its connection
back to the pool only once the cut is over (:mod:`~policyroute.execution.unary_body`): the
cut never reaches the next request on that connection. Outside a :class:`UnaryDeadline`
(the user's own litellm calls, streams) the hooks do nothing. The watcher holds responses
by weak reference only, and one thread serves every call; a forked child starts with none
of its parent's deadlines (their sockets are shared with the parent, and their calls go on
there, not in the child).

Example:
    >>> deadline = UnaryDeadline.after(1.0, grace=1.0)
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
import weakref
from types import FrameType, TracebackType
from typing import Any

from policyroute.execution.stream_io import cut, shut_down_stream
from policyroute.execution.timeouts import call_seconds

__all__ = ["UnaryDeadline", "watch_responses"]

_log = logging.getLogger("policyroute.execution")

# The attribute that marks a client of litellm's whose httpx client carries the hook.
_MARK = "_policyroute_unary_deadline"

# The longest single wait of the watcher thread (a later deadline is waited for in steps).
_MAX_WAIT_S = 3600.0

_current: contextvars.ContextVar[UnaryDeadline | None] = contextvars.ContextVar(
    "policyroute_unary_deadline", default=None
)


class UnaryDeadline:
    """The deadline of one sync attempt: responses that arrive within it are cut when it passes.

    Use :meth:`after` to build one from the attempt's ``timeout``; enter it around the
    litellm call (in the thread that makes it).
    """

    __slots__ = (
        "_lock",
        "_passed",
        "_responses",
        "_scheduled",
        "_streams",
        "_token",
        "at",
        "cut",
        "done",
        "seconds",
    )

    def __init__(self, seconds: float, at: float) -> None:
        self.seconds = seconds
        self.at = at  # time.monotonic()
        self.cut = False
        self.done = False
        self._lock = threading.Lock()
        self._responses: list[weakref.ref[Any]] = []
        self._streams: list[Any] = []  # connections whose answer's headers are being read
        self._scheduled = False
        self._passed = False
        self._token: contextvars.Token[UnaryDeadline | None] | None = None

    @classmethod
    def after(cls, timeout: object, *, grace: float) -> UnaryDeadline | None:
        """The deadline ``timeout`` + ``grace`` seconds from now, ``timeout`` read as the call's
        (:func:`~policyroute.execution.timeouts.call_seconds`); ``None`` when it gives no
        number of seconds (httpx alone applies it then)."""
        seconds = call_seconds(timeout)
        if seconds is None:
            return None
        return cls(seconds, time.monotonic() + max(0.0, seconds) + grace)

    def __enter__(self) -> UnaryDeadline:
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        with self._lock:  # a cut under way ends before the attempt does
            self.done = True
            self._responses.clear()
            self._streams.clear()
        if self._scheduled:
            _watcher.forget()

    def watch(self, response: Any) -> None:
        """Cut ``response`` if it is still being read when the deadline passes."""
        with self._lock:
            if self.done:
                return
            # The headers are in: the response's body is what is read (and cut) from now on.
            self._streams.clear()
            if self._passed:  # a response that came after the deadline (litellm retried)
                self.cut = True
                cut(response)
                return
            # httpx is loaded by now (the response is one of its); the executor does not load it.
            from policyroute.execution.unary_body import guard_body

            guard_body(response)
            self._responses.append(weakref.ref(response))
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
        from policyroute.execution.unary_body import cut_unread

        with self._lock:
            if self.done:
                return
            self._passed = True
            for stream in self._streams:
                if shut_down_stream(stream):
                    self.cut = True
            self._streams.clear()
            for ref in self._responses:
                response = ref()
                if response is not None and cut_unread(response):
                    self.cut = True
            self._responses.clear()


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

    def __init__(self, deadline: UnaryDeadline, previous: Any) -> None:
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
        self._heap: list[tuple[float, int, UnaryDeadline]] = []
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

    def add(self, deadline: UnaryDeadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():  # first use
                self._thread = threading.Thread(
                    target=self._run, name="policyroute-unary-deadlines", daemon=True
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

    def _next_due(self) -> UnaryDeadline:
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
