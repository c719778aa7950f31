"""The guard: block, downgrade, clamp, scopes, call windows and threshold reports."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from budgets.helpers import attempt, budget, candidate, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore
from policyroute.errors import BudgetError, BudgetExceeded
from policyroute.policy.model import OnExceed, WindowSpec

D = Decimal
NOW = 1_750_000_000.0
# 100 input tokens + max_tokens 900 at $1/M each way = $0.001 per call.
PARAMS = {"max_tokens": 900}


def guard(*budgets_: object, max_tokens: int | None = None) -> BudgetGuard:
    return BudgetGuard(
        policy(budgets_, max_tokens=max_tokens),
        MemoryStore(),  # type: ignore[arg-type]
        clock=lambda: NOW,
        token_counter=fixed_counter(100),
    )


def test_admits_until_the_worst_case_would_break_the_budget() -> None:
    b = budget(limit="0.0025")
    g = guard(b)
    first = g.admit(attempt([b], params=PARAMS))
    assert first.estimate == D("0.001")
    g.settle(first, D("0.001"))
    g.admit(attempt([b], params=PARAMS))
    with pytest.raises(BudgetExceeded) as info:
        g.admit(attempt([b], params=PARAMS))
    exc = info.value
    assert (exc.budget, exc.scope, exc.spent, exc.reserved, exc.estimate) == (
        "b",
        "*",
        D("0.001"),
        D("0.001"),
        D("0.001"),
    )
    assert exc.window is not None
    assert exc.window.startswith("day:")


def test_no_budget_in_scope_means_no_estimate() -> None:
    b = budget(routes=["other"])
    g = guard(b)
    admission = g.admit(attempt([b], params={}, cand=candidate("x", "custom/x", price=None)))
    assert admission.handle is None
    assert g.settle(admission, D(1)) == ()


def test_an_unpriced_model_under_a_budget_is_a_budget_error_not_exceeded() -> None:
    b = budget()
    with pytest.raises(BudgetError, match="price") as info:
        guard(b).admit(attempt([b], params=PARAMS, cand=candidate("x", "custom/x", price=None)))
    assert not isinstance(info.value, BudgetExceeded)


def test_refusal_on_one_tag_reserves_nothing_on_the_others() -> None:
    b = budget(limit="0.0015", per="tags")
    g = guard(b)
    g.settle(g.admit(attempt([b], params=PARAMS, tags=["a"])), D("0.001"))
    with pytest.raises(BudgetExceeded) as info:
        g.admit(attempt([b], params=PARAMS, tags=["b", "a"]))
    assert info.value.scope == "a"
    assert g.store.state("b/b/" + info.value.window, now=NOW).reserved == 0  # type: ignore[operator]
    charges = g.settle(g.admit(attempt([b], params=PARAMS, tags=["b", "c"])), D("0.0004"))
    assert sorted(c.scope for c in charges) == ["b", "c"]


def test_missing_scope_values_share_one_limited_line() -> None:
    b = budget(limit="0.0015", per="metadata.user_id")
    g = guard(b)
    g.admit(attempt([b], params=PARAMS))
    with pytest.raises(BudgetExceeded) as info:
        g.admit(attempt([b], params=PARAMS, metadata={"other": 1}))
    assert info.value.scope == "<none>"
    g.admit(attempt([b], params=PARAMS, metadata={"user_id": "u1"}))


def test_downgrade_asks_to_reroute_once_then_blocks() -> None:
    b = budget(limit="0.0005", on_exceed=OnExceed(action="downgrade", target="cheap"))
    g = guard(b)
    first = g.admit(attempt([b], params=PARAMS, request_id="call-1"))
    assert first.downgrade_to == "cheap"
    assert first.handle is None
    with pytest.raises(BudgetExceeded, match="already downgraded"):
        g.admit(attempt([b], params=PARAMS, request_id="call-1"))
    assert g.admit(attempt([b], params=PARAMS, request_id="call-2")).downgrade_to == "cheap"


def test_clamp_lowers_max_tokens_to_what_the_tightest_budget_allows() -> None:
    clamp = OnExceed(action="clamp_max_tokens", min_tokens=50)
    tight = budget("tight", limit="0.0006", on_exceed=clamp)
    loose = budget("loose", limit="1")
    g = guard(tight, loose)
    admission = g.admit(attempt([tight, loose], params=PARAMS))
    # $0.0006 - 100 input tokens x $1/M = room for 499 output tokens (one nano-dollar slack).
    assert admission.params["max_tokens"] == 499
    assert admission.estimate == D("0.000599")
    with pytest.raises(BudgetExceeded, match="clamped"):
        g.admit(attempt([tight, loose], params=PARAMS))


def test_clamp_respects_max_completion_tokens() -> None:
    b = budget(limit="0.0003", on_exceed=OnExceed(action="clamp_max_tokens"))
    admission = guard(b).admit(attempt([b], params={"max_completion_tokens": 900}))
    assert admission.params == {"max_completion_tokens": 199}


def test_call_windows_check_each_call_alone() -> None:
    b = budget(limit="0.001", window=WindowSpec(kind="call"), warn_at=[0.5])
    g = guard(b)
    for _ in range(3):
        (charge,) = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.0006"))
        assert (charge.window, charge.spent_after, charge.thresholds_crossed) == (
            "call",
            D("0.0006"),
            (0.5,),
        )
    with pytest.raises(BudgetExceeded):
        g.admit(attempt([b], params={"max_tokens": 901}))
    assert g.store.scan("", now=NOW) == []  # type: ignore[attr-defined]


def test_settle_reports_thresholds_and_is_idempotent() -> None:
    b = budget(limit="0.004", warn_at=[0.5, 0.75])
    g = guard(b)
    reports = []
    for _ in range(3):
        reports.append(g.settle(g.admit(attempt([b], params=PARAMS)), D("0.001")))
    assert [r[0].thresholds_crossed for r in reports] == [(), (0.5,), (0.75,)]
    assert reports[-1][0].spent_after == D("0.003")
    last = g.admit(attempt([b], params=PARAMS))
    assert g.settle(last, D("0.0001"))
    assert g.settle(last, D("0.0001")) == ()


def test_default_max_tokens_bounds_the_estimate() -> None:
    b = budget(limit="1")
    admission = guard(b, max_tokens=400).admit(attempt([b], params={}))
    assert admission.estimate == D("0.0005")


@pytest.mark.asyncio
async def test_async_admit_and_settle() -> None:
    clamp = OnExceed(action="clamp_max_tokens", min_tokens=10)
    b = budget(limit="0.0015", warn_at=[0.5], on_exceed=clamp)
    g = guard(b)
    first = await g.aadmit(attempt([b], params=PARAMS))
    (charge,) = await g.asettle(first, D("0.001"))
    assert charge.thresholds_crossed == (0.5,)
    clamped = await g.aadmit(attempt([b], params=PARAMS))
    assert clamped.params["max_tokens"] == 399


def test_a_reservation_outlives_its_requests_timeout_not_just_the_store_lease() -> None:
    # Store lease 300 s (the default); a request allowed to run 600 s must keep its reservation
    # until it ends, else another process would reclaim it and charge its worst case.
    b = budget(limit="1")
    store = MemoryStore()
    g = BudgetGuard(policy([b]), store, clock=lambda: NOW, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    long_call = g.admit(attempt([b], params={**PARAMS, "timeout": 600.0}))
    short_call = g.admit(attempt([b], params=PARAMS))
    stream = g.admit(attempt([b], params={**PARAMS, "timeout": 600.0, "stream": True}))
    assert long_call.lease_seconds is not None
    assert long_call.lease_seconds > 600
    assert short_call.lease_seconds == 300
    assert stream.lease_seconds == 300  # streams renew their lease while chunks flow

    assert store.reclaim_expired(NOW + 301) == 2  # the call without a timeout, and the stream
    assert store.reclaim_expired(NOW + 601) == 0  # still covered: timeout + settle margin
    assert store.reclaim_expired(NOW + long_call.lease_seconds + 1) == 1


def test_a_timeout_given_as_an_httpx_timeout_sets_the_lease_by_its_longest_limit() -> None:
    b = budget(limit="1")
    g = BudgetGuard(policy([b]), MemoryStore(), clock=lambda: NOW, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    long_call = g.admit(attempt([b], params={**PARAMS, "timeout": httpx.Timeout(900.0, connect=5)}))
    unbounded = g.admit(attempt([b], params={**PARAMS, "timeout": httpx.Timeout(5.0, read=None)}))
    assert long_call.lease_seconds is not None
    assert long_call.lease_seconds > 900
    assert unbounded.lease_seconds == 300  # no bound on the answer: the store's lease
