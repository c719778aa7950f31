"""Receipts a sink refused, kept with the sinks that refused them so they can be sent again.

:class:`~policyroute.accounting.PolicyAccounting` never fails a call for a receipt it could
not write: it logs it and keeps it here (:attr:`PolicyAccounting.unwritten`). Once the cause
is gone (the disk has room again, the database is back), :meth:`UnwrittenReceipts.resend`
writes each kept receipt to the sinks that refused it, and to those only: a sink that took
the receipt the first time never gets it twice.

Example:
    >>> from policyroute.costs.sinks import CallableSink
    >>> failing = True
    >>> def flaky(record):
    ...     if failing:
    ...         raise OSError("disk full")
    ...     print("written", record["kind"])
    >>> sink = CallableSink(flaky)
    >>> kept = UnwrittenReceipts()
    >>> kept.keep({"kind": "call"}, sink)
    >>> failing = False
    >>> kept.resend([sink])
    written call
    1
    >>> len(kept)
    0
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from policyroute._fork import ForkSafeLock
from policyroute.costs.sinks import (
    ReceiptSink,
    awrite_record,
    callable_name,
    failure_text,
    refusing_sinks,
)

__all__ = ["UNWRITTEN_MAX", "UnwrittenReceipts", "describe_sink"]

_log = logging.getLogger("policyroute.accounting")

UNWRITTEN_MAX = 1000
"""How many unwritable receipts :class:`UnwrittenReceipts` keeps by default."""

Record = dict[str, Any]


class UnwrittenReceipts(collections.deque[Record]):
    """Receipts no sink could take, oldest first, bounded (the oldest is dropped first, logged
    at ERROR with the receipt in the record's ``policyroute_receipt``).

    A deque of the receipts themselves, so ``list(acct.unwritten)`` shows them as they would
    have been written; which sinks refused each is kept alongside. Safe to use from several
    threads.
    """

    def __init__(self, records: Iterable[Record] = (), maxlen: int | None = UNWRITTEN_MAX):
        super().__init__(records, maxlen)
        self._refused: dict[int, list[ReceiptSink]] = {}
        # The receipts a resend under way is writing, by id: another resend at the same time
        # (a timer's and a shutdown hook's, two tasks) leaves them to it instead of writing
        # them a second time to the same sinks.
        self._sending: dict[int, Record] = {}
        # Free in a child made by fork(), whichever thread of the parent held it.
        self._lock = ForkSafeLock()

    def keep(self, record: Record, sink: ReceiptSink, error: BaseException | None = None) -> None:
        """Keep ``record``, which ``sink`` refused (once however many sinks refused it).

        With the ``error`` it raised, a :class:`~policyroute.costs.sinks.MultiSink` of which
        only some sinks refused the record is resent to those sinks alone.
        """
        targets = (sink,) if error is None else refusing_sinks(sink, error)
        dropped: tuple[Record, list[ReceiptSink]] | None = None
        with self._lock:
            if not any(kept is record for kept in reversed(self)):
                if self.maxlen is not None and len(self) >= self.maxlen and self:
                    oldest = self[0]  # about to be dropped
                    dropped = oldest, self._refused.pop(id(oldest), None) or []
                self.append(record)
                # Whatever is listed under its id is stale: a receipt removed by other means
                # (clear, popleft), which this one may be again or whose id it now has.
                self._refused[id(record)] = []
            refused = self._refused.setdefault(id(record), [])
            for target in targets:
                if not any(s is target for s in refused):
                    refused.append(target)
        if dropped is not None:
            _dropped(*dropped, self.maxlen)

    def resend(self, sinks: Sequence[ReceiptSink]) -> int:
        """Write each kept receipt again to the sinks that refused it; return how many are
        now written everywhere (and no longer kept). A sink that still refuses keeps its
        receipts here, logged at WARNING. ``sinks`` stands in for the refusing sinks of a
        receipt added by other means than :meth:`keep`.

        Receipts that another resend running at the same time is writing are left to it (and
        counted by it)."""
        written = 0
        pending = self._pending(sinks)
        try:
            for record, targets in pending:
                still: list[ReceiptSink] = []
                for sink in targets:
                    try:
                        sink.write(record)
                    except Exception as exc:  # ReceiptError, or a third-party sink's own error
                        still.extend(refusing_sinks(sink, exc))
                        _still_refused(record, sink, exc)
                written += self._done(record, still)
        finally:
            self._release(pending)
        return written

    async def aresend(self, sinks: Sequence[ReceiptSink]) -> int:
        """:meth:`resend` from async code (blocking sinks write in a worker thread)."""
        written = 0
        pending = self._pending(sinks)
        try:
            for record, targets in pending:
                still: list[ReceiptSink] = []
                for sink in targets:
                    try:
                        await awrite_record(sink, record)
                    except Exception as exc:
                        still.extend(refusing_sinks(sink, exc))
                        _still_refused(record, sink, exc)
                written += self._done(record, still)
        finally:
            self._release(pending)
        return written

    def _pending(self, sinks: Sequence[ReceiptSink]) -> list[tuple[Record, list[ReceiptSink]]]:
        with self._lock:
            present = {id(record) for record in self}
            for stale in [key for key in self._refused if key not in present]:
                del self._refused[stale]  # dropped or removed by other means
            pending = [
                (r, list(self._refused.get(id(r)) or sinks))
                for r in self
                if self._sending.get(id(r)) is not r
            ]
            for record, _ in pending:
                self._sending[id(record)] = record
            return pending

    def _release(self, pending: list[tuple[Record, list[ReceiptSink]]]) -> None:
        """Let other resends write ``pending`` again (what of it is still kept)."""
        with self._lock:
            for record, _ in pending:
                if self._sending.get(id(record)) is record:
                    del self._sending[id(record)]

    def _done(self, record: Record, still: list[ReceiptSink]) -> int:
        with self._lock:
            if still:
                self._refused[id(record)] = still
                return 0
            self._refused.pop(id(record), None)
            for index, kept in enumerate(self):
                if kept is record:
                    del self[index]
                    break
            return 1


def describe_sink(sink: ReceiptSink) -> str:
    """The sink's type and where it writes, for log records.

    Example:
        >>> from policyroute.costs.sinks import CallableSink
        >>> describe_sink(CallableSink(print))
        'CallableSink builtins.print'
    """
    where: object = getattr(sink, "path_template", None) or getattr(sink, "path", None)
    if isinstance(where, str | os.PathLike):
        return f"{type(sink).__name__} {os.path.abspath(where)}"
    fn = getattr(sink, "fn", None)
    if fn is not None:
        return f"{type(sink).__name__} {callable_name(fn)}"
    return type(sink).__name__


def _still_refused(record: Record, sink: ReceiptSink, exc: BaseException) -> None:
    _log.warning(
        "receipt %s/%s still not written to %s: %s (kept in PolicyAccounting.unwritten)",
        record.get("request_id"),
        record.get("kind"),
        describe_sink(sink),
        failure_text(exc),
    )


def _dropped(record: Record, refused: list[ReceiptSink], bound: int | None) -> None:
    _log.error(
        "receipt %s/%s dropped from PolicyAccounting.unwritten, which keeps the last %s:"
        " never written to %s",
        record.get("request_id"),
        record.get("kind"),
        bound,
        ", ".join(describe_sink(sink) for sink in refused) or "the sinks that refused it",
        extra={"policyroute_receipt": record},
    )
