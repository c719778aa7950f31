"""An Anthropic stream cut after ``message_start`` is billed for the input that event reported.

Anthropic reports the input tokens (cache reads and writes included) in its first event;
litellm keeps that usage in its stream wrapper and yields nothing until content comes. A
stream cut, stalled or abandoned after it was still billed for that input by the provider,
so the receipt and the budget charge it: through ``policyroute.acompletion`` and a policy
file, as a user meets it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest
from billing_support import (
    CLAUDE,
    cached_input_usage,
    claude_price,
    policy_file,
    policy_text,
    receipts,
)
from exec_support import arun

import policyroute
from policyroute.costs.estimate import count_input_tokens
from policyroute.errors import PolicyRouteError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]
# 1000 tokens sent afresh, 200 read from the cache, 300 written to it.
REPORTED = Usage(prompt=1000, cached=200, cache_creation=300)


def _policy(workdir: Path, fp: FakeProvider, first_token: str = "10s") -> Path:
    # Unpriced: litellm's prices for the model, cache reads and writes included.
    text = policy_text(
        fp.anthropic_base,
        model=f"anthropic/{CLAUDE}",
        name="held-usage",
        priced=False,
        receipts=True,
        first_token=first_token,
    )
    return policy_file(workdir, text)


def _input_price() -> Decimal:
    """What litellm charges for the reported input: fresh, cache reads and cache writes."""
    return claude_price(cached_input_usage(0))


def _assert_input_billed(receipt: dict[str, Any], status: str) -> Decimal:
    assert receipt["status"] == status
    assert receipt["provider_billed"] is True
    assert receipt["usage_estimated"] is False  # the provider's own count, nothing added
    assert receipt["input_tokens"] == 1500  # input_tokens counts the cached parts too
    assert receipt["cache_read_tokens"] == 200
    assert receipt["cache_write_tokens"] == 300
    assert receipt["output_tokens"] == 0
    cost = Decimal(receipt["cost"])
    assert abs(cost - _input_price()) < Decimal("1e-6")
    assert receipt["price_source"] == "litellm"
    (budget,) = receipt["budgets"]
    assert Decimal(budget["spent"]) == cost
    assert Decimal(budget["reserved"]) == 0
    return cost


async def _stream(policy: Path) -> str:
    stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


def test_stream_cut_right_after_message_start_is_never_free(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script(CLAUDE, Fault.stream_cut(after=1, reply=Reply(text="one two", usage=REPORTED)))
    policy = _policy(workdir, fp)

    with pytest.raises(PolicyRouteError):
        arun(_stream(policy))

    (attempt,) = receipts(workdir, "attempt")
    if attempt["usage_estimated"]:
        # message_start was lost with the cut (aiohttp raises a connection's end before the
        # bytes received with it when no read was waiting for them): the provider accepted
        # the request all the same, so the prompt is charged as counted locally.
        assert (attempt["status"], attempt["provider_billed"]) == ("error", True)
        assert attempt["input_tokens"] == count_input_tokens(f"anthropic/{CLAUDE}", MESSAGES, None)
        assert (attempt["output_tokens"], attempt["cache_read_tokens"]) == (0, 0)
        cost = Decimal(attempt["cost"])
        assert cost > 0
        (budget,) = attempt["budgets"]
        assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (cost, 0)
    else:
        cost = _assert_input_billed(attempt, "error")
    (call,) = receipts(workdir, "call")
    assert (call["input_tokens"], Decimal(call["cost"])) == (attempt["input_tokens"], cost)


def test_sync_stream_cut_before_content_is_billed_for_its_input(
    fp: FakeProvider, workdir: Path
) -> None:
    # message_start, content_block_start and ping: no content yet.
    fp.script(CLAUDE, Fault.stream_cut(after=3, reply=Reply(text="one two", usage=REPORTED)))
    policy = _policy(workdir, fp)

    with pytest.raises(PolicyRouteError):
        policyroute.completion(policy=policy, messages=MESSAGES, stream=True)

    (attempt,) = receipts(workdir, "attempt")
    _assert_input_billed(attempt, "error")


def test_stream_stalled_after_message_start_is_billed_for_its_input(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script(CLAUDE, Fault.stall(after=1, reply=Reply(text="one", usage=REPORTED), timeout=5))
    policy = _policy(workdir, fp, first_token="0.3s")

    with pytest.raises(PolicyRouteError) as info:
        arun(_stream(policy))

    assert getattr(info.value, "error_class", None) == "timeout"
    (attempt,) = receipts(workdir, "attempt")
    _assert_input_billed(attempt, "error")


def test_stream_abandoned_after_message_start_is_billed_for_its_input(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script(CLAUDE, Fault.stall(after=1, reply=Reply(text="one", usage=REPORTED), timeout=5))
    policy = _policy(workdir, fp)

    async def main() -> None:
        task = asyncio.ensure_future(_stream(policy))
        await asyncio.sleep(0.5)  # message_start is in; nothing reached the caller
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    (attempt,) = receipts(workdir, "attempt")
    _assert_input_billed(attempt, "cancelled")


def test_stream_cut_after_content_keeps_the_cache_split_of_message_start(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script(CLAUDE, Fault.stream_cut(after=5, reply=Reply(text="one two three", usage=REPORTED)))
    policy = _policy(workdir, fp)

    async def consume() -> list[str]:
        received: list[str] = []
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
        return received

    with pytest.raises(PolicyRouteError) as info:
        arun(consume())

    partial = getattr(info.value, "partial_text", "")
    assert partial
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == "interrupted"
    assert (attempt["input_tokens"], attempt["cache_read_tokens"]) == (1500, 200)
    assert attempt["cache_write_tokens"] == 300
    output = litellm.token_counter(model=f"anthropic/{CLAUDE}", text=partial)
    assert attempt["output_tokens"] == output
    out_rate = Decimal(repr(litellm.model_cost[CLAUDE]["output_cost_per_token"]))
    expected = _input_price() + output * out_rate
    assert abs(Decimal(attempt["cost"]) - expected) < Decimal("1e-6")
    # The error tells the caller what the receipt charged: the provider's input, the answer
    # received counted locally.
    assert info.value.partial_usage == {"input_tokens": 1500, "output_tokens": output}
    assert info.value.usage_estimated is True
