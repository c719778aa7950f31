"""Token counts sent as digit strings (``"prompt_tokens": "12"``) count as the number they
spell, as litellm's ``Usage`` model reads them, with the bounds numbers have; other text
stays no count at all.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import litellm
import pytest

from policyroute.costs.actual import (
    MAX_TOKENS,
    actual_cost,
    cost_from_usage,
    usage_from_response,
)
from policyroute.execution.hooks import Usage
from policyroute.execution.usage import checked_usage, is_impossible, usage_of
from policyroute.policy.model import PriceSpec

from .helpers import candidate

TOLERANCE = Decimal("1e-6")
GPT = "openai/gpt-4o"
MESSAGES = [{"role": "user", "content": "hello there"}]


def _response(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


STRINGS = {
    "prompt_tokens": "2006",
    "completion_tokens": "900",
    "total_tokens": "2906",
    "prompt_tokens_details": {"cached_tokens": "1920"},
    "completion_tokens_details": {"reasoning_tokens": "576"},
}
NUMBERS = {
    "prompt_tokens": 2006,
    "completion_tokens": 900,
    "total_tokens": 2906,
    "prompt_tokens_details": {"cached_tokens": 1920},
    "completion_tokens_details": {"reasoning_tokens": 576},
}
EXPECTED = Usage(input_tokens=2006, output_tokens=900, cache_read_tokens=1920, reasoning_tokens=576)


def test_openai_usage_in_digit_strings_reads_as_the_numbers() -> None:
    assert usage_from_response(_response(STRINGS)) == EXPECTED
    assert usage_of(_response(STRINGS)) == EXPECTED


def test_raw_anthropic_and_gemini_usage_in_digit_strings() -> None:
    anthropic = {
        "input_tokens": "12",
        "output_tokens": "250",
        "cache_read_input_tokens": "3000",
        "cache_creation_input_tokens": "1500",
        "cache_creation": {"ephemeral_1h_input_tokens": "500"},
    }
    assert usage_from_response({"usage": anthropic}) == Usage(
        input_tokens=4512,
        output_tokens=250,
        cache_read_tokens=3000,
        cache_write_tokens=1500,
        cache_write_1h_tokens=500,
    )
    gemini = {
        "promptTokenCount": "4200",
        "candidatesTokenCount": "40",
        "thoughtsTokenCount": "360",
        "cachedContentTokenCount": "4096",
    }
    assert usage_from_response({"usageMetadata": gemini}) == Usage(
        input_tokens=4200, output_tokens=400, cache_read_tokens=4096, reasoning_tokens=360
    )


@pytest.mark.parametrize("text", [" 12 ", "+12", "0012", "12\n"])
def test_blanks_a_plus_sign_and_leading_zeros_are_read_as_litellm_reads_them(text: str) -> None:
    usage = {"prompt_tokens": text, "completion_tokens": 1}
    assert usage_from_response(_response(usage)).input_tokens == 12
    assert litellm.Usage(prompt_tokens=text).prompt_tokens == 12


@pytest.mark.parametrize(
    "text", ["", " ", "nan", "NaN", "inf", "1.5", "12abc", "0x10", "1e3", "²", "١٢", "--5", "+-5"]
)
def test_text_that_is_not_digits_is_no_count(text: str) -> None:
    usage = usage_from_response(_response({"prompt_tokens": text, "completion_tokens": 7}))
    assert usage == Usage(input_tokens=0, output_tokens=7)


def test_litellm_prices_digit_strings_as_numbers_and_the_receipt_agrees() -> None:
    strings, numbers = _response(STRINGS), _response(NUMBERS)
    expected = Decimal(repr(litellm.completion_cost(completion_response=numbers, model=GPT)))
    assert expected > 0
    assert litellm.completion_cost(completion_response=strings, model=GPT) == float(expected)
    result = actual_cost(strings, candidate(GPT))
    assert result.source == "litellm"
    assert abs(result.cost - expected) < TOLERANCE
    # The same usage priced without the response (a stream cut midway) says the same.
    usage = usage_from_response(strings)
    assert abs(cost_from_usage(usage, candidate(GPT)).cost - expected) < TOLERANCE


def test_a_policy_price_charges_tokens_sent_as_digit_strings() -> None:
    price = PriceSpec(input_per_mtok=Decimal("1000"), output_per_mtok=Decimal("2000"))
    cand = candidate("custom/my-model", price=price)
    response = _response({"prompt_tokens": "12", "completion_tokens": "5"})
    # 12 * 0.001 + 5 * 0.002
    assert actual_cost(response, cand).cost == Decimal("0.022")


@pytest.mark.parametrize(
    "text",
    ["-5", " -5", str(MAX_TOKENS + 1), "9" * 30, "9" * 5000],
    ids=["negative", "negative-blank", "past-max", "thirty-digits", "five-thousand-digits"],
)
def test_impossible_counts_in_text_are_impossible_like_numbers(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _response({"prompt_tokens": 100, "completion_tokens": text})
    seen = usage_of(raw)
    assert seen is not None
    assert is_impossible(seen)
    with caplog.at_level(logging.WARNING, logger="policyroute.costs"):
        assert usage_from_response(raw) == Usage(input_tokens=100, output_tokens=0)
    assert "impossible token count" in caplog.text


def test_an_impossible_count_in_text_is_counted_locally_like_a_number() -> None:
    as_text = _response({"prompt_tokens": "-5", "completion_tokens": "-1"})
    as_number = _response({"prompt_tokens": -5, "completion_tokens": -1})
    repaired = checked_usage(as_text, GPT, MESSAGES)
    assert repaired == checked_usage(as_number, GPT, MESSAGES)
    assert repaired is not None
    assert repaired.input_tokens > 0
    assert repaired.output_tokens > 0


def test_counts_at_the_bound_are_kept() -> None:
    raw = _response({"prompt_tokens": str(MAX_TOKENS), "completion_tokens": 0})
    usage = usage_from_response(raw)
    assert usage.input_tokens == MAX_TOKENS
