"""A call that fails in this process before anything is sent is the call's doing, not the
deployment's.

litellm raised a call parameter of the wrong type (``anthropic_beta=5``), a module it could not
import (a provider's SDK that is not installed) and an exception adapting the messages for the
deployment as a connection error, or as an unreadable answer: each was retried on the same
deployment after a backoff, fell over, and counted against the deployment's circuit breaker,
so that one caller's bad input opened the breaker for every caller of the process. Such a
failure is now a ``bad_request`` without status that says what failed; it is not retried on
the deployment nor counted by its breaker or by ``fastest``, and the call moves on to the
route's next candidate, whose provider's code may take it. A connection the provider resets is
still a connection error, retried on the same deployment.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.api import clear_cache
from policyroute.errors import BadRequestError
from policyroute.execution.call import CallState
from policyroute.execution.hooks import AttemptInfo, NullAccounting
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(90)

HI = [{"role": "user", "content": "hi"}]

# One failure opens a breaker, and a retry waits 30 s: a failure counted or retried shows.
POLICY = """\
policyroute: 1
name: failed-locally
models:
  claude:
    model: anthropic/claude-haiku-4-5
    api_base: {anthropic}
    api_key: ${{LOCAL_FAILURE_KEY}}
  mini:
    model: openai/gpt-4o-mini
    api_base: {openai}
    api_key: ${{LOCAL_FAILURE_KEY}}
  gemini:
    model: vertex_ai/gemini-2.0-flash
    api_base: {openai}
  down:
    model: openai/gpt-4o
    api_base: http://127.0.0.1:9/v1
    api_key: ${{LOCAL_FAILURE_KEY}}
routes:
  - {{name: claude-only, when: {{metadata.route: claude-only}}, to: claude}}
  - {{name: vertex, when: {{metadata.route: vertex}}, to: [gemini, mini]}}
  - {{name: vertex-only, when: {{metadata.route: vertex-only}}, to: gemini}}
  - {{name: down-first, when: {{metadata.route: down-first}}, to: [down, mini]}}
  - {{name: default, to: [claude, mini]}}
defaults:
  retry: {{attempts: 2, backoff: {{initial: 30s, max: 30s}}, retry_after_max: 30s}}
  circuit_breaker: {{failures: 1, cooldown: 60s}}
  max_tokens: 50
receipts: {{sink: none}}
"""


@pytest.fixture
def fp(fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("LOCAL_FAILURE_KEY", "sk-local-failure-key")
    monkeypatch.setenv("VERTEXAI_PROJECT", "a-project")
    monkeypatch.setenv("VERTEXAI_LOCATION", "us-central1")
    fake_provider.reset()
    fake_provider.set_default("*", Reply(text="ok"))
    clear_cache()
    yield fake_provider
    clear_cache()
    fake_provider.reset()


class _NotInstalled:
    """A finder for which a package and its modules are not installed."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == self.package or name.startswith(f"{self.package}."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.fixture
def no_google(monkeypatch: pytest.MonkeyPatch) -> None:
    """Google's auth library, which litellm imports for a vertex_ai call, is not installed."""
    for name in [n for n in sys.modules if n == "google" or n.startswith("google.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NotInstalled("google"), *sys.meta_path])


def _llm(fp: FakeProvider) -> ChatPolicyRoute:
    policy = POLICY.format(anthropic=fp.anthropic_base, openai=fp.openai_base)
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


def _ask(llm: ChatPolicyRoute, mode: str, route: str | None = None, **kwargs: Any) -> BaseMessage:
    config: Any = {"metadata": {"route": route}} if route else None
    if mode == "invoke":
        return llm.invoke("hi", config=config, **kwargs)
    if mode == "ainvoke":
        return asyncio.run(llm.ainvoke("hi", config=config, **kwargs))
    if mode == "stream":
        chunks: list[Any] = list(llm.stream("hi", config=config, **kwargs))
    else:

        async def read() -> list[Any]:
            return [c async for c in llm.astream("hi", config=config, **kwargs)]

        chunks = asyncio.run(read())
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged  # type: ignore[no-any-return]


def _attempts(message: BaseMessage) -> list[tuple[str, str | None, int]]:
    attempts = message.response_metadata["policyroute"]["attempts"]
    return [(a["deployment"], a["error_class"], a["retry"]) for a in attempts]


def _models(fp: FakeProvider) -> list[str]:
    return [r.body["model"] for r in fp.requests]


MODES = ["invoke", "ainvoke", "stream", "astream"]


@pytest.mark.parametrize("mode", MODES)
def test_a_parameter_litellm_cannot_read_moves_on_uncounted(fp: FakeProvider, mode: str) -> None:
    llm = _llm(fp)
    answer = _ask(llm, mode, anthropic_beta=5)  # litellm iterates it building the headers
    assert answer.content == "ok"
    assert _attempts(answer) == [("claude", "bad_request", 0), ("mini", None, 0)]
    assert _models(fp) == ["gpt-4o-mini"]  # nothing went to claude's endpoint
    assert llm.executor.breakers.state("claude") == "closed"
    assert llm.executor.stats.ranking_latency("claude") is None  # fastest learnt nothing


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_one_callers_bad_parameter_leaves_the_deployment_open_to_others(
    fp: FakeProvider, mode: str
) -> None:
    llm = _llm(fp)
    for _ in range(3):
        with pytest.raises(BadRequestError) as refused:
            _ask(llm, mode, "claude-only", anthropic_beta=5)
        error = refused.value
        assert error.deployment == "claude"
        assert error.status_code is None
        assert error.failed_locally
        assert [(a.alias, a.error_class, a.retry) for a in error.attempts] == [
            ("claude", "bad_request", 0)
        ]
        text = str(error)
        assert text.startswith("deployment 'claude': the call failed in this process")
        assert "TypeError: 'int' object is not iterable" in text
        assert "anthropic_beta_headers_manager" in text  # where litellm raised it
        assert "sk-local-failure-key" not in text
    assert fp.requests == []
    assert llm.executor.breakers.state("claude") == "closed"
    answer = _ask(llm, mode, "claude-only")  # another caller, with good input
    assert answer.content == "ok"
    assert _models(fp) == ["claude-haiku-4-5"]


def test_completion_reports_what_failed(fp: FakeProvider) -> None:
    policy = POLICY.format(anthropic=fp.anthropic_base, openai=fp.openai_base)
    with pytest.raises(BadRequestError, match="the call failed in this process") as refused:
        policyroute.completion(
            policy=policy, messages=HI, metadata={"route": "claude-only"}, anthropic_beta=5
        )
    assert len(refused.value.attempts) == 1
    answer = asyncio.run(policyroute.acompletion(policy=policy, messages=HI, anthropic_beta=5))
    attempts = answer._hidden_params["policyroute"]["attempts"]
    assert [(a["deployment"], a["error_class"]) for a in attempts] == [
        ("claude", "bad_request"),
        ("mini", None),
    ]
    assert fp.requests[-1].body["model"] == "gpt-4o-mini"
    assert len(fp.requests) == 1


def _fails_for_claude(real: Any) -> Any:
    def messages_for(self: CallState, attempt: AttemptInfo) -> list[Any]:
        if attempt.candidate.alias == "claude":
            raise ValueError("cannot adapt these messages for claude")
        return real(self, attempt)  # type: ignore[no-any-return]

    return messages_for


@pytest.mark.parametrize("mode", MODES)
def test_an_exception_adapting_the_messages_moves_on_uncounted(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(CallState, "messages_for", _fails_for_claude(CallState.messages_for))
    llm = _llm(fp)
    answer = _ask(llm, mode)
    assert _attempts(answer) == [("claude", "bad_request", 0), ("mini", None, 0)]
    assert _models(fp) == ["gpt-4o-mini"]
    assert llm.executor.breakers.state("claude") == "closed"
    with pytest.raises(BadRequestError) as refused:
        _ask(llm, mode, "claude-only")
    assert "ValueError: cannot adapt these messages for claude" in str(refused.value)
    assert len(refused.value.attempts) == 1
    assert llm.executor.breakers.state("claude") == "closed"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.usefixtures("no_google")
def test_a_missing_module_moves_on_uncounted(fp: FakeProvider, mode: str) -> None:
    llm = _llm(fp)
    answer = _ask(llm, mode, "vertex")
    assert _attempts(answer) == [("gemini", "bad_request", 0), ("mini", None, 0)]
    assert _models(fp) == ["gpt-4o-mini"]
    assert llm.executor.breakers.state("gemini") == "closed"
    assert llm.executor.stats.ranking_latency("gemini") is None


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.usefixtures("no_google")
def test_a_missing_module_is_named_and_not_retried(fp: FakeProvider, mode: str) -> None:
    llm = _llm(fp)
    with pytest.raises(BadRequestError) as refused:
        _ask(llm, mode, "vertex-only")
    text = str(refused.value)
    assert text.startswith("deployment 'gemini': litellm could not import 'google")
    assert "nothing was sent: install the package that provides it" in text
    assert refused.value.status_code is None
    assert [(a.alias, a.retry) for a in refused.value.attempts] == [("gemini", 0)]
    assert fp.requests == []


def _quick(fp: FakeProvider, failures: int) -> ChatPolicyRoute:
    policy = POLICY.format(anthropic=fp.anthropic_base, openai=fp.openai_base)
    policy = policy.replace("initial: 30s, max: 30s", "initial: 1ms, max: 1ms")
    policy = policy.replace("failures: 1,", f"failures: {failures},")
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


@pytest.mark.parametrize("mode", MODES)
def test_a_refused_connection_is_still_retried_and_counted(fp: FakeProvider, mode: str) -> None:
    llm = _quick(fp, failures=3)
    answer = _ask(llm, mode, "down-first")
    assert _attempts(answer) == [
        ("down", "connection", 0),
        ("down", "connection", 1),
        ("down", "connection", 2),
        ("mini", None, 0),
    ]
    assert llm.executor.breakers.state("down") == "open"
    assert _models(fp) == ["gpt-4o-mini"]


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_a_reset_connection_is_still_retried(fp: FakeProvider, mode: str) -> None:
    fp.script("claude-haiku-4-5", Fault.connection_reset())
    answer = _ask(_quick(fp, failures=3), mode)
    assert _attempts(answer) == [("claude", "connection", 0), ("claude", None, 1)]
    assert _models(fp) == ["claude-haiku-4-5"] * 2
