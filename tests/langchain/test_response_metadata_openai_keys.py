"""The answer's ``response_metadata`` holds what langchain-openai users read there: the
provider's response ``id`` and, when the call asked for them, the ``logprobs`` of the choice."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from lc_support import policy_text

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault

_LOGPROBS = {
    "content": [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105], "top_logprobs": []},
    ],
    "refusal": None,
}


def _answer_with_logprobs() -> str:
    return json.dumps(
        {
            "id": "chatcmpl-lp1",
            "object": "chat.completion",
            "created": 1,
            "model": "fake-fast",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi"},
                    "finish_reason": "stop",
                    "logprobs": _LOGPROBS,
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    )


def _model(fp: FakeProvider) -> ChatPolicyRoute:
    return ChatPolicyRoute(policy=policy_text(fp.openai_base), accounting=NullAccounting())


def _invoke(model: ChatPolicyRoute, how: str, **kwargs: Any) -> AIMessage:
    # "observed": a callback handler makes langchain-core build the ChatResult; "plain" takes
    # the path that builds the message straight from the executor's result.
    config: Any = {"callbacks": [BaseCallbackHandler()]} if how.startswith("observed") else None
    if how.endswith("async"):
        return asyncio.run(model.ainvoke("hi", config, **kwargs))
    return model.invoke("hi", config, **kwargs)


_WAYS = ["plain", "plain async", "observed", "observed async"]


@pytest.mark.parametrize("how", _WAYS)
def test_logprobs_asked_for_are_in_response_metadata(fp: FakeProvider, how: str) -> None:
    fp.script("fake-fast", Fault.raw(_answer_with_logprobs()))
    answer = _invoke(_model(fp), how, logprobs=True)
    assert answer.response_metadata["logprobs"] == _LOGPROBS
    json.dumps(answer.response_metadata["logprobs"])  # plain values, as a tracer stores them
    assert answer.response_metadata["id"] == "chatcmpl-lp1"


@pytest.mark.parametrize("how", _WAYS)
def test_response_id_is_in_response_metadata(fp: FakeProvider, how: str) -> None:
    answer = _invoke(_model(fp), how)
    assert len(fp.requests) == 1
    assert answer.response_metadata["id"].startswith("chatcmpl-")
    assert answer.response_metadata["id"] == answer.id
    assert "logprobs" not in answer.response_metadata


def test_streamed_answer_carries_its_response_id(fp: FakeProvider) -> None:
    chunks = list(_model(fp).stream("hi"))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.response_metadata["id"] == merged.id
    assert str(merged.id).startswith("chatcmpl-")
