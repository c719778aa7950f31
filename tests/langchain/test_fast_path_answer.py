"""``invoke_answer`` (the answer of an unobserved ``invoke`` made without a ``ChatResult``) must
be exactly what LangChain's ``answer(chat_result(result))`` gives, for every shape of answer."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from lc_support import policy_text

from policyroute._lazy import import_litellm
from policyroute.execution.hooks import NullAccounting
from policyroute.execution.result import CallResult
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.results import chat_result, invoke_answer
from policyroute.langchain_.unobserved import answer
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

_THINKING = [
    {"type": "thinking", "thinking": "2 and 2", "signature": "sig-1"},
    {"type": "redacted_thinking", "data": "opaque"},
]
_CALLS = [
    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}},
    {"id": "c2", "type": "function", "function": {"name": "bad", "arguments": "{nope"}},
    {"id": "c3", "type": "function", "function": {"name": "list", "arguments": "[1]"}},
]


def _choice(message: dict[str, Any] | None, finish: str | None = "stop") -> dict[str, Any]:
    return {"index": 0, "message": message, "finish_reason": finish}


_RESPONSES: dict[str, Any] = {
    "text": {"id": "r1", "choices": [_choice({"role": "assistant", "content": "four"})]},
    "no content": {"id": "r2", "choices": [_choice({"role": "assistant", "content": None})]},
    "no id": {"choices": [_choice({"role": "assistant", "content": "hi"})]},
    "no choices": {"id": "r3", "choices": []},
    "no message": {"id": "r4", "choices": [_choice(None, None)]},
    "tool calls": {
        "id": "r5",
        "choices": [_choice({"content": "", "tool_calls": _CALLS}, "tool_calls")],
    },
    "thinking": {
        "id": "r6",
        "choices": [
            _choice({"content": "4", "thinking_blocks": _THINKING, "reasoning_content": "2+2"})
        ],
    },
    "refusal": {"id": "r7", "choices": [_choice({"content": None, "refusal": "no"})]},
    "two choices": {
        "id": "r8",
        "choices": [
            _choice({"content": "a"}),
            {"index": 1, "message": {"content": "b"}, "finish_reason": "length"},
        ],
    },
}


@pytest.fixture(scope="module")
def real(fake_provider: FakeProvider) -> CallResult:
    """A result the executor made, whose response and deployment the cases vary."""
    fake_provider.reset()
    fake_provider.set_default("*", Reply(text="ok"))
    llm = ChatPolicyRoute(
        policy=policy_text(fake_provider.openai_base), accounting=NullAccounting()
    )
    request = Request(messages=[{"role": "user", "content": "hi"}])
    return asyncio.run(llm.executor.acomplete(request))


def _cases(real: CallResult) -> list[tuple[str, CallResult]]:
    model_response = import_litellm().ModelResponse
    cases = [("executor's own", real)]
    for name, body in _RESPONSES.items():
        for candidate in (real.candidate, None):
            varied = dataclasses.replace(real, response=body, candidate=candidate)
            cases.append((f"{name} dict", varied))
        if body["choices"] and all(c["message"] for c in body["choices"]):
            as_litellm = dataclasses.replace(real, response=model_response(**body))
            cases.append((f"{name} litellm", as_litellm))
    return cases


def _same(fast: AIMessage, general: AIMessage) -> None:
    assert type(fast) is type(general)
    assert fast.model_dump() == general.model_dump()
    assert list(fast.response_metadata) == list(general.response_metadata)
    assert fast.model_fields_set == general.model_fields_set
    assert fast.to_json() == general.to_json()


@pytest.mark.parametrize("run_id", ["2b1a7c9e-0000-4000-8000-000000000001", None])
def test_invoke_answer_is_langchains_answer_for_every_shape(
    real: CallResult, run_id: str | None
) -> None:
    for name, result in _cases(real):
        fast = invoke_answer(result, run_id)
        general = answer(chat_result(result), run_id)
        if run_id is None and general.id and general.id.startswith("lc_run--"):
            # A fresh run id each time: only its shape can match.
            assert fast.id is not None, name
            assert fast.id.startswith("lc_run--"), name
            fast.id = general.id
        _same(fast, general)


def test_several_choices_keep_langchains_metadata_order(real: CallResult) -> None:
    result = dataclasses.replace(real, response=_RESPONSES["two choices"])
    fast = invoke_answer(result, None)
    assert next(iter(fast.response_metadata)) == "finish_reason"
    _same(fast, answer(chat_result(result), None))


class OwnGenerate(ChatPolicyRoute):
    """A subclass answering by its own ``_generate``/``_agenerate``."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        message = AIMessage("own", response_metadata={"source": "sync"})
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Any:
        message = AIMessage("own", response_metadata={"source": "async"})
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_a_subclass_generate_still_answers_unobserved_calls(fp: FakeProvider) -> None:
    llm = OwnGenerate(policy=policy_text(fp.openai_base))
    assert llm.invoke([HumanMessage("x")]).response_metadata == {"source": "sync"}
    answered = asyncio.run(llm.ainvoke([HumanMessage("x")]))
    assert answered.response_metadata == {"source": "async"}
    assert answered.id is not None
    assert answered.id.startswith("lc_run--")
    assert fp.requests == []
