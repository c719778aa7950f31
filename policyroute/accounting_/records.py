"""Receipt records: each attempt priced and its receipt built, and each call's from its tally.

An attempt that ends is priced (exactly as litellm does, or from the policy's own prices) and
its receipt built, and its usage and cost are added to its call's
:class:`~policyroute.accounting_.tallies.CallTally`; when the call finishes, its receipt is
built from that tally. None of this may fail the user's call: a price that cannot be worked out
is 0 with price source ``none``, and a receipt that cannot be built is written bare (its ids,
cost and status, and ``receipt_error`` saying why the rest is missing), both logged at ERROR on
``policyroute.accounting``.

Example:
    >>> usage, cost = acct._price(attempt, outcome)  # doctest: +SKIP
    >>> acct._attempt_record(attempt, admission, outcome, usage, cost, charges)["cost"]
    ... # doctest: +SKIP
    '0.000042500'
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from policyroute.accounting_.tallies import CallTally
from policyroute.costs.actual import CostResult, attempt_cost
from policyroute.costs.receipts import (
    SCHEMA_VERSION,
    BudgetChargeLike,
    attempt_record,
    call_record,
    format_usd,
    policy_identity,
)
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
    Usage,
)

__all__ = ["ReceiptRecording"]

# The accounting's logger, whichever module of it logs: operators and tests configure it.
_log = logging.getLogger("policyroute.accounting")

_ZERO_COST = CostResult(Decimal(0), "none")


class ReceiptRecording:
    """The pricing and receipt building of :class:`~policyroute.accounting.PolicyAccounting`.

    A mixin, like :class:`~policyroute.accounting_.emission.ReceiptEmitting`: settling and
    finishing build their receipts as their own methods, sharing the accounting's tallies.
    """

    include_prompt: bool
    _secrets: tuple[str, ...]
    _lock: threading.Lock
    _tallies: dict[str, CallTally]

    def _price(self, attempt: AttemptInfo, outcome: AttemptOutcome) -> tuple[Usage, CostResult]:
        try:
            return attempt_cost(attempt, outcome)
        except Exception:
            # Pricing must never fail a call that was answered; the receipt shows cost 0
            # with price source "none" and the log says why.
            _log.exception("pricing attempt %d of %s failed", attempt.number, attempt.candidate)
            return outcome.usage or Usage(), _ZERO_COST

    def _attempt_record(
        self,
        attempt: AttemptInfo,
        admission: Admission,
        outcome: AttemptOutcome,
        usage: Usage,
        cost: CostResult,
        charges: Sequence[BudgetChargeLike],
    ) -> dict[str, Any]:
        try:
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
        except Exception as exc:
            record = self._bare_record("attempt", attempt.call, exc)
            record.update(
                route=attempt.route or attempt.call.decision.route,
                attempt=attempt.number,
                deployment=attempt.candidate.alias,
                model=attempt.candidate.model,
                provider="",
                retry=attempt.retry,
                waited_ms=round(attempt.waited_s * 1000.0, 3),
                wait_source=attempt.wait_source,
                cost=format_usd(cost.cost),
                price_source=cost.source,
                status=outcome.status,
                error_class=outcome.error_class,
            )
        with self._lock:
            tally = self._tallies.setdefault(attempt.call.request.request_id, CallTally())
            tally.add(
                usage,
                cost.cost,
                attempt.candidate.alias,
                attempt.candidate.model,
                record["provider"],
                estimated=cost.usage_estimated,
            )
        return record

    def _call_record(self, call: CallInfo, outcome: CallOutcome) -> dict[str, Any]:
        with self._lock:
            tally = self._tallies.pop(call.request.request_id, None)
        model = provider = None
        if tally is not None and outcome.deployment in tally.deployments:
            model, provider = tally.deployments[outcome.deployment]
        elif outcome.deployment is not None:
            model = next(
                (c.model for c in call.decision.candidates if c.alias == outcome.deployment),
                None,
            )
        cost = tally.cost if tally is not None else outcome.cost
        try:
            return call_record(
                call,
                outcome,
                cost=cost,
                usage=tally.usage if tally is not None else Usage(),
                usage_estimated=tally is not None and tally.usage_estimated,
                model=model,
                provider=provider,
                include_prompt=self.include_prompt,
                secrets=self._secrets,
            )
        except Exception as exc:
            record = self._bare_record("call", call, exc)
            record.update(
                route=outcome.route or call.decision.route,
                deployment=outcome.deployment,
                model=model,
                attempts=outcome.attempts,
                cost=format_usd(cost),
                status=outcome.status,
            )
            return record

    @staticmethod
    def _bare_record(kind: str, call: CallInfo, exc: Exception) -> dict[str, Any]:
        """The fields of a receipt that cannot fail, for when building the full one did.

        Settling and finishing must not raise (the executor calls them from ``finally``), and
        the money must still reach the books: the receipt keeps its ids, cost and status, and
        ``receipt_error`` says why the rest is missing.
        """
        _log.exception("building the %s receipt of %s failed", kind, call.request.request_id)
        name, content_hash = policy_identity(call.policy)
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": kind,
            "ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "request_id": call.request.request_id,
            "run_id": call.request.run_id,
            "policy": name,
            "policy_hash": content_hash,
            "route": call.decision.route,
            "receipt_error": f"{type(exc).__name__}: {exc}",
        }
