"""A stream whose provider usage never arrived is charged for the whole prompt it sent.

The provider bills a request's tool definitions (and response schema) as input, as the
budget's estimate counts them. When an OpenAI-style stream ends before its usage chunk
(finished but cut before the usage, cut mid-answer, or abandoned by the consumer), the
tokens are counted locally: the input so counted includes the tools, not only the messages.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import receipts_in

from policyroute import api
from policyroute.errors import StreamInterruptedError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"lookup_{i}",
            "description": "Look a record up in the customer database by its identifier.",
            "parameters": {
                "type": "object",
                "properties": {"record_id": {"type": "string", "description": "the id"}},
                "required": ["record_id"],
            },
        },
    }
    for i in range(5)
]
WORDS = " ".join(f"w{i}" for i in range(20))
# The fake provider's events for WORDS: a role chunk, one chunk per word, the finish chunk,
# then the usage chunk.
THROUGH_FINISH = 22
INPUT_RATE = Decimal(1000) / 10**6
OUTPUT_RATE = Decimal(2000) / 10**6


def _attempt(policy: Path) -> dict[str, Any]:
    attempt, call = receipts_in(policy.parent)
    assert (attempt["kind"], call["kind"]) == ("attempt", "call")
    assert call["input_tokens"] == attempt["input_tokens"]
    assert attempt["usage_estimated"] is True
    (budget,) = attempt["budgets"]
    assert Decimal(budget["reserved"]) == 0
    return attempt


def _estimated_input(attempt: dict[str, Any]) -> Decimal:
    """The input tokens the budget's estimate counted: its cost less 64 output tokens."""
    return (Decimal(attempt["estimated_cost"]) - 64 * OUTPUT_RATE) / INPUT_RATE


@pytest.mark.parametrize("ending", ["finished", "cut", "abandoned"])
def test_a_stream_without_usage_is_charged_for_its_tools(
    fp: FakeProvider, metered_policy: Path, ending: str
) -> None:
    reply = Reply(text=WORDS)
    if ending == "finished":
        fp.script("a", Fault.stream_cut(after=THROUGH_FINISH, reply=reply))
    elif ending == "cut":
        fp.script("a", Fault.stream_cut(after=5, reply=reply))
    else:
        fp.script("a", Reply(text=WORDS, chunk_delay=0.01))
    stream = api.completion(policy=metered_policy, messages=MESSAGES, tools=TOOLS, stream=True)
    if ending == "finished":
        assert "".join(c.choices[0].delta.content or "" for c in stream) == WORDS
    elif ending == "cut":
        with pytest.raises(StreamInterruptedError):
            list(stream)
    else:
        next(stream)
        next(stream)
        stream.close()

    attempt = _attempt(metered_policy)
    expected = _estimated_input(attempt)
    assert expected > 150  # the tools: "hi" alone is a few tokens
    assert attempt["input_tokens"] == expected
    assert attempt["output_tokens"] > 0


@pytest.mark.parametrize("stream", [False, True])
def test_impossible_usage_is_recounted_with_the_tools(
    fp: FakeProvider, metered_policy: Path, stream: bool
) -> None:
    # A provider that reports an impossible prompt count (over 10^10): the answer is counted
    # locally, and the prompt as the budget's estimate counts it (before, the messages alone).
    fp.script("a", Reply(text=WORDS, usage=Usage(prompt=10**11, completion=5)))
    answer = api.completion(policy=metered_policy, messages=MESSAGES, tools=TOOLS, stream=stream)
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer) == WORDS
    else:
        assert answer.choices[0].message.content == WORDS

    attempt = _attempt(metered_policy)
    expected = _estimated_input(attempt)
    assert expected > 150
    assert attempt["input_tokens"] == expected
