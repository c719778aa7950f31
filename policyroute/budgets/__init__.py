"""Budgets: worst-case reservations against USD limits, enforced before each provider call.

Example:
    >>> from policyroute.budgets import BudgetGuard, MemoryStore
    >>> guard = BudgetGuard(policy, MemoryStore())  # doctest: +SKIP
"""

from __future__ import annotations

from policyroute.budgets.guard import (
    BudgetCharge,
    BudgetGuard,
    Reclaimed,
    Reservation,
    ReservedLine,
)
from policyroute.budgets.status import BudgetStatusRow, budget_status, format_status
from policyroute.budgets.stores import (
    BudgetStore,
    LineState,
    MemoryStore,
    ReserveLine,
    ReserveResult,
    SQLiteStore,
    open_store,
)
from policyroute.budgets.windows import Window, line_key, parse_line_key, scope_values, window_for

__all__ = [
    "BudgetCharge",
    "BudgetGuard",
    "BudgetStatusRow",
    "BudgetStore",
    "LineState",
    "MemoryStore",
    "Reclaimed",
    "Reservation",
    "ReserveLine",
    "ReserveResult",
    "ReservedLine",
    "SQLiteStore",
    "Window",
    "budget_status",
    "format_status",
    "line_key",
    "open_store",
    "parse_line_key",
    "scope_values",
    "window_for",
]
