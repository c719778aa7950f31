"""ChatPolicyRoute refuses bound or call arguments that would take over what the policy
decides (a key sent to every candidate, litellm's own fallbacks or retries, mock answers),
before anything is routed, reserved or sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from policyroute.errors import RequestError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

TAKEOVERS = [
    ("api_key", "sk-someone-else-0123456789"),
    ("api_base", "http://127.0.0.1:9"),
    ("fallbacks", ["gpt-4o"]),
    ("num_retries", 3),
    ("mock_response", "hi"),
]


@pytest.mark.parametrize(("name", "value"), TAKEOVERS)
def test_a_bound_takeover_is_refused_before_sending(
    llm: ChatPolicyRoute, fp: FakeProvider, name: str, value: Any
) -> None:
    with pytest.raises(RequestError, match=f"request parameter '{name}' is not accepted"):
        llm.bind(**{name: value}).invoke("hello")
    assert fp.requests == []


@pytest.mark.parametrize(("name", "value"), TAKEOVERS[:2])
def test_async_and_streamed_calls_refuse_them_too(
    llm: ChatPolicyRoute, fp: FakeProvider, name: str, value: Any
) -> None:
    async def both() -> None:
        with pytest.raises(RequestError, match=name):
            await llm.ainvoke("hello", **{name: value})
        with pytest.raises(RequestError, match=name):
            [c async for c in llm.astream("hello", **{name: value})]

    asyncio.run(both())
    with pytest.raises(RequestError) as info:
        list(llm.stream("hello", **{name: value}))
    assert "sk-someone-else" not in str(info.value)
    assert fp.requests == []


def test_no_retries_asked_for_passes(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text="ok"))
    assert llm.bind(num_retries=0, max_retries=0).invoke("hello").content == "ok"
