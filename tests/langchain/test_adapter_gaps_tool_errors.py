"""Tool results marked as errors: ``ToolMessage(status="error")`` and Anthropic-format
``tool_result`` blocks with ``is_error: true``.

OpenAI's tool message has no error field: the result goes as its text, which is what the
model reads. Claude's ``tool_result`` has ``is_error``, but litellm (1.106.2) builds it from
the OpenAI-format tool message with ``type``, ``tool_use_id``, ``content`` and
``cache_control`` only (``convert_to_anthropic_tool_result``), and drops a ``tool_result``
block placed in a user turn: there is no field through which the mark reaches Claude. So the
mark is not sent to either provider; the error text is, unchanged, on every candidate. These
tests pin what each wire receives.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from lc_support import add, claude_and_gpt

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

ERROR = "Error: ZeroDivisionError('division by zero')\n Please fix your mistakes."
CALL = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1"}])


def _llm(fp: FakeProvider, first: str) -> ChatPolicyRoute:
    policy = claude_and_gpt(fp.anthropic_base, fp.openai_base, name="lc-tool-errors", first=first)
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


def _history(result: BaseMessage) -> list[BaseMessage]:
    return [HumanMessage("2+3?"), CALL, result]


def _openai_result(body: Any) -> Any:
    return body["messages"][-1]


def _claude_results(body: Any) -> list[Any]:
    turn = body["messages"][-1]
    assert turn["role"] == "user"
    return [b for b in turn["content"] if b["type"] == "tool_result"]


RESULTS = {
    "status": ToolMessage(ERROR, tool_call_id="call_1", status="error"),
    "blocks": ToolMessage([{"type": "text", "text": ERROR}], tool_call_id="call_1", status="error"),
    "anthropic": HumanMessage(
        [{"type": "tool_result", "tool_use_id": "call_1", "content": ERROR, "is_error": True}]
    ),
}


@pytest.mark.parametrize("form", sorted(RESULTS))
def test_an_error_result_reaches_openai_as_its_tool_message(fp: FakeProvider, form: str) -> None:
    _llm(fp, "gpt").bind_tools([add]).invoke(_history(RESULTS[form]))
    (request,) = fp.requests
    sent = _openai_result(request.body)
    assert sent["role"] == "tool"
    assert sent["tool_call_id"] == "call_1"
    text = sent["content"] if isinstance(sent["content"], str) else sent["content"][0]["text"]
    assert text == ERROR
    assert set(sent) == {"role", "tool_call_id", "content"}


@pytest.mark.parametrize("form", sorted(RESULTS))
def test_an_error_result_reaches_claude_as_a_tool_result_without_is_error(
    fp: FakeProvider, form: str
) -> None:
    _llm(fp, "claude").bind_tools([add]).invoke(_history(RESULTS[form]))
    (request,) = fp.requests
    (sent,) = _claude_results(request.body)
    assert sent["tool_use_id"] == "call_1"
    content = sent["content"] if isinstance(sent["content"], str) else sent["content"][0]["text"]
    assert content == ERROR
    # litellm has no field that carries the mark (see the module docstring); when this
    # fails, it has one, and the mark should be sent through it.
    assert "is_error" not in sent


@pytest.mark.asyncio
async def test_a_fallback_sends_the_same_error_text_streamed(fp: FakeProvider) -> None:
    fp.script("claude-sonnet-4-5", Fault.status(500))
    llm = _llm(fp, "claude").bind_tools([add])
    async for _ in llm.astream(_history(RESULTS["status"])):
        pass
    claude, gpt = fp.requests
    (first,) = _claude_results(claude.body)
    assert first["content"] == _openai_result(gpt.body)["content"] == ERROR
