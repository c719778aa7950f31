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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from policyroute._shielded import side_task
from policyroute.costs.callable_sink import CallableSink, callable_name
from policyroute.costs.jsonl_sink import JsonlSink
from policyroute.costs.receipt_json import encode_record
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
