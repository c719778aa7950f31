"""Amounts read back from a store are written in plain notation: $20 spent reads ``20``, not
``2E+1``, in ``budget status`` (table, JSON, CSV), in ``BudgetExceeded`` and in line states."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from budgets.helpers import attempt, budget, candidate, fixed_counter, policy
from policyroute.budgets import BudgetGuard, budget_status, format_status
from policyroute.budgets.stores.base import BudgetStore, from_nano, to_nano
from policyroute.errors import BudgetExceeded
from policyroute.policy.model import PriceSpec

D = Decimal
NOW = 1_750_000_000.0  # 2025-06-15 UTC
# $1 per million tokens both ways: 100 input + 900 output tokens are a worst case of $0.001.
PARAMS = {"max_tokens": 900}


@pytest.mark.parametrize("usd", ["10", "20", "100", "1200", "4000000000", "0.5", "12.5"])
def test_from_nano_writes_whole_tens_without_an_exponent(usd: str) -> None:
    amount = from_nano(to_nano(D(usd)))

    assert amount == D(usd)
    assert str(amount) == usd


def test_status_and_refusal_show_spend_of_whole_tens_plainly(store: BudgetStore) -> None:
    daily = budget("daily", limit="20")
    pol = policy([daily])
    guard = BudgetGuard(pol, store, clock=lambda: NOW, token_counter=fixed_counter(100))
    guard.settle(guard.admit(attempt([daily], params=PARAMS)), D("20"))

    (row,) = budget_status(pol, store, now=NOW)
    assert json.loads(format_status([row], "json"))[0]["spent"] == "20"
    assert "2E+1" not in format_status([row], "table") + format_status([row], "csv")
    with pytest.raises(BudgetExceeded) as refused:
        guard.admit(attempt([daily], params=PARAMS))
    assert "spent $20," in str(refused.value)


def test_status_and_refusal_show_amounts_below_a_millionth_plainly(store: BudgetStore) -> None:
    # Decimal writes an amount under 10^-6 with an exponent: a tenth of a micro-dollar spent
    # read ``1E-7`` in status and in the refusal, and a limit of $0.0000005 ``5E-7``.
    tiny = budget("tiny", limit="0.0000005")
    pol = policy([tiny])
    guard = BudgetGuard(pol, store, clock=lambda: NOW, token_counter=fixed_counter(0))
    thousandth = PriceSpec(input_per_mtok=D("0.001"), output_per_mtok=D("0.001"))
    cheap = candidate(price=thousandth)  # 100 output tokens: $0.0000001
    guard.settle(
        guard.admit(attempt([tiny], cand=cheap, params={"max_tokens": 100})), D("0.0000001")
    )

    (row,) = budget_status(pol, store, now=NOW)
    (entry,) = json.loads(format_status([row], "json"))
    assert (entry["limit"], entry["spent"], entry["remaining"]) == (
        "0.0000005",
        "0.0000001",
        "0.0000004",
    )
    for text in (format_status([row], "table"), format_status([row], "csv")):
        assert "E-" not in text
        assert "0.0000001" in text
    with pytest.raises(BudgetExceeded) as refused:
        guard.admit(attempt([tiny], cand=cheap, params={"max_tokens": 1000}))
    assert "limit $0.0000005, spent $0.0000001, reserved $0," in str(refused.value)
    assert "E-" not in str(refused.value)
