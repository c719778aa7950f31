"""A credential passed as a header is refused like ``api_key``: ``extra_headers`` (and
litellm's ``headers``) reach every candidate of the route, so a caller's
``Authorization: Bearer sk-...`` would replace the policy's key on the first deployment and be
sent to a fallback of another provider too. Other headers pass through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import policyroute
from policyroute.errors import RequestError
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("argument", ["extra_headers", "headers"])
@pytest.mark.parametrize(
    "header", ["Authorization", "authorization", "x-api-key", "api-key", "x-goog-api-key"]
)
def test_a_credential_header_is_refused_before_sending(
    provider: FakeProvider, header_policy: str, argument: str, header: str
) -> None:
    extra = {argument: {header: "Bearer sk-caller-secret"}}
    with pytest.raises(RequestError, match=f"{argument}.*{header}") as info:
        policyroute.completion(policy=header_policy, messages=MESSAGES, **extra)
    assert "api_key: ${ENV_VAR}" in str(info.value)
    assert "sk-caller-secret" not in str(info.value)
    assert provider.requests == []


def test_the_async_entry_refuses_them_too(provider: FakeProvider, header_policy: str) -> None:
    async def run() -> Any:
        return await policyroute.acompletion(
            policy=header_policy, messages=MESSAGES, stream=True, extra_headers={"X-Api-Key": "k"}
        )

    with pytest.raises(RequestError, match="X-Api-Key"):
        asyncio.run(run())
    assert provider.requests == []


def test_other_headers_pass_and_every_candidate_keeps_its_own_key(
    provider: FakeProvider, header_policy: str
) -> None:
    provider.script("gpt-4o-mini", Fault.status(500))
    policyroute.completion(
        policy=header_policy,
        messages=MESSAGES,
        extra_headers={"X-Trace": "t1"},
    )
    first, second = provider.requests
    assert first.headers["authorization"] == "Bearer sk-policy"
    assert second.headers["x-api-key"] == "sk-policy"
    assert second.headers.get("authorization") is None
    assert first.headers["x-trace"] == second.headers["x-trace"] == "t1"
