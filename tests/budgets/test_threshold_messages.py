"""What a crossed ``warn_at`` threshold says: the fraction the policy wrote, as a percentage,
and the amounts in plain notation."""

from __future__ import annotations

import decimal
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from budgets.helpers import write_store_policy
from policyroute.accounting import BudgetThresholdWarning, PolicyAccounting, ThresholdEvent
from policyroute.policy.loader import load_policy
from policyroute.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]


def _event(threshold: float, limit: str = "2", spent: str = "1.99") -> ThresholdEvent:
    return ThresholdEvent(
        budget="daily",
        scope="u1",
        window="day",
        threshold=threshold,
        limit=Decimal(limit),
        spent=Decimal(spent),
        remaining=Decimal(limit) - Decimal(spent),
        request_id="r",
        route="default",
        deployment="a",
    )


@pytest.mark.parametrize(
    ("threshold", "shown"),
    [(0.75, "75%"), (0.995, "99.5%"), (0.005, "0.5%"), (0.333, "33.3%"), (1.0, "100%")],
)
def test_a_threshold_reads_as_the_percentage_the_policy_wrote(threshold: float, shown: str) -> None:
    # Rounded to whole percents, 0.995 read "crossed 100%" before the budget was spent, and
    # 0.005 "crossed 0%".
    assert f" crossed {shown} of $2:" in _event(threshold).describe()


def test_a_tiny_limit_reads_in_plain_notation() -> None:
    text = _event(0.5, limit="0.0000005", spent="0.0000003").describe()
    assert "of $0.0000005: spent $0.0000003, remaining $0.0000002" in text


def test_the_warning_of_a_call_names_the_threshold_it_crossed(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    # The fake provider's answer costs $0.013 of the $1 limit: past 0.5%, short of 1.5%.
    policy = write_store_policy(
        tmp_path / "policy.yaml", fake_provider.openai_base, "{backend: memory}"
    )
    text = policy.read_text(encoding="utf-8")
    policy.write_text(
        text.replace("    window: day\n", "    window: day\n    warn_at: [0.005, 0.015]\n"),
        encoding="utf-8",
    )
    with pytest.warns(BudgetThresholdWarning) as caught:
        policyroute.completion(policy=str(policy), messages=MESSAGES)
    (warning,) = [w for w in caught if issubclass(w.category, BudgetThresholdWarning)]
    assert "crossed 0.5% of $1: spent $0.013" in str(warning.message)


def test_the_remaining_amount_is_exact_under_a_low_precision_context(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    # $1.23456789 less the $0.013 the answer costs is $1.22156789; computed in the six digits
    # the application's context keeps, it read $1.22157.
    policy = write_store_policy(
        tmp_path / "policy.yaml", fake_provider.openai_base, "{backend: memory}"
    )
    text = policy.read_text(encoding="utf-8").replace("limit_usd: 1\n", "limit_usd: 1.23456789\n")
    policy.write_text(
        text.replace("    window: day\n", "    window: day\n    warn_at: [0.01]\n"),
        encoding="utf-8",
    )
    events: list[ThresholdEvent] = []
    accounting = PolicyAccounting.from_policy(load_policy(policy), on_threshold=events.append)
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        with pytest.warns(BudgetThresholdWarning):
            policyroute.completion(policy=str(policy), messages=MESSAGES, accounting=accounting)
    assert [e.remaining for e in events] == [Decimal("1.22156789")]
