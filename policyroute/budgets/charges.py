"""What a reservation holds on each budget line, and what settling or reclaiming charged.

:class:`ReservedLine` is one line an attempt's reservation holds money on;
:class:`BudgetCharge` is what one attempt did to one line, as accounting reports it (receipt,
``warn_at`` thresholds). :func:`settled_charges` builds the charges of a settle from the
store's line states; :func:`reclaimed_charges` those of reservations whose lease ran out (their
process died) and that a reservation reclaimed, charging their worst case.

Example:
    >>> state = LineState("daily/u1/day:2025-01-02", Decimal("1.6"), Decimal(0), Decimal(2),
    ...                   (0.75,))
    >>> charge, = reclaimed_charges([state])
    >>> (charge.budget, charge.scope, charge.thresholds_crossed, charge.reclaimed)
    ('daily', 'u1', (0.75,), True)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from policyroute.budgets.stores.base import LineState, ReserveLine, threshold_spend
from policyroute.budgets.windows import Window, parse_line_key
from policyroute.policy.model import BudgetSpec

__all__ = ["BudgetCharge", "ReservedLine", "reclaimed_charges", "settled_charges"]


@dataclass(frozen=True, slots=True)
class BudgetCharge:
    """What one settled attempt did to one budget line.

    ``thresholds_crossed`` lists the ``warn_at`` fractions this attempt's spend reached first
    in the line's window (each fires once per window and scope, across processes).

    ``reclaimed`` marks a charge that is not this attempt's own spend: reserving for it
    reclaimed reservations whose lease had run out (their process died or hung) and charged
    their worst case, which crossed ``thresholds_crossed`` on this line, possibly one of another
    scope or budget. The attempt reports the crossing because nobody else can.
    """

    budget: str
    scope: str
    window: str
    limit: Decimal
    spent_after: Decimal
    reserved_after: Decimal
    thresholds_crossed: tuple[float, ...] = ()
    reclaimed: bool = False


@dataclass(frozen=True, slots=True)
class ReservedLine:
    """One line of a reservation: which budget, scope and window it holds money on."""

    budget: BudgetSpec
    scope: str
    window: Window
    key: str

    def reserve_line(self, amount: Decimal) -> ReserveLine:
        """The store's view of the line for a reservation of ``amount``."""
        w = self.window
        return ReserveLine(
            key=self.key,
            limit=self.budget.limit_usd,
            amount=amount,
            expires_at=w.expires_at,
            bucket_seconds=w.bucket_seconds,
            span_seconds=w.span_seconds,
            thresholds=_sorted(self.budget.warn_at),
        )


@functools.lru_cache(maxsize=256)
def _sorted(thresholds: tuple[float, ...]) -> tuple[float, ...]:
    # A budget's ``warn_at`` is sorted on each reservation of each of its lines: once is enough.
    return tuple(sorted(thresholds))


def settled_charges(
    lines: Sequence[ReservedLine], states: Sequence[LineState], actual: Decimal
) -> tuple[BudgetCharge, ...]:
    """The charges of settling a reservation of ``lines`` to ``actual``, given the store's
    ``states`` after the settle (none for a reservation already settled or reclaimed)."""
    by_key = {s.key: s for s in states}
    charges = []
    for rl in lines:
        state = by_key.get(rl.key)
        if rl.window.persistent:
            if state is None:
                continue  # already settled, released or reclaimed
            # Crossings are judged against the limit and warn_at the line holds, those of the
            # last reservation made on it: while two versions of a policy (or two policies)
            # charge the line, the other's. They are reported with that limit, which the
            # fraction is of.
            charge = BudgetCharge(
                rl.budget.name,
                rl.scope,
                rl.window.key,
                state.limit if state.crossed else rl.budget.limit_usd,
                state.spent,
                state.reserved,
                state.crossed,
            )
        else:
            limit = rl.budget.limit_usd
            crossed = tuple(
                t for t in _sorted(rl.budget.warn_at) if actual >= threshold_spend(t, limit)
            )
            charge = BudgetCharge(
                rl.budget.name, rl.scope, "call", limit, actual, Decimal(0), crossed
            )
        charges.append(charge)
    return tuple(charges)


def reclaimed_charges(states: Sequence[LineState]) -> tuple[BudgetCharge, ...]:
    """The charges of reclaimed reservations, from a reserve's
    :attr:`~policyroute.budgets.stores.base.ReserveResult.reclaimed` line states.

    Budget, scope and window come from each line's key, and the limit is the one the store
    holds: the line need not be one of the reserving attempt's own.
    """
    charges = []
    for state in states:
        budget, scope, window = parse_line_key(state.key)
        charges.append(
            BudgetCharge(
                budget,
                scope,
                window,
                state.limit,
                state.spent,
                state.reserved,
                state.crossed,
                reclaimed=True,
            )
        )
    return tuple(charges)
