"""Structured output answered with a refusal raises ``ModelRefusalError`` with the refusal's
text (as langchain-openai raises its ``OpenAIRefusalError``), from every method and entry
point, instead of LangChain's "Invalid json output" about an empty answer. With
``include_raw=True`` it is the ``parsing_error``, the raw message kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from lc_support import PERSON_SCHEMA, Person

from policyroute import ModelRefusalError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

REFUSAL = "I'm sorry, I can't help with that request."
METHODS = ["json_schema", "json_mode", "function_calling"]


def _invoke(runnable: Runnable[Any, Any]) -> Any:
    return runnable.invoke("who is Ada?")


def _stream(runnable: Runnable[Any, Any]) -> Any:
    return list(runnable.stream("who is Ada?"))


def _ainvoke(runnable: Runnable[Any, Any]) -> Any:
    return asyncio.run(runnable.ainvoke("who is Ada?"))


def _astream(runnable: Runnable[Any, Any]) -> Any:
    async def collect() -> list[Any]:
        return [part async for part in runnable.astream("who is Ada?")]

    return asyncio.run(collect())


ENTRY_POINTS: dict[str, Callable[[Runnable[Any, Any]], Any]] = {
    "invoke": _invoke,
    "stream": _stream,
    "ainvoke": _ainvoke,
    "astream": _astream,
}


@pytest.fixture
def refusing(fp: FakeProvider) -> FakeProvider:
    fp.set_default("*", Reply(refusal=REFUSAL, usage=Usage(prompt=20, completion=9)))
    return fp


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("method", METHODS)
def test_a_refusal_raises_the_typed_error(
    llm: ChatPolicyRoute, refusing: FakeProvider, method: Any, entry: str
) -> None:
    runnable = llm.with_structured_output(Person, method=method)
    with pytest.raises(ModelRefusalError) as caught:
        ENTRY_POINTS[entry](runnable)
    error = caught.value
    assert error.refusal == REFUSAL
    assert error.schema == "Person"
    assert str(error) == f"the model refused to answer as Person: {REFUSAL}"
    assert isinstance(error, ValueError)  # a retry meets the same refusal
    assert not isinstance(error, OutputParserException)


def test_a_dict_schema_refused_names_its_title(
    llm: ChatPolicyRoute, refusing: FakeProvider
) -> None:
    with pytest.raises(ModelRefusalError, match="as Person: I'm sorry") as caught:
        llm.with_structured_output(PERSON_SCHEMA, method="json_schema", strict=True).invoke("x")
    assert caught.value.refusal == REFUSAL


@pytest.mark.parametrize("entry", ["invoke", "ainvoke"])
@pytest.mark.parametrize("method", METHODS)
def test_include_raw_sets_parsing_error_and_keeps_raw(
    llm: ChatPolicyRoute, refusing: FakeProvider, method: Any, entry: str
) -> None:
    runnable = llm.with_structured_output(Person, method=method, include_raw=True)
    out = ENTRY_POINTS[entry](runnable)
    assert out["parsed"] is None
    assert isinstance(out["parsing_error"], ModelRefusalError)
    assert out["parsing_error"].refusal == REFUSAL
    assert isinstance(out["raw"], AIMessage)
    assert out["raw"].additional_kwargs["refusal"] == REFUSAL
    assert out["raw"].usage_metadata is not None
    assert out["raw"].usage_metadata["output_tokens"] == 9


@pytest.mark.parametrize("entry", ["stream", "astream"])
def test_include_raw_streamed_ends_with_the_refusal_error(
    llm: ChatPolicyRoute, refusing: FakeProvider, entry: str
) -> None:
    runnable = llm.with_structured_output(Person, method="json_schema", include_raw=True)
    parts = ENTRY_POINTS[entry](runnable)
    raw = [p["raw"] for p in parts if "raw" in p]
    merged = raw[0]
    for chunk in raw[1:]:
        merged = merged + chunk
    assert merged.additional_kwargs["refusal"] == REFUSAL
    (end,) = [p for p in parts if "parsing_error" in p]
    assert end["parsed"] is None
    assert isinstance(end["parsing_error"], ModelRefusalError)
    assert end["parsing_error"].refusal == REFUSAL


def test_an_answer_still_parses(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text='{"name": "Ada", "age": 36}'))
    runnable = llm.with_structured_output(Person, method="json_schema")
    assert runnable.invoke("x") == Person(name="Ada", age=36)
    assert _stream(runnable)[-1] == Person(name="Ada", age=36)
