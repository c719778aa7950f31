"""Amounts read back from a store are written in plain notation: $20 spent reads ``20``, not
``2E+1``, in ``budget status`` (table, JSON, CSV), in ``BudgetExceeded`` and in line states."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute.budgets import BudgetGuard, budget_status, format_status
from policyroute.budgets.stores.base import BudgetStore, from_nano, to_nano
from policyroute.errors import BudgetExceeded

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
