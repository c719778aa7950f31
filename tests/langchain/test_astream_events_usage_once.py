"""``astream_events`` (v2) over a chain holding the model: one chunk carries the call's usage
and one its response metadata, whatever shape the provider's stream had (usage sent twice, a
finish reason sent twice, the one choice numbered 1), and they agree with the run's end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(20)

USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def _chunk(index: int, usage: dict[str, int] | None = None, **delta: Any) -> str:
    finish = delta.pop("finish_reason", None)
    choices = [] if usage else [{"index": index, "delta": delta, "finish_reason": finish}]
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return json.dumps({**body, "choices": choices, **({"usage": usage} if usage else {})})


def _stream(index: int, *, usage_twice: bool = False, finish_twice: bool = False) -> Fault:
    events = [
        _chunk(index, role="assistant", content=""),
        _chunk(index, content="hello "),
        _chunk(index, content="world", finish_reason="stop"),
    ]
    events += [_chunk(index, finish_reason="stop")] if finish_twice else []
    events += [_chunk(0, USAGE)] * (2 if usage_twice else 1)
    return Fault.raw_stream(*events, done=True)


SHAPES = {
    "plain": _stream(0),
    "usage twice": _stream(0, usage_twice=True),
    "finish twice": _stream(0, finish_twice=True),
    "choice numbered 1": _stream(1),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_one_chunk_carries_the_usage_and_one_the_metadata(
    fp: FakeProvider, llm: ChatPolicyRoute, shape: str
) -> None:
    fp.script("fake-fast", SHAPES[shape])
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | llm | StrOutputParser()

    async def events() -> list[dict[str, Any]]:
        return [e async for e in chain.astream_events({"q": "hi"}, version="v2")]

    seen = asyncio.run(events())

    chunks = [e["data"]["chunk"] for e in seen if e["event"] == "on_chat_model_stream"]
    (end,) = [e["data"]["output"] for e in seen if e["event"] == "on_chat_model_end"]
    assert "".join(c.content for c in chunks) == "hello world" == end.content
    (with_usage,) = [c for c in chunks if c.usage_metadata]
    assert with_usage.usage_metadata == end.usage_metadata
    assert end.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    (with_metadata,) = [c for c in chunks if c.response_metadata]
    assert with_metadata.response_metadata["finish_reason"] == "stop"
    assert seen[-1]["event"] == "on_chain_end"
    assert seen[-1]["data"]["output"] == "hello world"
