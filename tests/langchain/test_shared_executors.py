"""Models built anew for every call (configurable fields, one per web request) still learn from
earlier calls: models on one policy and accounting share circuit breakers and latency stats."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langchain_core.runnables import ConfigurableField
from lc_support import BREAKER_FAILURES, deployment, with_breaker

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_ import shared
from policyroute.testing import FakeProvider, Reply

CALLS = 6


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    shared.clear()
    yield
    shared.clear()


@pytest.fixture
def breaking(make_policy: Callable[..., str]) -> str:
    """The test policy with a breaker that opens after two failures in a row."""
    return with_breaker(make_policy(name="breaking"))


def test_configurable_field_calls_open_one_breaker(
    fast_is_down: FakeProvider, breaking: str
) -> None:
    llm = ChatPolicyRoute(policy=breaking).configurable_fields(
        temperature=ConfigurableField(id="temperature")
    )
    for i in range(CALLS):
        message = llm.invoke("hi", config={"configurable": {"temperature": i / 10}})
        assert deployment(message) == "backup"
    # Once open, the breaker skips the failing deployment: without sharing, each new model
    # would have tried it again.
    assert fast_is_down.attempts("fake-fast") == BREAKER_FAILURES
    assert fast_is_down.attempts("fake-backup") == CALLS


def test_async_calls_and_alternatives_share_the_breaker(
    fast_is_down: FakeProvider, breaking: str
) -> None:
    accounting = NullAccounting()
    plain = ChatPolicyRoute(policy=breaking, accounting=accounting)
    warm = ChatPolicyRoute(policy=breaking, accounting=accounting, temperature=0.5)
    llm = plain.configurable_alternatives(
        ConfigurableField(id="which"), default_key="plain", warm=warm
    ).with_config(configurable={"which": "warm"})

    async def calls() -> list[str]:
        return [deployment(await llm.ainvoke("hi")) for _ in range(CALLS)]

    assert asyncio.run(calls()) == ["backup"] * CALLS
    assert deployment(plain.invoke("hi")) == "backup"
    assert fast_is_down.attempts("fake-fast") == BREAKER_FAILURES


def test_a_model_per_request_shares_until_the_policy_file_changes(
    fast_is_down: FakeProvider, breaking: str, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(breaking)
    for _ in range(CALLS):
        assert deployment(ChatPolicyRoute(policy=str(path)).invoke("hi")) == "backup"
    assert fast_is_down.attempts("fake-fast") == BREAKER_FAILURES
    path.write_text(breaking.replace("name: breaking", "name: breaking-v2"))
    edited = ChatPolicyRoute(policy=str(path))
    assert edited.compiled_policy.name == "breaking-v2"
    edited.invoke("hi")
    # A new file version is a new policy: its breakers start closed.
    assert fast_is_down.attempts("fake-fast") == BREAKER_FAILURES + 1


def test_fastest_orders_by_latency_earlier_models_observed(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    fp.set_default("fake-backup", Reply(text="slow", delay=0.3))
    fp.set_default("fake-fast", Reply(text="quick"))
    policy = make_policy(
        name="fastest", extra="groups:\n  speedy: {strategy: fastest, models: [backup, fast]}\n"
    ).replace("  - name: default\n    to: [fast, backup]", "  - name: default\n    to: speedy")
    llm = ChatPolicyRoute(policy=policy).configurable_fields(
        temperature=ConfigurableField(id="temperature")
    )
    picked = [
        deployment(llm.invoke("hi", config={"configurable": {"temperature": i / 10}}))
        for i in range(4)
    ]
    # Unmeasured deployments go first in listed order, then the lowest latency: only with
    # the stats of the earlier models does the third call know that fast is faster.
    assert picked == ["backup", "fast", "fast", "fast"]


def test_what_shares_an_executor_and_what_keeps_its_own(make_policy: Callable[..., str]) -> None:
    policy = make_policy()
    accounting = NullAccounting()
    first = ChatPolicyRoute(policy=policy, accounting=accounting)
    assert ChatPolicyRoute(policy=policy, accounting=accounting, temperature=1).executor is (
        first.executor
    )
    assert ChatPolicyRoute(policy=policy).executor is ChatPolicyRoute(policy=policy).executor
    assert ChatPolicyRoute(policy=policy).executor is not first.executor
    other = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    assert other.executor is not first.executor
    assert copy.deepcopy(first).executor is not first.executor
    assert first.model_copy(update={"temperature": 0.2}).executor is first.executor
    moved = first.model_copy(update={"accounting": other.accounting})
    assert moved.executor is other.executor
    default = ChatPolicyRoute(policy=policy)
    assert pickle.loads(pickle.dumps(default)).executor is default.executor


def test_models_racing_to_their_first_call_share_one_executor(
    make_policy: Callable[..., str],
) -> None:
    policy = make_policy()
    accounting = NullAccounting()

    def executor_id(_: int) -> int:
        return id(ChatPolicyRoute(policy=policy, accounting=accounting).executor)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(executor_id, range(32)))) == 1


def test_the_cache_is_bounded(make_policy: Callable[..., str]) -> None:
    policy = make_policy()
    accounting = NullAccounting()
    first = ChatPolicyRoute(policy=policy, accounting=accounting).executor
    for _ in range(shared.CACHE_SIZE):
        _ = ChatPolicyRoute(policy=policy, accounting=NullAccounting()).executor
    # The least recently used executor made room; a model built now starts afresh.
    assert ChatPolicyRoute(policy=policy, accounting=accounting).executor is not first


def test_a_changed_key_loads_the_policy_again(
    make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = make_policy()
    before = ChatPolicyRoute(policy=policy)
    assert ChatPolicyRoute(policy=policy).compiled_policy is before.compiled_policy
    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-rotated")
    after = ChatPolicyRoute(policy=policy)
    key = after.compiled_policy.spec.models["fast"].api_key
    assert key is not None
    assert key.reveal() == "sk-rotated"
    assert after.executor is not before.executor
