"""A tool call the model made with arguments that are not a JSON object stays in the history
(its ToolMessage answers it by id), sent with ``{}`` as its arguments: Claude takes a tool
call's input only as an object, so litellm cannot translate the raw text, and the whole
conversation (an agent answering the bad call with an error) would be refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from lc_support import add, claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.outbound import to_openai_message
from policyroute.testing import FakeProvider


def _history(args: str | None) -> list[Any]:
    bad = {"type": "invalid_tool_call", "id": "toolu_9", "name": "add", "args": args, "error": "x"}
    return [
        HumanMessage("2+3?"),
        AIMessage("", invalid_tool_calls=[bad]),
        ToolMessage("Error: arguments are not JSON", tool_call_id="toolu_9", status="error"),
    ]


@pytest.mark.parametrize("args", ["{a: 2", "[2, 3]", "5", "", None])
def test_arguments_that_are_not_an_object_are_sent_as_an_empty_one(args: str | None) -> None:
    (call,) = to_openai_message(_history(args)[1])["tool_calls"]
    assert call == {
        "id": "toolu_9",
        "type": "function",
        "function": {"name": "add", "arguments": "{}"},
    }


def test_an_object_that_failed_for_another_reason_is_sent_as_it_is() -> None:
    bad = {"type": "invalid_tool_call", "id": "c1", "name": "add", "args": '{"a": 2}', "error": "?"}
    (call,) = to_openai_message(AIMessage("", invalid_tool_calls=[bad]))["tool_calls"]
    assert call["function"]["arguments"] == '{"a": 2}'


@pytest.mark.parametrize("first", ["claude", "gpt"])
def test_a_conversation_answering_a_bad_call_reaches_either_provider(
    fp: FakeProvider, first: str
) -> None:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="bad-call", first=first)
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting()).bind_tools([add])
    answer = llm.invoke(_history("{a: 2"))
    assert answer.response_metadata["policyroute"]["deployment"] == first
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    sent = json.dumps(recorded.body["messages"])
    assert "toolu_9" in sent
    assert "Error: arguments are not JSON" in sent
