"""ChatPolicyRoute models and policyroute.completion calls on one policy share one executor:
what a completion call learns about a failing deployment, the next chat model routes by, and
the other way round. A policy file is one policy whatever path spells it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lc_support import BREAKER_FAILURES, deployment, with_breaker

import policyroute
from policyroute import api
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    api.clear_cache()
    yield
    api.clear_cache()


@pytest.fixture
def path(make_policy: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policy file whose breaker opens after two failures in a row, in the working
    directory (its default accounting writes no receipts)."""
    monkeypatch.chdir(tmp_path)
    written = tmp_path / "policy.yaml"
    written.write_text(with_breaker(make_policy(name="shared-entry")))
    return written


def test_a_chat_model_and_completion_calls_share_one_executor(path: Path) -> None:
    llm = ChatPolicyRoute(policy=str(path))
    assert api._executor_for(path, None) is llm.executor
    off = NullAccounting()
    with_off = ChatPolicyRoute(policy=path, accounting=off)
    assert api._executor_for(str(path), off) is with_off.executor
    assert with_off.executor is not llm.executor


def test_completion_calls_open_the_breaker_a_chat_model_routes_by(
    fast_is_down: FakeProvider, path: Path
) -> None:
    for _ in range(BREAKER_FAILURES):
        response = policyroute.completion(policy=path, messages=MESSAGES)
        assert response._hidden_params["policyroute"]["deployment"] == "backup"
    assert deployment(ChatPolicyRoute(policy="policy.yaml").invoke("hi")) == "backup"
    # The chat model skipped the deployment whose breaker the completion calls opened.
    assert fast_is_down.attempts("fake-fast") == BREAKER_FAILURES


def test_chat_models_open_the_breaker_async_completion_calls_route_by(
    fast_is_down: FakeProvider, path: Path
) -> None:
    async def calls() -> list[str]:
        for _ in range(BREAKER_FAILURES):
            await ChatPolicyRoute(policy=str(path)).ainvoke("hi")
        responses = [
            await policyroute.acompletion(policy=path, messages=MESSAGES) for _ in range(3)
        ]
        return [r._hidden_params["policyroute"]["deployment"] for r in responses]

    assert asyncio.run(calls()) == ["backup"] * 3
    assert fast_is_down.attempts("fake-fast") == BREAKER_FAILURES


def test_a_relative_and_an_absolute_path_are_one_policy(path: Path) -> None:
    relative = ChatPolicyRoute(policy="policy.yaml")
    absolute = ChatPolicyRoute(policy=str(path))
    assert absolute.compiled_policy is relative.compiled_policy
    assert absolute.executor is relative.executor
    # The compiled policy names its file as its first loader spelled it.
    assert relative.compiled_policy.source == "policy.yaml"


def test_a_changed_variable_gives_both_entry_points_the_new_policy(
    fp: FakeProvider, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.set_default("*", Reply(text="ok"))
    before = ChatPolicyRoute(policy=str(path))
    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-rotated")
    after = ChatPolicyRoute(policy=str(path))
    assert after.executor is not before.executor
    assert api._executor_for(path, None) is after.executor
    policyroute.completion(policy=path, messages=MESSAGES)
    headers = {k.lower(): v for k, v in fp.requests[-1].headers.items()}
    assert headers["authorization"] == "Bearer sk-rotated"


def test_clearing_either_cache_clears_both(path: Path) -> None:
    from policyroute.langchain_ import shared

    first = ChatPolicyRoute(policy=str(path)).executor
    shared.clear()
    assert api._executor_for(path, None) is not first
    second = api._executor_for(path, None)
    api.clear_cache()
    assert ChatPolicyRoute(policy=str(path)).executor is not second
