"""A call offering a provider's own tool goes only to deployments that take it.

A route mixing providers (``to: [mini, sonnet]``) used to send Anthropic's web search to the
OpenAI deployment first; its 400 ended the call before the Anthropic deployment, which would
have answered, was tried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

import policyroute
from policyroute import api
from policyroute.errors import NoCandidateError
from policyroute.explain import explain, render_text
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.policy.model import ModelSpec
from policyroute.request import Request
from policyroute.routing.provider_tools import deployment_family, provider_tools, refused_tools
from policyroute.testing import FakeProvider, Reply

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
LOOKUP = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}
MESSAGES = [{"role": "user", "content": "news today?"}]

MIXED = """
policyroute: 1
name: mixed-tools
models:
  mini:
    model: openai/gpt-4o-mini
    api_base: {openai}
    api_key: ${{PR_PTOOLS_KEY}}
  sonnet:
    model: anthropic/claude-sonnet-4-5
    api_base: {anthropic}
    api_key: ${{PR_PTOOLS_KEY}}
  flash:
    model: gemini/gemini-2.5-flash
    api_key: ${{PR_PTOOLS_KEY}}
routes:
  - name: only-openai
    when: {{metadata.task: openai}}
    to: mini
  - name: no-claude
    when: {{metadata.task: no-claude}}
    to: [mini, flash]
  - name: default
    to: [mini, sonnet, flash]
receipts: {{sink: none}}
defaults: {{max_tokens: 50, retry: {{attempts: 0}}}}
"""


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PR_PTOOLS_KEY", "fake-key-0123456789")


@pytest.fixture
def served(fp: FakeProvider) -> Iterator[FakeProvider]:
    fp.reset()
    api.clear_cache()
    yield fp
    api.clear_cache()
    fp.reset()


def _policy(fp: FakeProvider) -> str:
    return MIXED.format(openai=fp.openai_base, anthropic=fp.anthropic_base)


def _route(policy: str, request: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    decision = load_policy_text(policy).route(Request(**request))
    return [c.alias for c in decision.candidates], list(decision.skipped)


# ---------------------------------------------------------------- through calls


def test_anthropic_web_search_goes_to_the_anthropic_deployment(served: FakeProvider) -> None:
    served.script("claude-sonnet-4-5", Reply(text="searched"))

    answer = policyroute.completion(policy=_policy(served), messages=MESSAGES, tools=[WEB_SEARCH])

    assert answer.choices[0].message.content == "searched"
    assert [r.api for r in served.requests] == ["anthropic"]
    assert served.requests[0].body["tools"][0]["type"] == "web_search_20250305"


def test_bind_tools_with_anthropic_web_search_goes_to_the_anthropic_deployment(
    served: FakeProvider,
) -> None:
    served.script("claude-sonnet-4-5", Reply(text="searched"))
    model = ChatPolicyRoute(policy=_policy(served)).bind_tools([WEB_SEARCH])

    answer = model.invoke("news today?")

    assert answer.content == "searched"
    assert [r.api for r in served.requests] == ["anthropic"]


GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "Found it."}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    "modelVersion": "gemini-2.5-flash",
}

GEMINI_ROUTE = """
policyroute: 1
name: gemini-key-tools
models:
  mini:
    model: openai/gpt-4o-mini
    api_base: https://openai.invalid/v1
    api_key: ${PR_PTOOLS_KEY}
  sonnet:
    model: anthropic/claude-sonnet-4-5
    api_base: https://anthropic.invalid
    api_key: ${PR_PTOOLS_KEY}
  flash:
    model: gemini/gemini-2.5-flash
    api_key: ${PR_PTOOLS_KEY}
routes:
  - name: default
    to: [mini, sonnet, flash]
receipts: {sink: none}
defaults: {max_tokens: 50, retry: {attempts: 0}}
"""


@pytest.mark.parametrize("via", ["completion", "bind_tools"])
def test_a_gemini_tool_by_its_key_goes_to_the_gemini_deployment(via: str) -> None:
    api.clear_cache()
    refusal = httpx.Response(400, json={"error": {"message": "unknown tool", "type": "x"}})
    with respx.mock(assert_all_called=False) as mock:
        openai = mock.post(url__regex=r"https://openai\.invalid/.*").mock(return_value=refusal)
        anthropic = mock.post(url__regex=r"https://anthropic\.invalid/.*").mock(
            return_value=refusal
        )
        gemini = mock.post(url__regex=r"https://generativelanguage\.googleapis\.com/.*").mock(
            return_value=httpx.Response(200, json=GEMINI_ANSWER)
        )
        if via == "completion":
            answer = policyroute.completion(
                policy=GEMINI_ROUTE, messages=MESSAGES, tools=[{"google_search": {}}]
            )
            text = answer.choices[0].message.content
        else:
            model = ChatPolicyRoute(policy=GEMINI_ROUTE).bind_tools([{"google_search": {}}])
            text = model.invoke("news today?").content
    api.clear_cache()

    assert text == "Found it."
    assert (openai.call_count, anthropic.call_count, gemini.call_count) == (0, 0, 1)
    sent = json.loads(gemini.calls.last.request.content)
    assert any({"googleSearch", "google_search"} & set(tool) for tool in sent["tools"])


def test_no_deployment_taking_the_tool_is_a_no_candidate_error(served: FakeProvider) -> None:
    with pytest.raises(NoCandidateError) as caught:
        policyroute.completion(
            policy=_policy(served),
            messages=MESSAGES,
            tools=[WEB_SEARCH],
            metadata={"task": "no-claude"},
        )

    message = str(caught.value)
    assert "route 'no-claude'" in message
    assert "mini: request offers provider tool web_search_20250305" in message
    assert "flash: request offers provider tool web_search_20250305" in message
    assert served.requests == []


# ---------------------------------------------------------------- routing decisions


def test_only_the_provider_tool_narrows_the_route(served: FakeProvider) -> None:
    policy = _policy(served)
    every = ["mini", "sonnet", "flash"]
    assert _route(policy, {"messages": MESSAGES}) == (every, [])
    assert _route(policy, {"messages": MESSAGES, "tools": [LOOKUP]}) == (every, [])

    candidates, skipped = _route(policy, {"messages": MESSAGES, "tools": [LOOKUP, WEB_SEARCH]})
    assert candidates == ["sonnet"]
    assert [alias for alias, _ in skipped] == ["mini", "flash"]


def test_openai_web_search_goes_to_openai_and_gemini_not_claude(served: FakeProvider) -> None:
    candidates, skipped = _route(
        _policy(served), {"messages": MESSAGES, "tools": [{"type": "web_search"}]}
    )
    assert candidates == ["mini", "flash"]
    assert skipped == [
        ("sonnet", "request offers provider tool web_search; anthropic deployments do not take it")
    ]


def test_explain_shows_why_a_deployment_was_skipped(served: FakeProvider) -> None:
    policy = load_policy_text(_policy(served))
    ex = explain(
        policy, {"messages": MESSAGES, "tools": [{"google_search": {}}]}, token_counter=lambda _: 9
    )

    assert [c.alias for c in ex.candidates] == ["flash"]
    text = render_text(ex)
    assert "mini: request offers provider tool google_search; openai deployments" in text
    assert "sonnet: request offers provider tool google_search; anthropic deployments" in text


# ---------------------------------------------------------------- the decision itself


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("anthropic/claude-haiku-4-5", "anthropic"),
        ("bedrock/anthropic.claude-3-7-sonnet", "anthropic"),
        ("vertex_ai/claude-sonnet-4-5", "anthropic"),
        ("azure_ai/claude-sonnet-4-5", "anthropic"),
        ("openai/gpt-4o-mini", "openai"),
        ("azure/my-deployment", "openai"),
        ("gpt-4o", "openai"),
        ("o3-mini", "openai"),
        ("gemini/gemini-2.5-flash", "gemini"),
        ("vertex_ai/gemini-2.5-pro", "gemini"),
        ("mistral/mistral-large-latest", None),
        ("vertex_ai/meta/llama-3.1-405b", None),
        ("ollama/llama3.1", None),
        ("openai/claude-sonnet-4-5", None),  # an OpenAI-compatible proxy in front of Claude
        ("openai/gemini-2.5-flash", None),
    ],
)
def test_deployment_family(model: str, family: str | None) -> None:
    assert deployment_family(ModelSpec(alias="a", model=model)) == family


def test_a_given_provider_decides_the_family() -> None:
    spec = ModelSpec(alias="a", model="my-claude", params={"custom_llm_provider": "anthropic"})
    assert deployment_family(spec) == "anthropic"


@pytest.mark.parametrize(
    ("family", "kind", "taken"),
    [
        ("anthropic", "web_search_20250305", True),
        ("anthropic", "code_execution_20250825", True),
        ("anthropic", "url", True),
        ("anthropic", "mcp", True),
        ("anthropic", "web_search", False),
        ("anthropic", "file_search", False),
        ("anthropic", "google_search", False),
        ("openai", "web_search_preview", True),
        ("openai", "code_interpreter", True),
        ("openai", "web_fetch_20250910", False),
        ("openai", "bash_20250124", False),
        ("openai", "googleSearch", False),
        ("gemini", "url_context", True),
        ("gemini", "computer_use", True),
        ("gemini", "web_search", True),
        ("gemini", "file_search", False),
        ("gemini", "text_editor_20250728", False),
        # a tool shape routing does not know goes everywhere, as before
        ("anthropic", "namespace", True),
        ("openai", "some_new_tool", True),
        ("gemini", "some_new_tool", True),
    ],
)
def test_which_family_takes_which_tool(family: Any, kind: str, taken: bool) -> None:
    assert refused_tools(family, (kind,)) == (() if taken else (kind,))


def test_an_unknown_family_takes_every_tool() -> None:
    assert refused_tools(None, ("web_search_20250305", "google_search", "file_search")) == ()


def test_provider_tools_leaves_out_the_callers_functions() -> None:
    tools = [
        LOOKUP,
        {"name": "pick", "input_schema": {"type": "object"}},
        {"type": "custom", "name": "grammar"},
        {"function_declarations": [{"name": "f"}], "google_search": {}},
        WEB_SEARCH,
        {"code_execution": {}, "cache_control": {"type": "ephemeral"}},
        WEB_SEARCH,
        "not a mapping",
    ]
    assert provider_tools(tools) == ("web_search_20250305", "code_execution")
