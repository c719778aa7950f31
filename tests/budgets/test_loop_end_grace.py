"""The loop-end grace bounds every step of the books a call still writes, not only the first:
a reservation cancelled when its grace ran out is given back, and that release is bounded too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest
from langchain_core.messages import HumanMessage

import policyroute._shielded as shielded
from budgets.slow_stores import list_accounting, one_model_policy, until
from policyroute import ChatPolicyRoute
from policyroute.budgets.stores.base import LineState, ReserveLine, ReserveResult
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


class HangingStore(MemoryStore):
    """Reserves, then answers neither that reservation nor its release until ``gate`` is set:
    a store that stopped answering."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.reserving = threading.Event()

    async def _stalled(self) -> None:
        while not self.gate.is_set():
            await asyncio.sleep(0.01)

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        result = self.reserve(
            lines, reservation_id=reservation_id, lease_seconds=lease_seconds, now=now
        )
        self.reserving.set()
        await self._stalled()
        return result

    async def arelease(self, reservation_id: str, *, now: float | None = None) -> None:
        await self._stalled()
        self.release(reservation_id, now=now)

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        await self._stalled()
        return self.settle(reservation_id, actual, now=now)


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.set_default("a", Reply(text="hi"))
        yield provider


def test_loop_end_with_a_store_that_stopped_answering_ends_within_the_grace(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shielded, "SHUTDOWN_GRACE_S", 0.2)
    policy = one_model_policy(fp.openai_base, "grace-release")
    store = HangingStore()
    acct, _ = list_accounting(policy, store)
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    left: list[asyncio.Future[object]] = []

    async def main() -> None:
        # Left running as main returns: asyncio.run's end cancels it while it reserves.
        left.append(asyncio.ensure_future(llm.ainvoke([HumanMessage("hello")])))
        await until(store.reserving)

    runner = threading.Thread(target=asyncio.run, args=(main(),))
    runner.start()
    runner.join(10.0)  # a first call imports and warms litellm up: seconds, cold
    ended = not runner.is_alive()
    store.gate.set()  # whatever happened, let the thread end
    runner.join(10.0)
    assert ended, "asyncio.run() did not end within its grace: the release after it is unbounded"
