"""A PolicyAccounting closes what it opened, and only that.

``PolicyAccounting.from_policy`` and ``default_accounting`` open the policy's budget store (a
SQLite connection, Redis pools): ``close()`` / ``aclose()`` / leaving a ``with`` block close it
once, however often they are called. A guard handed in keeps its store open. A closed
accounting refuses the next call with a BudgetStoreError before anything reaches a provider.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import policyroute
from budgets.helpers import write_store_policy
from policyroute.accounting import PolicyAccounting, _clear_default_cache, default_accounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy
from policyroute.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(params=["sqlite", "redis"])
def store_section(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "{backend: sqlite, path: budgets.sqlite3}"
    url = request.getfixturevalue("redis_url")
    return f"{{backend: redis, url: '{url}', prefix: 't{uuid.uuid4().hex[:10]}'}}"


@pytest.fixture
def closings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The close and aclose calls every budget store receives during the test, in order."""
    from policyroute.budgets.stores.redis import RedisStore

    calls: list[str] = []
    for cls in (SQLiteStore, RedisStore):
        close: Callable[[Any], None] = cls.close
        aclose: Callable[[Any], Coroutine[Any, Any, None]] = cls.aclose

        def counted_close(self: Any, _close: Callable[[Any], None] = close) -> None:
            calls.append("close")
            _close(self)

        async def counted_aclose(
            self: Any, _aclose: Callable[[Any], Coroutine[Any, Any, None]] = aclose
        ) -> None:
            calls.append("aclose")
            await _aclose(self)

        monkeypatch.setattr(cls, "close", counted_close)
        monkeypatch.setattr(cls, "aclose", counted_aclose)
    return calls


def _policy(tmp_path: Path, fp: FakeProvider, store: str) -> CompiledPolicy:
    return load_policy(write_store_policy(tmp_path / "policy.yaml", fp.openai_base, store))


def test_close_closes_the_store_from_policy_opened_once(
    tmp_path: Path, fake_provider: FakeProvider, store_section: str, closings: list[str]
) -> None:
    acct = PolicyAccounting.from_policy(_policy(tmp_path, fake_provider, store_section))
    policyroute.completion(policy=acct.policy, messages=MESSAGES, accounting=acct)

    acct.close()
    acct.close()

    assert closings == ["close"]
    assert acct.closed


@pytest.mark.asyncio
async def test_aclose_closes_the_store_with_its_async_close(
    tmp_path: Path, fake_provider: FakeProvider, store_section: str, closings: list[str]
) -> None:
    acct = PolicyAccounting.from_policy(_policy(tmp_path, fake_provider, store_section))
    await policyroute.acompletion(policy=acct.policy, messages=MESSAGES, accounting=acct)

    await acct.aclose()
    await acct.aclose()
    acct.close()

    # The store's aclose closes its sync pool too, through its own close().
    assert closings == ["aclose", "close"]


def test_a_sqlite_connection_the_accounting_opened_is_closed(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    policy = _policy(tmp_path, fake_provider, "{backend: sqlite, path: budgets.sqlite3}")
    with PolicyAccounting.from_policy(policy) as acct:
        policyroute.completion(policy=policy, messages=MESSAGES, accounting=acct)
        store = acct.guard.store  # type: ignore[union-attr]
        conn = store._conn()

    with pytest.raises(Exception, match="closed database"):
        conn.execute("SELECT 1")


@pytest.mark.asyncio
async def test_async_with_closes_the_accounting(
    tmp_path: Path, fake_provider: FakeProvider, store_section: str, closings: list[str]
) -> None:
    async with PolicyAccounting.from_policy(
        _policy(tmp_path, fake_provider, store_section)
    ) as acct:
        await policyroute.acompletion(policy=acct.policy, messages=MESSAGES, accounting=acct)
    assert acct.closed
    assert closings == ["aclose", "close"]


def test_a_guard_passed_in_keeps_its_store_open(
    tmp_path: Path, fake_provider: FakeProvider, closings: list[str]
) -> None:
    policy = _policy(tmp_path, fake_provider, "{backend: sqlite, path: budgets.sqlite3}")
    store = SQLiteStore(tmp_path / "budgets.sqlite3")
    try:
        with PolicyAccounting(policy, guard=BudgetGuard(policy, store), sinks=[]) as acct:
            policyroute.completion(policy=policy, messages=MESSAGES, accounting=acct)

        assert closings == []
        assert store.scan("", now=0.0)  # still open: the caller's to close
    finally:
        store.close()


def test_a_closed_accounting_refuses_the_next_call_before_the_provider(
    tmp_path: Path, fake_provider: FakeProvider, store_section: str
) -> None:
    policy = _policy(tmp_path, fake_provider, store_section)
    acct = PolicyAccounting.from_policy(policy)
    policyroute.completion(policy=policy, messages=MESSAGES, accounting=acct)
    acct.close()

    with pytest.raises(BudgetStoreError, match="accounting of policy 'store-faults' is closed"):
        policyroute.completion(policy=policy, messages=MESSAGES, accounting=acct)
    assert len(fake_provider.requests) == 1


def test_a_closed_sqlite_store_refuses_instead_of_reopening(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "b.sqlite3")
    store.close()
    store.close()
    with pytest.raises(BudgetStoreError, match=r"b\.sqlite3 is closed"):
        store.scan("", now=0.0)


def test_the_default_cache_closes_each_store_once(
    tmp_path: Path, fake_provider: FakeProvider, store_section: str, closings: list[str]
) -> None:
    policy = _policy(tmp_path, fake_provider, store_section)
    policyroute.completion(policy=policy, messages=MESSAGES)  # the default accounting
    default_accounting(policy).close()  # closed by its user, then by the clean-up

    _clear_default_cache()
    _clear_default_cache()

    assert closings == ["close"]


def test_the_default_accounting_replaces_one_that_was_closed(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    policy = _policy(tmp_path, fake_provider, "{backend: sqlite, path: budgets.sqlite3}")
    first = default_accounting(policy)
    first.close()

    second = default_accounting(policy)

    assert second is not first
    assert not second.closed
    policyroute.completion(policy=policy, messages=MESSAGES, accounting=second)
