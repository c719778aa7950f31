"""bind_tools on a route of two providers: provider tools, tool names, parallel calls, and
every form of ``tool_choice`` as each deployment tried receives it, after a fallback too."""

from __future__ import annotations

from typing import Any

import pytest
from lc_support import add, bodies, claude_and_gpt, shout

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

CLAUDE = "claude-sonnet-4-5"
GPT = "gpt-4o"


def two_providers(fp: FakeProvider, first: str = "claude") -> ChatPolicyRoute:
    """Claude (Anthropic wire) and GPT (OpenAI wire) on one route, ``first`` tried first;
    no retries and no circuit breaker, so one scripted failure falls over once."""
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="tools-two-wires", first=first)
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def test_an_anthropic_server_tool_reaches_claude_as_itself(fp: FakeProvider) -> None:
    two_providers(fp).bind_tools([add, WEB_SEARCH]).invoke("news?")
    sent = bodies(fp)[CLAUDE]["tools"]
    assert sent[1] == WEB_SEARCH  # not a custom tool named web_search with no parameters
    assert sent[0]["name"] == "add"


def test_an_openai_builtin_tool_is_bound_and_passed_on(fp: FakeProvider) -> None:
    llm = two_providers(fp, first="gpt").bind_tools([add, {"type": "web_search_preview"}])
    llm.invoke("news?")
    assert bodies(fp)[GPT]["tools"][1] == {"type": "web_search_preview"}


def test_a_server_tool_can_be_forced_by_its_name(fp: FakeProvider) -> None:
    two_providers(fp).bind_tools([add, WEB_SEARCH], tool_choice="web_search").invoke("news?")
    assert bodies(fp)[CLAUDE]["tool_choice"] == {"type": "tool", "name": "web_search"}


# Each LangChain form of tool_choice, as the Anthropic and the OpenAI wire receive it.
CHOICES: list[tuple[Any, Any, Any]] = [
    ("auto", {"type": "auto"}, "auto"),
    ("none", {"type": "none"}, "none"),
    ("any", {"type": "any"}, "required"),
    ("required", {"type": "any"}, "required"),
    ("add", {"type": "tool", "name": "add"}, {"type": "function", "function": {"name": "add"}}),
    (True, {"type": "any"}, "required"),
    (
        {"type": "function", "function": {"name": "add"}},
        {"type": "tool", "name": "add"},
        {"type": "function", "function": {"name": "add"}},
    ),
    (
        {"type": "tool", "name": "add"},
        {"type": "tool", "name": "add"},
        {"type": "function", "function": {"name": "add"}},
    ),
    ({"type": "any"}, {"type": "any"}, "required"),
]


@pytest.mark.parametrize(("choice", "anthropic", "openai"), CHOICES)
def test_tool_choice_reaches_each_deployment_tried_in_its_form(
    fp: FakeProvider, choice: Any, anthropic: Any, openai: Any
) -> None:
    fp.script(CLAUDE, Fault.status(503))
    two_providers(fp).bind_tools([add, shout], tool_choice=choice).invoke("2 plus 3")
    sent = bodies(fp)
    assert sent[CLAUDE]["tool_choice"] == anthropic
    assert sent[GPT]["tool_choice"] == openai


@pytest.mark.parametrize(("choice", "anthropic"), [(None, "auto"), ("any", "any")])
@pytest.mark.asyncio
async def test_parallel_tool_calls_false_reaches_both_providers(
    fp: FakeProvider, choice: Any, anthropic: str
) -> None:
    fp.script(CLAUDE, Fault.status(503))
    runnable = two_providers(fp).bind_tools(
        [add, shout], tool_choice=choice, parallel_tool_calls=False
    )
    await runnable.ainvoke("2 plus 3")
    sent = bodies(fp)
    assert sent[CLAUDE]["tool_choice"] == {"type": anthropic, "disable_parallel_tool_use": True}
    assert sent[GPT]["parallel_tool_calls"] is False


def test_a_function_tool_in_the_responses_form_is_bound(fp: FakeProvider) -> None:
    flat = {
        "type": "function",
        "name": "lookup",
        "description": "Look up a word.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
    }
    two_providers(fp).bind_tools([flat], tool_choice="lookup").invoke("define cat")
    sent = bodies(fp)[CLAUDE]
    assert sent["tools"][0]["name"] == "lookup"
    assert sent["tools"][0]["input_schema"] == flat["parameters"]
    assert sent["tool_choice"] == {"type": "tool", "name": "lookup"}
