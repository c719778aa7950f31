"""Which budget line refuses an attempt, and the :class:`~policyroute.errors.BudgetExceeded`
that says so; the guard decides what to do about it (``on_exceed``).

Example:
    >>> refusal = check_call_lines(lines, Decimal("0.5"))  # doctest: +SKIP
    >>> raise exceeded(refusal, Decimal("0.5"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Literal

from policyroute._money import EXACT
from policyroute.budgets.charges import ReservedLine
from policyroute.budgets.clamp import max_tokens_within
from policyroute.budgets.stores.base import LineState, ReserveResult
from policyroute.costs.estimate import Estimate
from policyroute.errors import BudgetError, BudgetExceeded

__all__ = [
    "Refusal",
    "breaking_refusal",
    "check_call_lines",
    "clamped_max_tokens",
    "exceeded",
    "store_refusal",
]


@dataclass(slots=True)
class Refusal:
    """The line that refused, with its spend and reservations at the time."""

    line: ReservedLine
    spent: Decimal
    reserved: Decimal


def check_call_lines(lines: Sequence[ReservedLine], amount: Decimal) -> Refusal | None:
    """The first ``call``-window line (no store state) that ``amount`` alone would break."""
    for rl in lines:
        if not rl.window.persistent and amount > rl.budget.limit_usd:
            return Refusal(rl, Decimal(0), Decimal(0))
    return None


def store_refusal(lines: Sequence[ReservedLine], result: ReserveResult) -> Refusal:
    """The line a store's refused reservation names (its index counts store lines only)."""
    persistent = [rl for rl in lines if rl.window.persistent]
    if result.refused is None or result.refused_index is None:
        raise BudgetError("the budget store refused a reservation without saying which line")
    return Refusal(persistent[result.refused_index], result.refused.spent, result.refused.reserved)


def exceeded(refusal: Refusal, amount: Decimal, note: str | None = None) -> BudgetExceeded:
    """The error for ``refusal`` of a worst case of ``amount``; ``note`` says why no
    ``on_exceed`` remedy applied."""
    rl = refusal.line
    exc = BudgetExceeded(
        budget=rl.budget.name,
        scope=rl.scope,
        limit=rl.budget.limit_usd,
        spent=refusal.spent,
        reserved=refusal.reserved,
        estimate=amount,
        window=rl.window.key,
    )
    if note:
        exc.args = (f"{exc.args[0]} ({note})",)
    return exc


def breaking_refusal(
    lines: Sequence[ReservedLine],
    states: Mapping[str, LineState],
    amount: Decimal,
    action: Literal["block", "downgrade"],
) -> Refusal | None:
    """The first line whose budget's ``on_exceed`` is ``action`` and that ``amount`` would
    break, if any."""
    for rl in lines:
        if rl.budget.on_exceed.action != action:
            continue
        state = states.get(rl.key) if rl.window.persistent else None
        spent = state.spent if state is not None else Decimal(0)
        reserved = state.reserved if state is not None else Decimal(0)
        if EXACT.add(EXACT.add(spent, reserved), amount) > rl.budget.limit_usd:
            return Refusal(rl, spent, reserved)
    return None


def clamped_max_tokens(
    estimate: Estimate, lines: Sequence[ReservedLine], states: Mapping[str, LineState]
) -> int | None:
    """The largest max_tokens whose worst case fits every line, or None if none does."""
    remaining = []
    with localcontext(EXACT):
        for rl in lines:
            state = states.get(rl.key)
            if rl.window.persistent and state is not None:
                remaining.append(rl.budget.limit_usd - state.spent - state.reserved)
            else:
                remaining.append(rl.budget.limit_usd)
    return max_tokens_within(estimate, min(remaining))
