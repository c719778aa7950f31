"""``budget_status`` and its text, JSON and CSV renderings."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore, budget_status, format_status
from policyroute.policy.model import StoreSpec, WindowSpec

D = Decimal
NOW = 1_750_000_000.0  # 2025-06-15 UTC
PARAMS = {"max_tokens": 900}


def spend(pol: object, store: object, budgets: list, **kw: object) -> None:  # type: ignore[type-arg]
    guard = BudgetGuard(pol, store, clock=lambda: NOW, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    guard.settle(guard.admit(attempt(budgets, params=PARAMS, **kw)), D("0.0004"))  # type: ignore[arg-type]


def test_rows_cover_current_lines_and_untouched_global_budgets() -> None:
    users = budget("users", limit="1", per="metadata.user")
    team = budget("team", limit="5", window=WindowSpec(kind="month"))
    per_call = budget("per-call", limit="1", window=WindowSpec(kind="call"))
    pol, store = policy([users, team, per_call]), MemoryStore()
    spend(pol, store, [users], metadata={"user": "u1"})
    rows = budget_status(pol, store, now=NOW)
    assert [(r.budget, r.scope, r.window, r.spent, r.remaining) for r in rows] == [
        ("users", "u1", "day:2025-06-15", D("0.0004"), D("0.9996")),
        ("team", "*", "month:2025-06", D(0), D(5)),
    ]
    # Tomorrow is a new window: yesterday's line is not reported.
    assert [r.budget for r in budget_status(pol, store, now=NOW + 86_400)] == ["team"]


def test_formats() -> None:
    users = budget("users", limit="1", per="metadata.user")
    pol, store = policy([users]), MemoryStore()
    spend(pol, store, [users], metadata={"user": "u,1"})
    rows = budget_status(pol, store, now=NOW)
    table = format_status(rows).splitlines()
    assert table[0].split() == [
        "budget",
        "scope",
        "window",
        "limit",
        "spent",
        "reserved",
        "remaining",
    ]
    assert table[1].split() == ["users", "u,1", "day:2025-06-15", "1", "0.0004", "0", "0.9996"]
    assert json.loads(format_status(rows, "json"))[0]["spent"] == "0.0004"
    assert (
        format_status(rows, "csv").splitlines()[1] == 'users,"u,1",day:2025-06-15,1,0.0004,0,0.9996'
    )
    assert format_status([], "table") == "no budgets"


def test_default_store_comes_from_the_policy(tmp_path: Path) -> None:
    team = budget("team", limit="2")
    path = tmp_path / "state" / "budgets.sqlite3"
    pol = policy([team], store=StoreSpec(backend="sqlite", path=str(path)))
    from policyroute.budgets import open_store

    store = open_store(pol.spec.store)
    try:
        spend(pol, store, [team])
    finally:
        store.close()
    (row,) = budget_status(pol, now=NOW)
    assert (row.spent, row.reserved, row.remaining) == (D("0.0004"), D(0), D("1.9996"))


def test_status_of_a_policy_never_used_creates_no_state(tmp_path: Path) -> None:
    team = budget("team", limit="2")
    path = tmp_path / "state" / "budgets.sqlite3"
    pol = policy([team], store=StoreSpec(backend="sqlite", path=str(path)))

    (row,) = budget_status(pol, now=NOW)

    assert (row.budget, row.spent, row.remaining) == ("team", D(0), D("2"))
    assert not path.exists()
    assert not path.parent.exists()
