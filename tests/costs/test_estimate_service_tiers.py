"""A call that asks for a service tier is bounded at that tier's prices.

litellm prices an answer at the tier the provider says it served (``service_tier`` on an
OpenAI response): priority costs 1.7x to 2x the standard rates. The worst case reserved before
the call must not be the standard price of an answer that will be billed at priority.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest
import respx

import policyroute
from policyroute.costs.estimate import worst_case
from policyroute.request import Request

from .helpers import FAKE_KEY, candidate

MESSAGES = [{"role": "user", "content": "hello there"}]
MAX_TOKENS = 50

POLICY = """
policyroute: 1
name: tiers
models:
  m:
    model: {model}
    api_base: https://api.openai.test/v1
    api_key: ${{PR_TIER_KEY}}
budgets:
  - name: global
    limit_usd: 10
    window: day
routes:
  - name: default
    to: m
receipts: {{sink: jsonl, path: {path}}}
"""


def _body(model: str, tier: str, prompt: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-tier",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "service_tier": tier,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * MAX_TOKENS},
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": MAX_TOKENS,
            "total_tokens": prompt + MAX_TOKENS,
        },
    }


@pytest.mark.parametrize(
    ("model", "tier"),
    [("gpt-4o", "priority"), ("gpt-5", "priority"), ("gpt-5", "fast")],
)
def test_the_reserved_worst_case_covers_an_answer_billed_at_the_asked_tier(
    model: str, tier: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PR_TIER_KEY", FAKE_KEY)
    monkeypatch.chdir(tmp_path)  # the budget's default store is relative to it
    receipts = tmp_path / "receipts.jsonl"
    policy = POLICY.format(model=f"openai/{model}", path=json.dumps(str(receipts)))
    # The provider bills exactly the prompt the estimate counts and every output token allowed.
    prompt = worst_case(
        Request(messages=MESSAGES),
        candidate(f"openai/{model}"),
        {"max_tokens": MAX_TOKENS},
        default_max_tokens=None,
    ).input_tokens
    served = "priority" if tier == "fast" else tier
    with respx.mock(assert_all_called=True) as mock:
        mock.post(url__regex=r"https://api\.openai\.test/.*").mock(
            return_value=httpx.Response(200, json=_body(model, served, prompt))
        )
        response = policyroute.completion(
            policy=policy, messages=MESSAGES, max_tokens=MAX_TOKENS, service_tier=tier
        )
    litellm_cost = Decimal(
        repr(litellm.completion_cost(completion_response=response, model=f"openai/{model}"))
    )
    (record,) = [
        r for r in map(json.loads, receipts.read_text().splitlines()) if r["kind"] == "attempt"
    ]
    charged = Decimal(record["cost"])
    assert abs(charged - litellm_cost) < Decimal("1e-6")
    # Billed at the tier's rates: more than the standard price of the same usage.
    standard = Decimal(
        repr(
            litellm.completion_cost(
                completion_response=response, model=f"openai/{model}", service_tier="default"
            )
        )
    )
    assert charged > standard
    assert Decimal(record["estimated_cost"]) >= charged


def test_a_flex_call_is_still_bounded_by_the_standard_rates() -> None:
    # Flex is cheaper than standard; a provider may serve a flex request at standard.
    cand = candidate("openai/gpt-5")
    request = Request(messages=MESSAGES)
    standard = worst_case(request, cand, {"max_tokens": MAX_TOKENS}, default_max_tokens=None)
    flex = worst_case(
        request, cand, {"max_tokens": MAX_TOKENS, "service_tier": "flex"}, default_max_tokens=None
    )
    assert flex.cost == standard.cost


def test_a_standard_call_is_not_bounded_at_another_tier_s_long_context_rates() -> None:
    # Gemini 2.5 Pro lists $2.50/M input and $15/M output above 200k tokens, and $4.50/M and
    # $27/M for priority traffic above 200k: a standard call is billed at most the former.
    cand = candidate("gemini/gemini-2.5-pro")
    request = Request(messages=MESSAGES)
    standard = worst_case(request, cand, {"max_tokens": MAX_TOKENS}, default_max_tokens=None)
    assert (standard.input_rate, standard.output_rate) == (Decimal("2.5e-6"), Decimal("1.5e-5"))
    priority = worst_case(
        request,
        cand,
        {"max_tokens": MAX_TOKENS, "service_tier": "priority"},
        default_max_tokens=None,
    )
    assert (priority.input_rate, priority.output_rate) == (Decimal("4.5e-6"), Decimal("2.7e-5"))
