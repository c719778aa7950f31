"""ChatPolicyRoute refuses a malformed call with a RequestError before anything is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from policyroute.errors import RequestError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

BAD: list[tuple[dict[str, Any], str]] = [
    ({"n": "two"}, "'n'"),
    ({"max_tokens": "lots"}, "'max_tokens'"),
    ({"stop": [1, 2]}, "'stop'"),
    ({"response_format": 5}, "'response_format'"),
    ({"tools": [{"type": "function", "function": {"name": ""}}]}, "'tools[0].function.name'"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD)
def test_invoke_and_stream_refuse_a_malformed_call(
    llm: ChatPolicyRoute, fp: FakeProvider, kwargs: dict[str, Any], field: str
) -> None:
    fp.set_default("*", Reply(text="ok"))
    with pytest.raises(RequestError) as info:
        llm.invoke("hi", **kwargs)
    assert field in str(info.value)
    with pytest.raises(RequestError):
        list(llm.stream("hi", **kwargs))
    with pytest.raises(RequestError):
        llm.bind(**kwargs).invoke("hi")
    assert fp.requests == []


@pytest.mark.parametrize(("kwargs", "field"), BAD[:2])
def test_ainvoke_and_astream_refuse_a_malformed_call(
    llm: ChatPolicyRoute, fp: FakeProvider, kwargs: dict[str, Any], field: str
) -> None:
    async def main() -> None:
        with pytest.raises(RequestError, match=field):
            await llm.ainvoke("hi", **kwargs)
        with pytest.raises(RequestError, match=field):
            async for _ in llm.astream("hi", **kwargs):
                pass

    asyncio.run(main())
    assert fp.requests == []


def test_a_text_block_without_text_is_refused(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    message = HumanMessage(content=[{"type": "text", "text": 5}])  # type: ignore[list-item]
    with pytest.raises(RequestError, match=r"messages\[0\]\.content\[0\]\.text"):
        llm.invoke([message])
    assert fp.requests == []


def test_well_formed_parameters_reach_the_provider(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text="ok"))
    answer = llm.invoke("hi", max_tokens=7, stop=["\n"], temperature=0.5, n=1)
    assert answer.content == "ok"
    sent = fp.requests[0].body
    assert (sent["max_tokens"], sent["stop"], sent["temperature"]) == (7, ["\n"], 0.5)
