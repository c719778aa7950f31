"""The prices explain prints for a cheapest group, whatever amount the schema let through."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute import load_policy
from policyroute.routing.notes import format_price

_POLICY = """\
policyroute: 1
name: prices
models:
  dear: {{model: test/dear, price: {{input_per_mtok: {price}, output_per_mtok: 1}}}}
  cheap: {{model: test/cheap, price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}}}
groups:
  pool: {{strategy: cheapest, models: [dear, cheap]}}
routes:
  - {{name: default, to: pool}}
"""


@pytest.mark.parametrize(
    ("price", "shown"),
    [
        ("1000000000000000000000000000000", "$1000000000000000000000000000000.00"),
        ("1e300", "$1" + "0" * 300 + ".00"),
        ('"123456789012345678901234567.5"', "$123456789012345678901234567.50"),
    ],
)
def test_a_price_past_28_digits_is_printed_not_a_crash(price: str, shown: str) -> None:
    policy = load_policy(_POLICY.format(price=price))
    decision = policy.route({"messages": "hi"})
    assert decision.trace[-2] == (
        f"group 'pool' (cheapest): cheap $0.15/$0.60 per Mtok, dear {shown}/$1.00 per Mtok"
    )


@pytest.mark.parametrize(
    ("per_token", "shown"),
    [
        ("0.00000015", "$0.15"),
        ("0.000000075", "$0.075"),
        ("0", "$0.00"),
        ("1E-30", "$0.000000000000000000000001"),
    ],
)
def test_format_price_keeps_cents_and_every_digit_below_them(per_token: str, shown: str) -> None:
    assert format_price(Decimal(per_token)) == shown
