"""Exact costs: receipts say what litellm.completion_cost says, streamed or not."""

from __future__ import annotations

from decimal import Decimal

import litellm
import pytest

from policyroute.costs.actual import (
    CostResult,
    actual_cost,
    cost_from_usage,
    to_decimal,
    usage_from_response,
)
from policyroute.execution.hooks import Usage
from policyroute.policy.model import PriceSpec

from .helpers import PROVIDER_CASES, candidate, fixture_json, litellm_response

EXPECTED_USAGE = {
    # OpenAI: prompt includes cached reads; completion includes reasoning.
    "openai/o4-mini": Usage(
        input_tokens=2006, output_tokens=300, cache_read_tokens=1920, reasoning_tokens=192
    ),
    # Anthropic: input_tokens 12 + cache write 1500 + cache read 3000 (litellm adds them).
    "anthropic/claude-sonnet-4-5-20250929": Usage(
        input_tokens=4512, output_tokens=250, cache_read_tokens=3000, cache_write_tokens=1500
    ),
    # Gemini: thoughts (360) are added to candidates (40).
    "gemini/gemini-2.5-flash": Usage(
        input_tokens=4200, output_tokens=400, cache_read_tokens=4096, reasoning_tokens=360
    ),
}
MODELS = sorted(PROVIDER_CASES)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_usage_from_litellm_response_for_each_provider(model: str, stream: bool) -> None:
    response = litellm_response(model, stream=stream)
    assert usage_from_response(response) == EXPECTED_USAGE[model]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_actual_cost_is_litellm_completion_cost(model: str, stream: bool) -> None:
    response = litellm_response(model, stream=stream)
    result = actual_cost(response, candidate(model))
    expected = litellm.completion_cost(completion_response=response, model=model)
    assert result.source == "litellm"
    assert abs(result.cost - Decimal(repr(expected))) < Decimal("1e-6")
    assert result.cost == to_decimal(expected)
    assert result.cost > 0


@pytest.mark.parametrize("model", MODELS)
def test_streamed_answer_costs_the_same_as_unstreamed(model: str) -> None:
    cand = candidate(model)
    unary = actual_cost(litellm_response(model, stream=False), cand)
    streamed = actual_cost(litellm_response(model, stream=True), cand)
    assert streamed == unary


@pytest.mark.parametrize("model", MODELS)
def test_cost_from_usage_agrees_with_the_full_response(model: str) -> None:
    response = litellm_response(model, stream=False)
    cand = candidate(model)
    assert cost_from_usage(usage_from_response(response), cand) == actual_cost(response, cand)


def test_cache_and_reasoning_change_the_price() -> None:
    # The same token totals without the cache breakdown must cost more on Anthropic
    # (cache reads are 10x cheaper) — proof the breakdown reaches litellm's pricing.
    cand = candidate("anthropic/claude-sonnet-4-5-20250929")
    cached = cost_from_usage(EXPECTED_USAGE["anthropic/claude-sonnet-4-5-20250929"], cand)
    flat = cost_from_usage(Usage(input_tokens=4512, output_tokens=250), cand)
    assert cached.cost != flat.cost
    # 12*3e-6 + 1500*3.75e-6 + 3000*3e-7 + 250*1.5e-5
    assert cached.cost == Decimal("0.010311")


def test_raw_provider_dicts_are_normalised() -> None:
    anthropic = fixture_json("anthropic_sonnet_cache")
    assert usage_from_response(anthropic) == EXPECTED_USAGE["anthropic/claude-sonnet-4-5-20250929"]
    gemini = fixture_json("gemini_flash_thinking_cached")
    assert usage_from_response(gemini) == EXPECTED_USAGE["gemini/gemini-2.5-flash"]
    openai = fixture_json("openai_o4mini_cached_reasoning")
    assert usage_from_response(openai) == EXPECTED_USAGE["openai/o4-mini"]


def test_a_dump_of_a_model_response_reads_like_the_response() -> None:
    response = litellm_response("anthropic/claude-sonnet-4-5-20250929", stream=False)
    assert usage_from_response(response.model_dump()) == usage_from_response(response)


def test_missing_usage_is_zero() -> None:
    assert usage_from_response(None) == Usage()
    assert usage_from_response({"choices": []}) == Usage()
    assert usage_from_response({"usage": {"prompt_tokens": None}}) == Usage()


POLICY_PRICE = PriceSpec(
    input_per_mtok=Decimal("2"),
    output_per_mtok=Decimal("8"),
    cache_read_per_mtok=Decimal("0.5"),
    cache_write_per_mtok=Decimal("2.5"),
    reasoning_per_mtok=Decimal("10"),
)


def test_policy_prices_each_token_kind_at_its_rate() -> None:
    cand = candidate("custom/my-model", price=POLICY_PRICE)
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=500_000,
        cache_read_tokens=200_000,
        cache_write_tokens=100_000,
        reasoning_tokens=100_000,
    )
    # input 700k*2 + read 200k*0.5 + write 100k*2.5 = 1.4 + 0.1 + 0.25
    # output 400k*8 + reasoning 100k*10 = 3.2 + 1.0
    assert cost_from_usage(usage, cand) == CostResult(Decimal("5.95"), "policy")
    response = {"usage": {"prompt_tokens": 1000, "completion_tokens": 10}}
    assert actual_cost(response, cand) == CostResult(Decimal("0.002080"), "policy")


def test_policy_without_cache_rates_prices_them_as_input_and_output() -> None:
    price = PriceSpec(input_per_mtok=Decimal("2"), output_per_mtok=Decimal("8"))
    cand = candidate("custom/my-model", price=price)
    usage = Usage(1_000_000, 500_000, cache_read_tokens=200_000, reasoning_tokens=100_000)
    assert cost_from_usage(usage, cand).cost == Decimal("6")


def test_unpriceable_model_costs_nothing_with_source_none() -> None:
    cand = candidate("custom/unknown-model-xyz")
    assert cand.info.price_source == "none"
    response = {"usage": {"prompt_tokens": 1000, "completion_tokens": 10}}
    assert actual_cost(response, cand) == CostResult(Decimal(0), "none")
    assert cost_from_usage(Usage(10, 10), cand) == CostResult(Decimal(0), "none")


def test_to_decimal_takes_the_shortest_float_repr() -> None:
    assert to_decimal(0.0019426) == Decimal("0.001942600")
    assert to_decimal(1e-10) == Decimal("0E-9")


@pytest.mark.parametrize("model", MODELS)
def test_litellm_attaches_the_figure_completion_cost_gives(model: str) -> None:
    # actual_cost reads the figure litellm attached when it returned the answer; it must be
    # the one completion_cost computes for the same response and model.
    response = litellm_response(model, stream=False)
    attached = response._hidden_params["response_cost"]
    assert attached == litellm.completion_cost(completion_response=response, model=model)


def test_actual_cost_reads_the_figure_litellm_attached() -> None:
    model = "openai/o4-mini"
    response = litellm_response(model, stream=False)
    response._hidden_params["response_cost"] = 0.125
    cand = candidate(model)
    assert actual_cost(response, cand, use_attached=True) == CostResult(Decimal("0.125"), "litellm")
    # Without use_attached the response is priced again.
    assert actual_cost(response, cand).cost == to_decimal(
        litellm.completion_cost(completion_response=response, model=model)
    )


@pytest.mark.parametrize("attached", [None, float("nan"), -1.0, True, "0.5"])
def test_an_unusable_attached_figure_is_priced_again(attached: object) -> None:
    model = "openai/o4-mini"
    response = litellm_response(model, stream=False)
    expected = litellm.completion_cost(completion_response=response, model=model)
    response._hidden_params["response_cost"] = attached
    assert actual_cost(response, candidate(model), use_attached=True).cost == to_decimal(expected)
