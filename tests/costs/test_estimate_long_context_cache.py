"""A prompt past a model's long-context threshold that asks for caching is bounded at the
long-context cache-write price.

Claude Sonnet 4.5 on Bedrock and Vertex AI lists cache writes above 200k prompt tokens at
$7.50/M (five minutes) and $12/M (an hour), above both its long-context input price ($6/M) and
its short-context write prices; litellm bills every written token at them once the prompt
crosses the threshold.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import litellm
import pytest

from policyroute.costs.estimate import worst_case
from policyroute.request import Request

from .helpers import candidate

MAX_TOKENS = 100
LONG = "word " * 210_000  # about 210k tokens: past the 200k threshold


def _litellm_cost(model: str, prompt: int, ttl: Literal["5m", "1h"]) -> Decimal:
    """litellm's price of ``prompt`` tokens all written to the cache, and the whole output."""
    hour = prompt if ttl == "1h" else 0
    usage = litellm.Usage(
        prompt_tokens=prompt,
        completion_tokens=MAX_TOKENS,
        total_tokens=prompt + MAX_TOKENS,
        prompt_tokens_details={
            "cached_tokens": 0,
            "cache_creation_tokens": prompt,
            "cache_creation_token_details": {
                "ephemeral_5m_input_tokens": prompt - hour,
                "ephemeral_1h_input_tokens": hour,
            },
        },
        cache_creation_input_tokens=prompt,
        cache_read_input_tokens=0,
    )
    prompt_cost, completion_cost = litellm.cost_per_token(model=model, usage_object=usage)
    return Decimal(repr(prompt_cost + completion_cost))


@pytest.mark.parametrize("ttl", ["5m", "1h"])
@pytest.mark.parametrize(
    "model",
    ["bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", "vertex_ai/claude-sonnet-4-5"],
)
def test_a_long_cached_prompt_is_bounded_at_the_long_context_write_price(
    model: str, ttl: Literal["5m", "1h"]
) -> None:
    mark = {"type": "ephemeral", "ttl": ttl}
    messages = [
        {"role": "system", "content": [{"type": "text", "text": LONG, "cache_control": mark}]},
        {"role": "user", "content": "summarise"},
    ]
    est = worst_case(
        Request(messages=messages),
        candidate(model),
        {"max_tokens": MAX_TOKENS},
        default_max_tokens=None,
    )
    assert est.input_tokens > 200_000
    assert est.cost >= _litellm_cost(model, est.input_tokens, ttl)
