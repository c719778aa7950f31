"""What the latency benchmarks share: interleaved timing of async calls, and settling.

Each round makes one call of every kind in turn, so drift in the machine's load hits all kinds
alike; ratios are read within one run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

SETTLE_TICKS = 20


async def settle() -> None:
    """Let the background work a call leaves behind run: litellm schedules its logging and
    cost tasks (half a millisecond of CPU) to run after it returns.

    The work is counted in each call's time: otherwise it lands in whichever call next yields
    to the event loop (LangChain's callbacks yield after the model returns; a bare
    ``acompletion`` does not), which would charge litellm's own cost to the adapters.
    """
    for _ in range(SETTLE_TICKS):
        await asyncio.sleep(0)


async def interleave(
    kinds: Mapping[str, Callable[[], Awaitable[Any]]], *, rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call of each kind, over ``rounds`` interleaved rounds after a warm-up."""
    for _ in range(warmup):
        for call in kinds.values():
            await call()
            await settle()
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(rounds):
        for name, call in kinds.items():
            await settle()
            start = time.perf_counter()
            await call()
            await settle()
            times[name].append(time.perf_counter() - start)
    return times
