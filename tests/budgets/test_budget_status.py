"""``budget_status`` and its text, JSON and CSV renderings: every budget of a policy shows."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore, budget_status, format_status
from policyroute.budgets.status import EACH_CALL_SCOPE, BudgetStatusRow, idle_scope
from policyroute.policy.model import StoreSpec, WindowSpec

D = Decimal
NOW = 1_750_000_000.0  # 2025-06-15 UTC
PARAMS = {"max_tokens": 900}


def spend(pol: object, store: object, budgets: list, **kw: object) -> None:  # type: ignore[type-arg]
    guard = BudgetGuard(pol, store, clock=lambda: NOW, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    guard.settle(guard.admit(attempt(budgets, params=PARAMS, **kw)), D("0.0004"))  # type: ignore[arg-type]


def summary(rows: list[BudgetStatusRow]) -> list[tuple[object, ...]]:
    return [(r.budget, r.scope, r.window, r.spent, r.remaining, r.state) for r in rows]


def test_every_budget_has_a_row_in_policy_order() -> None:
    users = budget("users", limit="1", per="metadata.user")
    team = budget("team", limit="5", window=WindowSpec(kind="month"))
    per_call = budget("per-call", limit="0.5", window=WindowSpec(kind="call"))
    teams = budget("teams", limit="3", per="metadata.team")
    pol, store = policy([users, team, per_call, teams]), MemoryStore()
    spend(pol, store, [users], metadata={"user": "u1"})

    assert summary(budget_status(pol, store, now=NOW)) == [
        ("users", "u1", "day:2025-06-15", D("0.0004"), D("0.9996"), "charged"),
        ("team", "*", "month:2025-06", D(0), D(5), "idle"),
        ("per-call", EACH_CALL_SCOPE, "call", None, None, "per-call"),
        ("teams", "<per metadata.team: none charged>", "day:2025-06-15", D(0), D(3), "idle"),
    ]


def test_a_call_budget_shows_its_limit_and_no_running_spend() -> None:
    per_call = budget("per-call", limit="0.50", window=WindowSpec(kind="call"), per="tags")
    pol, store = policy([per_call]), MemoryStore()
    spend(pol, store, [per_call], tags=["a"])  # a call budget leaves nothing in the store

    (row,) = budget_status(pol, store, now=NOW)

    assert row == BudgetStatusRow(
        "per-call", "<each call>", "call", D("0.50"), None, None, None, "tags", "per-call"
    )


def test_a_per_budget_placeholder_gives_way_to_charged_scopes_and_returns_next_window() -> None:
    users = budget("users", limit="1", per="metadata.user")
    pol, store = policy([users]), MemoryStore()
    placeholder = ("users", idle_scope("metadata.user"), "day:2025-06-15", D(0), D(1), "idle")
    assert summary(budget_status(pol, store, now=NOW)) == [placeholder]

    spend(pol, store, [users], metadata={"user": "u1"})
    spend(pol, store, [users], metadata={"user": "u1"})
    spend(pol, store, [users], metadata={})  # a missing value is charged to "<none>"
    assert summary(budget_status(pol, store, now=NOW)) == [
        ("users", "<none>", "day:2025-06-15", D("0.0004"), D("0.9996"), "charged"),
        ("users", "u1", "day:2025-06-15", D("0.0008"), D("0.9992"), "charged"),
    ]

    # Tomorrow is a new window: yesterday's lines are not reported, the placeholder is.
    tomorrow = budget_status(pol, store, now=NOW + 86_400)
    assert summary(tomorrow) == [(*placeholder[:2], "day:2025-06-16", *placeholder[3:])]


def test_scopes_sort_by_their_text_not_by_their_store_key() -> None:
    # The store keys percent-encode scopes: "u:2" is stored as "u%3A2", before "u1".
    users = budget("users", limit="1", per="metadata.user")
    pol, store = policy([users]), MemoryStore()
    for user in ("u:2", "u1", "u0"):
        spend(pol, store, [users], metadata={"user": user})

    assert [r.scope for r in budget_status(pol, store, now=NOW)] == ["u0", "u1", "u:2"]


def test_formats_of_a_charged_line() -> None:
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
        "expired",
        "remaining",
        "state",
    ]
    assert table[1].split() == [
        "users",
        "u,1",
        "day:2025-06-15",
        "1",
        "0.0004",
        "0",
        "0",
        "0.9996",
        "charged",
    ]
    assert json.loads(format_status(rows, "json")) == [
        {
            "budget": "users",
            "scope": "u,1",
            "window": "day:2025-06-15",
            "limit": "1",
            "spent": "0.0004",
            "reserved": "0",
            "expired": "0",
            "remaining": "0.9996",
            "per": "metadata.user",
            "state": "charged",
        }
    ]
    assert format_status(rows, "csv").splitlines() == [
        "budget,scope,window,limit,spent,reserved,expired,remaining,per,state",
        'users,"u,1",day:2025-06-15,1,0.0004,0,0,0.9996,metadata.user,charged',
    ]
    assert format_status([], "table") == "no budgets"
    assert format_status([], "json") == "[]"


def test_formats_mark_call_budgets_not_applicable_and_name_idle_per_budgets() -> None:
    per_call = budget("per-call", limit="0.50", window=WindowSpec(kind="call"))
    users = budget("users", limit="2", per="metadata.user")
    rows = budget_status(policy([per_call, users]), MemoryStore(), now=NOW)

    table = format_status(rows).splitlines()
    assert table[1].startswith("per-call  <each call>  ")
    assert table[1].split()[3:] == ["call", "0.50", "n/a", "n/a", "n/a", "n/a", "per-call"]
    assert "<per metadata.user: none charged>" in table[2]
    assert table[2].split()[-6:] == ["2", "0", "0", "0", "2", "idle"]
    # Amounts, "n/a" included, are right-aligned under their header.
    end = table[0].index("remaining") + len("remaining")
    assert table[1][:end].endswith(" n/a")
    assert table[2][:end].endswith(" 2")

    doc = json.loads(format_status(rows, "json"))
    assert doc[0] == {
        "budget": "per-call",
        "scope": "<each call>",
        "window": "call",
        "limit": "0.50",
        "spent": None,
        "reserved": None,
        "expired": None,
        "remaining": None,
        "per": None,
        "state": "per-call",
    }
    assert (doc[1]["scope"], doc[1]["per"], doc[1]["state"]) == (
        "<per metadata.user: none charged>",
        "metadata.user",
        "idle",
    )

    parsed = list(csv.DictReader(io.StringIO(format_status(rows, "csv"))))
    assert parsed[0] == {key: "" if value is None else value for key, value in doc[0].items()}
    assert parsed[1] == {key: str(value) for key, value in doc[1].items()}


def test_as_strings_is_as_json_with_empty_strings_for_none() -> None:
    row = BudgetStatusRow(
        "c", EACH_CALL_SCOPE, "call", D("0.5"), None, None, None, state="per-call"
    )
    assert row.as_json()["spent"] is None
    assert row.as_strings() == {
        key: "" if value is None else value for key, value in row.as_json().items()
    }
    assert "" not in {v for k, v in row.as_strings().items() if k in ("budget", "limit", "state")}


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
    assert (row.spent, row.reserved, row.remaining, row.state) == (
        D("0.0004"),
        D(0),
        D("1.9996"),
        "charged",
    )


def test_status_of_a_policy_never_used_creates_no_state(tmp_path: Path) -> None:
    team = budget("team", limit="2")
    users = budget("users", limit="1", per="metadata.user")
    path = tmp_path / "state" / "budgets.sqlite3"
    pol = policy([team, users], store=StoreSpec(backend="sqlite", path=str(path)))

    rows = budget_status(pol, now=NOW)

    assert [(r.budget, r.spent, r.remaining, r.state) for r in rows] == [
        ("team", D(0), D("2"), "idle"),
        ("users", D(0), D("1"), "idle"),
    ]
    assert not path.exists()
    assert not path.parent.exists()
