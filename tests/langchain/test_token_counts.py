"""``get_num_tokens``, ``get_token_ids`` and ``get_num_tokens_from_messages`` count offline with
litellm's tokenizers, as routing's ``input_tokens`` counts: LangChain's default asks for the
``transformers`` package, so ``trim_messages(token_counter=llm)`` would fail."""

from __future__ import annotations

import builtins
import warnings
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, trim_messages
from lc_support import add, policy_text

from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.facts import default_token_counter
from policyroute.request import Request

HISTORY = [
    SystemMessage("You answer briefly."),
    HumanMessage("What is the capital of France?"),
    AIMessage("Paris."),
    HumanMessage("And of Italy? " + "Please explain at length. " * 20),
]


@pytest.fixture
def no_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import transformers`` fail, as it does where the package is not installed."""
    real = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)


def _model(**kwargs: Any) -> ChatPolicyRoute:
    return ChatPolicyRoute(policy=policy_text("http://127.0.0.1:9"), **kwargs)


@pytest.mark.usefixtures("no_transformers")
def test_text_is_counted_without_transformers() -> None:
    llm = _model()
    ids = llm.get_token_ids("hello world, how are you?")
    assert ids
    assert all(isinstance(i, int) for i in ids)
    assert llm.get_num_tokens("hello world, how are you?") == len(ids)


@pytest.mark.usefixtures("no_transformers")
def test_messages_and_tools_count_as_routing_counts_input_tokens() -> None:
    llm = _model(model="gpt-4o")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # LangChain's default warns that it ignores tools
        counted = llm.get_num_tokens_from_messages(HISTORY, tools=[add])
    plain = llm.get_num_tokens_from_messages(HISTORY)
    assert counted > plain > 0
    request = Request(messages=[{"role": "user", "content": "x"}], model="gpt-4o")
    assert llm.get_num_tokens_from_messages([HumanMessage("x")]) == default_token_counter(request)


@pytest.mark.usefixtures("no_transformers")
def test_trim_messages_can_count_with_the_model() -> None:
    llm = _model()
    budget = llm.get_num_tokens_from_messages(HISTORY[:3])
    kept = trim_messages(HISTORY, max_tokens=budget, token_counter=llm, strategy="first")
    assert kept == HISTORY[:3]


def test_a_custom_tokenizer_still_wins() -> None:
    llm = _model(custom_get_token_ids=lambda text: [0] * len(text))
    assert llm.get_num_tokens("abcd") == 4
