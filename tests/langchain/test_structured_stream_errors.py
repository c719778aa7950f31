"""A structured-output stream (no ``include_raw``) whose answer ends unparsable raises, at its
end, the error ``invoke`` raises; a parsable answer still streams its partial objects."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from lc_support import METHODS, SCHEMA_IDS, SCHEMAS, Person, schema_name
from pydantic import BaseModel

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Step, ToolCall


def garbage(kind: str, schema: Any) -> Step:
    if kind == "prose":
        return Reply(text="I would rather not.")
    if kind == "broken-json":
        return Reply(text='{"name": "Ada", age: 36}')
    return Reply(tool_calls=[ToolCall(schema_name(schema), '{"name": "Ada", age: 36}')])


def invoke_error(runnable: Any) -> Exception:
    with pytest.raises(OutputParserException) as raised:
        runnable.invoke("who?")
    return raised.value


@pytest.mark.parametrize("kind", ["prose", "broken-json", "broken-tool-args"])
@pytest.mark.parametrize("schema", SCHEMAS, ids=SCHEMA_IDS)
@pytest.mark.parametrize("method", METHODS)
def test_a_garbage_stream_raises_what_invoke_raises(
    llm: ChatPolicyRoute, fp: FakeProvider, method: Any, schema: Any, kind: str
) -> None:
    fp.set_default("*", garbage(kind, schema))
    runnable = llm.with_structured_output(schema, method=method)
    expected = invoke_error(runnable)

    streamed: list[Any] = []
    with pytest.raises(OutputParserException) as raised:
        streamed.extend(runnable.stream("who?"))
    assert str(raised.value) == str(expected)

    async def astreamed() -> None:
        async for part in runnable.astream("who?"):
            streamed.append(part)

    with pytest.raises(OutputParserException) as araised:
        asyncio.run(astreamed())
    assert str(araised.value) == str(expected)


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_json_of_the_wrong_shape_raises_at_the_stream_end(
    llm: ChatPolicyRoute, fp: FakeProvider, method: Any
) -> None:
    # Partial parsing reads every prefix of {"name": "Ada"} as a Person still missing
    # fields; only the whole answer shows that ``age`` never came.
    fp.set_default("*", Reply(text='{"name": "Ada"}'))
    runnable = llm.with_structured_output(Person, method=method)
    expected = invoke_error(runnable)
    with pytest.raises(OutputParserException) as raised:
        list(runnable.stream("who?"))
    assert str(raised.value) == str(expected)


@pytest.mark.parametrize("schema", SCHEMAS, ids=SCHEMA_IDS)
@pytest.mark.parametrize("method", METHODS)
def test_a_good_answer_still_streams_partial_objects(
    llm: ChatPolicyRoute, fp: FakeProvider, method: Any, schema: Any
) -> None:
    answer = {"name": "Ada Lovelace", "age": 36}
    text = '{"name": "Ada Lovelace", "age": 36}'
    fp.set_default(
        "*",
        Reply(tool_calls=[ToolCall(schema_name(schema), text)])
        if method == "function_calling"
        else Reply(text=text),
    )
    runnable = llm.with_structured_output(schema, method=method)

    def plain(part: Any) -> Any:
        return part.model_dump() if isinstance(part, BaseModel) else part

    streamed = [plain(part) for part in runnable.stream("who?")]
    assert streamed[-1] == answer == plain(runnable.invoke("who?"))
    if schema is not Person:  # a pydantic object appears only once complete
        assert len(streamed) > 1
    assert all(a != b for a, b in itertools.pairwise(streamed))

    async def astreamed() -> list[Any]:
        return [plain(part) async for part in runnable.astream("who?")]

    assert asyncio.run(astreamed()) == streamed
