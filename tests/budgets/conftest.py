"""Fixtures for the budget tests: a real redis-server, stores of every backend, a small policy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from budgets.helpers import make_store
from budgets.proxy import FaultyProxy
from policyroute.budgets.stores.base import BudgetStore
from policyroute.testing import FakeProvider, Reply, Usage

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on a free port; fails instead of skipping when CI is set."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start (exit code {proc.poll()})")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


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
    url = request.getfixturevalue("redis_url") if backend == "redis" else None
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
