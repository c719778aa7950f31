"""The worst case counts what tools add to a prompt beyond litellm's count.

- Anthropic adds a system prompt of its own to every request that offers tools (a
  structured-output schema goes as a tool, or as a format, too): up to 530 tokens by its
  tool-use pricing, none of which litellm's counter sees.
- An assistant turn's tool calls go out with their names and ids; litellm counts only the
  arguments.
- A ``tool_choice`` naming a tool is sent; litellm counts it only when asked to.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from budgets.helpers import TOOLS, candidate
from policyroute._lazy import import_litellm
from policyroute.costs.estimate import ANTHROPIC_TOOL_PROMPT_TOKENS, count_input_tokens, worst_case
from policyroute.request import Request

D = Decimal
HELLO = [{"role": "user", "content": "hello world"}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


def _input(model: str, request: Request, **params: Any) -> int:
    cand = candidate("c", model)
    return worst_case(
        request, cand, {"max_tokens": 1, **params}, default_max_tokens=None
    ).input_tokens


def test_anthropic_deployments_offered_tools_are_charged_its_tool_system_prompt() -> None:
    with_tools = Request(messages=HELLO, tools=TOOLS)
    # Same tokenizer (gpt-4o's stands in for both unknown models): the difference is the
    # system prompt Anthropic adds.
    claude = _input("anthropic/claude-x", with_tools)
    gpt = _input("openai/gpt-x", with_tools)
    assert claude - gpt == ANTHROPIC_TOOL_PROMPT_TOKENS == 530
    # On Bedrock and Vertex AI too, and for a structured-output schema.
    assert _input("bedrock/anthropic.claude-x", with_tools) == claude
    schema = Request(messages=HELLO, response_format=SCHEMA)
    assert _input("anthropic/claude-x", schema) - _input("openai/gpt-x", schema) == 530
    # Without tools, nothing is added.
    plain = Request(messages=HELLO)
    assert _input("anthropic/claude-x", plain) == _input("openai/gpt-x", plain)


def test_a_sonnet_tool_call_budget_covers_the_tool_prompt() -> None:
    # Claude Sonnet 4.5 at $3/M input: litellm counts 46 tokens for this prompt; Anthropic
    # bills those and 346 for its tool prompt (auto), 392. The bound was 46 tokens, now 576.
    cand = candidate("sonnet", "anthropic/claude-sonnet-4-5-20250929", price=None)
    request = Request(messages=HELLO, tools=TOOLS)
    est = worst_case(request, cand, {"max_tokens": 1}, default_max_tokens=None)
    counted = import_litellm().token_counter(
        model="anthropic/claude-sonnet-4-5-20250929", messages=HELLO, tools=TOOLS
    )
    assert est.input_tokens >= counted + 346
    assert est.cost >= (counted + 346) * D("0.000003") + D("0.000015")


def test_tool_call_names_and_ids_are_counted() -> None:
    call = {
        "id": "toolu_01A09q90qw90lq917835lq9",
        "type": "function",
        "function": {"name": "get_current_weather_for_city", "arguments": "{}"},
    }
    turn = {"role": "assistant", "content": None, "tool_calls": [call]}
    counter = import_litellm().token_counter
    litellm_count = counter(model="gpt-4o", messages=[turn])
    names = counter(model="gpt-4o", text=call["function"]["name"])  # type: ignore[index]
    ids = counter(model="gpt-4o", text=call["id"])
    assert count_input_tokens("gpt-4o", [turn], None) == litellm_count + names + ids
    legacy = {"role": "assistant", "content": "", "function_call": call["function"]}
    assert (
        count_input_tokens("gpt-4o", [legacy], None)
        == counter(model="gpt-4o", messages=[legacy]) + names
    )


def test_a_named_tool_choice_is_counted() -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    auto = _input("openai/gpt-x", Request(messages=HELLO, tools=TOOLS, tool_choice="auto"))
    named = _input("openai/gpt-x", Request(messages=HELLO, tools=TOOLS, tool_choice=choice))
    counted = import_litellm().token_counter(
        model="gpt-4o", messages=HELLO, tools=TOOLS, tool_choice=choice
    )
    # litellm's own figure for the choice (7 tokens and the name) is covered.
    assert named >= counted
    assert named > auto
    # From the params as well, as the executor passes it.
    assert _input("openai/gpt-x", Request(messages=HELLO, tools=TOOLS), tool_choice=choice) == named
