"""An application's own decimal context (a low ``getcontext().prec``, set once for its money
arithmetic) does not loosen budgets: charges still round up to whole nano-dollars, limits down,
and amounts read back from the store are exact, on every store."""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from budgets.helpers import (
    attempt,
    budget,
    candidate,
    fixed_counter,
    make_store,
    policy,
    write_store_policy,
)
from policyroute.budgets import BudgetGuard, budget_status
from policyroute.budgets.stores.base import (
    BudgetStore,
    crossed_thresholds,
    from_nano,
    to_nano,
)
from policyroute.costs.actual import cost_from_usage
from policyroute.errors import BudgetExceeded
from policyroute.execution.hooks import Usage
from policyroute.policy.loader import load_policy
from policyroute.policy.model import OnExceed, WindowSpec
from policyroute.testing import FakeProvider

D = Decimal
NOW = 1_750_000_000.0  # 2025-06-15 UTC


@pytest.fixture
def low_precision() -> Iterator[None]:
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        yield


@pytest.mark.usefixtures("low_precision")
def test_nano_conversions_are_exact_whatever_the_context() -> None:
    assert to_nano(D("0.001234564")) == 1_234_564
    assert to_nano(D("0.0012345641")) == 1_234_565
    assert to_nano(D("12.3456789"), up=False) == 12_345_678_900
    assert from_nano(12_345_678_912) == D("12.345678912")
    assert str(from_nano(12_345_678_912)) == "12.345678912"


@pytest.mark.usefixtures("low_precision")
def test_a_threshold_is_not_reached_early_whatever_the_context() -> None:
    # 0.5 of 12.345678901 USD is 6.1728394505: one nano-dollar less has not reached it.
    limit = 12_345_678_901
    assert crossed_thresholds([0.5], [], 6_172_839_450, limit, 6_172_839_450) == ((), ())
    assert crossed_thresholds([0.5], [], 6_172_839_451, limit, 1) == ((0.5,), (6_172_839_451,))


def test_a_budget_is_not_overspent_under_a_low_precision_context(
    store: BudgetStore, low_precision: None
) -> None:
    # Rounded to six digits, the limit 1.00000501 read 1.00001 and the spend 1.000005 read 1:
    # a call of $0.000005 (5 output tokens at $1 per million) then fitted, $0.00000499 over.
    daily = budget("daily", limit="1.00000501")
    guard = BudgetGuard(policy([daily]), store, clock=lambda: NOW, token_counter=fixed_counter(0))
    guard.settle(guard.admit(attempt([daily], params={"max_tokens": 900})), D("1.000005"))

    with pytest.raises(BudgetExceeded):
        guard.admit(attempt([daily], params={"max_tokens": 5}))


def test_a_threshold_fires_on_time_under_a_low_precision_context(
    store: BudgetStore, low_precision: None
) -> None:
    # 0.5 of 12.345678901 USD is reached at 6.172839451 USD (rounded up to whole nano-dollars);
    # with the product rounded to six digits the threshold waited for 6.17284 USD.
    daily = budget("daily", limit="12.345678901", warn_at=[0.5])
    guard = BudgetGuard(policy([daily]), store, clock=lambda: NOW, token_counter=fixed_counter(0))

    (charge,) = guard.settle(
        guard.admit(attempt([daily], params={"max_tokens": 900})), D("6.172839451")
    )

    assert charge.thresholds_crossed == (0.5,)


@pytest.mark.usefixtures("low_precision")
def test_a_per_call_threshold_fires_on_time_under_a_low_precision_context() -> None:
    # 0.5 of 12.345678901 USD is 6.1728394505; rounded to six digits it read 6.17284, which a
    # call of 6.172839451 USD had not reached.
    per_call = budget("each", limit="12.345678901", window=WindowSpec(kind="call"), warn_at=[0.5])
    guard = BudgetGuard(
        policy([per_call]),
        make_store("memory", None, "t"),
        clock=lambda: NOW,
        token_counter=fixed_counter(0),
    )

    (charge,) = guard.settle(
        guard.admit(attempt([per_call], params={"max_tokens": 900})), D("6.172839451")
    )

    assert charge.thresholds_crossed == (0.5,)


def test_a_clamp_fits_the_budget_under_a_low_precision_context(
    store: BudgetStore, low_precision: None
) -> None:
    # $1.23456789 pays for 1,234,567 output tokens at $1 per million. Rounded to six digits,
    # the room read $1.23457, 1,234,570 tokens, whose cost the store refused three times over:
    # the call was refused instead of clamped.
    clamps = budget("clamps", limit="1.23456789", on_exceed=OnExceed("clamp_max_tokens"))
    guard = BudgetGuard(policy([clamps]), store, clock=lambda: NOW, token_counter=fixed_counter(0))

    admission = guard.admit(attempt([clamps], params={"max_tokens": 2_000_000}))

    assert admission.params["max_tokens"] == 1_234_567
    assert admission.estimate == D("1.234567")


def test_a_clamp_beside_a_blocking_budget_it_fits_is_not_refused_under_a_low_precision_context(
    store: BudgetStore, low_precision: None
) -> None:
    # The clamp budget refuses $2 of worst case, which the blocking one takes: $0.000006 spent
    # plus $2 is $2.000006, under its $2.000008. Rounded to six digits the sum read $2.00001,
    # over, and the blocking budget refused the call instead of letting the clamp fit it.
    clamps = budget("clamps", limit="1.23456789", on_exceed=OnExceed("clamp_max_tokens"))
    blocks = budget("blocks", limit="2.000008")
    pol = policy([clamps, blocks])
    guard = BudgetGuard(pol, store, clock=lambda: NOW, token_counter=fixed_counter(0))
    guard.settle(guard.admit(attempt([blocks], params={"max_tokens": 6})), D("0.000006"))

    admission = guard.admit(attempt([clamps, blocks], params={"max_tokens": 2_000_000}))

    assert admission.params["max_tokens"] == 1_234_567


def test_status_shows_the_exact_remaining_under_a_low_precision_context(
    store: BudgetStore, low_precision: None
) -> None:
    daily = budget("daily", limit="1.23456789")
    pol = policy([daily])
    guard = BudgetGuard(pol, store, clock=lambda: NOW, token_counter=fixed_counter(0))
    guard.settle(guard.admit(attempt([daily], params={"max_tokens": 1})), D("0.000001"))

    (row,) = budget_status(pol, store, now=NOW)

    assert row.remaining == D("1.23456689")  # not 1.23457, the six digits the context keeps


def test_an_answer_priced_by_the_policy_is_charged_under_a_low_precision_context(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    # Pricing rounded the cost to the context's six digits with quantize, which raises there:
    # the answer was charged $0, and a budget under such a context was never spent.
    path = write_store_policy(
        tmp_path / "policy.yaml", fake_provider.openai_base, "{backend: sqlite, path: b.sqlite3}"
    )
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        policyroute.completion(policy=str(path), messages=[{"role": "user", "content": "hi"}])

    (row,) = budget_status(load_policy(path))
    assert row.spent == D("0.013")  # 7 input tokens at $0.001, 3 output tokens at $0.002
    # The receipts are whole: writing the $1 limit to six places raised in that context too.
    lines = (tmp_path / "receipts.jsonl").read_text(encoding="utf-8").splitlines()
    receipts = [json.loads(line) for line in lines]
    assert [r.get("receipt_error") for r in receipts] == [None, None]
    assert receipts[0]["budgets"][0]["limit"] == "1.000000"


def test_a_worst_case_is_not_rounded_down_under_a_low_precision_context(
    store: BudgetStore, low_precision: None
) -> None:
    # 1,234,564 output tokens at $1 per million may cost $1.234564. Rounded to six digits the
    # worst case read $1.23456, which a $1.23456 budget took: an overspend of $0.000004.
    daily = budget("daily", limit="1.23456")
    guard = BudgetGuard(policy([daily]), store, clock=lambda: NOW, token_counter=fixed_counter(0))

    with pytest.raises(BudgetExceeded) as info:
        guard.admit(attempt([daily], params={"max_tokens": 1_234_564}))

    assert info.value.estimate == D("1.234564")


@pytest.mark.usefixtures("low_precision")
def test_usage_priced_by_the_policy_is_exact_under_a_low_precision_context() -> None:
    # 1,234,564 input and 7 output tokens at $1 per million cost $1.234571; the sum rounded to
    # six digits before quantising to nano-dollars read $1.23457.
    cost = cost_from_usage(Usage(input_tokens=1_234_564, output_tokens=7), candidate())

    assert cost.cost == D("1.234571")


@pytest.mark.usefixtures("low_precision")
def test_a_refusal_gives_the_exact_remaining_under_a_low_precision_context() -> None:
    refusal = BudgetExceeded(
        budget="daily",
        scope="*",
        limit=D("1.23456789"),
        spent=D("0.000001"),
        reserved=D(0),
        estimate=D(2),
    )

    assert refusal.remaining == D("1.23456689")  # not 1.23457
