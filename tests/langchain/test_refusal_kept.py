"""An OpenAI refusal (``message.refusal``, no content) reaches the caller as langchain-openai
gives it, in ``additional_kwargs["refusal"]``, from ``invoke``, ``ainvoke`` and the raw message
of ``with_structured_output(..., include_raw=True)``; litellm keeps it among the provider's own
fields, where it was lost."""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.messages import AIMessage
from lc_support import Person

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

REFUSAL = "I can't help with that."


def _refused() -> Fault:
    message = {"role": "assistant", "content": None, "refusal": REFUSAL}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    usage = {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    body = {"id": "chatcmpl-r", "object": "chat.completion", "created": 1, "model": "m"}
    return Fault.raw(json.dumps(body | {"choices": [choice], "usage": usage}))


def test_invoke_keeps_the_refusal(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", _refused())
    message = llm.invoke("help me")
    assert message.additional_kwargs.get("refusal") == REFUSAL
    assert message.content == ""


def test_ainvoke_keeps_the_refusal(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", _refused())
    message = asyncio.run(llm.ainvoke("help me"))
    assert message.additional_kwargs.get("refusal") == REFUSAL


def test_structured_output_raw_message_keeps_the_refusal(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("*", _refused())
    out = llm.with_structured_output(Person, method="json_schema", include_raw=True).invoke("x")
    assert isinstance(out, dict)
    assert out["parsed"] is None
    assert isinstance(out["raw"], AIMessage)
    assert out["raw"].additional_kwargs.get("refusal") == REFUSAL
