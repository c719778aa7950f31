"""A call asking for several choices (``n``): every choice the provider answered (and was paid
for) reaches ``generate``, and a stream, which carries one message, is the first choice alone
rather than the choices' deltas interleaved."""

from __future__ import annotations

import asyncio
import json

from langchain_core.messages import AIMessage, HumanMessage

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, RawStream


def test_generate_returns_one_generation_per_choice(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    result = llm.generate([[HumanMessage("tell me")]], n=3)
    assert fp.requests[0].body["n"] == 3
    generations = result.generations[0]
    assert len(generations) == 3
    for generation in generations:
        message = generation.message
        assert isinstance(message, AIMessage)
        assert message.content == "Hello from fake-fake-fast: tell me"
        assert generation.generation_info == {"finish_reason": "stop"}
        assert message.response_metadata["finish_reason"] == "stop"
        assert message.response_metadata["policyroute"]["route"] == "default"
        assert message.usage_metadata is not None


def test_invoke_with_several_choices_answers_the_first(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    assert llm.invoke("tell me", n=2).content == "Hello from fake-fake-fast: tell me"
    answer = asyncio.run(llm.ainvoke("tell me", n=2))
    assert answer.content == "Hello from fake-fake-fast: tell me"


def test_a_stream_of_several_choices_is_the_first_choice(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    chunks = list(llm.stream("tell me", n=2))
    assert fp.requests[0].body["n"] == 2
    assert "".join(str(c.content) for c in chunks) == "Hello from fake-fake-fast: tell me"
    # Usage and metadata still arrive once, on the last chunk.
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert chunks[-1].response_metadata["finish_reason"] == "stop"

    async def astream() -> str:
        return "".join([str(c.content) async for c in llm.astream("tell me", n=2)])

    assert asyncio.run(astream()) == "Hello from fake-fake-fast: tell me"


def _delta(index: int, content: str, finish: str | None = None) -> str:
    choice = {"index": index, "delta": {"content": content}, "finish_reason": finish}
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "fake-fast",
            "choices": [choice],
        }
    )


def test_a_stream_whose_one_choice_is_not_numbered_0_keeps_its_content(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    # The stream follows the first choice it sees, whatever its number.
    fp.script("fake-fast", RawStream([_delta(1, "only "), _delta(1, "choice", "stop")], done=True))
    chunks = list(llm.stream("hi"))
    assert "".join(str(c.content) for c in chunks) == "only choice"
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
