"""What ``policyroute budget status`` prints: every budget line of the current windows.

Example:
    >>> rows = budget_status(policy, MemoryStore(), now=0.0)  # doctest: +SKIP
    >>> print(format_status(rows, "csv"))                      # doctest: +SKIP
    budget,scope,window,limit,spent,reserved,remaining
    team-daily,*,day:1970-01-01,10,0,0,10
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from policyroute.budgets.stores import BudgetStore, open_store
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.budgets.windows import GLOBAL_SCOPE, parse_line_key, window_for

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["BudgetStatusRow", "budget_status", "format_status"]

_COLUMNS = ("budget", "scope", "window", "limit", "spent", "reserved", "remaining")


@dataclass(frozen=True, slots=True)
class BudgetStatusRow:
    """One budget line in its current window; amounts in USD."""

    budget: str
    scope: str
    window: str
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    remaining: Decimal

    def as_strings(self) -> dict[str, str]:
        """The row with amounts as exact decimal strings (for JSON and CSV)."""
        return {
            "budget": self.budget,
            "scope": self.scope,
            "window": self.window,
            "limit": str(self.limit),
            "spent": str(self.spent),
            "reserved": str(self.reserved),
            "remaining": str(self.remaining),
        }


def _open_for_reading(policy: CompiledPolicy) -> BudgetStore:
    """The policy's store; an empty one where its SQLite file does not exist yet.

    Reporting must not create state: opening a SQLite store creates its file.
    """
    spec = policy.spec.store
    if spec.backend == "sqlite" and not Path(spec.path).exists():
        return MemoryStore()
    return open_store(spec)


def budget_status(
    policy: CompiledPolicy, store: BudgetStore | None = None, *, now: float | None = None
) -> list[BudgetStatusRow]:
    """Spend and reservations of every budget of ``policy`` in its current window.

    ``store`` defaults to the one the policy's ``store:`` section describes (opened and closed
    here). ``call`` budgets keep no state and are not listed; a budget without ``per`` is
    listed even before its first call.
    """
    moment = time.time() if now is None else now
    own = store is None
    active = _open_for_reading(policy) if store is None else store
    try:
        rows: list[BudgetStatusRow] = []
        for budget in policy.spec.budgets:
            if budget.window.kind == "call":
                continue
            window = window_for(budget.window, moment)
            states = active.scan(quote(budget.name, safe="") + "/", now=moment)
            found = False
            for state in states:
                _, scope, window_key = parse_line_key(state.key)
                if window_key != window.key:
                    continue
                found = True
                rows.append(
                    BudgetStatusRow(
                        budget.name,
                        scope,
                        window_key,
                        budget.limit_usd,
                        state.spent,
                        state.reserved,
                        max(Decimal(0), budget.limit_usd - state.spent - state.reserved),
                    )
                )
            if not found and budget.per is None:
                zero = Decimal(0)
                rows.append(
                    BudgetStatusRow(
                        budget.name,
                        GLOBAL_SCOPE,
                        window.key,
                        budget.limit_usd,
                        zero,
                        zero,
                        budget.limit_usd,
                    )
                )
        return rows
    finally:
        if own:
            active.close()


def format_status(
    rows: list[BudgetStatusRow], fmt: Literal["table", "json", "csv"] = "table"
) -> str:
    """Render rows as an aligned text table, a JSON array, or CSV (amounts exact).

    Example:
        >>> format_status([], "json")
        '[]'
    """
    cells = [row.as_strings() for row in rows]
    if fmt == "json":
        return json.dumps(cells, indent=2) if cells else "[]"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(cells)
        return out.getvalue().rstrip("\n")
    if not cells:
        return "no budgets"
    widths = {c: max(len(c), *(len(cell[c]) for cell in cells)) for c in _COLUMNS}
    numeric = {"limit", "spent", "reserved", "remaining"}

    def line(values: dict[str, str]) -> str:
        parts = [
            values[c].rjust(widths[c]) if c in numeric else values[c].ljust(widths[c])
            for c in _COLUMNS
        ]
        return "  ".join(parts).rstrip()

    header = line({c: c for c in _COLUMNS})
    return "\n".join([header, *(line(cell) for cell in cells)])
