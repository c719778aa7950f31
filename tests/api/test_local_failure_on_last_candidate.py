"""A call whose last candidate fails in this process, after another candidate failed, ends as a
call that ran out of candidates.

The first candidate's outage is transient (a 503): the call as a whole may succeed later, so it
ends with ``AllCandidatesFailedError`` listing both failures, which LangGraph's retry and the
caller's own retry logic read as worth retrying. Before, the last candidate's local failure
(``anthropic_beta=5``, which only Anthropic's code reads) was raised alone as a
``BadRequestError``: the outage was hidden and the call looked hopeless. A local failure on a
route's only candidate, or on every candidate, is still the caller's to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from policyroute import ChatPolicyRoute
from policyroute.api import clear_cache
from policyroute.errors import (
    AllCandidatesFailedError,
    AllCandidatesRefusedError,
    BadRequestError,
)
from policyroute.execution.hooks import NullAccounting
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(60)

POLICY = """\
policyroute: 1
name: local-failure-last
models:
  mini:
    model: openai/gpt-4o-mini
    api_base: {openai}
    api_key: ${{LOCAL_LAST_KEY}}
  claude:
    model: anthropic/claude-haiku-4-5
    api_base: {anthropic}
    api_key: ${{LOCAL_LAST_KEY}}
routes:
  - {{name: claude-only, when: {{metadata.route: claude-only}}, to: claude}}
  - {{name: default, to: [mini, claude]}}
defaults:
  retry: {{attempts: 0}}
  max_tokens: 20
receipts: {{sink: none}}
"""


@pytest.fixture
def llm(fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatPolicyRoute]:
    monkeypatch.setenv("LOCAL_LAST_KEY", "sk-local-last")
    fake_provider.reset()
    fake_provider.set_default("*", Reply(text="ok"))
    clear_cache()
    policy = POLICY.format(openai=fake_provider.openai_base, anthropic=fake_provider.anthropic_base)
    yield ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    clear_cache()
    fake_provider.reset()


def _call(llm: ChatPolicyRoute, mode: str, route: str | None = None) -> Any:
    config: Any = {"metadata": {"route": route}} if route else None
    kwargs = {"anthropic_beta": 5}
    if mode == "invoke":
        return llm.invoke("hi", config=config, **kwargs)
    if mode == "ainvoke":
        return asyncio.run(llm.ainvoke("hi", config=config, **kwargs))
    return list(llm.stream("hi", config=config, **kwargs))


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_a_transient_failure_before_it_keeps_the_call_retryable(
    llm: ChatPolicyRoute, fake_provider: FakeProvider, mode: str
) -> None:
    fake_provider.set_default("gpt-4o-mini", Fault.status(503))
    with pytest.raises(AllCandidatesFailedError) as caught:
        _call(llm, mode)
    err = caught.value
    assert not isinstance(err, AllCandidatesRefusedError)  # transient: worth retrying
    assert [(e.deployment, e.error_class) for e in err.errors] == [
        ("mini", "server_error"),
        ("claude", "bad_request"),
    ]
    assert err.errors[1].failed_locally
    assert [a.alias for a in err.attempts] == ["mini", "claude"]
    # Only mini was sent anything; the local failure sent nothing.
    assert [r.model for r in fake_provider.requests] == ["gpt-4o-mini"]


def test_on_a_routes_only_candidate_it_is_raised_itself(
    llm: ChatPolicyRoute, fake_provider: FakeProvider
) -> None:
    with pytest.raises(BadRequestError) as caught:
        _call(llm, "invoke", route="claude-only")
    assert not isinstance(caught.value, AllCandidatesFailedError)
    assert caught.value.failed_locally
    assert caught.value.status_code is None
    assert fake_provider.requests == []
