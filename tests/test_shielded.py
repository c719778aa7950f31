"""despite_cancellation: work finishes even when its caller is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from policyroute._shielded import despite_cancellation


def test_work_that_never_suspends_runs_inline_in_the_callers_task() -> None:
    seen: list[object] = []

    async def work() -> int:
        seen.append(asyncio.current_task())
        return 7

    async def main() -> None:
        assert await despite_cancellation(work()) == 7
        assert seen == [asyncio.current_task()]

    asyncio.run(main())


def test_a_cancelled_caller_waits_for_the_work_then_is_cancelled() -> None:
    finished: list[str] = []

    async def work() -> str:
        await asyncio.sleep(0.05)
        finished.append("settled")
        return "settled"

    async def main() -> None:
        caller = asyncio.create_task(despite_cancellation(work()))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert finished == ["settled"]  # done before the cancellation went on

    asyncio.run(main())


def test_errors_of_the_work_reach_the_caller() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise ValueError("store down")

    async def main() -> None:
        with pytest.raises(ValueError, match="store down"):
            await despite_cancellation(work())

    asyncio.run(main())


def test_a_cancellation_delivered_twice_still_waits_for_the_work() -> None:
    finished: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0.05)
        finished.append("done")

    async def main() -> None:
        caller = asyncio.create_task(despite_cancellation(work()))
        await asyncio.sleep(0.01)
        caller.cancel()
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert finished == ["done"]

    asyncio.run(main())
