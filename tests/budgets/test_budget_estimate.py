"""Worst-case estimates, checked against prices computed by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from budgets.helpers import candidate, fixed_counter
from policyroute.costs.estimate import worst_case
from policyroute.policy.model import PriceSpec
from policyroute.request import Request

D = Decimal
HELLO = [{"role": "user", "content": "hello world"}]


def mini() -> Any:
    return candidate("mini", "openai/gpt-4o-mini", price=None)


def test_gpt_4o_mini_with_litellm_tokens_and_prices() -> None:
    # litellm counts 9 tokens for this prompt; gpt-4o-mini is $0.15 / $0.60 per million.
    est = worst_case(Request(messages=HELLO), mini(), {"max_tokens": 100}, default_max_tokens=None)
    assert (est.input_tokens, est.output_tokens, est.priced) == (9, 100, True)
    assert est.cost == D("0.00000135") + D("0.00006")


def test_n_multiplies_the_bound() -> None:
    est = worst_case(
        Request(messages=HELLO), mini(), {"max_tokens": 100, "n": 3}, default_max_tokens=None
    )
    assert est.cost == 3 * (D("0.00000135") + D("0.00006"))


def test_output_bound_falls_back_to_the_policy_default_then_the_model_limit() -> None:
    req = Request(messages=HELLO)
    assert worst_case(req, mini(), {}, default_max_tokens=4096).output_tokens == 4096
    assert worst_case(req, mini(), {}, default_max_tokens=None).output_tokens == 16384
    completion = worst_case(req, mini(), {"max_completion_tokens": 7}, default_max_tokens=4096)
    assert completion.output_tokens == 7


def test_tools_count_as_input() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    plain = worst_case(Request(messages=HELLO), mini(), {"max_tokens": 1}, default_max_tokens=None)
    with_tools = worst_case(
        Request(messages=HELLO, tools=tools), mini(), {"max_tokens": 1}, default_max_tokens=None
    )
    assert with_tools.input_tokens > plain.input_tokens


PRICE = PriceSpec(
    input_per_mtok=D(2), output_per_mtok=D(8), cache_write_per_mtok=D(3), reasoning_per_mtok=D(10)
)


def test_policy_price_uses_the_higher_of_output_and_reasoning_rates() -> None:
    cand = candidate("p", "custom/p", price=PRICE)
    est = worst_case(
        Request(messages=HELLO),
        cand,
        {"max_tokens": 1000},
        default_max_tokens=None,
        token_counter=fixed_counter(500),
    )
    # 500 x $2/M + 1000 x $10/M
    assert est.cost == D("0.001") + D("0.01")


def test_cache_writes_price_input_at_the_cache_write_rate() -> None:
    cand = candidate("p", "custom/p", price=PRICE)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}
            ],
        }
    ]
    est = worst_case(
        Request(messages=messages),
        cand,
        {"max_tokens": 0},
        default_max_tokens=None,
        token_counter=fixed_counter(1_000_000),
    )
    assert est.cost == D(3)


def test_unknown_models_are_counted_with_the_gpt_4o_tokenizer() -> None:
    seen: list[str] = []

    def counter(**kw: Any) -> int:
        seen.append(kw["model"])
        return 1

    worst_case(
        Request(messages=HELLO),
        candidate("x", "custom/x"),
        {"max_tokens": 1},
        default_max_tokens=None,
        token_counter=counter,
    )
    assert seen == ["gpt-4o"]


def test_unpriced_models_are_flagged() -> None:
    est = worst_case(
        Request(messages=HELLO),
        candidate("x", "custom/x", price=None),
        {"max_tokens": 1},
        default_max_tokens=None,
        token_counter=fixed_counter(1),
    )
    assert not est.priced
    assert est.problem is not None
    assert "no known price" in est.problem


def test_unbounded_output_is_flagged() -> None:
    est = worst_case(
        Request(messages=HELLO),
        candidate("x", "custom/x"),
        {},
        default_max_tokens=None,
        token_counter=fixed_counter(1),
    )
    assert not est.priced
    assert est.problem is not None
    assert "unbounded" in est.problem


def _cached(ttl: str | None) -> list[dict[str, Any]]:
    mark: dict[str, Any] = {"type": "ephemeral"}
    if ttl is not None:
        mark["ttl"] = ttl
    return [
        {"role": "system", "content": [{"type": "text", "text": "rules", "cache_control": mark}]},
        {"role": "user", "content": "hi"},
    ]


def test_hour_long_cache_writes_are_priced_at_the_hour_rate() -> None:
    sonnet = candidate("sonnet", "anthropic/claude-sonnet-4-5-20250929", price=None)

    def rate(messages: list[dict[str, Any]]) -> Decimal:
        return worst_case(
            Request(messages=messages), sonnet, {"max_tokens": 0}, default_max_tokens=None
        ).input_rate

    # Sonnet 4.5: $3/M input, $3.75/M five-minute writes, $6/M hour-long writes.
    assert rate(HELLO) == D("0.000003")
    assert rate(_cached(None)) == D("0.00000375")
    assert rate(_cached("5m")) == D("0.00000375")
    assert rate(_cached("1h")) == D("0.000006")


def test_hour_long_writes_without_a_known_hour_rate_cost_1_6_times_the_five_minute_rate() -> None:
    cand = candidate("p", "custom/p", price=PRICE)
    est = worst_case(
        Request(messages=_cached("1h")),
        cand,
        {"max_tokens": 0},
        default_max_tokens=None,
        token_counter=fixed_counter(1_000_000),
    )
    assert est.cost == D("4.8")


def test_a_tool_marked_for_an_hour_counts() -> None:
    sonnet = candidate("sonnet", "anthropic/claude-sonnet-4-5-20250929", price=None)
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    est = worst_case(
        Request(messages=HELLO, tools=[tool]), sonnet, {"max_tokens": 0}, default_max_tokens=None
    )
    assert est.input_rate == D("0.000006")


def test_cache_writes_without_a_write_price_cost_anthropic_multiples_of_input() -> None:
    cand = candidate("p", "custom/p", price=PriceSpec(input_per_mtok=D(2), output_per_mtok=D(8)))

    def cost(messages: list[dict[str, Any]]) -> Decimal:
        return worst_case(
            Request(messages=messages),
            cand,
            {"max_tokens": 0},
            default_max_tokens=None,
            token_counter=fixed_counter(1_000_000),
        ).cost

    assert cost(HELLO) == D(2)
    assert cost(_cached("5m")) == D("2.5")
    assert cost(_cached("1h")) == D(4)


def test_a_cache_mark_on_a_tool_call_counts() -> None:
    sonnet = candidate("sonnet", "anthropic/claude-sonnet-4-5-20250929", price=None)
    call = {
        "id": "t1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    messages = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [call]}]
    est = worst_case(Request(messages=messages), sonnet, {"max_tokens": 0}, default_max_tokens=None)
    assert est.input_rate == D("0.000006")
