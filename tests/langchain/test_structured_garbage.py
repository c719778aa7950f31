"""with_structured_output when the model answers garbage: every method, every schema kind,
invoke and stream, include_raw on and off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from lc_support import METHODS, SCHEMAS, Person, PersonDict, schema_name
from pydantic import BaseModel

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Step, ToolCall

GARBAGE: dict[str, Step] = {
    "prose": Reply(text="I would rather not."),
    "broken-tool-args": Reply(tool_calls=[ToolCall("Person", "{name: nope")]),
}


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
@pytest.mark.parametrize("strict", [None, True])
@pytest.mark.parametrize("schema", SCHEMAS, ids=["pydantic", "typeddict", "json-schema"])
@pytest.mark.parametrize("method", METHODS)
def test_include_raw_reports_garbage_without_raising(
    llm: ChatPolicyRoute,
    fp: FakeProvider,
    method: Any,
    schema: Any,
    strict: bool | None,
    garbage: str,
) -> None:
    fp.set_default("*", GARBAGE[garbage])
    runnable = llm.with_structured_output(schema, method=method, include_raw=True, strict=strict)
    out = runnable.invoke("who?")
    assert isinstance(out["raw"], AIMessage)
    assert out["parsed"] is None
    assert isinstance(out["parsing_error"], OutputParserException)


@pytest.mark.parametrize("method", METHODS)
def test_garbage_streams_into_parsing_error_too(
    llm: ChatPolicyRoute, fp: FakeProvider, method: Any
) -> None:
    fp.set_default("*", GARBAGE["prose"])
    runnable = llm.with_structured_output(Person, method=method, include_raw=True)
    merged: dict[str, Any] = {}
    for part in runnable.stream("who?"):
        merged.update({k: v for k, v in part.items() if k != "raw"})
    assert merged["parsed"] is None
    assert isinstance(merged["parsing_error"], OutputParserException)


def test_function_calling_without_include_raw_raises_on_garbage(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    # A forced tool that was not (validly) called used to come back as None, which a caller
    # reads as an answer.
    fp.set_default("*", GARBAGE["broken-tool-args"])
    with pytest.raises(OutputParserException, match="not a JSON object"):
        llm.with_structured_output(Person).invoke("who?")
    fp.set_default("*", GARBAGE["prose"])
    with pytest.raises(OutputParserException, match="without calling 'PersonDict'"):
        asyncio.run(llm.with_structured_output(PersonDict).ainvoke("who?"))


@pytest.mark.parametrize("schema", SCHEMAS, ids=["pydantic", "typeddict", "json-schema"])
@pytest.mark.parametrize("method", METHODS)
def test_good_answers_parse_in_every_method(
    llm: ChatPolicyRoute, fp: FakeProvider, method: Any, schema: Any
) -> None:
    answer = {"name": "Ada", "age": 36}
    fp.set_default(
        "*",
        Reply(tool_calls=[ToolCall(schema_name(schema), answer)])
        if method == "function_calling"
        else Reply(text='{"name": "Ada", "age": 36}'),
    )
    out = llm.with_structured_output(schema, method=method, include_raw=True).invoke("who?")
    parsed = out["parsed"]
    assert out["parsing_error"] is None
    assert (parsed.model_dump() if isinstance(parsed, BaseModel) else parsed) == answer
    streamed = list(llm.with_structured_output(schema, method=method).stream("who?"))
    last = streamed[-1]
    assert (last.model_dump() if isinstance(last, BaseModel) else last) == answer


def test_strict_reaches_the_provider(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(tool_calls=[ToolCall("Person", {"name": "Ada", "age": 36})]))
    llm.with_structured_output(Person, strict=True).invoke("who?")
    body = fp.requests[-1].body
    assert isinstance(body, dict)
    assert body["tools"][0]["function"]["strict"] is True
    fp.set_default("*", Reply(text='{"name": "Ada", "age": 36}'))
    llm.with_structured_output(Person, method="json_schema", strict=True).invoke("who?")
    body = fp.requests[-1].body
    assert isinstance(body, dict)
    assert body["response_format"]["json_schema"]["strict"] is True


def test_garbage_astreams_into_parsing_error_and_raw_is_whole(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("*", GARBAGE["prose"])
    runnable = llm.with_structured_output(Person, method="json_schema", include_raw=True)

    async def parts() -> list[dict[str, Any]]:
        return [part async for part in runnable.astream("who?")]

    merged: Any = None
    for part in asyncio.run(parts()):
        merged = part if merged is None else merged + part
    assert merged["raw"].content == "I would rather not."
    assert merged["parsed"] is None
    assert isinstance(merged["parsing_error"], OutputParserException)
