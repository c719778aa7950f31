"""Budget thresholds: what an accounting tells the world when a budget crosses ``warn_at``.

When an attempt settles (or is refused or downgraded after reclaiming expired reservations),
every ``warn_at`` fraction a budget's spend crossed becomes a :class:`ThresholdEvent`, told
four ways: a :class:`BudgetThresholdWarning`, a WARNING record on ``policyroute.budgets``
(the event in its ``policyroute_threshold`` attribute), the accounting's ``on_threshold``
callback, and ``threshold_crossed`` in the attempt's receipt. None of them may fail a call the
provider already answered.

Example:
    >>> import warnings
    >>> from policyroute.accounting import BudgetThresholdWarning, PolicyAccounting
    >>> warnings.simplefilter("ignore", BudgetThresholdWarning)  # the callback is enough
    >>> acct = PolicyAccounting.from_policy(policy, on_threshold=lambda ev: page(ev.describe()))
    ... # doctest: +SKIP
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from policyroute._money import EXACT
from policyroute.budgets.stores.base import threshold_fraction
from policyroute.costs.receipts import BudgetChargeLike
from policyroute.errors import BudgetExceeded
from policyroute.execution.hooks import Admission, AttemptInfo

__all__ = ["BudgetThresholdWarning", "ThresholdEvent", "ThresholdReporting", "mark_reclaimed"]

# The accounting's loggers, whichever module of it logs: operators and tests configure these.
_log = logging.getLogger("policyroute.accounting")
_budget_log = logging.getLogger("policyroute.budgets")


class BudgetThresholdWarning(UserWarning):
    """A budget's spend crossed one of its ``warn_at`` fractions.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("ignore", BudgetThresholdWarning)  # silence them
    """


@dataclass(frozen=True, slots=True)
class ThresholdEvent:
    """A budget crossed ``threshold`` (a fraction of ``limit``) after an attempt settled.

    ``reclaimed`` is true when the spend that crossed it was not the attempt's own but the
    worst case of reservations whose lease ran out (their process died or hung), charged when
    this attempt reserved; the attempt (``request_id``, ``route``, ``deployment``) is only the
    one that found them, and may even have been refused.
    """

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
    reclaimed: bool = False

    def describe(self) -> str:
        """One line for logs and warnings.

        Example:
            >>> ev.describe()  # doctest: +SKIP
            "budget 'daily' (scope 'u1', day) crossed 75% of $2.00: spent $1.52"
        """
        return (
            f"budget {self.budget!r} (scope {self.scope!r}, {self.window}) crossed "
            f"{_percent(self.threshold)} of ${self.limit:f}: spent ${self.spent.normalize():f},"
            f" remaining ${self.remaining.normalize():f}"
            + (
                " (charged by reclaiming expired reservations of stopped processes at their"
                " worst case)"
                if self.reclaimed
                else ""
            )
        )


def _percent(fraction: float) -> str:
    """A ``warn_at`` fraction as the percentage the policy wrote: whole percents would read
    0.995 as ``100%`` (before the budget is spent) and 0.005 as ``0%``.

    Example:
        >>> _percent(0.75), _percent(0.995), _percent(1.0)
        ('75%', '99.5%', '100%')
    """
    return f"{threshold_fraction(fraction).scaleb(2, EXACT).normalize(EXACT):f}%"


class ThresholdReporting:
    """The threshold reporting of :class:`~policyroute.accounting.PolicyAccounting`.

    A mixin rather than a helper object: the settle path calls these as its own methods, with
    no extra call per attempt, and the warning's ``stacklevel`` stays the caller of ``settle``.
    """

    on_threshold: Callable[[ThresholdEvent], None] | None

    def _reclaimed(self, attempt: AttemptInfo, source: Admission | BudgetExceeded) -> None:
        """Report the thresholds reserving crossed by reclaiming expired reservations, for an
        attempt that no settle follows: one the guard refused or downgraded. An admitted
        attempt reports them when it settles, with its receipt."""
        carrier: object = source
        if isinstance(source, Admission):
            if source.downgrade_to is None:
                return  # sent: its settle reports them
            carrier = source.handle
        self._thresholds(attempt, getattr(carrier, "reclaimed", ()))

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
                        Decimal(0),
                        EXACT.subtract(
                            EXACT.subtract(charge.limit, charge.spent_after),
                            charge.reserved_after,
                        ),
                    ),
                    request_id=attempt.call.request.request_id,
                    route=attempt.route or attempt.call.decision.route,
                    deployment=attempt.candidate.alias,
                    reclaimed=bool(getattr(charge, "reclaimed", False)),
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


def mark_reclaimed(record: dict[str, Any], charges: Sequence[BudgetChargeLike]) -> None:
    """Flag, in an attempt receipt, the ``budgets`` entries that are reclaimed reservations'
    spend (see ``BudgetCharge.reclaimed``) rather than the attempt's own."""
    entries = record.get("budgets")
    if not isinstance(entries, list) or len(entries) != len(charges):
        return
    for entry, charge in zip(entries, charges, strict=True):
        if getattr(charge, "reclaimed", False) and isinstance(entry, dict):
            entry["reclaimed"] = True
