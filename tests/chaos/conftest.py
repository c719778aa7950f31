"""Fixtures for the mixed-fault runs: the budget tests' throwaway redis-server, and a clean
litellm client cache after each run."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from budgets.conftest import redis_url
from litellm_clients import close_cached_sync_clients

__all__ = ["redis_url"]


@pytest.fixture(autouse=True)
def _sync_clients_closed() -> Iterator[None]:
    """Close the sync HTTP clients litellm cached during the run, and collect garbage.

    A run leaves sync clients (threads' ``completion`` and ``stream``) in litellm's
    process-wide client cache, with connections the fake provider's faults cut or left
    hanging; litellm closes them only when it evicts them, which may be during a later test
    or never, and their sockets would be reported there. Async clients are closed with their
    event loop (policyroute does that), and are left in the cache: those still there belong
    to a loop that has not ended (an earlier folder's loop shared by its whole session), and
    dropping them would leave their aiohttp sessions to the garbage collector unclosed.
    """
    yield
    close_cached_sync_clients()
    gc.collect()
