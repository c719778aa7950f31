"""Where receipts go: JSON lines, SQLite, a user callable, or several of these.

A sink takes a receipt record (a JSON-ready dict) and stores it, or raises
:class:`~policyroute.errors.ReceiptError`. Sinks never drop a record silently: the caller
(:class:`~policyroute.accounting.PolicyAccounting`) decides what to do with a failure.

JSON lines are the default because appending is safe across processes without locks: each
record is encoded as one complete line and handed to a single ``os.write`` on a descriptor
opened with ``O_APPEND``. The kernel positions and writes an ``O_APPEND`` write as one step,
so lines from many processes never interleave: writes up to ``PIPE_BUF`` (4096 bytes on Linux)
are atomic on any file system (POSIX), and larger writes are atomic on local file systems
(ext4, xfs, btrfs, APFS) in practice. NFS does not honour ``O_APPEND`` across hosts: give each
host its own file there. :meth:`JsonlSink.write_many` hands several lines to one ``os.write``,
so they stay together in the same way. A process killed mid-write leaves at most its last line
incomplete; :func:`policyroute.costs.report.load_receipts` skips and counts such a line.

Example:
    >>> sink = JsonlSink("receipts/{date}.jsonl")
    >>> sink.write({"kind": "call", "ts": "2026-01-02T03:04:05+00:00"})  # doctest: +SKIP
    >>> sink.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from policyroute._blocking import BlockingPool
from policyroute._shielded import side_task
from policyroute.costs.jsonl_sink import JsonlSink
from policyroute.costs.receipt_json import encode_record
from policyroute.costs.redact import scrub
from policyroute.costs.sink_threads import pool_for
from policyroute.costs.sqlite_sink import SqliteSink
from policyroute.errors import ReceiptError, SinksRefusedError

__all__ = [
    "BatchReceiptSink",
    "CallableSink",
    "JsonlSink",
    "MultiSink",
    "ReceiptSink",
    "SqliteSink",
    "awrite_each",
    "awrite_record",
    "callable_name",
    "encode_record",
    "failure_text",
    "interrupted",
    "refusing_sinks",
]


@runtime_checkable
class ReceiptSink(Protocol):
    """Stores receipt records. ``write`` raises :class:`ReceiptError` when it cannot.

    A sink may set ``blocking = True`` to ask async callers to run its writes in a worker
    thread; sinks without the attribute are treated as blocking.

    A sink may offer ``async awrite(record)``, which async callers await instead (see
    :func:`awrite_record`).

    A sink may also offer ``write_many(records)`` to store several records at once (see
    :class:`BatchReceiptSink`); it is optional, so callers check for it and fall back to a
    ``write`` per record.
    """

    def write(self, record: Mapping[str, Any]) -> None:
        """Store one record."""

    def close(self) -> None:
        """Release files and connections; the sink may not be used afterwards."""


@runtime_checkable
class BatchReceiptSink(ReceiptSink, Protocol):
    """A sink that can store several records in one go, e.g. an attempt's and its call's.

    ``write_many`` stores every record as ``write`` would, in order, or raises
    :class:`ReceiptError`; :class:`JsonlSink` and :class:`MultiSink` offer it.

    Example:
        >>> sink = JsonlSink("receipts/{date}.jsonl")
        >>> records = [{"kind": "attempt"}, {"kind": "call"}]
        >>> if isinstance(sink, BatchReceiptSink):
        ...     sink.write_many(records)  # doctest: +SKIP
        ... else:
        ...     for record in records:
        ...         sink.write(record)  # doctest: +SKIP
    """

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Store each record, in order."""


class CallableSink:
    """Hands each record to ``fn``; any exception it raises becomes a :class:`ReceiptError`.

    ``fn`` gets a copy of its own (its dicts and lists copied): it may edit it before
    forwarding it, without changing what the other sinks write or what is kept to resend.

    ``fn`` may be a plain function or a coroutine function. Async code (``ainvoke``,
    ``astream``, ``policyroute.acompletion``) awaits a coroutine function on its own event loop
    through :meth:`awrite`, and calls a plain function inline, or in a worker thread when
    ``blocking=True`` (set it for a callable that does I/O, so it does not hold up the event
    loop; up to 8 of its calls run at once, in threads of the sink's own, and more wait their
    turn). Sync code runs a coroutine function to completion on an event loop of its own, as
    :func:`asyncio.run` would but leaving the thread's current loop as it was. From a thread
    whose event loop is running (a notebook cell, sync code called from a coroutine), the
    coroutine runs on such a loop in a thread of its own while the caller waits: a callable
    bound to the caller's loop (a client made on it) fails there, and its receipt is kept to
    resend.

    ``timeout`` (seconds) bounds how long a call waits for ``fn``: a write that takes longer
    is refused with a :class:`ReceiptError`, so the receipt is kept in the accounting's
    ``unwritten`` to resend, and the call goes on. Without it, a callable that never returns
    (a service that accepts the connection and never answers) holds up every call, cancelled
    calls too, for ever. It bounds what can be stopped or left: a coroutine function is
    cancelled at the deadline; a ``blocking`` callable is left to finish in its thread, in
    sync code too (where it then runs in that thread rather than the caller's), and may
    still deliver the receipt that is kept to resend (reports count such a copy once). A
    plain function run inline (``blocking=False``) cannot be bounded: the caller's thread is
    the one running it.

    Example:
        >>> seen = []
        >>> CallableSink(seen.append).write({"kind": "call"})
        >>> seen
        [{'kind': 'call'}]
        >>> async def post(record):  # a network service, which may stop answering
        ...     await asyncio.sleep(60)
        >>> CallableSink(post, timeout=0.01).write({"kind": "call"})
        Traceback (most recent call last):
        ...
        policyroute.errors.ReceiptError: receipt callable ...post did not finish within 0.01s
    """

    def __init__(
        self,
        fn: Callable[[Mapping[str, Any]], object],
        *,
        blocking: bool = False,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None and not (
            isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and 0 < timeout < math.inf
        ):
            raise ValueError(
                f"CallableSink timeout must be a positive number of seconds, got {timeout!r}"
            )
        self.fn = fn
        self.blocking = blocking
        self.timeout = None if timeout is None else float(timeout)
        # Made at the first blocking call from async code: never the event loop's default
        # executor, which a slow callable would take from the application's other calls.
        self._pool: BlockingPool | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        """Call ``fn(record)``; run it to completion if it is a coroutine function."""
        timeout = self.timeout
        try:
            if self.blocking and timeout is not None:
                future = self._threads().submit(self.fn, _copy(record))
                try:
                    result = future.result(timeout)
                except concurrent.futures.TimeoutError:
                    future.cancel()  # not taken by a thread yet: never runs
                    raise self._late() from None
            else:
                result = self.fn(_copy(record))
            if inspect.isawaitable(result):
                _run_to_completion(result, self.fn, timeout, self._late)
        except ReceiptError:
            raise
        except Exception as exc:
            raise _failed(self.fn, exc) from exc

    async def awrite(self, record: Mapping[str, Any]) -> None:
        """Call ``fn(record)`` from async code, awaiting it if it is a coroutine function."""
        timeout = self.timeout
        try:
            if timeout is None:
                result = await self._acall(record)
                if inspect.isawaitable(result):
                    await result
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                result = await asyncio.wait_for(self._acall(record), timeout)
                if inspect.isawaitable(result):
                    await asyncio.wait_for(_awaited(result), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                # The write's own deadline, not the caller's cancellation (which stays one).
                raise self._late() from None
        except ReceiptError:
            raise  # as write does: a SinksRefusedError keeps the sinks that refused
        except Exception as exc:
            raise _failed(self.fn, exc) from exc

    async def _acall(self, record: Mapping[str, Any]) -> object:
        if self.blocking:
            return await self._threads().run(self.fn, _copy(record))
        return self.fn(_copy(record))

    def _late(self) -> ReceiptError:
        return ReceiptError(
            f"receipt callable {callable_name(self.fn)} did not finish within {self.timeout:g}s"
        )

    def _threads(self) -> BlockingPool:
        # Unlocked: loops in two threads making it at once leave one pool unused, whose threads
        # end as they idle.
        if self._pool is None:
            self._pool = BlockingPool("policyroute-sink-callable", _CALLABLE_WORKERS)
        return self._pool

    def close(self) -> None:
        """End the sink's threads (once the calls under way return)."""
        if self._pool is not None:
            self._pool.close()


# How many calls of one blocking CallableSink run at once from async code (each may wait on
# a network service).
_CALLABLE_WORKERS = 8

_LEAVES = frozenset((str, int, float, bool, type(None)))


def callable_name(fn: object) -> str:
    """How errors and logs name a receipt callable: its module and qualified name.

    Never its ``repr``, which for a :func:`functools.partial` shows the arguments bound to it
    (``headers={"Authorization": ...}``) and for a bound method the object it is bound to (a
    client holding its key).

    Example:
        >>> callable_name(functools.partial(print, "token"))
        'functools.partial(builtins.print, ...)'
        >>> callable_name([].append)
        'list.append'
    """
    if isinstance(fn, functools.partial):
        return f"functools.partial({callable_name(fn.func)}, ...)"
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(fn, "__module__", None)
        return f"{module}.{qualname}" if isinstance(module, str) else qualname
    kind = type(fn)
    return f"{kind.__module__}.{kind.__qualname__} instance"


def _failed(fn: object, exc: Exception) -> ReceiptError:
    # What the callable's exception says may quote its request (a URL with ?api_key=...).
    return ReceiptError(scrub(f"receipt callable {callable_name(fn)} failed: {exc}", ()))


def _copy(value: Any) -> Any:
    """``value`` with its mappings and lists copied, all the way down (what a receipt is made
    of); other values are shared. About 6 us for a receipt, a third of ``copy.deepcopy``:
    exact types are tested first, as ``isinstance`` against an ABC costs more than a copy."""
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in _LEAVES:
        return value
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _run_to_completion(
    awaitable: Awaitable[object],
    fn: object,
    timeout: float | None = None,
    late: Callable[[], ReceiptError] | None = None,
) -> None:
    """Run ``awaitable`` (what an async callable returned) to its end from sync code."""

    async def wait() -> None:
        if timeout is None:
            await awaitable
            return
        try:
            await asyncio.wait_for(_awaited(awaitable), timeout)
        except asyncio.TimeoutError:
            raise (late() if late is not None else ReceiptError("timed out")) from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _run_on_own_loop(wait())
        return
    # This thread runs an event loop (a notebook cell, sync code called from a coroutine):
    # blocking on that loop would deadlock it, and dropping the coroutine would lose the
    # receipt. It runs on a loop of its own in a thread of its own while this one waits.
    outcome: list[BaseException | None] = []
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(_run_on_own_loop, wait())
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name="policyroute-sink-callable-loop", daemon=True)
    thread.start()
    thread.join()
    if outcome and outcome[0] is not None:
        error = outcome[0]
        if isinstance(error, Exception):
            raise error
        raise ReceiptError(
            f"async receipt callable {callable_name(fn)} was stopped by"
            f" {type(error).__name__} in the thread it ran in"
        ) from error


def _run_on_own_loop(work: Coroutine[Any, Any, None]) -> None:
    # A loop of its own, run as asyncio.run runs one but never made this thread's current
    # loop: asyncio.run would leave the thread with none afterwards, so that code which had
    # set one (asyncio.set_event_loop) would find asyncio.get_event_loop() raising.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(work)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            if left:  # tasks the callable started and left running
                for task in left:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


async def awrite_record(sink: ReceiptSink, record: Mapping[str, Any]) -> None:
    """Write ``record`` to ``sink`` from async code, as the sink asks.

    A sink with ``awrite`` (a :class:`CallableSink`, a :class:`MultiSink`, a
    :class:`SqliteSink`) is awaited; a blocking sink (``blocking`` true or missing) runs in a
    worker thread of the sink's own, up to 4 writes at once (never the event loop's default
    executor, and never a thread another sink waits in: see
    :mod:`policyroute.costs.sink_threads`); any other is called inline.

    Example:
        >>> await awrite_record(JsonlSink("r.jsonl"), {"kind": "call"})  # doctest: +SKIP
    """
    awrite = getattr(sink, "awrite", None)
    if awrite is not None:
        await awrite(record)
    elif getattr(sink, "blocking", True):
        await pool_for(sink).run(sink.write, record)
    else:
        sink.write(record)


async def awrite_each(
    sinks: Sequence[ReceiptSink],
    record: Mapping[str, Any],
    outcomes: list[BaseException | None],
) -> None:
    """Write ``record`` to every sink from async code, each as :func:`awrite_record` would,
    those that may wait all at once: a sink that waits does not hold up the others' writes.

    ``outcomes[i]`` is set to the error ``sinks[i]`` raised (left ``None`` when it wrote). It
    is filled in place, so that a caller cancelled meanwhile (by the loop shutting down) still
    learns which sinks had not answered: theirs is the :class:`asyncio.CancelledError`, which
    is raised once the others' outcomes are in.

    Example:
        >>> outcomes = [None, None]
        >>> await awrite_each([JsonlSink("r.jsonl"), CallableSink(print)], {"kind": "call"},
        ...                   outcomes)  # doctest: +SKIP
    """
    waiting: list[int] = []
    for index, sink in enumerate(sinks):
        if getattr(sink, "awrite", None) is None and not getattr(sink, "blocking", True):
            try:
                sink.write(record)  # inline, as awrite_record would
            except Exception as exc:
                outcomes[index] = exc
            except BaseException as exc:
                # Ctrl-C raised in the running code (Python 3.10's asyncio.run, a loop run
                # with run_until_complete): this sink, those after it and those that wait
                # have not written the record.
                unwritten = [index, *waiting, *range(index + 1, len(sinks))]
                for left in unwritten:
                    outcomes[left] = interrupted(exc)
                raise
        else:
            waiting.append(index)
    if len(waiting) == 1:
        try:
            await awrite_record(sinks[waiting[0]], record)
        except Exception as exc:
            outcomes[waiting[0]] = exc
        except asyncio.CancelledError as exc:
            outcomes[waiting[0]] = exc
            raise
        except BaseException as exc:
            outcomes[waiting[0]] = interrupted(exc)
            raise
        return
    if not waiting:
        return
    # Tasks that the loop's end spares as it spares the accounting's work that awaits them.
    writes = [side_task(awrite_record(sinks[index], record)) for index in waiting]
    try:
        await asyncio.gather(*writes, return_exceptions=True)
    except asyncio.CancelledError as exc:
        for index, write in zip(waiting, writes, strict=True):
            if not write.done() or write.cancelled():
                outcomes[index] = exc
            else:
                outcomes[index] = write.exception()
        raise
    for index, write in zip(waiting, writes, strict=True):
        outcomes[index] = asyncio.CancelledError() if write.cancelled() else write.exception()


def interrupted(exc: BaseException) -> ReceiptError:
    """The refusal recorded for a sink whose write ``exc`` (Ctrl-C, ``SystemExit``) cut short
    or kept from starting: the receipt is kept for that sink, not lost.

    Example:
        >>> str(interrupted(KeyboardInterrupt()))
        'interrupted by KeyboardInterrupt while the receipt was being written'
    """
    return ReceiptError(f"interrupted by {type(exc).__name__} while the receipt was being written")


def refusing_sinks(sink: ReceiptSink, error: BaseException) -> tuple[ReceiptSink, ...]:
    """The sinks that refused a record ``sink`` failed to write with ``error``: those a
    :class:`MultiSink` names, else ``sink`` itself.

    Example:
        >>> sink = CallableSink(print)
        >>> refusing_sinks(sink, ReceiptError("disk full")) == (sink,)
        True
    """
    if isinstance(error, SinksRefusedError) and error.refused:
        return error.refused
    return (sink,)


def _write_batch(sink: ReceiptSink, batch: Sequence[Mapping[str, Any]]) -> list[str]:
    """What failed writing ``batch`` to ``sink``: in one call if it can, else one by one."""
    write_many = getattr(sink, "write_many", None)  # isinstance on a protocol is slow
    if write_many is not None:
        try:
            write_many(batch)
        except Exception as exc:
            return [failure_text(exc)]
        return []
    failures: list[str] = []
    for record in batch:
        try:
            sink.write(record)
        except Exception as exc:
            failures.append(failure_text(exc))
    return failures


def failure_text(error: BaseException) -> str:
    """How a sink's failure reads in a :class:`SinksRefusedError` and in the accounting's log:
    a ``ReceiptError``'s message, or a third-party sink's own error with its type (a bug, not a
    refusal), which its message alone may not make clear.

    An error without a message (``RuntimeError()``, a write cancelled as the event loop ended)
    reads as its type alone.

    Example:
        >>> failure_text(ReceiptError("disk full")), failure_text(KeyError("kind"))
        ('disk full', "KeyError: 'kind'")
        >>> failure_text(asyncio.CancelledError())
        'CancelledError'
    """
    if isinstance(error, ReceiptError):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class MultiSink:
    """Writes each record to every sink; one failing sink does not stop the others.

    Raises one :class:`~policyroute.errors.SinksRefusedError` (a :class:`ReceiptError`)
    naming every sink that failed, with those sinks in its ``refused``: the accounting keeps
    the record for them alone, so resending it never writes it twice to a sink that took it.
    A third-party sink's own error (not a ``ReceiptError``) counts as that sink refusing, and
    is the ``SinksRefusedError``'s cause.
    """

    def __init__(self, sinks: Sequence[ReceiptSink]) -> None:
        self.sinks = tuple(sinks)
        self.blocking = any(getattr(s, "blocking", True) for s in self.sinks)

    def write(self, record: Mapping[str, Any]) -> None:
        """Write to each sink in turn."""
        outcomes: list[BaseException | None] = [None] * len(self.sinks)
        for index, sink in enumerate(self.sinks):
            try:
                sink.write(record)
            except Exception as exc:
                outcomes[index] = exc
        self._raise_failures(outcomes)

    async def awrite(self, record: Mapping[str, Any]) -> None:
        """Write to every sink from async code (see :func:`awrite_record`), those that may
        wait all at once: a sink that waits does not hold up the others' writes. Returns once
        each has answered."""
        outcomes: list[BaseException | None] = [None] * len(self.sinks)
        await awrite_each(self.sinks, record, outcomes)
        for outcome in outcomes:
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome  # the loop is ending: not a sink's refusal
        self._raise_failures(outcomes)

    def _raise_failures(self, outcomes: Sequence[BaseException | None]) -> None:
        """Raise one :class:`SinksRefusedError` for the sinks that failed (``outcomes``, in
        the order of :attr:`sinks`), if any did."""
        failures: list[str] = []
        refused: list[ReceiptSink] = []
        cause: BaseException | None = None
        for sink, outcome in zip(self.sinks, outcomes, strict=True):
            if outcome is None:
                continue
            failures.append(f"{type(sink).__name__}: {failure_text(outcome)}")
            refused.extend(refusing_sinks(sink, outcome))
            if cause is None and not isinstance(outcome, ReceiptError):
                cause = outcome  # a bug in a sink: its traceback is kept
        if failures:
            raise SinksRefusedError("; ".join(failures), refused) from cause

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write the records to each sink in turn, in one batch where the sink offers it."""
        batch = list(records)
        failures: list[str] = []
        refused: list[ReceiptSink] = []
        for sink in self.sinks:
            messages = _write_batch(sink, batch)
            failures.extend(f"{type(sink).__name__}: {message}" for message in messages)
            if messages:
                refused.append(sink)
        if failures:
            raise SinksRefusedError("; ".join(failures), refused)

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            sink.close()
