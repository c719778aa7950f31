"""Shared test setup: offline, reproducible litellm."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator

import pytest
from litellm_clients import close_cached_sync_clients

from policyroute.testing import FakeProvider

# litellm fetches a live price map at import unless told otherwise; tests must stay offline
# and reproducible.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def _closed_sync_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give sync tests a current event loop and close it afterwards.

    litellm's sync stream wrapper calls ``asyncio.get_event_loop()``, which in the main thread
    creates a loop that nobody closes (a ResourceWarning, an error here). Async tests run on
    pytest-asyncio's loop and need nothing.
    """
    if request.node.get_closest_marker("asyncio") is not None:
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture(scope="session", autouse=True)
def _no_state_left_in_the_checkout(pytestconfig: pytest.Config) -> Iterator[None]:
    """Tests keep budget stores and receipts in temp dirs, never in the working tree: no new
    entry may appear at the top of the checkout (the default ``.policyroute`` state, or a
    policy's relative ``receipts/`` or ``budgets.sqlite3`` resolved against it)."""
    root = pytestconfig.rootpath
    before = {entry.name for entry in root.iterdir()}
    yield
    caches = {".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", "__pycache__"}
    added = sorted({entry.name for entry in root.iterdir()} - before - caches)
    assert not added, f"tests wrote into the checkout {root}: {', '.join(added)}"


@pytest.fixture(scope="module", autouse=True)
def _litellm_sync_clients_closed_per_module() -> Iterator[None]:
    """Each module's sync litellm clients closed after it (see ``close_cached_sync_clients``):
    past 200 cached clients litellm evicts the oldest unclosed, and their sockets would be
    reported wherever the garbage collector finds them."""
    yield
    close_cached_sync_clients()


@pytest.fixture(autouse=True)
def _fresh_token_counts() -> None:
    """Each test counts prompts from scratch: token counts kept by an earlier test (see
    ``policyroute.costs.token_cache``) would hide a counter a test replaces."""
    from policyroute.costs import estimate

    estimate._COUNTS.clear()


_WORKER_TASKS: list[asyncio.Task[object]] = []


@pytest.fixture(autouse=True)
def _litellm_worker_closed_with_its_loop() -> Iterator[None]:
    """Close litellm's logging worker once the loop it ran on is closed.

    litellm starts one worker task per event loop and leaves it pending when the loop closes
    (each async test has its own loop). Collected later, the orphaned coroutine cancels a
    future on the closed loop, and the RuntimeError is reported as an unraisable exception by
    whichever test happens to be running: an error here. Each worker task seen after a test is
    held until its loop is closed, then its coroutine is closed, so no error lands elsewhere.
    """
    yield
    module = sys.modules.get("litellm.litellm_core_utils.logging_worker")
    task = getattr(getattr(module, "GLOBAL_LOGGING_WORKER", None), "_worker_task", None)
    if task is not None and task not in _WORKER_TASKS:
        _WORKER_TASKS.append(task)
    for held in list(_WORKER_TASKS):
        if held.done():
            _WORKER_TASKS.remove(held)
        elif held.get_loop().is_closed():
            _WORKER_TASKS.remove(held)
            try:
                held.get_coro().close()  # type: ignore[union-attr]
            except RuntimeError:  # "Event loop is closed", from the coroutine's own clean-up
                pass


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[FakeProvider]:
    """One fake provider on 127.0.0.1 for the test module."""
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fp(fake_provider: FakeProvider) -> FakeProvider:
    """The module's fake provider, with scripts and recordings cleared (folders and modules
    that need another set-up define their own ``fp``)."""
    fake_provider.reset()
    return fake_provider
