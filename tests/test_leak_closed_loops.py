"""Event loops closed without ``asyncio.run``'s shutdown are not kept alive by policyroute.

``loop.run_until_complete(...)`` then ``loop.close()`` (older sync wrappers, some task runners)
never finalizes the loop's async generators, so the clean-ups policyroute registers for a loop's
end (litellm's clients, the Redis store's per-loop clients) never run. Their registries hold
each such loop through its clean-up handle; a loop that is found closed is dropped from them
when the next loop registers, so one closed loop after another does not pile up.
"""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from policyroute.budgets.stores.loop_clients import LoopClients
from policyroute.execution import loop_cleanup

LOOPS = 5


class _Client:
    closed = 0

    async def aclose(self) -> None:
        _Client.closed += 1


def _run_and_close(work: Any) -> weakref.ref[asyncio.AbstractEventLoop]:
    """Run ``work()`` on a new loop that is then closed without shutting down its generators."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(work())
    finally:
        loop.close()
    return weakref.ref(loop)


def test_litellm_clean_up_registry_lets_closed_loops_go() -> None:
    dead = [_run_and_close(loop_cleanup.close_litellm_clients_with_loop) for _ in range(LOOPS)]
    _run_and_close(loop_cleanup.close_litellm_clients_with_loop)
    gc.collect()
    assert [ref for ref in dead if ref() is not None] == []
    # The last loop's entry stays until another loop registers (other tests' loops may be
    # open and registered too).
    assert len([loop for loop in list(loop_cleanup._closers) if loop.is_closed()]) <= 1


def test_loop_clients_let_closed_loops_go() -> None:
    clients = LoopClients(lambda: (_Client(), {}))
    dead = [_run_and_close(clients.get) for _ in range(LOOPS)]
    _run_and_close(clients.get)
    gc.collect()
    assert [ref for ref in dead if ref() is not None] == []
    assert len(clients._by_loop) <= 1


def test_a_loop_that_ends_normally_still_runs_its_clean_up() -> None:
    clients = LoopClients(lambda: (_Client(), {}))
    before = _Client.closed
    _run_and_close(clients.get)  # closed without its clean-up: dropped, not closed

    async def use() -> None:
        await clients.get()

    asyncio.run(use())
    assert _Client.closed == before + 1
    assert len(clients._by_loop) == 0
