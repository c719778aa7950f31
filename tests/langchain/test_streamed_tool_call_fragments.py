"""Tool calls streamed in the shapes OpenAI-compatible servers send them: parallel calls whose
fragments interleave, empty fragments, the id and name on the first fragment only or repeated
on every one, every call numbered 0. The merged stream holds the calls ``invoke`` returns for
the same answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from lc_support import add, shout

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

ADD = {"a": 1, "b": 2}
SHOUT = {"text": "hi"}


def _event(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        | {"choices": [choice]}
    )


def _part(index: int, args: str, *, call_id: str | None = None, name: str | None = None) -> str:
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id is not None:
        call |= {"id": call_id, "type": "function"}
    if name is not None:
        call["function"]["name"] = name
    return _event({"tool_calls": [call]})


USAGE = json.dumps(
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    | {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
)

# The two calls' arguments in fragments of a few characters, interleaved, some empty.
INTERLEAVED = [
    _part(0, "", call_id="c1", name="add"),
    _part(1, "", call_id="c2", name="shout"),
    _part(0, '{"a"'),
    _part(1, '{"te'),
    _part(0, ""),
    _part(0, ": 1, "),
    _part(1, 'xt": "h'),
    _part(0, '"b": 2}'),
    _part(1, 'i"}'),
]
# Each fragment repeats its call's id and name, as some OpenAI-compatible servers do.
REPEATED = [
    _part(0, '{"a": 1,', call_id="c1", name="add"),
    _part(1, '{"text":', call_id="c2", name="shout"),
    _part(0, ' "b": 2}', call_id="c1", name="add"),
    _part(1, ' "hi"}', call_id="c2", name="shout"),
]
# Every call numbered 0, each whole in one fragment, as some servers send parallel calls.
NUMBERED_ZERO = [
    _part(0, json.dumps(ADD), call_id="c1", name="add"),
    _part(0, json.dumps(SHOUT), call_id="c2", name="shout"),
]
SHAPES = {"interleaved": INTERLEAVED, "repeated": REPEATED, "numbered-zero": NUMBERED_ZERO}


def _answer() -> str:
    """The same two calls as one non-streamed chat completion."""
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": json.dumps(ADD)}},
        {
            "id": "c2",
            "type": "function",
            "function": {"name": "shout", "arguments": json.dumps(SHOUT)},
        },
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m"}
    return json.dumps(body | {"choices": [choice], "usage": usage})


def _stream(fragments: list[str]) -> Fault:
    return Fault.raw_stream(*fragments, _event({}, "tool_calls"), USAGE, done=True)


def _merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    out = chunks[0]
    for chunk in chunks[1:]:
        out = out + chunk
    return out


def _invoked(llm: ChatPolicyRoute, fp: FakeProvider) -> AIMessage:
    fp.script("*", Fault.raw(_answer()))
    message = llm.bind_tools([add, shout]).invoke("go")
    assert isinstance(message, AIMessage)
    return message


@pytest.mark.parametrize("shape", SHAPES)
def test_a_merged_stream_holds_the_calls_invoke_returns(
    llm: ChatPolicyRoute, fp: FakeProvider, shape: str
) -> None:
    invoked = _invoked(llm, fp)
    fp.script("*", _stream(SHAPES[shape]))
    chunks = list(llm.bind_tools([add, shout]).stream("go"))
    merged = _merged(chunks)
    assert merged.tool_calls == invoked.tool_calls
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("add", ADD), ("shout", SHOUT)]
    assert merged.invalid_tool_calls == invoked.invalid_tool_calls == []
    assert [(c["name"], c["id"]) for c in merged.tool_call_chunks] == [
        ("add", "c1"),
        ("shout", "c2"),
    ]
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    assert sum(1 for chunk in chunks if chunk.usage_metadata) == 1


@pytest.mark.parametrize("shape", SHAPES)
def test_astream_merges_the_same_calls(llm: ChatPolicyRoute, fp: FakeProvider, shape: str) -> None:
    invoked = _invoked(llm, fp)
    fp.script("*", _stream(SHAPES[shape]))

    async def collect() -> list[AIMessageChunk]:
        return [chunk async for chunk in llm.bind_tools([add, shout]).astream("go")]

    merged = _merged(asyncio.run(collect()))
    assert merged.tool_calls == invoked.tool_calls
    assert [c["name"] for c in merged.tool_call_chunks] == ["add", "shout"]
