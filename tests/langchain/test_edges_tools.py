"""bind_tools' tool_choice as it reaches the provider, on the OpenAI and the Anthropic wire."""

from __future__ import annotations

from typing import Any

import pytest
from lc_support import add, policy_text, shout
from test_chat_model import ANTHROPIC_POLICY

from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider


def _llm(fp: FakeProvider, wire: str) -> ChatPolicyRoute:
    text = (
        ANTHROPIC_POLICY.format(base=fp.anthropic_base)
        if wire == "anthropic"
        else policy_text(fp.openai_base)
    )
    return ChatPolicyRoute(policy=text, accounting=NullAccounting())


FORCE_ADD = {
    "openai": {"type": "function", "function": {"name": "add"}},
    "anthropic": {"type": "tool", "name": "add"},
}


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("choice", "forced"),
    [
        ({"type": "tool", "name": "add"}, "add"),
        ({"type": "function", "function": {"name": "add"}}, "add"),
        ({"type": "function", "name": "add"}, "add"),
        ({"type": "any"}, None),
        ({"type": "auto"}, None),
    ],
)
def test_dict_tool_choice_in_either_form_reaches_the_provider(
    fp: FakeProvider, wire: str, choice: dict[str, Any], forced: str | None
) -> None:
    message = _llm(fp, wire).bind_tools([add, shout], tool_choice=choice).invoke("2 plus 3")
    sent = fp.requests[0].body["tool_choice"]
    if forced:
        assert sent == FORCE_ADD[wire]
        assert [c["name"] for c in message.tool_calls] == ["add"]
    elif choice["type"] == "any":
        assert sent == ("required" if wire == "openai" else {"type": "any"})
    else:
        assert sent == ("auto" if wire == "openai" else {"type": "auto"})


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "tool", "name": "nope"},
        {"type": "function", "function": {"name": "nope"}},
        {"type": "weird"},
    ],
)
def test_dict_tool_choice_naming_no_bound_tool_is_refused_before_any_call(
    fp: FakeProvider, choice: dict[str, Any]
) -> None:
    with pytest.raises(RequestError, match="tool_choice"):
        _llm(fp, "openai").bind_tools([add, shout], tool_choice=choice)
    assert fp.requests == []
