"""``bind_tools(tools, strict=True)`` as each provider receives it.

OpenAI gets ``function.strict: true`` on every tool, with the schema langchain-core makes
strict (``additionalProperties: false``); streamed calls send the same. Claude's tools have
no such field in litellm's Anthropic mapping: litellm drops ``strict`` (the schema keeps its
``additionalProperties: false``), so a strict tool reaches Claude, first or as a fallback,
without an error. ``strict=False`` is sent to OpenAI as such; no ``strict`` sends none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from lc_support import Person, add, claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall

pytestmark = pytest.mark.timeout(30)

PICK = {
    "name": "pick",
    "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
}


def _llm(fp: FakeProvider, first: str) -> ChatPolicyRoute:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="lc-strict", first=first)
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


def _functions(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [tool["function"] for tool in body["tools"]]


def test_strict_tools_reach_openai_with_function_strict(fp: FakeProvider) -> None:
    fp.script("gpt-4o", Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})]))
    answer = _llm(fp, "gpt").bind_tools([add, Person, PICK], strict=True).invoke("2+3?")
    assert isinstance(answer, AIMessage)
    assert answer.tool_calls[0]["args"] == {"a": 2, "b": 3}
    (request,) = fp.requests
    functions = _functions(request.body)
    assert [f["name"] for f in functions] == ["add", "Person", "pick"]
    assert [f["strict"] for f in functions] == [True, True, True]
    assert all(f["parameters"]["additionalProperties"] is False for f in functions)


def test_a_streamed_call_sends_the_same_strict_tools(fp: FakeProvider) -> None:
    chunks = list(_llm(fp, "gpt").bind_tools([add], strict=True).stream("2+3?"))
    assert chunks
    (request,) = fp.requests
    assert request.stream
    assert _functions(request.body)[0]["strict"] is True


@pytest.mark.asyncio
async def test_strict_false_is_sent_and_no_strict_sends_none(fp: FakeProvider) -> None:
    llm = _llm(fp, "gpt")
    await llm.bind_tools([add], strict=False).ainvoke("2+3?")
    await llm.bind_tools([add]).ainvoke("2+3?")
    loose, unset = fp.requests
    assert _functions(loose.body)[0]["strict"] is False
    assert "strict" not in _functions(unset.body)[0]


def test_claude_gets_strict_tools_without_the_field_and_without_an_error(
    fp: FakeProvider,
) -> None:
    fp.script("claude-sonnet-4-5", Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})]))
    answer = _llm(fp, "claude").bind_tools([add, PICK], strict=True).invoke("2+3?")
    assert isinstance(answer, AIMessage)
    assert answer.tool_calls[0]["args"] == {"a": 2, "b": 3}
    (request,) = fp.requests
    assert request.api == "anthropic"
    assert [t["name"] for t in request.body["tools"]] == ["add", "pick"]
    assert all("strict" not in t for t in request.body["tools"])
    assert request.body["tools"][0]["input_schema"]["additionalProperties"] is False


def test_a_fallback_from_openai_to_claude_drops_strict_only_on_claude(fp: FakeProvider) -> None:
    fp.script("gpt-4o", Fault.status(500))
    _llm(fp, "gpt").bind_tools([add], strict=True, tool_choice="add").invoke("2+3?")
    gpt, claude = fp.requests
    assert (gpt.api, claude.api) == ("openai", "anthropic")
    assert _functions(gpt.body)[0]["strict"] is True
    assert "strict" not in claude.body["tools"][0]
    assert claude.body["tool_choice"] == {"type": "tool", "name": "add"}
