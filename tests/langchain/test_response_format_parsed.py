"""``invoke(..., response_format=PydanticClass)`` gives ``additional_kwargs["parsed"]``, as
``ChatOpenAI`` does: on every entry point, streamed (on the last chunk) and not."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from pydantic import BaseModel

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, ToolCall

HUMAN = HumanMessage("who?")


class Person(BaseModel):
    name: str
    age: int


def _merged(chunks: list[AIMessageChunk]) -> BaseMessage:
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    return whole


async def _astream(llm: Any, **kw: Any) -> BaseMessage:
    return _merged([c async for c in llm.astream("who?", **kw)])


CALLS = {
    "invoke": lambda llm, **kw: llm.invoke("who?", **kw),
    "ainvoke": lambda llm, **kw: asyncio.run(llm.ainvoke("who?", **kw)),
    "batch": lambda llm, **kw: llm.batch(["who?"], **kw)[0],
    "generate": lambda llm, **kw: llm.generate([[HUMAN]], **kw).generations[0][0].message,
    "stream": lambda llm, **kw: _merged(list(llm.stream("who?", **kw))),
    "astream": lambda llm, **kw: asyncio.run(_astream(llm, **kw)),
}


def _call(llm: ChatPolicyRoute, how: str, **kw: Any) -> BaseMessage:
    if how == "batch":
        return CALLS[how](llm.bind(**kw))
    return CALLS[how](llm, **kw)


@pytest.mark.parametrize("how", list(CALLS))
def test_the_answer_is_parsed_into_the_class(
    llm: ChatPolicyRoute, fp: FakeProvider, how: str
) -> None:
    fp.script("fake-fast", Reply(text='{"name": "Ada", "age": 36}'))
    message = _call(llm, how, response_format=Person)
    assert message.additional_kwargs["parsed"] == Person(name="Ada", age=36)
    assert json.loads(str(message.content)) == {"name": "Ada", "age": 36}
    sent = fp.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Person"


def test_a_model_that_streams_by_default_parses_too(fp: FakeProvider) -> None:
    from lc_support import policy_text

    llm = ChatPolicyRoute(policy=policy_text(fp.openai_base), streaming=True)
    fp.script("fake-fast", Reply(text='{"name": "Ada", "age": 36}'))
    assert llm.invoke("who?", response_format=Person).additional_kwargs["parsed"].age == 36


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_an_answer_without_text_parses_to_none(
    llm: ChatPolicyRoute, fp: FakeProvider, how: str
) -> None:
    fp.script("fake-fast", Reply(tool_calls=[ToolCall("lookup", {"q": "Ada"})]))
    message = _call(llm, how, response_format=Person)
    assert message.additional_kwargs["parsed"] is None


@pytest.mark.parametrize("how", ["invoke", "ainvoke", "stream", "astream"])
def test_an_answer_that_does_not_fit_raises_a_parser_error_with_the_text(
    llm: ChatPolicyRoute, fp: FakeProvider, how: str
) -> None:
    fp.script("fake-fast", Reply(text='{"name": "Ada"}'))
    with pytest.raises(
        OutputParserException, match="does not fit Person: age: Field required"
    ) as e:
        _call(llm, how, response_format=Person)
    assert e.value.llm_output == '{"name": "Ada"}'


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_a_response_format_dict_leaves_additional_kwargs_alone(
    llm: ChatPolicyRoute, fp: FakeProvider, how: str
) -> None:
    fp.script("fake-fast", Reply(text='{"name": "Ada", "age": 36}'))
    message = _call(llm, how, response_format={"type": "json_object"})
    assert "parsed" not in message.additional_kwargs
    fp.script("fake-fast", Reply(text='{"name": "Ada", "age": 36}'))
    assert "parsed" not in _call(llm, how).additional_kwargs
