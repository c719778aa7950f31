"""Closing an accounting: its receipt sinks, and the budget store it opened itself.

An accounting is closed explicitly (``close``, ``aclose``, or leaving a ``with`` / ``async
with`` block), or, for a default accounting that nobody closes, by a finalizer once nothing
holds it any more (at the latest when the interpreter exits). A guard handed in keeps its
store open, for its owner to close. Once closed, admitting an attempt raises
:class:`~policyroute.errors.BudgetStoreError`.

Example:
    >>> with PolicyAccounting.from_policy(policy) as acct:  # doctest: +SKIP
    ...     ChatPolicyRoute(policy=policy, accounting=acct).invoke("hi")
    >>> acct.closed  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from policyroute.accounting_.emission import close_sinks
from policyroute.costs.receipts import policy_identity
from policyroute.costs.sinks import ReceiptSink
from policyroute.costs.unwritten import UnwrittenReceipts
from policyroute.errors import BudgetStoreError

if TYPE_CHECKING:
    from types import TracebackType

    from policyroute.budgets.stores.base import BudgetStore
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["Closing"]

# The accounting's budget logger, whichever module of it logs: operators and tests configure it.
_budget_log = logging.getLogger("policyroute.budgets")
_log = logging.getLogger("policyroute.accounting")

_Self = TypeVar("_Self", bound="Closing")


class Closing:
    """The closing of :class:`~policyroute.accounting.PolicyAccounting` (a mixin)."""

    policy: CompiledPolicy
    sinks: tuple[ReceiptSink, ...]
    unwritten: UnwrittenReceipts
    _lock: threading.Lock
    _owned_store: BudgetStore | None
    _closed: bool
    _finalizer: weakref.finalize[Any, Any] | None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`aclose` ran."""
        return self._closed

    def close(self) -> None:
        """Close every sink, and the budget store this accounting opened; a second call does
        nothing.

        An attempt admitted before and settled after is still priced and its receipt kept in
        :attr:`unwritten`; its reservation, which the closed store cannot settle, is reclaimed
        at its lease's end.

        Example:
            >>> acct = PolicyAccounting.from_policy(policy)  # doctest: +SKIP
            >>> acct.close(); acct.close()  # doctest: +SKIP
            >>> acct.closed  # doctest: +SKIP
            True
        """
        store = self._mark_closed()
        if store is not None:
            try:
                store.close()
            except Exception:
                _budget_log.exception("closing budget store %r failed", store)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`: the store's ``aclose`` also closes the connections it
        opened for the running event loop (Redis)."""
        store = self._mark_closed()
        if store is not None:
            aclose = getattr(store, "aclose", None)
            try:
                if aclose is not None:
                    await aclose()
                else:
                    store.close()
            except Exception:
                _budget_log.exception("closing budget store %r failed", store)

    def _mark_closed(self) -> BudgetStore | None:
        """Close the sinks once; return the owned store if this call is the one to close it."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            store, self._owned_store = self._owned_store, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        close_sinks(self.sinks)
        _left_unwritten(self.unwritten, policy_identity(self.policy)[0])
        return store

    def _close_when_collected(self) -> None:
        """Close the sinks and the owned store once this accounting is garbage, if it was
        not closed before (and at the latest when the interpreter exits)."""
        with self._lock:
            if not self._closed and self._finalizer is None:
                # The callback must not hold the accounting itself, or it would never go.
                self._finalizer = weakref.finalize(
                    self,
                    _release,
                    self.sinks,
                    self._owned_store,
                    self.unwritten,
                    policy_identity(self.policy)[0],
                )

    def _check_open(self) -> None:
        if self._closed:
            name = policy_identity(self.policy)[0]
            raise BudgetStoreError(
                f"the accounting of policy {name!r} is closed (its receipt sinks and the budget"
                " store it opened are released): make a new one, e.g."
                " PolicyAccounting.from_policy(policy)"
            )

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _release(
    sinks: Sequence[ReceiptSink],
    store: BudgetStore | None,
    unwritten: UnwrittenReceipts,
    policy: str,
) -> None:
    """Close what a collected accounting held (no call can be using it any more)."""
    close_sinks(sinks)
    _left_unwritten(unwritten, policy)
    if store is not None:
        try:
            store.close()
        except Exception:
            _budget_log.exception("closing budget store %r failed", store)


def _left_unwritten(unwritten: UnwrittenReceipts, policy: str) -> None:
    """Say so when an accounting closes with receipts no sink took: none of its sinks will
    take them now, and they go with it. Each was logged when refused, but a log line's
    ``extra`` is not where most handlers keep a receipt; this record holds them all, in its
    ``policyroute_receipts``, for a handler that does."""
    records = list(unwritten)
    if not records:
        return
    _log.error(
        "the accounting of policy %r closes with %d receipt(s) no sink took, the first %s/%s:"
        " they are still in its PolicyAccounting.unwritten, and lost with it",
        policy,
        len(records),
        records[0].get("request_id"),
        records[0].get("kind"),
        extra={"policyroute_receipts": records},
    )
