"""A streamed refusal in the answer policyroute assembles (``stream.result.response``): where
the unstreamed answer carries it, ``message.provider_specific_fields["refusal"]`` (litellm up
to 1.106) or ``message.refusal`` (1.108 and later). litellm 1.106's ``stream_chunk_builder``
leaves refusals out, so the assembled answer read as empty."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import policyroute
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "help me"}]
REFUSAL = "I'm sorry, I can't help with that request."


@pytest.fixture
def policy(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_REFUSAL_KEY", "sk-test")
    served.set_default("gpt-4o-mini", Reply(refusal=REFUSAL, usage=Usage(prompt=10, completion=9)))
    return f"""
policyroute: 1
name: assembled-refusal
models:
  mini:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_REFUSAL_KEY}}
routes:
  - name: default
    to: mini
receipts: {{sink: none}}
"""


def _refusal(response: Any) -> Any:
    # litellm up to 1.106 keeps an answer's refusal among the provider's own fields; 1.108 and
    # later make it a field of the message.
    message = response.choices[0].message
    fields = message.provider_specific_fields or {}
    return fields.get("refusal") or getattr(message, "refusal", None)


def test_the_assembled_stream_carries_the_refusal_the_answer_does(policy: str) -> None:
    whole = policyroute.completion(policy=policy, messages=MESSAGES)
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    for _ in stream:
        pass
    assert stream.result is not None
    assembled = stream.result.response
    assert _refusal(whole) == REFUSAL
    assert _refusal(assembled) == REFUSAL
    assert not assembled.choices[0].message.content


def test_an_async_stream_assembles_the_refusal_of_each_choice(policy: str) -> None:
    async def run() -> Any:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True, n=2)
        async for _ in stream:
            pass
        assert stream.result is not None
        return stream.result.response

    response = asyncio.run(run())
    assert [
        (c.message.provider_specific_fields or {}).get("refusal") for c in response.choices
    ] == [
        REFUSAL,
        REFUSAL,
    ]
