"""The guard reuses a budget line within its window, and only there.

Each admitted reservation's lines must be exactly those a fresh computation gives (key, window,
scope, budget): across a day boundary the key moves to the new day, a rolling window's bounds
move with the clock, and a budget replaced under the same name gets a line of its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore
from policyroute.budgets.guard import Reservation
from policyroute.budgets.windows import line_key, scope_values, window_for
from policyroute.execution.hooks import AttemptInfo
from policyroute.policy.model import BudgetSpec, WindowSpec

PARAMS = {"max_tokens": 900}
# One second before and one after midnight UTC, 2025-06-01.
MIDNIGHT = datetime(2025, 6, 1, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def guard_with(clock: Clock, *budgets: BudgetSpec) -> BudgetGuard:
    return BudgetGuard(
        policy(budgets),
        MemoryStore(),  # type: ignore[arg-type]
        clock=clock,
        token_counter=fixed_counter(100),
    )


def admitted_lines(g: BudgetGuard, att: AttemptInfo) -> list[tuple[str, str, object, float]]:
    handle = g.admit(att).handle
    assert isinstance(handle, Reservation)
    return [(rl.key, rl.scope, rl.window, rl.window.expires_at) for rl in handle.lines]


def fresh_lines(
    b: BudgetSpec, att: AttemptInfo, now: float
) -> list[tuple[str, str, object, float]]:
    window = window_for(b.window, now)
    scopes = scope_values(b.per, att.call.request, route="default", model=att.candidate.alias)
    return [(line_key(b.name, s, window.key), s, window, window.expires_at) for s in scopes]


def test_a_line_reused_within_the_day_moves_to_the_next_day_at_midnight() -> None:
    b = budget(limit="10", per="metadata.user")
    clock = Clock(MIDNIGHT - 1.0)
    g = guard_with(clock, b)
    att = attempt([b], params=PARAMS, metadata={"user": "u1"})
    before = admitted_lines(g, att)
    assert before == fresh_lines(b, att, clock.now)
    assert admitted_lines(g, att) == before  # the same day: the same line
    clock.now = MIDNIGHT + 1.0
    after = admitted_lines(g, att)
    assert after == fresh_lines(b, att, clock.now)
    assert after[0][0].endswith("day:2025-06-01")
    assert before[0][0].endswith("day:2025-05-31")


def test_each_scope_value_keeps_its_own_line() -> None:
    b = budget(limit="10", per="metadata.user")
    clock = Clock(MIDNIGHT + 100.0)
    g = guard_with(clock, b)
    for user in ("u1", "u2", "u1", "a/b"):
        att = attempt([b], params=PARAMS, metadata={"user": user})
        assert admitted_lines(g, att) == fresh_lines(b, att, clock.now)


def test_a_rolling_line_follows_the_clock() -> None:
    b = budget(limit="10", window=WindowSpec(kind="rolling", seconds=3600))
    clock = Clock(MIDNIGHT)
    g = guard_with(clock, b)
    att = attempt([b], params=PARAMS)
    first = admitted_lines(g, att)
    clock.now += 30.0
    second = admitted_lines(g, att)
    assert second == fresh_lines(b, att, clock.now)
    assert second[0][3] == first[0][3] + 30.0


def test_a_budget_replaced_under_the_same_name_gets_its_own_line() -> None:
    clock = Clock(MIDNIGHT + 100.0)
    small, large = budget(limit="0.0015"), budget(limit="10")
    g = guard_with(clock, small)
    g.admit(attempt([small], params=PARAMS))
    handle = g.admit(attempt([large], params=PARAMS)).handle
    assert isinstance(handle, Reservation)
    assert handle.lines[0].budget is large
    assert handle.lines[0].budget.limit_usd == Decimal("10")
