"""A stream in LangChain's v1 output format merges into the blocks ``invoke`` answers: Claude's
usual turn, a sentence then its tool calls, keeps the text and every call as blocks of their
own, and a call whose arguments are not JSON is an ``invalid_tool_call`` block there too."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from lc_support import add, claude_and_gpt, shout

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, ToolCall

CLAUDE = "claude-sonnet-4-5"


def _model(fp: FakeProvider, first: str) -> Any:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="v1-blocks", first=first)
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting(), output_version="v1")
    return llm.bind_tools([add, shout])


def _script(fp: FakeProvider, first: str, reply: Reply) -> None:
    fp.script(CLAUDE if first == "claude" else "gpt-4o", reply)


def _merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def _blocks(message: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k not in ("index", "extras")} for b in message.content]


@pytest.mark.asyncio
@pytest.mark.parametrize("first", ["claude", "gpt"])
async def test_text_then_tool_calls_merge_into_a_block_each(fp: FakeProvider, first: str) -> None:
    reply = Reply(
        text="Let me add.",
        tool_calls=[
            ToolCall("add", {"a": 1, "b": 2}, id="toolu_1"),
            ToolCall("shout", {"text": "hi"}, id="toolu_2"),
        ],
    )
    _script(fp, first, reply)
    answered = await _model(fp, first).ainvoke("go")
    _script(fp, first, reply)
    merged = _merged([c async for c in _model(fp, first).astream("go")])
    expected = [
        {"type": "text", "text": "Let me add."},
        {"type": "tool_call", "name": "add", "args": {"a": 1, "b": 2}, "id": "toolu_1"},
        {"type": "tool_call", "name": "shout", "args": {"text": "hi"}, "id": "toolu_2"},
    ]
    assert _blocks(answered) == expected
    assert _blocks(merged) == expected
    assert merged.tool_calls == answered.tool_calls


def test_sync_stream_keeps_the_text_apart_from_the_first_call(fp: FakeProvider) -> None:
    _script(fp, "claude", Reply(text="On it.", tool_calls=[ToolCall("add", {"a": 1, "b": 2})]))
    merged = _merged(list(_model(fp, "claude").stream("go")))
    assert [b["type"] for b in merged.content] == ["text", "tool_call"]
    assert merged.content[0]["text"] == "On it."


@pytest.mark.asyncio
@pytest.mark.parametrize("first", ["claude", "gpt"])
async def test_a_call_with_broken_arguments_is_an_invalid_block(
    fp: FakeProvider, first: str
) -> None:
    reply = Reply(
        tool_calls=[
            ToolCall("add", {"a": 1, "b": 2}, id="toolu_1"),
            ToolCall("shout", "{text: nope", id="toolu_2"),
        ]
    )
    _script(fp, first, reply)
    merged = _merged([c async for c in _model(fp, first).astream("go")])
    assert [c["id"] for c in merged.tool_calls] == ["toolu_1"]
    assert [c["id"] for c in merged.invalid_tool_calls] == ["toolu_2"]
    by_id = {b.get("id"): b for b in merged.content}
    assert by_id["toolu_1"]["type"] == "tool_call"
    assert by_id["toolu_2"]["type"] == "invalid_tool_call"
    assert by_id["toolu_2"]["args"] == "{text: nope"
