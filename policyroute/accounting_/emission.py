"""Receipt emission: each receipt written to every sink, and the ones a sink refused kept.

A receipt a sink could not take never fails the user's call (the provider already answered
and was paid): it is logged at ERROR on ``policyroute.accounting`` (the receipt and the sink
in the record's ``policyroute_receipt`` and ``policyroute_sink`` attributes) and kept in the
accounting's :attr:`~policyroute.accounting.PolicyAccounting.unwritten` with the sinks that
refused it, until :meth:`~ReceiptEmitting.resend_unwritten` writes it to them again.

Example:
    >>> acct = PolicyAccounting.from_policy(policy)  # doctest: +SKIP
    >>> len(acct.unwritten), acct.resend_unwritten()  # once the disk has room again
    ... # doctest: +SKIP
    (2, 2)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from policyroute.costs.sinks import ReceiptSink, awrite_each, failure_text, interrupted
from policyroute.costs.unwritten import UnwrittenReceipts, describe_sink
from policyroute.errors import ReceiptError

__all__ = ["ReceiptEmitting", "close_sinks"]

# The accounting's logger, whichever module of it logs: operators and tests configure it.
_log = logging.getLogger("policyroute.accounting")


class ReceiptEmitting:
    """The receipt writing of :class:`~policyroute.accounting.PolicyAccounting`.

    A mixin rather than a helper object: settling and finishing call these as their own
    methods, with no extra call per receipt.
    """

    sinks: tuple[ReceiptSink, ...]
    unwritten: UnwrittenReceipts

    def _failed(self, record: dict[str, Any], sink: ReceiptSink, exc: BaseException) -> None:
        _log.error(
            "receipt %s/%s not written to %s: %s (kept in PolicyAccounting.unwritten)",
            record.get("request_id"),
            record.get("kind"),
            describe_sink(sink),
            failure_text(exc),
            # A third-party sink's own error is a bug in it: where it was raised helps.
            exc_info=exc
            if isinstance(exc, Exception) and not isinstance(exc, ReceiptError)
            else None,
            extra={"policyroute_receipt": record, "policyroute_sink": sink},
        )
        self.unwritten.keep(record, sink, exc)

    def resend_unwritten(self) -> int:
        """Write the receipts kept in :attr:`unwritten` again, each to the sinks that
        refused it (never twice to one that took it); return how many are now written
        everywhere. Those a sink still refuses stay, logged at WARNING.

        Example:
            >>> acct.resend_unwritten()  # once the disk has room again  # doctest: +SKIP
            2
        """
        return self.unwritten.resend(self.sinks)

    async def aresend_unwritten(self) -> int:
        """:meth:`resend_unwritten` from async code."""
        return await self.unwritten.aresend(self.sinks)

    def _emit(self, record: dict[str, Any]) -> None:
        sinks = self.sinks
        for index, sink in enumerate(sinks):
            try:
                sink.write(record)
            except Exception as exc:  # ReceiptError, or a third-party sink's own error
                self._failed(record, sink, exc)
            except BaseException as exc:
                # Ctrl-C (or SystemExit) landing while a sink writes, which is where a sync
                # call with a slow sink spends its last moments: the interruption goes on,
                # but the receipt is kept for this sink and those not yet written to,
                # rather than lost without a word. A sink that had in fact taken it may get
                # it twice on resend; reports count such a copy once.
                for rest in sinks[index:]:
                    self._failed(record, rest, interrupted(exc))
                raise

    async def _aemit(self, record: dict[str, Any]) -> None:
        # Several sinks are written to at once, so that one that waits (its service down,
        # say) does not hold up the others' receipts. A write cancelled (only by the loop
        # itself, shutting down) is kept as unwritten too, and the cancellation goes on.
        sinks = self.sinks
        outcomes: list[BaseException | None] = [None] * len(sinks)
        try:
            await awrite_each(sinks, record, outcomes)
        finally:
            for sink, outcome in zip(sinks, outcomes, strict=True):
                if outcome is not None:
                    self._failed(record, sink, outcome)


def close_sinks(sinks: Sequence[ReceiptSink]) -> None:
    """Close each sink; one that fails to close is logged and the others are still closed."""
    for sink in sinks:
        try:
            sink.close()
        except Exception:
            _log.exception("closing receipt sink %r failed", sink)
