"""Gemini's own tools, written by their key (``{"google_search": {}}``), bind like any provider
tool: ``bind_tools`` passes them on unchanged and litellm sends them to Gemini as its tools.
LangChain's converter alone refuses them with a bare ``ValueError``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.tool_choice import is_provider_tool

POLICY = """
policyroute: 1
name: gemini-tools
models:
  flash:
    model: gemini/gemini-2.5-flash
    api_key: ${PR_GEMINI_TOOLS_KEY}
routes:
  - name: default
    to: flash
receipts: {sink: none}
"""

ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "It is sunny."}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9},
    "modelVersion": "gemini-2.5-flash",
}


@pytest.mark.parametrize("tool", [{"google_search": {}}, {"code_execution": {}}])
def test_a_gemini_tool_by_its_key_reaches_gemini(
    tool: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PR_GEMINI_TOOLS_KEY", "fake-gemini-key-0123456789")
    model = ChatPolicyRoute(policy=POLICY).bind_tools([tool])
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(url__regex=r"https://generativelanguage\.googleapis\.com/.*").mock(
            return_value=httpx.Response(200, json=ANSWER)
        )
        answer = model.invoke("weather in Paris today?")

    assert answer.content == "It is sunny."
    sent = json.loads(route.calls.last.request.content)
    (key,) = tool
    camel = "".join(w if i == 0 else w.title() for i, w in enumerate(key.split("_")))
    names = {name for entry in sent["tools"] for name in entry}
    assert names & {key, camel}, sent["tools"]


@pytest.mark.parametrize(
    "tool",
    [
        {"title": "Pick", "properties": {}},  # a JSON schema
        {"name": "pick", "parameters": {}},  # a function tool without type
        {"function_declarations": [{"name": "f"}]},  # not a mapping
        {"a": {}, "b": {}},  # two keys
    ],
)
def test_other_untyped_dicts_are_not_taken_for_gemini_tools(tool: dict[str, Any]) -> None:
    assert not is_provider_tool(tool)
