"""A policyroute stream has litellm's ``_hidden_params``, those of the answering deployment.

litellm's stream wrapper tells its ``model_id``, ``api_base`` and the provider's response
headers in ``_hidden_params``; policyroute's stream mirrors the stream of the attempt that
answered (a failover before the first token leaves nothing of the failed one), without
credentials, and adds its summary and the charged cost once the stream completed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute import api
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

# Two deployments on two fake providers, told apart by their api_base.
POLICY = """
policyroute: 1
name: stream-hidden
models:
  first:
    model: openai/fake-first
    api_base: {base}
    api_key: ${{PR_HIDDEN_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  second:
    model: openai/fake-second
    api_base: {second_base}
    api_key: ${{PR_HIDDEN_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: main
    to: [first, second]
store: {{backend: memory}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
MESSAGES = [{"role": "user", "content": "hello there"}]
TEXT = "one two three"
PASSWORD = "pw-hidden-9876"
KEY = "sk-hidden-key-123456"


@pytest.fixture(scope="module")
def other() -> Iterator[FakeProvider]:
    """The second deployment's provider."""
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def policy(
    provider: FakeProvider, other: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_HIDDEN_KEY", KEY)
    usage = Usage(prompt=7, completion=3)
    for fp in (provider, other):
        fp.reset()
        fp.set_default("fake-first", Reply(text=TEXT, usage=usage))
        fp.set_default("fake-second", Reply(text=TEXT, usage=usage))
    api.clear_cache()
    yield POLICY.format(base=provider.openai_base, second_base=other.openai_base)
    api.clear_cache()
    provider.reset()
    other.reset()


def _cost(usage_in: int = 7, usage_out: int = 3) -> float:
    return (usage_in * 1000 + usage_out * 2000) / 1_000_000


def _check_answered_by_second(hidden: dict[str, Any], other: FakeProvider) -> None:
    assert hidden["api_base"].startswith(other.openai_base)
    assert "model_id" in hidden
    assert hidden["custom_llm_provider"] == "openai"
    headers = hidden["additional_headers"]
    assert headers["llm_provider-content-type"].startswith("text/event-stream")
    shown = repr(hidden)
    assert PASSWORD not in shown
    assert KEY not in shown


def _check_completed(stream: Any) -> None:
    hidden = stream._hidden_params
    assert hidden["policyroute"]["deployment"] == "second"
    assert [a["status"] for a in hidden["policyroute"]["attempts"]] == ["error", "ok"]
    assert hidden["response_cost"] == pytest.approx(_cost())
    assert hidden["response_cost"] == stream.result.response._hidden_params["response_cost"]


def test_a_stream_has_the_hidden_params_of_the_deployment_that_answered(
    provider: FakeProvider, other: FakeProvider, policy: str
) -> None:
    provider.script("fake-first", Fault.status(503))
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    hidden = stream._hidden_params
    _check_answered_by_second(hidden, other)
    assert "policyroute" not in hidden  # not before the stream completed
    assert hidden.get("response_cost") is None
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == TEXT
    assert stream._hidden_params is hidden  # one dict, as litellm's, filled in as it goes
    assert stream.hidden_params is hidden  # and litellm's public name for it
    _check_answered_by_second(hidden, other)
    _check_completed(stream)


@pytest.mark.asyncio
async def test_an_async_stream_has_the_hidden_params_of_the_deployment_that_answered(
    provider: FakeProvider, other: FakeProvider, policy: str
) -> None:
    provider.script("fake-first", Fault.status(503))
    stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
    _check_answered_by_second(stream._hidden_params, other)
    assert "policyroute" not in stream._hidden_params
    assert stream.hidden_params is stream._hidden_params
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == TEXT
    _check_completed(stream)


def test_a_stream_without_failover_names_its_own_deployment(
    provider: FakeProvider, policy: str
) -> None:
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    assert stream._hidden_params["api_base"].startswith(provider.openai_base)
    assert "[REDACTED]" not in stream._hidden_params["api_base"]
    list(stream)
    assert stream._hidden_params["policyroute"]["deployment"] == "first"
    assert stream._hidden_params["response_cost"] == pytest.approx(_cost())


@pytest.mark.parametrize("streamed", [True, False])
def test_credentials_in_the_api_base_are_redacted(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    # litellm puts the deployment's api_base, as configured, in the hidden params of its
    # streams and of its unstreamed responses alike.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_HIDDEN_KEY", KEY)
    provider.reset()
    provider.set_default("fake-first", Reply(text=TEXT, usage=Usage(prompt=7, completion=3)))
    api.clear_cache()
    base = provider.openai_base
    with_password = base.replace("://", f"://user:{PASSWORD}@", 1)
    policy = POLICY.format(base=with_password, second_base=base)
    try:
        answer = policyroute.completion(policy=policy, messages=MESSAGES, stream=streamed)
        if streamed:
            list(answer)
    finally:
        api.clear_cache()
    hidden = answer._hidden_params
    assert hidden["api_base"].startswith(base.replace("://", "://user:[REDACTED]@", 1))
    assert PASSWORD not in repr(hidden)
    assert KEY not in repr(hidden)
    if not streamed:
        assert hidden["response_cost"] == pytest.approx(0.013)
