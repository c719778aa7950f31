"""OpenAI's legacy function calling in a history: the assistant turn's ``function_call``
(which LangChain keeps in ``additional_kwargs``) is sent with it, so that the function message
after it answers a call instead of following an empty assistant turn."""

from __future__ import annotations

from langchain_core.messages import AIMessage, FunctionMessage, HumanMessage

from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.outbound import to_openai_messages
from policyroute.testing import FakeProvider

CALL = {"name": "lookup", "arguments": '{"q": "paris"}'}
HISTORY = [
    HumanMessage("weather?"),
    AIMessage("", additional_kwargs={"function_call": CALL}),
    FunctionMessage(name="lookup", content="sunny"),
]


def test_an_assistant_function_call_is_converted() -> None:
    assert to_openai_messages(HISTORY)[1] == {
        "role": "assistant",
        "content": None,
        "function_call": CALL,
    }


def test_tool_calls_win_over_a_stale_function_call() -> None:
    # A turn with tool calls is answered by tool messages: its function_call is not sent.
    message = AIMessage(
        "",
        tool_calls=[{"id": "c1", "name": "lookup", "args": {}}],
        additional_kwargs={"function_call": CALL},
    )
    converted = to_openai_messages([message])[0]
    assert "function_call" not in converted
    assert converted["tool_calls"][0]["id"] == "c1"


def test_a_function_call_history_reaches_the_provider(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    llm.invoke(HISTORY)
    sent = fp.requests[0].body["messages"]
    assert sent[1]["function_call"] == CALL
    assert sent[2] == {"role": "function", "name": "lookup", "content": "sunny"}
