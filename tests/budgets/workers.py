"""Code run in worker processes (spawned, so it must be importable by module name)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from decimal import Decimal
from typing import Any

from budgets.helpers import attempt, budget, fixed_counter, make_store, policy
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import ReserveLine
from policyroute.errors import BudgetExceeded

LIMIT = "0.1"
CALL_PARAMS = {"max_tokens": 900}  # with 100 input tokens at $1/M: $0.001 a call
CALL_COST = Decimal("0.001")


def contended_budget() -> Any:
    return budget("shared", limit=LIMIT)


def run_calls(backend: str, location: str | None, prefix: str, calls: int, start: Any) -> int:
    """Make ``calls`` guarded calls, each holding its reservation briefly; return admitted."""
    store = make_store(backend, location, prefix)
    b = contended_budget()
    guard = BudgetGuard(policy([b]), store, token_counter=fixed_counter(100))
    admitted = 0
    start.wait()
    try:
        for _ in range(calls):
            try:
                admission = guard.admit(attempt([b], params=CALL_PARAMS))
            except BudgetExceeded:
                continue
            admitted += 1
            time.sleep(0.0005)  # the "provider call": keeps reservations in flight together
            guard.settle(admission, CALL_COST)
    finally:
        store.close()
    return admitted


async def run_calls_async(
    backend: str, location: str | None, prefix: str, calls: int, start: Any
) -> int:
    """Like :func:`run_calls` through the async API, eight calls in flight at a time."""
    store = make_store(backend, location, prefix)
    b = contended_budget()
    guard = BudgetGuard(policy([b]), store, token_counter=fixed_counter(100))
    start.wait()

    async def one() -> int:
        try:
            admission = await guard.aadmit(attempt([b], params=CALL_PARAMS))
        except BudgetExceeded:
            return 0
        await asyncio.sleep(0.0005)
        await guard.asettle(admission, CALL_COST)
        return 1

    admitted = 0
    try:
        for first in range(0, calls, 8):
            admitted += sum(await asyncio.gather(*(one() for _ in range(min(8, calls - first)))))
    finally:
        await store.aclose()
    return admitted


def process_main(
    backend: str, location: str | None, prefix: str, calls: int, start: Any, out: Any
) -> None:
    out.put(run_calls(backend, location, prefix, calls, start))


def process_main_async(
    backend: str, location: str | None, prefix: str, calls: int, start: Any, out: Any
) -> None:
    out.put(asyncio.run(run_calls_async(backend, location, prefix, calls, start)))


def reserve_and_die(backend: str, location: str | None, prefix: str, now: float) -> None:
    """Reserve, then die without settling, as a crashed worker would."""
    store = make_store(backend, location, prefix)
    line = ReserveLine(
        key="crash/*/day:x", limit=Decimal(1), amount=Decimal("0.4"), expires_at=now + 86_400
    )
    assert store.reserve([line], reservation_id="doomed", lease_seconds=30, now=now).ok
    os.kill(os.getpid(), signal.SIGKILL)
