"""A tool call the model made with arguments that are not a JSON object stays in the history
(its ToolMessage answers it by id). It is sent with the arguments the model wrote to OpenAI's
own API, which takes any text, and with ``{}`` to every other deployment: Claude takes a tool
call's input only as an object, so litellm cannot translate the raw text, and the whole
conversation (an agent answering the bad call with an error) would be refused; servers behind
an OpenAI-compatible api_base may parse it as JSON as well."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from lc_support import add, claude_and_gpt

from policyroute.execution.executor import Executor
from policyroute.execution.hooks import NullAccounting
from policyroute.execution.tool_arguments import takes_raw_arguments
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.outbound import to_openai_message, to_openai_messages
from policyroute.policy.loader import load_policy_text
from policyroute.policy.model import ModelSpec
from policyroute.request import Request
from policyroute.testing import FakeProvider


def _history(args: str | None) -> list[Any]:
    bad = {"type": "invalid_tool_call", "id": "toolu_9", "name": "add", "args": args, "error": "x"}
    return [
        HumanMessage("2+3?"),
        AIMessage("", invalid_tool_calls=[bad]),
        ToolMessage("Error: arguments are not JSON", tool_call_id="toolu_9", status="error"),
    ]


@pytest.mark.parametrize("args", ["{a: 2", "[2, 3]", "5", '{"a": 2'])
def test_the_history_keeps_the_arguments_the_model_wrote(args: str) -> None:
    (call,) = to_openai_message(_history(args)[1])["tool_calls"]
    assert call == {
        "id": "toolu_9",
        "type": "function",
        "function": {"name": "add", "arguments": args},
    }


@pytest.mark.parametrize("args", ["", None])
def test_no_arguments_are_an_empty_object(args: str | None) -> None:
    (call,) = to_openai_message(_history(args)[1])["tool_calls"]
    assert call["function"]["arguments"] == "{}"


def test_an_object_that_failed_for_another_reason_is_sent_as_it_is() -> None:
    bad = {"type": "invalid_tool_call", "id": "c1", "name": "add", "args": '{"a": 2}', "error": "?"}
    (call,) = to_openai_message(AIMessage("", invalid_tool_calls=[bad]))["tool_calls"]
    assert call["function"]["arguments"] == '{"a": 2}'


@pytest.mark.parametrize("first", ["claude", "gpt"])
def test_a_conversation_answering_a_bad_call_reaches_either_provider_with_an_object(
    fp: FakeProvider, first: str
) -> None:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="bad-call", first=first)
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting()).bind_tools([add])
    history = _history("{a: 2")
    answer = llm.invoke(history)
    assert answer.response_metadata["policyroute"]["deployment"] == first
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    sent = json.dumps(recorded.body["messages"])
    assert "toolu_9" in sent
    assert "Error: arguments are not JSON" in sent
    assert "{a: 2" not in sent
    # The caller's messages are untouched: the next call may go to OpenAI's own API.
    assert history[1].invalid_tool_calls[0]["args"] == "{a: 2"


POLICY = """
policyroute: 1
name: own-api
models:
  {alias}: {{model: {model}, price: {{input_per_mtok: 1, output_per_mtok: 1}}}}
routes: [{{name: default, to: {alias}}}]
defaults: {{retry: {{attempts: 0}}}}
receipts: {{sink: none}}
"""


@pytest.mark.parametrize(
    ("model", "arguments"),
    [("openai/gpt-4o-mini", "{a: 2"), ("gpt-4o-mini", "{a: 2"), ("gemini/gemini-2.0-flash", "{}")],
)
def test_openais_own_api_gets_the_arguments_as_written(model: str, arguments: str) -> None:
    seen: list[list[dict[str, Any]]] = []

    def completion(**kwargs: Any) -> Any:
        seen.append(kwargs["messages"])
        return litellm.completion(**kwargs, mock_response="5")

    policy = load_policy_text(POLICY.format(alias="m", model=model))
    messages = to_openai_messages(_history("{a: 2"))
    Executor(policy, completion=completion).complete(Request(messages=messages))

    (sent,) = seen
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == arguments
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == "{a: 2"


@pytest.mark.parametrize(
    ("model", "api_base", "raw"),
    [
        ("openai/gpt-4o", None, True),
        ("openai/gpt-4o", "https://api.openai.com/v1", True),
        ("azure/my-gpt-4o", "https://me.openai.azure.com", True),
        ("openai/llama-3", "http://localhost:8000/v1", False),
        ("anthropic/claude-haiku-4-5", None, False),
        ("claude-haiku-4-5", None, False),
        ("bedrock/anthropic.claude-3-7-sonnet", None, False),
        ("gemini/gemini-2.0-flash", None, False),
        ("ollama_chat/llama3.1", None, False),
        ("my-own-model", None, False),
    ],
)
def test_which_deployments_take_the_raw_text(model: str, api_base: str | None, raw: bool) -> None:
    assert takes_raw_arguments(ModelSpec(alias="m", model=model, api_base=api_base)) is raw
