"""The worst case counts the thinking an assistant turn sends back.

In a tool-use loop with extended thinking, the assistant turn that made the tool call goes back
to Anthropic with its thinking blocks, and Anthropic bills them as input. litellm's token
counter skips a message's ``thinking_blocks`` (and cannot read a signature or redacted data),
so a budget was reserved for a fraction of the prompt: 64 tokens here against the 3,400 or so
Anthropic bills.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import policyroute
from budgets.helpers import TOOLS, candidate
from policyroute._lazy import import_litellm
from policyroute.costs.estimate import count_input_tokens, worst_case
from policyroute.errors import BudgetExceeded
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply, Usage

D = Decimal
SIGNATURE = base64.b64encode(b"\x01" * 300).decode()  # 400 characters, 300 bytes
THOUGHT = "word " * 3000
THOUGHT_TOKENS = 3012  # gpt-4o's tokenizer, which counts for these unknown models


def loop(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    """A tool-use loop whose assistant turn carries ``blocks``."""
    call = {
        "id": "toolu_01",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call], "thinking_blocks": [*blocks]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"},
    ]


def litellm_count(messages: list[dict[str, Any]]) -> int:
    return int(import_litellm().token_counter(model="gpt-4o", messages=messages))


def test_the_thinking_sent_back_is_counted_and_its_signature_bounded() -> None:
    plain = loop()
    thinking = loop({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
    # litellm sees no difference between the two prompts.
    assert litellm_count(thinking) == litellm_count(plain)
    extra = count_input_tokens("gpt-4o", thinking, None) - count_input_tokens("gpt-4o", plain, None)
    assert extra == THOUGHT_TOKENS + 300


def test_redacted_thinking_is_bounded_at_a_token_per_byte() -> None:
    data = base64.b64encode(b"\x02" * 3000).decode()
    plain = loop()
    redacted = loop({"type": "redacted_thinking", "data": data})
    assert litellm_count(redacted) == litellm_count(plain)
    extra = count_input_tokens("gpt-4o", redacted, None) - count_input_tokens("gpt-4o", plain, None)
    assert extra == 3000


def test_a_signature_on_a_thinking_content_block_is_bounded_too() -> None:
    part = {"type": "thinking", "thinking": "hm", "signature": SIGNATURE}
    turn = {"role": "assistant", "content": [part, {"type": "text", "text": "ok"}]}
    bare = {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}, part]}
    assert count_input_tokens("gpt-4o", [turn], None) == litellm_count([turn]) + 300
    assert count_input_tokens("gpt-4o", [bare], None) == litellm_count([bare]) + 300


def test_blocks_a_deployment_is_not_sent_are_not_charged_to_it() -> None:
    # Unmarked blocks go to Anthropic-format deployments only (policyroute._thinking).
    messages = loop({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
    request = Request(messages=messages)
    claude = candidate("claude", "anthropic/claude-x")
    gpt = candidate("gpt", "openai/gpt-x")
    to_claude = worst_case(request, claude, {"max_tokens": 1}, default_max_tokens=None)
    to_gpt = worst_case(request, gpt, {"max_tokens": 1}, default_max_tokens=None)
    assert to_claude.input_tokens - to_gpt.input_tokens == THOUGHT_TOKENS + 300


# --------------------------------------------------------------------------- through a call

POLICY = """
policyroute: 1
name: thinking-budget
models:
  claude:
    model: anthropic/claude-sonnet-4-5-20250929
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
    capabilities: {{tools: true}}
routes:
  - name: default
    to: claude
budgets:
  - name: per-call
    limit_usd: {limit}
    window: call
store: {{backend: memory}}
receipts: {{sink: none}}
"""

# What Anthropic bills for this prompt, about: the thinking, the turns and the tool (64 tokens
# by litellm's count) and its tool-use system prompt (346 tokens).
BILLED = Usage(prompt=THOUGHT_TOKENS + 64 + 346, completion=500)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="It is sunny.", usage=BILLED))
        yield fp


def _call(provider: FakeProvider, limit: str) -> Any:
    policy = load_policy_text(POLICY.format(base=provider.anthropic_base, limit=limit))
    messages = loop({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
    return policyroute.completion(
        policy=policy,
        messages=messages,
        tools=TOOLS,
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_tokens=500,
    )


def test_a_loop_whose_thinking_would_pass_the_budget_is_refused(provider: FakeProvider) -> None:
    # Billed: 3,422 input + 500 output tokens at $1/M, $0.003922, over the $0.003 limit.
    # Before, the reservation was 64 + 500 tokens, $0.000564, and the call went out.
    with pytest.raises(BudgetExceeded) as info:
        _call(provider, "0.003")
    assert provider.requests == []
    assert info.value.estimate >= D("0.003922")


def test_the_thinking_reaches_the_provider_and_the_bound_covers_its_bill(
    provider: FakeProvider,
) -> None:
    answer = _call(provider, "1")
    sent = provider.requests[-1].body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}
    assert answer.usage.prompt_tokens == BILLED.prompt
    messages = loop({"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE})
    claude = candidate("claude", "anthropic/claude-sonnet-4-5-20250929")
    bound = worst_case(
        Request(messages=messages, tools=TOOLS),
        claude,
        {"max_tokens": 500},
        default_max_tokens=None,
    )
    assert bound.input_tokens >= BILLED.prompt
    assert bound.cost >= D(BILLED.prompt + BILLED.completion) / 1_000_000
