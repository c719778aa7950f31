"""Deadlines on awaits: ``within`` and Python 3.10's in-place ``bounded`` behave alike.

Each test runs against ``bounded`` (the 3.10 implementation, on every Python) and ``within``
(``asyncio.timeout`` on 3.11+): what 3.11 does is the specification. A deadline raises
``TimeoutError`` only for a cancellation of its own; a cancellation of the task, before,
after or in the same loop turn as the deadline, stays a ``CancelledError``; nothing is left
scheduled once the await ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from policyroute._shielded import despite_cancellation
from policyroute.execution.inplace_timeout import bounded
from policyroute.execution.timeouts import within

pytestmark = pytest.mark.timeout(10)

T = TypeVar("T")
Impl = Callable[[Awaitable[Any], float], Awaitable[Any]]
IMPLS = pytest.mark.parametrize("impl", [bounded, within], ids=["bounded", "within"])
FAR = 10.0  # a deadline no test reaches


def _run(main: Callable[[list[asyncio.TimerHandle]], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on a loop of its own; it gets the timers scheduled with ``call_at``, in
    order (a deadline's, then whatever the test schedules)."""
    loop = asyncio.new_event_loop()
    timers: list[asyncio.TimerHandle] = []
    schedule = loop.call_at

    def recorded(when: float, callback: Callable[..., object], *args: Any, **kw: Any) -> Any:
        timer = schedule(when, callback, *args, **kw)
        timers.append(timer)
        return timer

    loop.call_at = recorded  # type: ignore[method-assign,assignment]
    try:
        return loop.run_until_complete(main(timers))
    finally:
        loop.close()


async def _still_running() -> None:
    """The task has no cancellation left pending: its next awaits go through."""
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)


async def _armed(impl: Impl, awaitable: Awaitable[Any], seconds: float) -> asyncio.Future[Any]:
    """Await ``awaitable`` under ``impl`` in a task of its own; return once its deadline is set
    (the deadline's timer is then ``timers[0]``)."""
    task = asyncio.ensure_future(impl(awaitable, seconds))
    await asyncio.sleep(0)
    return task


def _stall_across(timer: asyncio.TimerHandle, first: Callable[[], object] = lambda: None) -> float:
    """Run ``first``, then stall the loop until ``timer`` is past due; return its due time.

    Callbacks the test schedules within a microsecond of it run in the turn it fires in,
    before or after it as their time says."""
    loop = asyncio.get_running_loop()

    def stall() -> None:
        first()
        time.sleep(0.03)

    loop.call_at(timer.when() - 0.01, stall)
    return timer.when()


@IMPLS
def test_the_result_comes_back_and_the_deadline_is_disarmed(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> str:
        answer = asyncio.get_running_loop().create_future()
        task = await _armed(impl, answer, 0.1)
        asyncio.get_running_loop().call_later(0.005, answer.set_result, "ok")
        result = await task
        assert timers[0].cancelled()
        await asyncio.sleep(0.12)  # past the deadline: nothing fires
        return str(result)

    assert _run(main) == "ok"


@IMPLS
def test_the_deadline_raises_timeout_error_and_cancels_what_was_awaited(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        never = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await impl(never, 0.01)
        assert time.monotonic() - started < 1.0
        assert never.cancelled()  # as a cancelled task cancels what it awaits
        await _still_running()

    _run(main)


@IMPLS
def test_the_body_runs_in_the_callers_task(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        caller = asyncio.current_task()
        seen: list[object] = []

        async def body() -> None:
            seen.append(asyncio.current_task())
            await asyncio.sleep(0)
            seen.append(asyncio.current_task())

        await impl(body(), FAR)
        assert seen == [caller, caller]

    _run(main)


@IMPLS
def test_the_body_starts_before_the_caller_yields(impl: Impl) -> None:
    # What aiohttp needs: the read is waiting before anything else runs.
    async def main(_: list[asyncio.TimerHandle]) -> None:
        order: list[str] = []

        async def read() -> None:
            order.append("read waits")
            await asyncio.sleep(0)

        asyncio.get_running_loop().call_soon(order.append, "loop turned")
        await impl(read(), FAR)
        assert order == ["read waits", "loop turned"]

    _run(main)


@IMPLS
@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_deadline_already_past_expires_at_the_first_suspension(
    impl: Impl, seconds: float
) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        async def immediate() -> str:
            return "no suspension"

        assert await impl(immediate(), seconds) == "no suspension"
        with pytest.raises(TimeoutError):
            await impl(asyncio.sleep(0), seconds)
        await _still_running()

    _run(main)


@IMPLS
def test_the_body_cleans_up_after_the_deadline_then_times_out(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        steps: list[str] = []

        async def body() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await asyncio.sleep(0.005)  # cleanup awaits something
                steps.append("cleaned up")
                raise

        with pytest.raises(TimeoutError):
            await impl(body(), 0.01)
        assert steps == ["cleaned up"]
        await _still_running()

    _run(main)


@IMPLS
def test_a_body_that_swallows_the_deadline_returns_its_value(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        async def body() -> str:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await asyncio.sleep(0)
                return "gave up quietly"
            return "answered"

        assert await impl(body(), 0.01) == "gave up quietly"
        await _still_running()

    _run(main)


@IMPLS
def test_errors_of_the_body_pass_unchanged(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        async def body() -> None:
            await asyncio.sleep(0)
            raise ValueError("provider said no")

        with pytest.raises(ValueError, match="provider said no"):
            await impl(body(), FAR)
        assert timers[0].cancelled()

    _run(main)


@IMPLS
def test_a_cancellation_before_the_deadline_stays_a_cancellation(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        never = asyncio.get_running_loop().create_future()
        seen: list[tuple[object, ...]] = []

        async def body() -> None:
            try:
                await never
            except asyncio.CancelledError as exc:
                seen.append(exc.args)  # the canceller's message
                raise

        task = asyncio.ensure_future(impl(body(), FAR))
        await asyncio.sleep(0.005)
        task.cancel("shutting down")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == [("shutting down",)]
        assert never.cancelled()
        assert timers[0].cancelled()

    _run(main)


@IMPLS
def test_a_cancellation_during_cleanup_after_the_deadline_wins(impl: Impl) -> None:
    # Settling after a timeout (despite_cancellation) swallows a second cancellation and
    # raises the first once done: the caller's cancellation must still come out.
    async def main(_: list[asyncio.TimerHandle]) -> None:
        steps: list[str] = []

        async def body() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                try:
                    await asyncio.sleep(FAR)  # settling
                except asyncio.CancelledError:
                    steps.append("cancelled while settling")
                raise

        task = asyncio.ensure_future(impl(body(), 0.01))
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert steps == ["cancelled while settling"]

    _run(main)


@IMPLS
def test_a_cancellation_held_back_across_the_deadline_stays_a_cancellation(impl: Impl) -> None:
    # Accounting work goes on through the caller's cancellation and through the deadline
    # that passes meanwhile, then raises CancelledError: that is the caller's, not a timeout.
    async def main(_: list[asyncio.TimerHandle]) -> None:
        settled: list[str] = []

        async def settle() -> None:
            await asyncio.sleep(0.05)
            settled.append("settled")

        task = asyncio.ensure_future(impl(despite_cancellation(settle()), 0.02))
        await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert settled == ["settled"]

    _run(main)


@IMPLS
@pytest.mark.parametrize("first", ["cancellation", "deadline"])
@pytest.mark.parametrize("body", ["future", "busy"])
def test_a_cancellation_in_the_deadlines_turn_wins(impl: Impl, first: str, body: str) -> None:
    # A busy body only yields to the loop (no future to wait on): it is cancelled at its next
    # step; a body waiting on a future has that future cancelled.
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        never = asyncio.get_running_loop().create_future()

        async def busy() -> None:
            while True:
                await asyncio.sleep(0)

        task = await _armed(impl, never if body == "future" else busy(), 0.05)
        due = _stall_across(timers[0])
        offset = -1e-6 if first == "cancellation" else 1e-6
        asyncio.get_running_loop().call_at(due + offset, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        if body == "future":
            assert never.cancelled()

    _run(main)


@IMPLS
def test_a_busy_body_times_out(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        turns = 0

        async def busy() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        with pytest.raises(TimeoutError):
            await impl(busy(), 0.01)
        assert turns > 1
        await _still_running()

    _run(main)


@IMPLS
def test_a_body_ending_as_the_deadline_passes_returns_its_value(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        async def body() -> str:
            await asyncio.sleep(0)
            time.sleep(0.03)  # past the deadline before it could fire
            return "done"

        assert await impl(body(), 0.01) == "done"
        await _still_running()
        await asyncio.sleep(0.03)

    _run(main)


@IMPLS
def test_an_answer_arriving_in_the_deadlines_turn_is_too_late(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        answer = asyncio.get_running_loop().create_future()
        task = await _armed(impl, answer, 0.05)
        due = _stall_across(timers[0])
        asyncio.get_running_loop().call_at(due - 1e-6, answer.set_result, "answer")
        with pytest.raises(TimeoutError):
            await task
        await _still_running()

    _run(main)


@IMPLS
def test_an_answer_arriving_as_the_loop_stalls_past_the_deadline_is_one_outcome(
    impl: Impl,
) -> None:
    # Which one wins is a matter of the loop's order (asyncio.timeout lets the task it woke
    # first finish; bounded wakes it a turn later, through its stand-in): either way the
    # task is left without a cancellation pending.
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        answer = asyncio.get_running_loop().create_future()
        task = await _armed(impl, answer, 0.05)
        _stall_across(timers[0], lambda: answer.set_result("answer"))
        try:
            outcome = await task
        except TimeoutError:
            outcome = "timed out"
        assert outcome in {"answer", "timed out"}
        await _still_running()

    _run(main)


@IMPLS
def test_a_shorter_inner_deadline_times_out_the_inner_await_only(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        async def body() -> str:
            try:
                await impl(asyncio.Event().wait(), 0.01)
            except TimeoutError:
                return "inner timed out"
            return "inner answered"

        assert await impl(body(), FAR) == "inner timed out"
        assert timers[0].cancelled()  # the outer deadline
        await _still_running()

    _run(main)


@IMPLS
@pytest.mark.parametrize("inner_seconds", [FAR, 0.02])
def test_the_outer_deadline_passes_through_the_inner_one(impl: Impl, inner_seconds: float) -> None:
    # Also with the same deadline on both: the inner one's cancellation and the outer's
    # arrive as one, which the outer deadline owns.
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        seen: list[str] = []

        async def body() -> str:
            try:
                await impl(asyncio.Event().wait(), inner_seconds)
            except TimeoutError:
                return "inner timed out"
            except asyncio.CancelledError:
                seen.append("inner cancelled")
                raise
            return "inner answered"

        with pytest.raises(TimeoutError):
            await impl(body(), 0.02)
        assert seen == ["inner cancelled"]
        assert timers[1].cancelled() or inner_seconds != FAR
        await _still_running()

    _run(main)


@IMPLS
def test_a_shielded_await_is_left_running(impl: Impl) -> None:
    async def main(_: list[asyncio.TimerHandle]) -> None:
        work = asyncio.get_running_loop().create_future()
        with pytest.raises(TimeoutError):
            await impl(asyncio.shield(work), 0.01)
        assert not work.done()
        work.set_result("finished later")
        assert await work == "finished later"

    _run(main)


@IMPLS
def test_closing_the_await_closes_the_body_and_disarms_the_deadline(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        steps: list[str] = []

        async def body() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                steps.append("body closed")

        async def caller() -> None:
            await impl(body(), FAR)

        awaiting = caller()
        awaiting.send(None)  # suspended in the body
        awaiting.close()
        assert steps == ["body closed"]
        assert timers[0].cancelled()

    _run(main)


@IMPLS
def test_a_future_of_another_loop_fails_as_without_a_deadline(impl: Impl) -> None:
    other = asyncio.new_event_loop()
    try:

        async def main(timers: list[asyncio.TimerHandle]) -> None:
            with pytest.raises(RuntimeError, match="different loop"):
                await impl(other.create_future(), FAR)
            assert timers[0].cancelled()

        _run(main)
    finally:
        other.close()


@IMPLS
def test_many_awaits_leave_no_timer_behind(impl: Impl) -> None:
    async def main(timers: list[asyncio.TimerHandle]) -> None:
        for n in range(200):
            assert await impl(asyncio.sleep(0, n), FAR) == n
        deadlines = [t for t in timers if t.when() > asyncio.get_running_loop().time() + 1]
        assert len(deadlines) == 200
        assert all(t.cancelled() for t in deadlines)

    _run(main)
