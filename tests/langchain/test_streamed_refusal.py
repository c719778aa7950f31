"""A streamed OpenAI refusal (``delta.refusal`` fragments, no content) reaches the caller as the
unstreamed one does, in ``additional_kwargs["refusal"]``: litellm's stream wrapper drops those
fragments, so the stream ended as an empty answer. The call's usage and receipt are the ones
the provider's usage gives, streamed or not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, BaseMessageChunk
from lc_support import policy_text

from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.errors import StreamInterruptedError
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

REFUSAL = "I'm sorry, I can't help with that request."
USAGE = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}


def _model(fp: FakeProvider, **kwargs: Any) -> tuple[ChatPolicyRoute, list[Mapping[str, Any]]]:
    policy = load_policy_text(policy_text(fp.openai_base))
    receipts: list[Mapping[str, Any]] = []
    accounting = PolicyAccounting(
        policy, guard=BudgetGuard(policy, MemoryStore()), sinks=[CallableSink(receipts.append)]
    )
    return ChatPolicyRoute(policy=policy, accounting=accounting, **kwargs), receipts


def _refusing(fp: FakeProvider) -> None:
    fp.set_default("*", Reply(refusal=REFUSAL, usage=Usage(prompt=1000, completion=500)))


def _merged(chunks: list[BaseMessageChunk]) -> BaseMessageChunk:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def _call(receipts: list[Mapping[str, Any]]) -> dict[str, Any]:
    (call,) = [r for r in receipts if r.get("kind") == "call"]
    return {
        k: call.get(k)
        for k in ("status", "cost", "input_tokens", "output_tokens", "usage_estimated")
    }


def test_stream_gives_the_refusal_where_invoke_does(fp: FakeProvider) -> None:
    _refusing(fp)
    llm, _ = _model(fp)
    unstreamed = llm.invoke("help me")
    chunks = list(llm.stream("help me"))
    # The fragments arrive as they come, before the last chunk (usage and metadata).
    assert [c.additional_kwargs.get("refusal") for c in chunks[:-1]].count(None) == 0
    assert len(chunks) > 2
    merged = _merged(chunks)
    assert unstreamed.additional_kwargs == {"refusal": REFUSAL}
    assert merged.additional_kwargs == unstreamed.additional_kwargs
    assert merged.content == unstreamed.content == ""
    assert merged.usage_metadata == unstreamed.usage_metadata == USAGE
    assert merged.response_metadata["finish_reason"] == "stop"


def test_astream_gives_the_refusal(fp: FakeProvider) -> None:
    _refusing(fp)
    llm, _ = _model(fp)

    async def collect() -> list[BaseMessageChunk]:
        return [chunk async for chunk in llm.astream("help me")]

    merged = _merged(asyncio.run(collect()))
    assert merged.additional_kwargs == {"refusal": REFUSAL}
    assert merged.usage_metadata == USAGE


def test_a_streaming_model_invokes_to_the_refusal(fp: FakeProvider) -> None:
    _refusing(fp)
    llm, _ = _model(fp, streaming=True)
    message = llm.invoke("help me")
    assert fp.requests[-1].body["stream"] is True
    assert message.additional_kwargs == {"refusal": REFUSAL}
    assert message.usage_metadata == USAGE
    assert asyncio.run(llm.ainvoke("help me")).additional_kwargs == {"refusal": REFUSAL}


def test_the_receipt_and_usage_of_a_streamed_refusal_are_the_unstreamed_ones(
    fp: FakeProvider,
) -> None:
    _refusing(fp)
    llm, receipts = _model(fp)
    llm.invoke("help me")
    unstreamed = _call(receipts)
    receipts.clear()
    list(llm.stream("help me"))
    streamed = _call(receipts)
    assert streamed == unstreamed
    assert streamed["status"] == "ok"


def _event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    body = {
        "id": "chatcmpl-Bx1",
        "object": "chat.completion.chunk",
        "created": 1750000000,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_07871e2ad8",
        "choices": [choice],
    }
    return json.dumps(body | extra)


def test_openai_refusal_chunks_as_sent_reach_the_caller(fp: FakeProvider) -> None:
    """The exact chunks OpenAI streams for a refusal (role chunk with ``refusal: ""``, the
    fragments, the finish, then the usage chunk of ``include_usage``)."""
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    last = json.loads(_event({}))
    last["choices"] = []
    last["usage"] = usage
    fp.set_default(
        "*",
        Fault.raw_stream(
            _event({"role": "assistant", "content": None, "refusal": ""}, usage=None),
            _event({"refusal": "I'm sorry,"}, usage=None),
            _event({"refusal": " I can't help"}, usage=None),
            _event({"refusal": " with that request."}, usage=None),
            _event({}, "stop", usage=None),
            json.dumps(last),
            done=True,
        ),
    )
    llm, receipts = _model(fp)
    chunks = list(llm.stream("help me"))
    merged = _merged(chunks)
    assert isinstance(merged, AIMessageChunk)
    assert merged.additional_kwargs == {"refusal": REFUSAL}
    assert merged.content == ""
    assert merged.usage_metadata == USAGE
    assert {c.id for c in chunks} == {"chatcmpl-Bx1"}
    assert _call(receipts)["status"] == "ok"


def test_a_role_chunk_with_an_empty_refusal_adds_none(fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text="Paris is sunny."))
    llm, _ = _model(fp)
    merged = _merged(list(llm.stream("weather?")))
    assert merged.content == "Paris is sunny."
    assert "refusal" not in merged.additional_kwargs


def test_a_refusal_is_content_a_cut_stream_cannot_take_back(fp: FakeProvider) -> None:
    """Refusal fragments reach the caller as they come, as text does: a stream cut after some
    of them is interrupted, not silently answered again by the next candidate."""
    fp.set_default("fake-fast", Fault.stream_cut(after=4, reply=Reply(refusal=REFUSAL)))
    fp.set_default("fake-backup", Reply(text="Here is the answer."))
    llm, _ = _model(fp)
    seen: list[BaseMessageChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        seen.extend(llm.stream("help me"))
    assert caught.value.deployment == "fast"
    assert "".join(c.additional_kwargs.get("refusal", "") for c in seen) == "I'm sorry, I"
    assert fp.attempts("fake-backup") == 0


def test_a_fragment_on_the_finishing_chunk_is_kept(fp: FakeProvider) -> None:
    """A server that sends the last fragment with the finish reason: litellm passes that chunk
    on with an emptied delta, and the fragment is put back on it."""
    fp.set_default(
        "*",
        Fault.raw_stream(
            _event({"role": "assistant", "content": None, "refusal": "I'm sorry,"}),
            _event({"refusal": " I can't help"}),
            _event({"refusal": " with that request."}, "stop"),
            done=True,
        ),
    )
    llm, _ = _model(fp)
    merged = _merged(list(llm.stream("help me")))
    assert merged.additional_kwargs == {"refusal": REFUSAL}
    assert merged.response_metadata["finish_reason"] == "stop"
