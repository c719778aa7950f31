"""despite_cancellation: work finishes even when its caller is cancelled."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from policyroute import _shielded
from policyroute._shielded import despite_cancellation
from policyroute.execution.timeouts import within

# Tasks main leaves running for asyncio.run's end to cancel (kept referenced meanwhile).
left: list[asyncio.Future[None]] = []


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


def test_work_under_way_when_asyncio_run_ends_finishes_with_the_result_it_awaited() -> None:
    # asyncio.run cancels every task left when main returns, the work's own task included;
    # the thread's answer (a settle committed there) must still reach the work.
    finished: list[str] = []

    def commit() -> str:
        time.sleep(0.05)
        return "committed"

    async def work() -> None:
        finished.append(await asyncio.to_thread(commit))
        await asyncio.sleep(0.01)  # and it goes on after it
        finished.append("written")

    async def caller() -> None:
        await despite_cancellation(work())

    async def main() -> None:
        left.append(asyncio.ensure_future(caller()))
        await asyncio.sleep(0.01)  # the work waits for its thread now

    asyncio.run(main())
    assert finished == ["committed", "written"]


async def _timed_out_work(seen: list[str]) -> None:
    # A store's own timeout (asyncio.timeout, which within is on 3.11+, cancels the task the
    # work runs in, then turns the cancellation into TimeoutError): it must keep working in
    # the work's task.
    await asyncio.sleep(0.02)
    try:
        await within(asyncio.sleep(60), 0.01)
    except TimeoutError:
        seen.append("timed out")


def test_a_timeout_inside_the_work_times_out() -> None:
    seen: list[str] = []

    async def main() -> None:
        started = time.monotonic()
        await despite_cancellation(_timed_out_work(seen))
        assert time.monotonic() - started < 30  # not the 60 s the work would have slept

    asyncio.run(main())
    assert seen == ["timed out"]


def test_a_timeout_inside_the_work_times_out_after_the_loops_end_cancelled_it() -> None:
    # The held-back cancellation is not counted against the work's task either.
    seen: list[str] = []

    async def main() -> None:
        left.append(asyncio.ensure_future(despite_cancellation(_timed_out_work(seen))))
        await asyncio.sleep(0.005)

    asyncio.run(main())
    assert seen == ["timed out"]


def test_work_that_never_ends_is_cancelled_after_the_grace(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_shielded, "SHUTDOWN_GRACE_S", 0.05)
    seen: list[str] = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()  # a store that never answers
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        left.append(asyncio.ensure_future(despite_cancellation(work())))
        await asyncio.sleep(0.005)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="policyroute.accounting"):
        asyncio.run(main())
    assert time.monotonic() - started < 2
    assert seen == ["cancelled"]
    assert "still pending 0.05 s after the event loop's end cancelled it" in caplog.text


def test_a_cancelled_caller_still_waits_when_the_loop_cancels_the_work_too() -> None:
    finished: list[str] = []
    outcome: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0.05)
        finished.append("settled")

    async def caller() -> None:
        try:
            await despite_cancellation(work())
        except asyncio.CancelledError:
            outcome.append("cancelled after the work" if finished else "cancelled before")
            raise

    async def main() -> None:
        task = asyncio.ensure_future(caller())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert outcome == ["cancelled after the work"]
