"""Accounting that joins budgets and receipts: the executor's :class:`Accounting` for a policy.

:class:`PolicyAccounting` admits each attempt through the policy's budget guard, prices it
when it ends (exactly as litellm does, or from the policy's own prices), settles the
reservation to that price, writes one receipt per attempt and one per call, and tells the
world when a budget crosses one of its ``warn_at`` thresholds: a
:class:`BudgetThresholdWarning`, a log record on ``policyroute.budgets``, the ``on_threshold``
callback, and ``threshold_crossed`` in the receipt.

Once a provider has answered, nothing here may fail the user's call: a receipt that a sink
could not take is logged at ERROR and kept in :attr:`PolicyAccounting.unwritten` (bounded,
oldest dropped first) with the sinks that refused it, where an operator or a test can inspect
it and :meth:`PolicyAccounting.resend_unwritten` can write it again to those sinks. Raising
instead would throw away an answer that was already paid for; dropping it silently would lose
money from the books.

This module holds an attempt's way through its accounting (admit, settle, renew, finish) and
how an accounting is made; the rest lives in :mod:`policyroute.accounting_`: ``records``
(pricing each attempt, building its receipt and its call's), ``thresholds`` (the events and
how they are told), ``emission`` (writing to sinks, the unwritten receipts), ``tallies`` (each
call's running totals), ``closing``, ``building`` (sinks, store and guard from a policy) and
``default`` (the shared :func:`default_accounting`). Every public name is exported here.

Example:
    >>> acct = PolicyAccounting(policy, guard=None, sinks=[JsonlSink("r/{date}.jsonl")])
    ...     # doctest: +SKIP
    >>> acct.settle(attempt, acct.admit(attempt), outcome)  # doctest: +SKIP
    Decimal('0.000042500')
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from policyroute._shielded import despite_cancellation
from policyroute.accounting_.building import guard_on, sinks_for, store_for
from policyroute.accounting_.closing import Closing
from policyroute.accounting_.default import _cache as _cache
from policyroute.accounting_.default import _clear_default_cache as _clear_default_cache
from policyroute.accounting_.default import default_accounting
from policyroute.accounting_.emission import ReceiptEmitting
from policyroute.accounting_.records import ReceiptRecording
from policyroute.accounting_.tallies import CallTally as _Tally
from policyroute.accounting_.thresholds import (
    BudgetThresholdWarning,
    ThresholdEvent,
    ThresholdReporting,
    mark_reclaimed,
)
from policyroute.costs.receipts import BudgetChargeLike, policy_secrets, policy_spec
from policyroute.costs.sinks import ReceiptSink
from policyroute.costs.unwritten import UnwrittenReceipts
from policyroute.errors import BudgetExceeded
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
)

if TYPE_CHECKING:
    from policyroute.budgets.stores.base import BudgetStore
    from policyroute.policy.compile import CompiledPolicy

__all__ = [
    "BudgetThresholdWarning",
    "Guard",
    "PolicyAccounting",
    "ThresholdEvent",
    "default_accounting",
]
# Also reached through this module, outside ``__all__``: the default accountings' ``_cache``
# and ``_clear_default_cache`` (see policyroute.accounting_.default), for tests and benchmarks.

_budget_log = logging.getLogger("policyroute.budgets")


class Guard(Protocol):
    """What accounting needs of ``policyroute.budgets.guard.BudgetGuard``.

    A guard that keeps state per call while it runs may also have ``forget_call(request_id)``,
    called once when the call ends, whatever its end.
    """

    def admit(self, attempt: AttemptInfo) -> Admission: ...
    async def aadmit(self, attempt: AttemptInfo) -> Admission: ...
    def settle(self, admission: Admission, actual_cost: Decimal) -> Sequence[BudgetChargeLike]: ...
    async def asettle(
        self, admission: Admission, actual_cost: Decimal
    ) -> Sequence[BudgetChargeLike]: ...


class PolicyAccounting(ReceiptRecording, ReceiptEmitting, ThresholdReporting, Closing):
    """Budgets and receipts for one policy; an :class:`~policyroute.execution.hooks.Accounting`.

    Args:
        policy: the compiled policy.
        guard: the budget guard, or ``None`` when the policy has no budgets.
        sinks: where receipts go (none: no receipt is built; attempts are still priced and
            their budgets settled).
        on_threshold: called once per threshold crossed, after the receipt is written.

    :meth:`close` (or :meth:`aclose`, or leaving a ``with`` / ``async with`` block) closes the
    sinks, and the budget store if this accounting opened it (:meth:`from_policy`,
    :func:`default_accounting`); a guard passed in keeps its store open, for its owner to close.
    Once closed, admitting an attempt raises :class:`~policyroute.errors.BudgetStoreError`.

    Example:
        >>> seen = []
        >>> acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(seen.append)],
        ...                         on_threshold=print)  # doctest: +SKIP
        >>> with PolicyAccounting.from_policy(policy) as acct:  # doctest: +SKIP
        ...     ChatPolicyRoute(policy=policy, accounting=acct).invoke("hi")
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        *,
        guard: Guard | None,
        sinks: Sequence[ReceiptSink],
        on_threshold: Callable[[ThresholdEvent], None] | None = None,
    ) -> None:
        self.policy = policy
        self.guard = guard
        self.sinks = tuple(sinks)
        self.on_threshold = on_threshold
        spec = policy_spec(policy)
        self.include_prompt = bool(spec and spec.receipts.include_prompt)
        self._secrets = policy_secrets(policy)
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}
        self.unwritten = UnwrittenReceipts()
        """Receipts a sink refused, newest last (bounded by
        :data:`~policyroute.costs.unwritten.UNWRITTEN_MAX`); see :meth:`resend_unwritten`."""
        # The budget store this accounting opened itself, closed with it; a guard handed in
        # belongs to the caller, who may share its store with other accountings.
        self._owned_store: BudgetStore | None = None
        self._closed = False
        # Set for a default accounting, which nobody closes: see default_accounting.
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @classmethod
    def _opening(
        cls,
        policy: CompiledPolicy,
        *,
        sinks: Sequence[ReceiptSink],
        on_threshold: Callable[[ThresholdEvent], None] | None = None,
    ) -> PolicyAccounting:
        """An accounting on the policy's own store, which it opens now and owns."""
        store = store_for(policy)
        try:
            guard = guard_on(policy, store) if store is not None else None
            acct = cls(policy, guard=guard, sinks=sinks, on_threshold=on_threshold)
        except BaseException:
            if store is not None:
                store.close()
            raise
        acct._owned_store = store
        return acct

    @classmethod
    def from_policy(
        cls,
        policy: CompiledPolicy,
        *,
        sinks: Sequence[ReceiptSink] | None = None,
        on_threshold: Callable[[ThresholdEvent], None] | None = None,
    ) -> PolicyAccounting:
        """The policy's own budgets (its store) with receipts going to ``sinks`` (default:
        the policy's ``receipts`` sink) and an ``on_threshold`` callback.

        Unlike :func:`default_accounting` it is not cached: each call opens its own store
        connection, to be shared by the models and calls that use the result.

        Example:
            >>> from policyroute.costs.sinks import CallableSink
            >>> seen: list[dict] = []
            >>> acct = PolicyAccounting.from_policy(policy, sinks=[CallableSink(seen.append)])
            ... # doctest: +SKIP
            >>> ChatPolicyRoute(policy=policy, accounting=acct)  # doctest: +SKIP
        """
        chosen = sinks_for(policy) if sinks is None else sinks
        return cls._opening(policy, sinks=chosen, on_threshold=on_threshold)

    # ----------------------------------------------------------------------- admit

    def admit(self, attempt: AttemptInfo) -> Admission:
        """Reserve the attempt's worst-case cost (may raise ``BudgetExceeded``)."""
        self._check_open()
        if self.guard is None:
            return Admission(params=attempt.params)
        try:
            admission = self.guard.admit(attempt)
        except BudgetExceeded as exc:
            self._reclaimed(attempt, exc)
            raise
        self._reclaimed(attempt, admission)
        return admission

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        """Async twin of :meth:`admit`."""
        self._check_open()
        if self.guard is None:
            return Admission(params=attempt.params)
        try:
            admission = await self.guard.aadmit(attempt)
        except BudgetExceeded as exc:
            self._reclaimed(attempt, exc)
            raise
        self._reclaimed(attempt, admission)
        return admission

    # ----------------------------------------------------------------------- settle

    def settle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        """Price the attempt, settle its reservation, write its receipt; return the cost."""
        usage, cost = self._price(attempt, outcome)
        charges: Sequence[BudgetChargeLike] = ()
        budget_error: str | None = None
        interrupted: BaseException | None = None
        if self.guard is not None:
            try:
                charges = self.guard.settle(admission, cost.cost)
            except Exception as exc:
                _budget_log.exception("settling budget reservation failed")
                budget_error = str(exc)
            except BaseException as exc:
                # Ctrl-C while the store settles: the interruption goes on once the attempt's
                # receipt (and its cost, which the call's receipt adds up) is written.
                _budget_log.error(
                    "settling budget reservation interrupted by %s", type(exc).__name__
                )
                budget_error = f"interrupted by {type(exc).__name__}"
                interrupted = exc
        if self.sinks:  # with none (receipts: {sink: none}), no receipt is built
            record = self._attempt_record(attempt, admission, outcome, usage, cost, charges)
            mark_reclaimed(record, charges)
            if budget_error is not None:
                # The reservation stays held until its lease ends; the receipt says so.
                record["budget_error"] = budget_error
            self._emit(record)
        if interrupted is not None:
            raise interrupted
        self._thresholds(attempt, charges)
        return cost.cost

    async def asettle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        """Async twin of :meth:`settle`; blocking sinks run in a worker thread.

        Cancelling the caller meanwhile does not stop it: the reservation is settled and the
        receipt written, then the cancellation goes on.
        """
        return await despite_cancellation(self._asettle(attempt, admission, outcome))

    async def _asettle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        usage, cost = self._price(attempt, outcome)
        charges: Sequence[BudgetChargeLike] = ()
        budget_error: str | None = None
        if self.guard is not None:
            try:
                charges = await self.guard.asettle(admission, cost.cost)
            except Exception as exc:
                _budget_log.exception("settling budget reservation failed")
                budget_error = str(exc)
        if self.sinks:
            record = self._attempt_record(attempt, admission, outcome, usage, cost, charges)
            mark_reclaimed(record, charges)
            if budget_error is not None:
                record["budget_error"] = budget_error
            await self._aemit(record)
        self._thresholds(attempt, charges)
        return cost.cost

    # ----------------------------------------------------------------------- renew

    def renew(self, attempt: AttemptInfo, admission: Admission) -> None:
        """Extend the lease of the attempt's budget reservation (a long stream)."""
        renew = getattr(self.guard, "renew", None)
        if renew is None:
            return
        try:
            held = bool(renew(admission))
        except Exception:
            _budget_log.exception("renewing budget reservation failed")
            return
        self._lease_lost(attempt, held)

    async def arenew(self, attempt: AttemptInfo, admission: Admission) -> None:
        """Async twin of :meth:`renew`."""
        arenew = getattr(self.guard, "arenew", None)
        if arenew is None:
            return
        try:
            held = bool(await arenew(admission))
        except Exception:
            _budget_log.exception("renewing budget reservation failed")
            return
        self._lease_lost(attempt, held)

    @staticmethod
    def _lease_lost(attempt: AttemptInfo, held: bool) -> None:
        if not held:
            _budget_log.warning(
                "budget reservation of attempt %d of request %s expired before it was renewed;"
                " it is charged its worst case (raise store.lease)",
                attempt.number,
                attempt.call.request.request_id,
            )

    # ----------------------------------------------------------------------- finish

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        """Write the call receipt, and let the guard forget the call."""
        self._forget(call)
        if self.sinks:
            self._emit(self._call_record(call, outcome))

    async def afinish(self, call: CallInfo, outcome: CallOutcome) -> None:
        """Async twin of :meth:`finish`; like :meth:`asettle`, it outlasts a cancellation."""
        self._forget(call)
        if self.sinks:
            await despite_cancellation(self._aemit(self._call_record(call, outcome)))

    def _forget(self, call: CallInfo) -> None:
        # First, before anything that may raise or be cancelled: the executor calls finish
        # once per call whatever its end (answer, error, refusal, cancellation, a stream
        # closed or collected), so this is where the guard's per-call records go.
        forget = getattr(self.guard, "forget_call", None)
        if forget is not None:
            try:
                forget(call.request.request_id)
            except Exception:
                _budget_log.exception(
                    "forgetting call %s in the guard failed", call.request.request_id
                )
