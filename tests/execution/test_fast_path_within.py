"""``within`` on Python 3.11+ is ``asyncio.timeout`` inlined: for every way an await can end
under a deadline, it ends as ``async with asyncio.timeout(...)`` does, with the task's
cancellation count left the same."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from policyroute.execution.timeouts import within

pytestmark = [
    pytest.mark.timeout(10),
    pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+"),
]


async def _reference(awaitable: Awaitable[Any], seconds: float | None) -> Any:
    async with asyncio.timeout(None if seconds is None else max(0.0, seconds)):
        return await awaitable


Impl = Callable[[Awaitable[Any], "float | None"], Awaitable[Any]]


async def _swallows_cancel() -> str:
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        return "swallowed"
    return "slept"


async def _answers() -> str:
    await asyncio.sleep(0)
    return "answer"


async def _fails() -> str:
    await asyncio.sleep(0)
    raise ValueError("provider failed")


async def _sleeps() -> str:
    await asyncio.sleep(1)
    return "late"


def _scenario(
    impl: Impl, make: Callable[[], Coroutine[Any, Any, Any]], seconds: float | None, cancel: str
) -> tuple[str, str, int]:
    """How awaiting ``make()`` under ``impl`` ends: (result or error type, the error's cause
    type, the task's cancellation count once it ended)."""

    async def main() -> tuple[str, str, int]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        if cancel == "same turn":  # a cancellation of the task as the deadline fires
            loop.call_later(max(0.0, seconds or 0.0) + 0.02, task.cancel)
            loop.call_soon(time.sleep, 0.05)  # both come due in one turn
        elif cancel == "before":
            loop.call_later(0.005, task.cancel)
        try:
            outcome = repr(await impl(make(), seconds))
            cause = ""
        except BaseException as exc:  # every ending is compared
            outcome = type(exc).__name__
            cause = type(exc.__cause__).__name__
        return outcome, cause, task.cancelling()

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("make", "seconds", "cancel"),
    [
        (_answers, 5.0, ""),
        (_answers, None, ""),
        (_fails, 5.0, ""),
        (_sleeps, 0.01, ""),
        (_sleeps, 0.0, ""),
        (_sleeps, -1.0, ""),
        (_swallows_cancel, 0.01, ""),
        (_sleeps, 5.0, "before"),
        (_swallows_cancel, 5.0, "before"),
        (_sleeps, 0.01, "same turn"),
    ],
)
def test_within_ends_as_asyncio_timeout(
    make: Callable[[], Coroutine[Any, Any, Any]], seconds: float | None, cancel: str
) -> None:
    assert _scenario(within, make, seconds, cancel) == _scenario(_reference, make, seconds, cancel)


def test_the_scenarios_tell_a_timeout_from_a_cancellation() -> None:
    # the comparison above can fail: these endings differ from one another
    timed_out = _scenario(_reference, _sleeps, 0.01, "")
    cancelled = _scenario(_reference, _sleeps, 5.0, "before")
    assert timed_out[:2] == ("TimeoutError", "CancelledError")
    assert cancelled[0] == "CancelledError"


def test_nested_deadlines_report_the_inner_one() -> None:
    async def main() -> tuple[str, str]:
        async def inner_first(impl: Impl) -> str:
            try:
                await impl(impl(_sleeps(), 0.01), 5.0)
            except TimeoutError:
                return "inner timed out"
            return "no timeout"

        return await inner_first(within), await inner_first(_reference)

    ours, reference = asyncio.run(main())
    assert ours == reference == "inner timed out"
