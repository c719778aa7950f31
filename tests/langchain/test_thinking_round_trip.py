"""An agent on Claude with extended thinking: its signed thinking goes back with its tool call.

Anthropic refuses the turn after a tool call unless the assistant turn that made it comes back
with its thinking blocks first, unchanged. ``ChatPolicyRoute`` keeps them on the answer
(``additional_kwargs["thinking_blocks"]``, marked with where they were signed) and sends them
back only to a deployment that can check them: a fallback to another provider gets the turn
without them.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from lc_support import claude_and_gpt

from policyroute._thinking import ORIGIN_KEY
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall, default_signature

CLAUDE = "claude-sonnet-4-5"
THOUGHT = "The user wants the weather, so I call the tool."


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
def llm(fp: FakeProvider) -> Any:
    policy = claude_and_gpt(
        fp.anthropic_base,
        fp.openai_base,
        name="thinking",
        gpt_model="gpt-backup",
        gpt_params="capabilities: {tools: true}",
    )
    model = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    return model.bind_tools([weather])


def _first_turn(fp: FakeProvider) -> None:
    fp.script(CLAUDE, Reply(thinking=THOUGHT, tool_calls=[ToolCall("weather", {"city": "Paris"})]))


def _history(answer: BaseMessage) -> list[BaseMessage]:
    assert isinstance(answer, AIMessage)
    (call,) = answer.tool_calls
    return [
        HumanMessage("Weather in Paris?"),
        answer,
        ToolMessage("sunny in Paris", tool_call_id=call["id"]),
    ]


def _kept(answer: BaseMessage, fp: FakeProvider) -> None:
    (block,) = answer.additional_kwargs["thinking_blocks"]
    assert block["type"] == "thinking"
    assert block["thinking"] == THOUGHT
    assert block["signature"] == default_signature(THOUGHT)
    assert block[ORIGIN_KEY] == f"anthropic:{fp.anthropic_base}:{CLAUDE}"


def _sent_back_signed(fp: FakeProvider) -> None:
    last = fp.requests_for(CLAUDE)[-1]
    (turn,) = last.assistant_blocks
    kinds = [b["type"] for b in turn]
    assert kinds[0] == "thinking"
    assert kinds[-1] == "tool_use"
    assert turn[0]["thinking"] == THOUGHT
    assert turn[0]["signature"] == default_signature(THOUGHT)
    assert ORIGIN_KEY not in turn[0]  # policyroute's mark stays home


def test_invoke_sends_the_signed_thinking_back_with_the_tool_call(
    fp: FakeProvider, llm: Any
) -> None:
    _first_turn(fp)
    answer = llm.invoke("Weather in Paris?")
    _kept(answer, fp)
    assert answer.additional_kwargs["reasoning_content"] == THOUGHT

    fp.script(CLAUDE, Reply(text="It is sunny in Paris."))
    final = llm.invoke(_history(answer))
    assert final.content == "It is sunny in Paris."
    _sent_back_signed(fp)


@pytest.mark.asyncio
async def test_astream_keeps_the_whole_signed_block_once(fp: FakeProvider, llm: Any) -> None:
    _first_turn(fp)
    merged: AIMessageChunk | None = None
    async for chunk in llm.astream("Weather in Paris?"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    _kept(merged, fp)  # one block, not one per streamed fragment

    fp.script(CLAUDE, Reply(text="It is sunny in Paris."))
    final = await llm.ainvoke(_history(merged))
    assert final.content == "It is sunny in Paris."
    _sent_back_signed(fp)


def test_a_fallback_to_another_provider_gets_the_turn_without_the_blocks(
    fp: FakeProvider, llm: Any
) -> None:
    _first_turn(fp)
    answer = llm.invoke("Weather in Paris?")
    fp.script(CLAUDE, Fault.status(529))
    fp.script("gpt-backup", Reply(text="Sunny."))

    final = llm.invoke(_history(answer))

    assert final.content == "Sunny."
    _sent_back_signed(fp)  # the failed attempt on Claude still had them
    (sent,) = [
        m for m in fp.requests_for("gpt-backup")[-1].body["messages"] if m["role"] == "assistant"
    ]
    assert "thinking_blocks" not in sent
    assert sent["tool_calls"][0]["function"]["name"] == "weather"
    # The caller's message is unchanged: its blocks can still go back to Claude later.
    _kept(answer, fp)


def test_stream_sends_the_signed_thinking_back(fp: FakeProvider, llm: Any) -> None:
    _first_turn(fp)
    merged: AIMessageChunk | None = None
    for chunk in llm.stream("Weather in Paris?"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    _kept(merged, fp)

    fp.script(CLAUDE, Reply(text="It is sunny in Paris."))
    answer = "".join(str(c.content) for c in llm.stream(_history(merged)))
    assert answer == "It is sunny in Paris."
    _sent_back_signed(fp)
