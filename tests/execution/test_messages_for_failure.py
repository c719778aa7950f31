"""An attempt whose messages cannot be adapted for its deployment (an exception inside
``CallState.messages_for``) is settled like any failed attempt, whatever drives it: its count
in flight is given back (``least_busy`` and ``fastest`` read it) and the caller gets a
classified error naming the deployment and what went wrong. The async stream adapted the
messages before the ``try`` that settles the attempt: the count stayed up for good, and the
budget's reservation was never settled."""

from __future__ import annotations

import os
from typing import Any

import pytest
from exec_support import arun

from policyroute.errors import ProviderError
from policyroute.execution.call import CallState
from policyroute.execution.hooks import AttemptInfo, NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

POLICY = """policyroute: 1
name: messages-for-failure
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
defaults:
  retry: {{attempts: 0}}
receipts: {{sink: none}}
"""


def _raises(self: CallState, attempt: AttemptInfo) -> list[Any]:
    raise RuntimeError("cannot adapt these messages")


async def _astream(llm: ChatPolicyRoute) -> None:
    async for _ in llm.astream("hi"):
        pass


async def _ainvoke(llm: ChatPolicyRoute) -> None:
    await llm.ainvoke("hi")


def _stream(llm: ChatPolicyRoute) -> None:
    list(llm.stream("hi"))


def _invoke(llm: ChatPolicyRoute) -> None:
    llm.invoke("hi")


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cause = error.__cause__
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__
    return chain


CALLS = {
    "astream": lambda llm: arun(_astream(llm)),
    "ainvoke": lambda llm: arun(_ainvoke(llm)),
    "stream": _stream,
    "invoke": _invoke,
}


@pytest.mark.parametrize("how", sorted(CALLS))
def test_an_exception_adapting_the_messages_gives_the_count_back(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    fp.set_default("*", Reply(text="fine thanks"))
    llm = ChatPolicyRoute(policy=POLICY.format(base=fp.openai_base), accounting=NullAccounting())
    monkeypatch.setattr(CallState, "messages_for", _raises)
    with pytest.raises(ProviderError) as failed:
        CALLS[how](llm)
    assert failed.value.deployment == "a"
    assert "cannot adapt these messages" in str(failed.value)
    assert any(isinstance(cause, RuntimeError) for cause in _causes(failed.value))
    assert fp.requests == []  # nothing was sent
    assert llm.executor.stats.in_flight("a") == 0
