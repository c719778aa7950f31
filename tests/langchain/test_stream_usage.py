"""``stream_usage=False``, as ChatOpenAI takes it: a stream's chunks carry no
``usage_metadata``, while the provider is still asked for usage, so that the call's receipt and
budget are charged exactly what it used."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from lc_support import policy_text

from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.errors import RequestError
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply, Usage

USAGE = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
COST = Decimal("0.002")  # 1000 tokens at $1/Mtok in, 500 at $2/Mtok out (the fast model)


def _model(fp: FakeProvider, **kwargs: Any) -> tuple[ChatPolicyRoute, list[Mapping[str, Any]]]:
    fp.set_default("fake-fast", Reply(text="a b c", usage=Usage(prompt=1000, completion=500)))
    policy = load_policy_text(policy_text(fp.openai_base))
    receipts: list[Mapping[str, Any]] = []
    accounting = PolicyAccounting(
        policy, guard=BudgetGuard(policy, MemoryStore()), sinks=[CallableSink(receipts.append)]
    )
    return ChatPolicyRoute(policy=policy, accounting=accounting, **kwargs), receipts


def _charged(fp: FakeProvider, receipts: list[Mapping[str, Any]]) -> Decimal:
    """What the one call was charged, after checking the provider was asked for usage."""
    (request,) = fp.requests
    assert request.body["stream_options"] == {"include_usage": True}
    (call,) = [r for r in receipts if r.get("kind") == "call"]
    return Decimal(call["cost"])


def _merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def test_a_stream_with_stream_usage_false_has_no_usage_and_is_charged_exactly(
    fp: FakeProvider,
) -> None:
    llm, receipts = _model(fp)
    chunks = list(llm.stream("hi", stream_usage=False))
    assert [c.usage_metadata for c in chunks] == [None] * len(chunks)
    merged = _merged(chunks)
    assert merged.content == "a b c"
    assert merged.usage_metadata is None
    # what policyroute says of the call is still there, and exact
    assert Decimal(merged.response_metadata["policyroute"]["cost"]) == COST
    assert _charged(fp, receipts) == COST


def test_the_models_stream_usage_false_holds_for_async_streams_and_a_call_overrides_it(
    fp: FakeProvider,
) -> None:
    llm, receipts = _model(fp, stream_usage=False)

    async def streams() -> tuple[list[AIMessageChunk], list[AIMessageChunk]]:
        quiet = [c async for c in llm.astream("hi")]
        told = [c async for c in llm.astream("hi", stream_usage=True)]
        return quiet, told

    quiet, told = asyncio.run(streams())
    assert _merged(quiet).usage_metadata is None
    assert _merged(told).usage_metadata == USAGE
    assert [r.body["stream_options"] for r in fp.requests] == [{"include_usage": True}] * 2
    calls = [Decimal(r["cost"]) for r in receipts if r.get("kind") == "call"]
    assert calls == [COST, COST]


@pytest.mark.parametrize(
    ("bound", "usage"),
    [
        ({"stream_options": {"include_usage": False}}, None),
        ({"stream_usage": False}, None),
        ({"stream_usage": True}, USAGE),
        ({}, USAGE),
    ],
)
def test_stream_usage_and_stream_options_bound_to_the_model_decide_as_with_chatopenai(
    fp: FakeProvider, bound: dict[str, Any], usage: dict[str, int] | None
) -> None:
    llm, receipts = _model(fp)
    chunks = list(llm.bind(**bound).stream("hi"))
    assert _merged(chunks).usage_metadata == usage
    assert _charged(fp, receipts) == COST


def test_invoke_on_a_streaming_model_follows_stream_usage(fp: FakeProvider) -> None:
    llm, receipts = _model(fp, streaming=True, stream_usage=False)
    answer = llm.invoke("hi")
    assert answer.content == "a b c"
    assert answer.usage_metadata is None
    assert _charged(fp, receipts) == COST


def test_an_unstreamed_answer_always_has_its_usage(fp: FakeProvider) -> None:
    llm, _ = _model(fp, stream_usage=False)
    assert llm.invoke("hi").usage_metadata == USAGE


def test_stream_usage_of_the_wrong_type_on_a_call_is_refused(fp: FakeProvider) -> None:
    llm, _ = _model(fp)
    with pytest.raises(RequestError, match="stream_usage must be a boolean"):
        list(llm.stream("hi", stream_usage="no"))
    assert fp.requests == []
