"""Fixtures for the budget tests: a real redis-server, stores of every backend, a small policy."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from budgets.helpers import make_store
from budgets.proxy import FaultyProxy
from budgets.redis_servers import cluster, sentinel_group, server
from policyroute.budgets.stores.base import BudgetStore
from policyroute.testing import FakeProvider, Reply, Usage

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on a free port; fails instead of skipping when CI is set."""
    with server(tmp_path_factory.mktemp("redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway three-primary Redis Cluster, reached through two of its nodes."""
    with cluster(tmp_path_factory.mktemp("redis-cluster")) as ports:
        yield f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/"


@pytest.fixture(scope="session")
def redis_sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway primary and replica watched by one Sentinel, as service ``budgets``."""
    with sentinel_group(tmp_path_factory.mktemp("redis-sentinel")) as (_, _, sentinel):
        yield f"redis+sentinel://127.0.0.1:{sentinel}/budgets/0"


# The fixture that serves each Redis deployment a store backend names.
REDIS_URL_FIXTURES = {
    "redis": "redis_url",
    "redis-cluster": "redis_cluster_url",
    "redis-sentinel": "redis_sentinel_url",
}


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultyProxy]:
    """A proxy in front of the test server, whose faults a test turns on and off."""
    port = urlsplit(redis_url).port
    assert port is not None
    with FaultyProxy(port) as faulty:
        yield faulty


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], BudgetStore]]:
    """Opens stores on one shared state (same file / same Redis prefix) for this test."""
    fixture = REDIS_URL_FIXTURES.get(backend)
    url = request.getfixturevalue(fixture) if fixture else None
    location = str(tmp_path / "budgets.sqlite3") if backend == "sqlite" else url
    prefix = f"t{uuid.uuid4().hex[:10]}"
    opened: list[BudgetStore] = []
    shared: list[BudgetStore] = []

    def factory() -> BudgetStore:
        if backend == "memory":
            if not shared:
                shared.append(make_store("memory", None, prefix))
            return shared[0]
        store = make_store(backend, location, prefix)
        opened.append(store)
        return store

    yield factory
    for store in opened + shared:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], BudgetStore]) -> BudgetStore:
    return store_factory()


@pytest.fixture
def fake_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """A fake provider on loopback; policy paths are relative to ``tmp_path``.

    Clears policyroute's cached executors afterwards, which closes the stores they hold.
    """
    from policyroute.accounting import _clear_default_cache
    from policyroute.api import clear_cache

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_FAULT_KEY", "sk-test")
    try:
        with FakeProvider() as provider:
            provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
            yield provider
    finally:
        clear_cache()
        _clear_default_cache()
