"""Memory stores that reserve or settle after a pause, a one-model policy with a day budget
for them, and accounting whose receipts go to a list: the set-up of the tests that cancel or
abandon a call while its books are being written (execution, LangChain and budget tests alike,
imported as ``budgets.slow_stores``), and for those that leave a stream open past
``asyncio.run()``: which async generators the loop tracks, and its end's sweep over them."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import BudgetStore, LineState, ReserveLine, ReserveResult
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy_text

os.environ.setdefault("SLOW_STORE_KEY", "sk-test")

# The lease is long so that only settling, never a lease running out, gives a reservation back.
POLICY = """
policyroute: 1
name: {name}
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{SLOW_STORE_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
budgets:
  - name: day
    limit_usd: 10
    window: day
store: {{backend: memory, lease: 3600s}}
defaults: {{max_tokens: 16}}
"""
How = Literal["sleep", "thread"]
PAUSE_S = 0.2


def one_model_policy(base: str, name: str) -> CompiledPolicy:
    """Model ``a`` (``openai/a`` at ``base``, $1/$2 per million tokens) under a $10 day budget."""
    return load_policy_text(POLICY.format(name=name, base=base))


def list_accounting(
    policy: CompiledPolicy, store: BudgetStore, *, blocking: bool = False
) -> tuple[PolicyAccounting, list[Mapping[str, Any]]]:
    """Accounting on ``store`` and the list its receipts are appended to (by a worker thread
    when ``blocking``)."""
    receipts: list[Mapping[str, Any]] = []
    acct = PolicyAccounting(
        policy,
        guard=BudgetGuard(policy, store),
        sinks=[CallableSink(receipts.append, blocking=blocking)],
    )
    return acct, receipts


class SlowSettlingStore(MemoryStore):
    """Settles after ``pause`` seconds: on the event loop (``sleep``) or in a worker thread,
    like SQLite's or Redis's waits. ``settling`` is set when a settle starts."""

    def __init__(self, how: How = "sleep", pause: float = PAUSE_S) -> None:
        super().__init__()
        self.how = how
        self.pause = pause
        self.settling = threading.Event()

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        self.settling.set()
        if self.how == "sleep":
            await asyncio.sleep(self.pause)
            return self.settle(reservation_id, actual, now=now)

        def slowly() -> list[LineState]:
            time.sleep(self.pause)
            return self.settle(reservation_id, actual, now=now)

        return await asyncio.to_thread(slowly)


class SlowReservingStore(MemoryStore):
    """Makes each reservation at once, then answers after ``pause`` seconds (on the loop or in a
    worker thread): the window in which a call can end with a reservation it never heard of.
    ``reserving`` is set when a reservation starts."""

    def __init__(self, how: How = "sleep", pause: float = PAUSE_S) -> None:
        super().__init__()
        self.how = how
        self.pause = pause
        self.reserving = threading.Event()

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        self.reserving.set()

        def reserve() -> ReserveResult:
            return self.reserve(
                lines, reservation_id=reservation_id, lease_seconds=lease_seconds, now=now
            )

        if self.how == "thread":

            def slowly() -> ReserveResult:
                result = reserve()
                time.sleep(self.pause)
                return result

            return await asyncio.to_thread(slowly)
        result = reserve()
        await asyncio.sleep(self.pause)
        return result


async def until(event: threading.Event) -> None:
    """Wait on the loop for ``event``, set by a task or a worker thread."""
    while not event.is_set():
        await asyncio.sleep(0.001)


def assert_settled(
    store: BudgetStore, receipts: Sequence[Mapping[str, Any]], *expected: tuple[str, str]
) -> LineState:
    """The receipts are ``expected`` ((kind, status) pairs, in order) and the day budget holds
    no reservation; returns the budget line for what was spent."""
    assert [(r["kind"], r["status"]) for r in receipts] == list(expected)
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    return line


CANCELLED = (("attempt", "cancelled"), ("call", "cancelled"))


def tracking() -> Callable[[], list[AsyncGenerator[Any, None]]]:
    """Record the async generators the running loop starts tracking from now on (through the
    first-iteration hook ``asyncio.run()`` installs); returns a getter of those still alive."""
    loop_hooks = sys.get_asyncgen_hooks()
    seen: list[weakref.ref[AsyncGenerator[Any, None]]] = []

    def firstiter(agen: AsyncGenerator[Any, None]) -> None:
        seen.append(weakref.ref(agen))
        if loop_hooks.firstiter is not None:
            loop_hooks.firstiter(agen)

    sys.set_asyncgen_hooks(firstiter=firstiter)
    return lambda: [g for g in (ref() for ref in seen) if g is not None]


async def sweep(agens: list[AsyncGenerator[Any, None]]) -> list[BaseException | None]:
    """What ``loop.shutdown_asyncgens()`` does: close them all at once, in this order."""
    return await asyncio.gather(*(g.aclose() for g in agens), return_exceptions=True)


def errors_logged(records: Sequence[logging.LogRecord]) -> list[str]:
    """The messages of the records at ERROR or above."""
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR]


def stream_kept_past_the_loop_end(
    base: str,
    first_chunk: Callable[[PolicyAccounting], Awaitable[Any]],
    *,
    kept: Literal["global", "returned"],
    how: How,
    keep: list[Any],
) -> tuple[BudgetStore, list[dict[str, Any]]]:
    """Open a stream on model ``a`` at ``base`` with ``first_chunk`` (which reads its first
    chunk and returns it) inside ``asyncio.run()``, and keep it in ``keep`` past the loop's
    end: stored there from inside the loop (``global``) or returned from it. Settling pauses
    (``how``), so the loop's end meets the stream while it settles. Returns the store and the
    receipts written."""
    store = SlowSettlingStore(how, pause=0.1)
    acct, receipts = list_accounting(one_model_policy(base, "loop-end-nested"), store)

    async def main() -> Any:
        stream = await first_chunk(acct)
        if kept == "global":
            keep.append(stream)
            return None
        return stream

    keep.append(asyncio.run(main()))
    return store, receipts
