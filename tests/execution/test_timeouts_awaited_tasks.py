"""Deadlines on an await of a task: the task's cleanup ends before the deadline's await does.

A task that cancels the future it waits on waits for it to end when it does not end at once,
as an awaited task running its cleanup does; ``asyncio.timeout`` (3.11) therefore raises only
once that cleanup is over, and returns what the awaited task returns when it swallows the
cancellation. ``bounded`` (3.10) must do the same, for the deadline's cancellation and for
the task's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from policyroute.execution.inplace_timeout import bounded
from policyroute.execution.timeouts import within

pytestmark = pytest.mark.timeout(10)

Impl = Callable[[Awaitable[Any], float], Awaitable[Any]]
IMPLS = pytest.mark.parametrize("impl", [bounded, within], ids=["bounded", "within"])


async def _cleaning_up(ended: list[str]) -> None:
    """Wait for ever; cancelled, take a while to clean up and note it."""
    try:
        await asyncio.sleep(10)
    finally:
        await asyncio.sleep(0.03)
        ended.append("cleaned up")


@IMPLS
def test_the_deadline_raises_once_the_awaited_task_has_cleaned_up(impl: Impl) -> None:
    async def main() -> None:
        ended: list[str] = []
        child = asyncio.ensure_future(_cleaning_up(ended))
        with pytest.raises(TimeoutError):
            await impl(child, 0.01)
        assert ended == ["cleaned up"]
        assert child.cancelled()

    asyncio.run(main())


@IMPLS
def test_an_awaited_task_that_swallows_the_deadline_gives_its_value(impl: Impl) -> None:
    async def main() -> str:
        async def swallowing() -> str:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await asyncio.sleep(0.01)
                return "kept"
            return "slept"

        return str(await impl(asyncio.ensure_future(swallowing()), 0.01))

    assert asyncio.run(main()) == "kept"


@IMPLS
@pytest.mark.parametrize(("seconds", "cleanup"), [(10.0, ["cleaned up"]), (0.02, [])])
def test_a_cancellation_of_the_task_waits_for_the_awaited_task(
    impl: Impl, seconds: float, cleanup: list[str]
) -> None:
    """Cancelled before the deadline, the task stays cancelled, once the awaited task ended;
    a deadline passing during its cleanup cancels that too, as a second cancellation of the
    task would."""

    async def main() -> None:
        ended: list[str] = []
        child = asyncio.ensure_future(_cleaning_up(ended))
        outer = asyncio.ensure_future(impl(child, seconds))
        await asyncio.sleep(0.005)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert child.cancelled()
        assert ended == cleanup

    asyncio.run(main())
