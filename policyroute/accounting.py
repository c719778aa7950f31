"""Accounting that joins budgets and receipts: the executor's :class:`Accounting` for a policy.

:class:`PolicyAccounting` admits each attempt through the policy's budget guard, prices it
when it ends (exactly as litellm does, or from the policy's own prices), settles the
reservation to that price, writes one receipt per attempt and one per call, and tells the
world when a budget crosses one of its ``warn_at`` thresholds: a
:class:`BudgetThresholdWarning`, a log record on ``policyroute.budgets``, the ``on_threshold``
callback, and ``threshold_crossed`` in the receipt.

Once a provider has answered, nothing here may fail the user's call: a receipt that no sink
could take is logged at ERROR and kept in :attr:`PolicyAccounting.unwritten` (bounded, oldest
dropped first), where an operator or a test can inspect it. Raising instead would throw away
an answer that was already paid for; dropping it silently would lose money from the books.

Example:
    >>> acct = PolicyAccounting(policy, guard=None, sinks=[JsonlSink("r/{date}.jsonl")])
    ...     # doctest: +SKIP
    >>> acct.settle(attempt, acct.admit(attempt), outcome)  # doctest: +SKIP
    Decimal('0.000042500')
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from policyroute._lazy import import_litellm
from policyroute.costs.actual import (
    CostResult,
    actual_cost,
    cost_from_usage,
    usage_from_response,
)
from policyroute.costs.receipts import (
    BudgetChargeLike,
    attempt_record,
    call_record,
    policy_identity,
    policy_secrets,
    policy_spec,
)
from policyroute.costs.sinks import JsonlSink, ReceiptSink, SqliteSink
from policyroute.execution.hooks import (
    Accounting,
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
    Usage,
)

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = [
    "BudgetThresholdWarning",
    "Guard",
    "PolicyAccounting",
    "ThresholdEvent",
    "default_accounting",
]

_log = logging.getLogger("policyroute.accounting")
_budget_log = logging.getLogger("policyroute.budgets")

UNWRITTEN_MAX = 1000
"""How many unwritable receipts :attr:`PolicyAccounting.unwritten` keeps."""


class BudgetThresholdWarning(UserWarning):
    """A budget's spend crossed one of its ``warn_at`` fractions.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("ignore", BudgetThresholdWarning)  # silence them
    """


@dataclass(frozen=True, slots=True)
class ThresholdEvent:
    """A budget crossed ``threshold`` (a fraction of ``limit``) after an attempt settled."""

    budget: str
    scope: str
    window: str
    threshold: float
    limit: Decimal
    spent: Decimal
    remaining: Decimal
    request_id: str
    route: str
    deployment: str

    def describe(self) -> str:
        """One line for logs and warnings.

        Example:
            >>> ev.describe()  # doctest: +SKIP
            "budget 'daily' (scope 'u1', day) crossed 75% of $2.00: spent $1.52"
        """
        return (
            f"budget {self.budget!r} (scope {self.scope!r}, {self.window}) crossed "
            f"{self.threshold:.0%} of ${self.limit}: spent ${self.spent.normalize():f},"
            f" remaining ${self.remaining.normalize():f}"
        )


class Guard(Protocol):
    """What accounting needs of ``policyroute.budgets.guard.BudgetGuard``."""

    def admit(self, attempt: AttemptInfo) -> Admission: ...
    async def aadmit(self, attempt: AttemptInfo) -> Admission: ...
    def settle(self, admission: Admission, actual_cost: Decimal) -> Sequence[BudgetChargeLike]: ...
    async def asettle(
        self, admission: Admission, actual_cost: Decimal
    ) -> Sequence[BudgetChargeLike]: ...


@dataclass(slots=True)
class _Tally:
    """Running totals of one call's attempts, for its call receipt."""

    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    providers: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, usage: Usage, cost: Decimal, alias: str, model: str, provider: str) -> None:
        self.cost += cost
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        self.providers[alias] = (model, provider)

    def usage(self) -> Usage:
        return Usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
        )


_ZERO_COST = CostResult(Decimal(0), "none")


class PolicyAccounting:
    """Budgets and receipts for one policy; an :class:`~policyroute.execution.hooks.Accounting`.

    Args:
        policy: the compiled policy (or its :class:`~policyroute.policy.model.PolicySpec`).
        guard: the budget guard, or ``None`` when the policy has no budgets.
        sinks: where receipts go (none: receipts are built only for their cost).
        on_threshold: called once per threshold crossed, after the receipt is written.

    Example:
        >>> seen = []
        >>> acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(seen.append)],
        ...                         on_threshold=print)  # doctest: +SKIP
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
        self.unwritten: collections.deque[dict[str, Any]] = collections.deque(maxlen=UNWRITTEN_MAX)
        """Receipts no sink could take, newest last (bounded by :data:`UNWRITTEN_MAX`)."""

    # ----------------------------------------------------------------------- admit

    def admit(self, attempt: AttemptInfo) -> Admission:
        """Reserve the attempt's worst-case cost (may raise ``BudgetExceeded``)."""
        if self.guard is None:
            return Admission(params=attempt.params)
        return self.guard.admit(attempt)

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        """Async twin of :meth:`admit`."""
        if self.guard is None:
            return Admission(params=attempt.params)
        return await self.guard.aadmit(attempt)

    # ----------------------------------------------------------------------- settle

    def settle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        """Price the attempt, settle its reservation, write its receipt; return the cost."""
        usage, cost = self._price(attempt, outcome)
        charges: Sequence[BudgetChargeLike] = ()
        if self.guard is not None:
            try:
                charges = self.guard.settle(admission, cost.cost)
            except Exception:
                _budget_log.exception("settling budget reservation failed")
        record = self._attempt_record(attempt, admission, outcome, usage, cost, charges)
        self._emit(record)
        self._thresholds(attempt, charges)
        return cost.cost

    async def asettle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        """Async twin of :meth:`settle`; blocking sinks run in a worker thread."""
        usage, cost = self._price(attempt, outcome)
        charges: Sequence[BudgetChargeLike] = ()
        if self.guard is not None:
            try:
                charges = await self.guard.asettle(admission, cost.cost)
            except Exception:
                _budget_log.exception("settling budget reservation failed")
        record = self._attempt_record(attempt, admission, outcome, usage, cost, charges)
        await self._aemit(record)
        self._thresholds(attempt, charges)
        return cost.cost

    # ----------------------------------------------------------------------- finish

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        """Write the call receipt."""
        self._emit(self._call_record(call, outcome))

    async def afinish(self, call: CallInfo, outcome: CallOutcome) -> None:
        """Async twin of :meth:`finish`."""
        await self._aemit(self._call_record(call, outcome))

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                _log.exception("closing receipt sink %r failed", sink)

    # ----------------------------------------------------------------------- pricing

    def _price(self, attempt: AttemptInfo, outcome: AttemptOutcome) -> tuple[Usage, CostResult]:
        try:
            return self._price_unsafe(attempt, outcome)
        except Exception:
            # Pricing must never fail a call that was answered; the receipt shows cost 0
            # with price source "none" and the log says why.
            _log.exception("pricing attempt %d of %s failed", attempt.number, attempt.candidate)
            return outcome.usage or Usage(), _ZERO_COST

    def _price_unsafe(
        self, attempt: AttemptInfo, outcome: AttemptOutcome
    ) -> tuple[Usage, CostResult]:
        candidate = attempt.candidate
        response = outcome.response
        answered = outcome.status == "ok" and response is not None
        # An answer's own usage is the most complete (cache writes included); for a broken
        # or failed attempt the executor's usage is what the provider reported before the end.
        reported = outcome.usage if outcome.usage is not None else Usage()
        usage = usage_from_response(response) if response is not None else Usage()
        if (not answered and reported.total_tokens) or usage.total_tokens == 0:
            usage = reported
        billed = outcome.provider_billed or answered
        if outcome.status == "refused" or not billed:
            return usage, CostResult(Decimal(0), candidate.info.price_source)
        if answered:
            return usage, actual_cost(response, candidate)
        partial = getattr(outcome.error, "partial_text", "")
        if usage.input_tokens == 0 or (usage.output_tokens == 0 and partial):
            # The usage chunk comes last, so a stream cut midway reported none: count what
            # was sent and what arrived (the partial text) as the provider would bill it.
            usage = Usage(
                input_tokens=usage.input_tokens
                or self._count(candidate.model, messages=list(attempt.call.request.messages)),
                output_tokens=usage.output_tokens
                or (self._count(candidate.model, text=partial) if partial else 0),
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
        if outcome.status == "error":
            # A billed failure is charged for its input only; nothing useful came back.
            usage = Usage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            )
        return usage, cost_from_usage(usage, candidate)

    @staticmethod
    def _count(model: str, **what: Any) -> int:
        """Tokens counted locally by litellm (``messages=`` or ``text=``); 0 if it cannot."""
        try:
            return int(import_litellm().token_counter(model=model, **what))
        except Exception:
            _log.debug("could not count tokens for %s", model, exc_info=True)
            return 0

    # ----------------------------------------------------------------------- records

    def _attempt_record(
        self,
        attempt: AttemptInfo,
        admission: Admission,
        outcome: AttemptOutcome,
        usage: Usage,
        cost: CostResult,
        charges: Sequence[BudgetChargeLike],
    ) -> dict[str, Any]:
        record = attempt_record(
            attempt,
            admission,
            outcome,
            usage=usage,
            cost=cost,
            charges=charges,
            include_prompt=self.include_prompt,
            secrets=self._secrets,
        )
        with self._lock:
            tally = self._tallies.setdefault(attempt.call.request.request_id, _Tally())
            tally.add(
                usage,
                cost.cost,
                attempt.candidate.alias,
                attempt.candidate.model,
                record["provider"],
            )
        return record

    def _call_record(self, call: CallInfo, outcome: CallOutcome) -> dict[str, Any]:
        with self._lock:
            tally = self._tallies.pop(call.request.request_id, None)
        model = provider = None
        if tally is not None and outcome.deployment in tally.providers:
            model, provider = tally.providers[outcome.deployment]
        elif outcome.deployment is not None:
            model = next(
                (c.model for c in call.decision.candidates if c.alias == outcome.deployment),
                None,
            )
        return call_record(
            call,
            outcome,
            cost=tally.cost if tally is not None else outcome.cost,
            usage=tally.usage() if tally is not None else Usage(),
            model=model,
            provider=provider,
            include_prompt=self.include_prompt,
            secrets=self._secrets,
        )

    # ----------------------------------------------------------------------- sinks

    def _failed(self, record: dict[str, Any], sink: ReceiptSink, exc: BaseException) -> None:
        _log.error(
            "receipt %s/%s not written to %s: %s (kept in PolicyAccounting.unwritten)",
            record.get("request_id"),
            record.get("kind"),
            type(sink).__name__,
            exc,
        )
        with self._lock:
            if not self.unwritten or self.unwritten[-1] is not record:
                self.unwritten.append(record)

    def _emit(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.write(record)
            except Exception as exc:  # ReceiptError, or a third-party sink's own error
                self._failed(record, sink, exc)

    async def _aemit(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                if getattr(sink, "blocking", True):
                    await asyncio.to_thread(sink.write, record)
                else:
                    sink.write(record)
            except Exception as exc:
                self._failed(record, sink, exc)

    # ----------------------------------------------------------------------- thresholds

    def _thresholds(self, attempt: AttemptInfo, charges: Sequence[BudgetChargeLike]) -> None:
        for charge in charges:
            for threshold in charge.thresholds_crossed:
                window = charge.window
                describe = getattr(window, "describe", None)
                event = ThresholdEvent(
                    budget=charge.budget,
                    scope=str(charge.scope),
                    window=str(describe()) if callable(describe) else str(window),
                    threshold=float(threshold),
                    limit=charge.limit,
                    spent=charge.spent_after,
                    remaining=max(
                        Decimal(0), charge.limit - charge.spent_after - charge.reserved_after
                    ),
                    request_id=attempt.call.request.request_id,
                    route=attempt.route or attempt.call.decision.route,
                    deployment=attempt.candidate.alias,
                )
                self._fire(event)

    def _fire(self, event: ThresholdEvent) -> None:
        message = event.describe()
        _budget_log.warning(message, extra={"policyroute_threshold": event})
        try:
            warnings.warn(BudgetThresholdWarning(message), stacklevel=4)
        except Exception:
            # Warnings turned into errors must not fail a call the provider already answered.
            _log.debug("BudgetThresholdWarning raised by the warnings filter", exc_info=True)
        if self.on_threshold is not None:
            try:
                self.on_threshold(event)
            except Exception:
                _log.exception("on_threshold callback failed for %s", message)


# --------------------------------------------------------------------------- default


_DEFAULT_SQLITE_PATH = ".policyroute/receipts.sqlite3"
_cache: dict[tuple[str, str], PolicyAccounting] = {}
_cache_lock = threading.Lock()


def _sinks_for(policy: CompiledPolicy) -> list[ReceiptSink]:
    spec = policy_spec(policy)
    if spec is None or spec.receipts.sink == "none":
        return []
    if spec.receipts.sink == "sqlite":
        path = spec.receipts.path
        if path.endswith(".jsonl"):  # the language's default path is the JSONL one
            path = _DEFAULT_SQLITE_PATH
        return [SqliteSink(path.replace("{date}", "all"))]
    return [JsonlSink(spec.receipts.path)]


def _guard_for(policy: CompiledPolicy) -> Guard | None:
    if not policy.spec.budgets:
        return None
    # Imported here: a receipts-only policy never pays for the budget machinery.
    from policyroute.budgets.guard import BudgetGuard
    from policyroute.budgets.stores import open_store

    return BudgetGuard(policy, open_store(policy.spec.store))


def default_accounting(policy: CompiledPolicy) -> Accounting:
    """The accounting a policy asks for: its budget store and its receipt sink.

    Cached per policy content hash and working directory (paths in a policy are relative to
    it), so many chat models built on one policy share one store connection and one sink.

    Example:
        >>> default_accounting(policy) is default_accounting(policy)  # doctest: +SKIP
        True
    """
    key = (policy_identity(policy)[1], os.getcwd())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = PolicyAccounting(policy, guard=_guard_for(policy), sinks=_sinks_for(policy))
            _cache[key] = cached
        return cached


def _clear_default_cache() -> None:
    """Close and forget every cached accounting (tests, and code that reloads policies)."""
    with _cache_lock:
        for acct in _cache.values():
            acct.close()
        _cache.clear()
