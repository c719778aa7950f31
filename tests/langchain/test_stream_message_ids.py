"""Every chunk of a streamed answer carries the answer's one id, the last chunk (usage, finish
reason) included: LangGraph's "messages" stream and the UIs fed by it group chunks by id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import reduce
from operator import add as merge

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk
from lc_support import add, claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, ToolCall, Usage


def _model(fp: FakeProvider, wire: str, make_policy: Callable[..., str]) -> ChatPolicyRoute:
    if wire == "openai":
        policy = make_policy()
    else:
        policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="ids")
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


WIRES = pytest.mark.parametrize("wire", ["openai", "anthropic"])


@WIRES
def test_the_chunks_of_a_stream_share_the_answers_id(
    fp: FakeProvider, make_policy: Callable[..., str], wire: str
) -> None:
    llm = _model(fp, wire, make_policy).bind_tools([add])
    fp.set_default(
        "*",
        Reply(text="adding", tool_calls=[ToolCall("add", {"a": 1, "b": 2})], usage=Usage(3, 4)),
    )

    async def collect() -> list[AIMessageChunk]:
        return [chunk async for chunk in llm.astream("1+2?")]

    for chunks in (list(llm.stream("1+2?")), asyncio.run(collect())):
        assert chunks[-1].usage_metadata is not None
        merged = reduce(merge, chunks)
        assert merged.id is not None
        assert {chunk.id for chunk in chunks} == {merged.id}


@WIRES
def test_an_agents_messages_stream_has_one_id_per_model_call(
    fp: FakeProvider, make_policy: Callable[..., str], wire: str
) -> None:
    llm = _model(fp, wire, make_policy)
    key = "fake-fast" if wire == "openai" else "claude-sonnet-4-5"
    fp.script(
        key,
        Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})], usage=Usage(3, 4)),
        Reply(text="It is 3.", usage=Usage(9, 4)),
    )
    agent = create_agent(llm, tools=[add])
    by_id: dict[str | None, AIMessageChunk] = {}
    for chunk, _ in agent.stream({"messages": [("user", "1+2?")]}, stream_mode="messages"):
        if isinstance(chunk, AIMessageChunk):
            by_id[chunk.id] = by_id[chunk.id] + chunk if chunk.id in by_id else chunk
    calls, answer = by_id.values()
    assert [c["name"] for c in calls.tool_calls] == ["add"]
    assert calls.usage_metadata is not None
    assert calls.usage_metadata["output_tokens"] == 4
    assert answer.content == "It is 3."
    assert answer.response_metadata["finish_reason"] == "stop"
