"""Anthropic's hour-long cache writes are read from usage and priced at their own rate, also
when only the usage is known (a stream cut midway, a billed failure)."""

from __future__ import annotations

from decimal import Decimal

import litellm
import pytest

from policyroute.costs.actual import cost_from_usage, usage_from_response
from policyroute.execution.hooks import Usage
from policyroute.policy.model import PriceSpec

from .helpers import candidate

SONNET = "anthropic/claude-sonnet-4-5-20250929"


def test_raw_anthropic_usage_tells_the_hour_long_writes() -> None:
    usage = usage_from_response(
        {
            "usage": {
                "input_tokens": 10,
                "output_tokens": 2,
                "cache_creation_input_tokens": 1_500,
                "cache_read_input_tokens": 0,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 500,
                    "ephemeral_1h_input_tokens": 1_000,
                },
            }
        }
    )
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (
        1_510,
        1_500,
        1_000,
    )


def test_litellm_usage_tells_the_hour_long_writes() -> None:
    reported = litellm.Usage(
        prompt_tokens=1_510,
        completion_tokens=2,
        total_tokens=1_512,
        prompt_tokens_details={
            "cached_tokens": 0,
            "cache_creation_tokens": 1_500,
            "cache_creation_token_details": {
                "ephemeral_5m_input_tokens": 500,
                "ephemeral_1h_input_tokens": 1_000,
            },
        },
        cache_creation_input_tokens=1_500,
        cache_read_input_tokens=0,
    )
    usage = usage_from_response({"usage": reported})
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (1_500, 1_000)
    assert usage_from_response({"usage": {"prompt_tokens": 3}}).cache_write_1h_tokens == 0


def test_usage_alone_prices_hour_long_writes_at_the_hour_rate() -> None:
    sonnet = candidate(SONNET)
    five = cost_from_usage(Usage(input_tokens=1_000, cache_write_tokens=1_000), sonnet)
    hour = cost_from_usage(
        Usage(input_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=1_000), sonnet
    )
    # Sonnet 4.5: $3.75 per million five-minute writes, $6 per million hour-long writes.
    assert five.cost == Decimal("0.00375")
    assert hour.cost == Decimal("0.006")
    mixed = cost_from_usage(
        Usage(input_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=400), sonnet
    )
    # 600 five-minute writes at $3.75/M and 400 hour-long ones at $6/M.
    assert mixed.cost == Decimal("0.00225") + Decimal("0.0024")


@pytest.mark.parametrize("hour", [0, 1_000])
def test_a_policy_price_has_one_write_rate_for_both_lifetimes(hour: int) -> None:
    priced = candidate(
        "custom/p",
        price=PriceSpec(
            input_per_mtok=Decimal(1), output_per_mtok=Decimal(2), cache_write_per_mtok=Decimal(5)
        ),
    )
    usage = Usage(input_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=hour)
    assert cost_from_usage(usage, priced).cost == Decimal("0.005")
