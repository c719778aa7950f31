"""Streamed tool-call arguments that are not a JSON object: the merged message reports them as
``invalid_tool_calls`` (raw arguments and the parse error), as the answer to ``invoke`` does,
instead of the ``{}`` langchain-core's partial-JSON merge makes of them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from lc_support import add

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, ToolCall

BROKEN = ["{a: 1", '{"a": 1, "b"', "[1, 2]", "nope"]


def merged(chunks: Iterable[AIMessageChunk]) -> AIMessageChunk:
    out: Any = None
    for chunk in chunks:
        out = chunk if out is None else out + chunk
    assert isinstance(out, AIMessageChunk)
    return out


def calls(message: BaseMessage) -> tuple[list[Any], list[Any]]:
    assert isinstance(message, AIMessage)
    valid = [(c["name"], c["args"], c["id"]) for c in message.tool_calls]
    invalid = [(c["name"], c["args"], c["id"], c["error"]) for c in message.invalid_tool_calls]
    return valid, invalid


def script(fp: FakeProvider, *arguments: str | dict[str, Any]) -> None:
    tool_calls = [ToolCall("add", args, id=f"c{i}") for i, args in enumerate(arguments)]
    fp.set_default("*", Reply(tool_calls=tool_calls))


@pytest.mark.parametrize("arguments", BROKEN)
def test_a_merged_stream_reports_what_invoke_reports(
    llm: ChatPolicyRoute, fp: FakeProvider, arguments: str
) -> None:
    script(fp, arguments)
    bound = llm.bind_tools([add])
    invoked = calls(bound.invoke("2+?"))
    streamed = calls(merged(bound.stream("2+?")))
    assert streamed == invoked
    assert streamed[0] == []
    (name, args, _, error) = streamed[1][0]
    assert (name, args) == ("add", arguments)
    assert error


def test_valid_and_invalid_calls_of_one_answer_are_told_apart(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    script(fp, {"a": 1, "b": 2}, "{a: 1", "")
    streamed = calls(merged(llm.bind_tools([add]).stream("2+?")))
    assert streamed[0] == [("add", {"a": 1, "b": 2}, "c0"), ("add", {}, "c2")]
    assert [(name, args) for name, args, _, _ in streamed[1]] == [("add", "{a: 1")]


def test_astream_and_a_streaming_invoke_report_them_too(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    script(fp, "{a: 1")
    expected = calls(llm.bind_tools([add]).invoke("2+?"))

    async def astreamed() -> AIMessageChunk:
        return merged([chunk async for chunk in llm.bind_tools([add]).astream("2+?")])

    assert calls(asyncio.run(astreamed())) == expected
    # invoke with streaming=True merges the chunks as a list (generate_from_stream).
    streaming = llm.model_copy(update={"streaming": True})
    message = streaming.bind_tools([add]).invoke("2+?")
    assert type(message) is AIMessage
    assert calls(message) == expected
    message = asyncio.run(streaming.bind_tools([add]).ainvoke("2+?"))
    assert type(message) is AIMessage
    assert calls(message) == expected


def test_arguments_still_show_as_they_stream(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    script(fp, {"a": 12345, "b": 67890})
    chunks = list(llm.bind_tools([add]).stream("2+?"))
    partial = merged(chunks[:-2])
    assert partial.chunk_position is None
    assert partial.tool_calls
    assert partial.tool_calls[0]["name"] == "add"
    assert partial.tool_calls[0]["args"] != {"a": 12345, "b": 67890}  # not all there yet
    whole = merged(chunks)
    assert calls(whole) == ([("add", {"a": 12345, "b": 67890}, "c0")], [])
    assert type(whole) is AIMessageChunk


@pytest.mark.filterwarnings(r"ignore:The function `load` is in beta")
def test_stream_chunks_serialise_as_plain_chunks(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    script(fp, "{a: 1")
    chunks = list(llm.bind_tools([add]).stream("2+?"))
    for chunk in (chunks[0], chunks[-1]):
        again = load(dumpd(chunk), allowed_objects="core")
        assert type(again) is AIMessageChunk
        assert again.tool_call_chunks == chunk.tool_call_chunks
