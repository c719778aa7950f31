"""Forced tool choice and extended thinking, per deployment tried.

Anthropic refuses a request that forces a tool (``tool_choice`` ``any`` or a named tool) while
extended thinking is on ("Thinking may not be enabled when tool_choice forces tool use").
langchain-anthropic's ``with_structured_output`` then offers the schema's tool without forcing
it and raises ``OutputParserException`` when the answer does not call it. policyroute decides
per attempt: a Claude deployment that thinks (``thinking`` in the call, or ``reasoning_effort``,
which litellm turns into thinking) gets ``auto``; every other deployment of the route, tried
after a fallback, still gets the forced choice.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from lc_support import Person, bodies, claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall

CLAUDE = "claude-sonnet-4-5"
GPT = "gpt-4o"
THINKING = {"type": "enabled", "budget_tokens": 1024}


def route(fp: FakeProvider, claude_params: str = "", **kwargs: Any) -> ChatPolicyRoute:
    """Claude, then GPT, on one route; no retries and no circuit breaker."""
    policy = claude_and_gpt(
        fp.anthropic_base, fp.openai_base, name="forced-thinking", claude_params=claude_params
    )
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting(), max_tokens=4000, **kwargs)


CALLS_PERSON = Reply(tool_calls=[ToolCall("Person", {"name": "Ada", "age": 36})])


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_structured_output_on_a_thinking_claude_is_not_forced(fp: FakeProvider, how: str) -> None:
    fp.script(CLAUDE, CALLS_PERSON)
    runnable = route(fp, model_kwargs={"thinking": THINKING}).with_structured_output(Person)
    if how == "invoke":
        result = runnable.invoke("who?")
    else:
        *_, result = runnable.stream("who?")
    assert result == Person(name="Ada", age=36)
    body = bodies(fp)[CLAUDE]
    assert body["thinking"] == THINKING
    # with_structured_output asks for one call (parallel_tool_calls=False), as ChatOpenAI does.
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert [tool["name"] for tool in body["tools"]] == ["Person"]


@pytest.mark.asyncio
async def test_a_thinking_answer_without_the_call_is_a_parsing_error(fp: FakeProvider) -> None:
    fp.script(CLAUDE, Reply(text="Ada, 36."))
    llm = route(fp, model_kwargs={"thinking": THINKING})
    with pytest.raises(OutputParserException, match="without calling 'Person'"):
        await llm.with_structured_output(Person).ainvoke("who?")
    fp.script(CLAUDE, Reply(text="Ada, 36."))
    out = await llm.with_structured_output(Person, include_raw=True).ainvoke("who?")
    assert out["parsed"] is None
    assert isinstance(out["parsing_error"], OutputParserException)


def test_reasoning_effort_on_claude_unforces_there_and_the_fallback_is_forced(
    fp: FakeProvider,
) -> None:
    fp.script(CLAUDE, Fault.status(503))
    llm = route(fp, claude_params="params: {reasoning_effort: low}")
    assert llm.with_structured_output(Person).invoke("who?").name
    sent = bodies(fp)
    assert sent[CLAUDE]["thinking"]["type"] == "enabled"  # litellm's mapping of the effort
    assert sent[CLAUDE]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert sent[GPT]["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    assert sent[GPT]["parallel_tool_calls"] is False
    assert "reasoning_effort" not in sent[GPT]


@pytest.mark.parametrize(
    "choice", ["any", "required", "add", True, {"type": "tool", "name": "add"}]
)
def test_bind_tools_forcing_a_thinking_claude_sends_auto(fp: FakeProvider, choice: Any) -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    fp.script(CLAUDE, Fault.status(503))
    llm = route(fp, claude_params="params: {reasoning_effort: low}")
    llm.bind_tools([add], tool_choice=choice, parallel_tool_calls=False).invoke("2+3")
    sent = bodies(fp)
    assert sent[CLAUDE]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert sent[GPT]["tool_choice"] in (
        "required",
        {"type": "function", "function": {"name": "add"}},
    )


@pytest.mark.parametrize(
    "thinking", [None, {"type": "disabled"}], ids=["no-thinking", "thinking-disabled"]
)
def test_claude_without_thinking_is_still_forced(fp: FakeProvider, thinking: Any) -> None:
    extra = {} if thinking is None else {"model_kwargs": {"thinking": thinking}}
    route(fp, **extra).with_structured_output(Person).invoke("who?")
    assert bodies(fp)[CLAUDE]["tool_choice"] == {
        "type": "tool",
        "name": "Person",
        "disable_parallel_tool_use": True,
    }


def test_json_schema_with_thinking_is_left_to_litellm(fp: FakeProvider) -> None:
    route(fp, model_kwargs={"thinking": THINKING}).with_structured_output(
        Person, method="json_schema"
    ).invoke("who?")
    body = bodies(fp)[CLAUDE]
    assert "tool_choice" not in body
    assert body["output_format"]["type"] == "json_schema"
