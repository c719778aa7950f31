"""An empty assistant turn in the history (a blank or cancelled answer) is sent as OpenAI
accepts it: ``content: ""``, never a turn with neither content nor a call, which OpenAI
refuses with "Invalid value for 'content': expected a string, got null"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from lc_support import claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.outbound import to_openai_message
from policyroute.testing import FakeProvider

EPHEMERAL = {"type": "ephemeral"}


@pytest.mark.parametrize(
    "turn",
    [
        AIMessage(""),
        AIMessage([]),
        AIMessage([{"type": "text", "text": ""}]),
        AIMessage([{"type": "text", "text": "", "cache_control": EPHEMERAL}]),
        AIMessage([{"type": "reasoning", "reasoning": "unsigned, not sent back"}]),
    ],
    ids=["empty-string", "empty-list", "empty-text-block", "empty-marked-text", "no-text"],
)
def test_an_empty_assistant_turn_has_empty_text_content(turn: AIMessage) -> None:
    assert to_openai_message(turn)["content"] == ""


def test_a_turn_that_only_calls_tools_still_has_no_content() -> None:
    turn = AIMessage("", tool_calls=[{"id": "c1", "name": "f", "args": {}}])
    assert to_openai_message(turn)["content"] is None
    legacy = AIMessage("", additional_kwargs={"function_call": {"name": "f", "arguments": "{}"}})
    assert to_openai_message(legacy)["content"] is None


def test_openai_receives_an_empty_turn_as_empty_text(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    llm.invoke([HumanMessage("a"), AIMessage(""), HumanMessage("b")])
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    messages: list[dict[str, Any]] = recorded.body["messages"]
    assert messages[1] == {"role": "assistant", "content": ""}


def test_claude_still_answers_a_history_with_an_empty_turn(fp: FakeProvider) -> None:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="empty-turn")
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    answer = llm.invoke([HumanMessage("a"), AIMessage(""), HumanMessage("b")])
    assert answer.response_metadata["policyroute"]["deployment"] == "claude"
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    roles = [m["role"] for m in recorded.body["messages"]]
    # The empty turn keeps its place between the user's (litellm gives it placeholder text)
    # instead of vanishing and leaving two user turns in a row.
    assert roles == ["user", "assistant", "user"]
    assert all(m["content"] for m in recorded.body["messages"])
