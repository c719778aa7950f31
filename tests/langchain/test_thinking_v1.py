"""Claude's signed thinking in LangChain's standard (v1) output format.

With ``output_version="v1"``, an answer's thinking is in its content as ``reasoning`` blocks
whose ``extras`` carry the signature (and policyroute's origin mark), as langchain-anthropic
writes them; redacted thinking is a ``non_standard`` block. An assistant turn that comes back
holding only those blocks (a framework that rebuilt it from its content, or a v1 answer of
ChatAnthropic) is sent to Claude with the signed thinking before its tool call, and to a
deployment that cannot check the signature without it.
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
THOUGHTS = ["The user wants the weather.", "So I call the tool."]
CALL = ToolCall("weather", {"city": "Paris"})


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _llm(fp: FakeProvider, output_version: str = "v1") -> Any:
    policy = claude_and_gpt(
        fp.anthropic_base,
        fp.openai_base,
        name="thinking-v1",
        gpt_model="gpt-backup",
        gpt_params="capabilities: {tools: true}",
    )
    model = ChatPolicyRoute(
        policy=policy, accounting=NullAccounting(), output_version=output_version
    )
    return model.bind_tools([weather])


@pytest.fixture
def llm(fp: FakeProvider) -> Any:
    return _llm(fp)


def _origin(fp: FakeProvider) -> str:
    return f"anthropic:{fp.anthropic_base}:{CLAUDE}"


def _signed_reasoning(fp: FakeProvider, text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "reasoning": text,
        "extras": {"signature": default_signature(text), ORIGIN_KEY: _origin(fp)},
    }


def _without_index(blocks: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k != "index"} for b in blocks]


def _rebuilt(answer: BaseMessage) -> AIMessage:
    """``answer`` as a framework rebuilds it from its v1 content: the content blocks and the
    tool calls, nothing else."""
    assert isinstance(answer, AIMessage)
    return AIMessage(content=answer.content, tool_calls=answer.tool_calls)


def _history(turn: AIMessage) -> list[BaseMessage]:
    (call,) = turn.tool_calls
    return [
        HumanMessage("Weather in Paris?"),
        turn,
        ToolMessage("sunny in Paris", tool_call_id=call["id"]),
    ]


def _sent_to_claude(fp: FakeProvider) -> list[dict[str, Any]]:
    """The one assistant turn of the last request Claude got."""
    (turn,) = fp.requests_for(CLAUDE)[-1].assistant_blocks
    return [dict(b) for b in turn]


def _signed_thinking(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": default_signature(text)}


def test_invoke_answers_with_signed_reasoning_blocks(fp: FakeProvider, llm: Any) -> None:
    fp.script(CLAUDE, Reply(thinking=THOUGHTS, tool_calls=[CALL]))
    answer = llm.invoke("Weather in Paris?")
    assert isinstance(answer.content, list)
    assert [b["type"] for b in answer.content] == ["reasoning", "reasoning", "tool_call"]
    assert answer.content[:2] == [_signed_reasoning(fp, t) for t in THOUGHTS]


def test_the_default_format_keeps_text_content_and_signs_its_content_blocks(
    fp: FakeProvider,
) -> None:
    fp.script(CLAUDE, Reply(thinking=THOUGHTS[0], text="Let me look."))
    answer = _llm(fp, "v0").invoke("Weather in Paris?")
    assert answer.content == "Let me look."
    assert answer.content_blocks == [
        _signed_reasoning(fp, THOUGHTS[0]),
        {"type": "text", "text": "Let me look."},
    ]


def test_a_rebuilt_v1_turn_goes_back_to_claude_signed_before_its_tool_use(
    fp: FakeProvider, llm: Any
) -> None:
    fp.script(CLAUDE, Reply(thinking=THOUGHTS, tool_calls=[CALL]))
    answer = llm.invoke("Weather in Paris?")

    fp.script(CLAUDE, Reply(text="It is sunny in Paris."))
    final = llm.invoke(_history(_rebuilt(answer)))

    assert final.text == "It is sunny in Paris."
    turn = _sent_to_claude(fp)
    assert [b["type"] for b in turn] == ["thinking", "thinking", "tool_use"]
    assert turn[:2] == [_signed_thinking(t) for t in THOUGHTS]


def test_stream_merges_into_one_signed_block_per_thought(fp: FakeProvider, llm: Any) -> None:
    fp.script(CLAUDE, Reply(thinking=THOUGHTS, redacted_thinking=["opaque"], tool_calls=[CALL]))
    merged: AIMessageChunk | None = None
    for chunk in llm.stream("Weather in Paris?"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None

    blocks = _without_index(merged.content)
    assert [b["type"] for b in blocks] == ["reasoning", "reasoning", "tool_call", "non_standard"]
    assert blocks[:2] == [_signed_reasoning(fp, t) for t in THOUGHTS]
    assert blocks[2]["args"] == {"city": "Paris"}
    assert blocks[3]["value"] == {
        "type": "redacted_thinking",
        "data": "opaque",
        ORIGIN_KEY: _origin(fp),
    }

    fp.script(CLAUDE, Reply(text="It is sunny in Paris."))
    llm.invoke(_history(_rebuilt(merged)))
    turn = _sent_to_claude(fp)
    assert [b["type"] for b in turn] == ["thinking", "thinking", "redacted_thinking", "tool_use"]
    assert turn[:2] == [_signed_thinking(t) for t in THOUGHTS]
    assert turn[2] == {"type": "redacted_thinking", "data": "opaque"}


@pytest.mark.asyncio
async def test_astream_round_trip_in_v1(fp: FakeProvider, llm: Any) -> None:
    fp.script(CLAUDE, Reply(thinking=THOUGHTS[0], text="Checking.", tool_calls=[CALL]))
    merged: AIMessageChunk | None = None
    async for chunk in llm.astream("Weather in Paris?"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    blocks = _without_index(merged.content)
    assert blocks[0] == _signed_reasoning(fp, THOUGHTS[0])
    assert [b["type"] for b in blocks] == ["reasoning", "text", "tool_call"]

    fp.script(CLAUDE, Reply(text="It is sunny in Paris."))
    await llm.ainvoke(_history(_rebuilt(merged)))
    turn = _sent_to_claude(fp)
    assert [b["type"] for b in turn] == ["thinking", "text", "tool_use"]
    assert turn[0] == _signed_thinking(THOUGHTS[0])


def _foreign(reasoning_extras: dict[str, Any], provider: str | None = None) -> AIMessage:
    """A v1 assistant turn made elsewhere: a signed reasoning block and a tool call."""
    metadata = {"output_version": "v1"} | ({"model_provider": provider} if provider else {})
    return AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "Hm.", "extras": reasoning_extras},
            {"type": "tool_call", "id": "toolu_1", "name": "weather", "args": {"city": "Paris"}},
        ],
        tool_calls=[{"id": "toolu_1", "name": "weather", "args": {"city": "Paris"}}],
        response_metadata=metadata,
    )


def test_chat_anthropics_v1_turn_goes_to_claude_and_not_to_a_fallback(
    fp: FakeProvider, llm: Any
) -> None:
    turn = _foreign({"signature": "sig-elsewhere"}, "anthropic")
    fp.script(CLAUDE, Fault.status(529))
    fp.script("gpt-backup", Reply(text="Sunny."))

    assert llm.invoke(_history(turn)).text == "Sunny."

    assert _sent_to_claude(fp)[0] == {
        "type": "thinking",
        "thinking": "Hm.",
        "signature": "sig-elsewhere",
    }
    (sent,) = [
        m for m in fp.requests_for("gpt-backup")[-1].body["messages"] if m["role"] == "assistant"
    ]
    assert "thinking_blocks" not in sent
    assert sent["tool_calls"][0]["id"] == "toolu_1"


@pytest.mark.parametrize(
    ("extras", "provider"),
    [
        ({"signature": "s", ORIGIN_KEY: "anthropic:https://other.example:claude-x"}, None),
        ({"signature": "gemini-thought-signature"}, "google_genai"),
        ({}, "anthropic"),
    ],
    ids=["signed-by-another-endpoint", "another-providers-signature", "unsigned"],
)
def test_reasoning_claude_cannot_check_stays_home(
    fp: FakeProvider, llm: Any, extras: dict[str, Any], provider: str | None
) -> None:
    fp.script(CLAUDE, Reply(text="Sunny."))
    llm.invoke(_history(_foreign(extras, provider)))
    assert [b["type"] for b in _sent_to_claude(fp)] == ["tool_use"]
