"""What a caller who catches litellm's exceptions gets from ``policyroute.completion``: the
error tree of :mod:`policyroute.errors`, never litellm's types, with litellm's exception
kept as the cause of each attempt's error (as the docstring of ``completion`` says)."""

from __future__ import annotations

import litellm
import pytest

import policyroute
from policyroute import errors
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def policy(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_ERRORS_KEY", "sk-test")
    served.set_default("gpt-4o-mini", Reply(text="one two three four five"))
    return f"""
policyroute: 1
name: parity-errors
models:
  m:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_ERRORS_KEY}}
routes:
  - name: default
    to: m
defaults:
  retry: {{attempts: 1, backoff: {{initial: 0.01, max: 0.01, jitter: false}}}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def test_a_rate_limit_is_not_litellms_rate_limit_error(policy: str, provider: FakeProvider) -> None:
    provider.script("gpt-4o-mini", Fault.status(429), Fault.status(429))
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        policyroute.completion(policy=policy, messages=MESSAGES)
    exc = info.value
    assert not isinstance(exc, litellm.RateLimitError)
    assert (exc.error_class, exc.status_code) == ("rate_limit", 429)
    assert [type(e) for e in exc.errors] == [errors.RateLimitError] * 2
    assert exc.__cause__ is exc.errors[-1]
    assert isinstance(exc.errors[-1].__cause__, litellm.RateLimitError)


def test_a_bad_request_stops_the_call_with_its_own_class(
    policy: str, provider: FakeProvider
) -> None:
    provider.script("gpt-4o-mini", Fault.status(400))
    with pytest.raises(errors.BadRequestError) as info:
        policyroute.completion(policy=policy, messages=MESSAGES)
    assert not isinstance(info.value, litellm.BadRequestError)
    assert isinstance(info.value.__cause__, litellm.BadRequestError)
    assert len(provider.requests) == 1


def test_a_stream_cut_mid_answer_raises_stream_interrupted(
    policy: str, provider: FakeProvider
) -> None:
    provider.script("gpt-4o-mini", Fault.stream_cut(after=3))
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    with pytest.raises(errors.StreamInterruptedError) as info:
        for _ in stream:
            pass
    assert not isinstance(info.value, litellm.exceptions.MidStreamFallbackError)
    assert info.value.partial_text


def test_the_wait_the_last_provider_asked_for_is_on_the_error(
    policy: str, provider: FakeProvider
) -> None:
    # Code that slept ``exc.retry_after`` of litellm's RateLimitError reads it here too.
    provider.script("gpt-4o-mini", Fault.status(429), Fault.status(429, retry_after=2))
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        policyroute.completion(policy=policy, messages=MESSAGES)
    exc = info.value
    assert (exc.retry_after, exc.retry_after_source) == (2.0, "retry_after")
    assert exc.retry_after == exc.errors[-1].retry_after
