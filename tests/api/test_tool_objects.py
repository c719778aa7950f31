"""Tools given as pydantic objects (the OpenAI SDK's ``ChatCompletionFunctionTool``), which
``litellm.completion`` takes and sends as their ``model_dump()``: ``policyroute.completion``
takes them too, routes them as tools and sends the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.chat import ChatCompletionFunctionTool
from openai.types.shared import FunctionDefinition

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.testing import FakeProvider, Reply, ToolCall

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: tool-objects
models:
  o:
    model: openai/gpt-4o-mini
    api_base: {base}
    api_key: ${{PR_TOOL_OBJ_KEY}}
routes:
  - name: tools
    when: {{has_tools: true}}
    to: o
  - name: default
    to: o
receipts: {{sink: none}}
defaults: {{max_tokens: 50, retry: {{attempts: 0}}}}
"""
ASK = [{"role": "user", "content": "look it up"}]
LOOKUP = ChatCompletionFunctionTool(
    type="function",
    function=FunctionDefinition(
        name="lookup", parameters={"type": "object", "properties": {"q": {"type": "string"}}}
    ),
)


@pytest.fixture
def policy(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PR_TOOL_OBJ_KEY", "sk-test")
    provider.reset()
    provider.set_default("gpt-4o-mini", Reply(tool_calls=[ToolCall("lookup", {"q": "x"})]))
    clear_cache()
    yield POLICY.format(base=provider.openai_base)
    clear_cache()
    provider.reset()


def test_a_pydantic_tool_is_routed_and_sent_as_litellm_sends_it(
    provider: FakeProvider, policy: str
) -> None:
    answer = policyroute.completion(policy=policy, messages=ASK, tools=[LOOKUP])

    assert answer.choices[0].message.tool_calls[0].function.name == "lookup"
    assert answer._hidden_params["policyroute"]["route"] == "tools"  # has_tools saw it
    (sent,) = provider.requests[-1].body["tools"]
    assert sent == LOOKUP.model_dump()


def test_the_async_entry_takes_them_too(provider: FakeProvider, policy: str) -> None:
    async def run() -> Any:
        return await policyroute.acompletion(policy=policy, messages=ASK, tools=(LOOKUP,))

    answer = asyncio.run(run())

    assert answer.choices[0].message.tool_calls[0].function.name == "lookup"
    assert provider.requests[-1].body["tools"] == [LOOKUP.model_dump()]


def test_a_pydantic_tool_keeps_the_tool_checks(provider: FakeProvider, policy: str) -> None:
    nameless = ChatCompletionFunctionTool(type="function", function=FunctionDefinition(name=""))
    with pytest.raises(RequestError, match=r"'tools\[0\]\.function\.name'"):
        policyroute.completion(policy=policy, messages=ASK, tools=[nameless])
    assert provider.requests == []
