"""A stream that breaks while a tool call is arriving, after its first fragment reached the
caller: ``StreamInterruptedError`` carries the call as far as it came (``partial_tool_calls``:
id, name and the arguments received, the same the caller's chunks hold), on both wires, from
``stream``, ``astream`` and the litellm-native ``completion(stream=True)``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from lc_support import add, claude_and_gpt

import policyroute
from policyroute.errors import StreamInterruptedError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall

pytestmark = pytest.mark.timeout(30)

ARGS = {"a": 1, "b": 2, "note": "one two three four five six seven eight"}
FULL = json.dumps(ARGS)
CALL = Reply(tool_calls=[ToolCall("add", ARGS, id="call-1")])
# Events sent before the cut: the call's header and some of its argument fragments, never
# its end. OpenAI: role, header, fragments. Anthropic: message_start, the tool_use block's
# start, ping, fragments.
WIRES = {"gpt": 3, "claude": 5}
ADD_TOOL = {
    "type": "function",
    "function": {"name": "add", "parameters": {"type": "object"}},
}


def _policy(fp: FakeProvider, first: str) -> str:
    return claude_and_gpt(fp.anthropic_base, fp.openai_base, name="cut-calls", first=first)


def _script(fp: FakeProvider, first: str) -> None:
    model = "claude-sonnet-4-5" if first == "claude" else "gpt-4o"
    fp.script(model, Fault.stream_cut(after=WIRES[first], reply=CALL))


def _drain(stream: Iterable[Any], into: list[Any]) -> None:
    """Collect what ``stream`` yields into ``into``, up to the error it raises."""
    for item in stream:
        into.append(item)


def _check(error: StreamInterruptedError, received: list[tuple[str | None, str | None, str]]):
    (call,) = error.partial_tool_calls
    assert (call["index"], call["id"], call["name"]) == (0, "call-1", "add")
    assert call["arguments"]
    assert FULL.startswith(call["arguments"])
    assert call["arguments"] != FULL
    ids = {call_id for call_id, _, _ in received if call_id}
    names = {name for _, name, _ in received if name}
    assert (ids, names) == ({"call-1"}, {"add"})
    assert "".join(args for _, _, args in received) == call["arguments"]
    assert error.partial_text == ""


@pytest.mark.parametrize("first", WIRES)
def test_stream_raises_with_the_call_as_far_as_it_came(fp: FakeProvider, first: str) -> None:
    _script(fp, first)
    llm = ChatPolicyRoute(policy=_policy(fp, first), accounting=NullAccounting())
    chunks: list[AIMessageChunk] = []
    with pytest.raises(StreamInterruptedError) as info:
        _drain(llm.bind_tools([add]).stream("add them"), chunks)
    assert chunks
    assert not any(c.response_metadata.get("finish_reason") for c in chunks)
    received = [(c["id"], c["name"], c["args"] or "") for m in chunks for c in m.tool_call_chunks]
    _check(info.value, received)


@pytest.mark.parametrize("first", WIRES)
def test_astream_raises_with_the_call_as_far_as_it_came(fp: FakeProvider, first: str) -> None:
    _script(fp, first)
    llm = ChatPolicyRoute(policy=_policy(fp, first), accounting=NullAccounting())
    chunks: list[AIMessageChunk] = []

    async def run() -> None:
        async for chunk in llm.bind_tools([add]).astream("add them"):
            chunks.append(chunk)

    with pytest.raises(StreamInterruptedError) as info:
        asyncio.run(run())
    received = [(c["id"], c["name"], c["args"] or "") for m in chunks for c in m.tool_call_chunks]
    _check(info.value, received)


@pytest.mark.parametrize("first", WIRES)
def test_completion_stream_raises_with_the_call_as_far_as_it_came(
    fp: FakeProvider, first: str
) -> None:
    _script(fp, first)
    deltas: list[Any] = []
    stream = policyroute.completion(
        policy=_policy(fp, first),
        messages=[{"role": "user", "content": "add them"}],
        stream=True,
        tools=[ADD_TOOL],
    )
    chunks: list[Any] = []
    with pytest.raises(StreamInterruptedError) as info:
        _drain(stream, chunks)
    for chunk in chunks:
        deltas.extend(chunk.choices[0].delta.tool_calls or ())
    received = [(d.id, d.function.name, d.function.arguments or "") for d in deltas]
    _check(info.value, received)


def _fragment(call_id: str, name: str, arguments: str) -> str:
    function = {"name": name, "arguments": arguments}
    call = {"index": 0, "id": call_id, "type": "function", "function": function}
    choice = {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return json.dumps(head | {"choices": [choice]})


def test_calls_a_server_numbers_0_alike_are_told_apart_by_their_ids(fp: FakeProvider) -> None:
    # The stream ends without a finish reason: the second call may be cut short.
    fp.script(
        "gpt-4o",
        Fault.raw_stream(
            _fragment("call-1", "add", '{"a": 1, "b": 2}'),
            _fragment("call-2", "add", '{"a": 3,'),
            done=True,
        ),
    )
    llm = ChatPolicyRoute(policy=_policy(fp, "gpt"), accounting=NullAccounting())
    chunks: list[AIMessageChunk] = []
    with pytest.raises(StreamInterruptedError) as info:
        _drain(llm.bind_tools([add]).stream("add them"), chunks)
    assert info.value.partial_tool_calls == [
        {"index": 0, "id": "call-1", "name": "add", "arguments": '{"a": 1, "b": 2}'},
        {"index": 0, "id": "call-2", "name": "add", "arguments": '{"a": 3,'},
    ]
    assert [(c["id"], c["name"]) for m in chunks for c in m.tool_call_chunks] == [
        ("call-1", "add"),
        ("call-2", "add"),
    ]
