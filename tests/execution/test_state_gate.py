"""The gate the shared-state tests (``test_state_*``) interleave concurrent calls with: a
completion callable that holds the calls to chosen models until the test lets them go."""

from __future__ import annotations

import asyncio
from typing import Any

import litellm
import pytest
from exec_support import arun

from policyroute.testing import FakeProvider


class Gate:
    """An ``acompletion`` that holds every call to a gated model until released.

    Calls to other models go straight to litellm (the fake provider). ``entered`` counts the
    calls that reached the gate; :meth:`wait_entered` waits for the n-th, deterministically.
    """

    def __init__(self, *gated: str) -> None:
        self.gated = {f"openai/{alias}" for alias in gated}
        self.calls: dict[str, int] = {}
        self._entered: list[asyncio.Event] = []
        self._release: list[asyncio.Event] = []

    def _event(self, events: list[asyncio.Event], index: int) -> asyncio.Event:
        while len(events) <= index:
            events.append(asyncio.Event())
        return events[index]

    async def __call__(self, **params: Any) -> Any:
        model = params["model"]
        self.calls[model] = self.calls.get(model, 0) + 1
        if model in self.gated:
            index = sum(e.is_set() for e in self._entered)
            self._event(self._entered, index).set()
            await self._event(self._release, index).wait()
        return await litellm.acompletion(**params)

    def count(self, alias: str) -> int:
        """Calls made to ``alias`` so far."""
        return self.calls.get(f"openai/{alias}", 0)

    async def wait_entered(self, n: int) -> None:
        """Wait until the n-th (1-based) gated call is held."""
        await self._event(self._entered, n - 1).wait()

    def release(self, n: int) -> None:
        """Let the n-th (1-based) gated call go on to the provider."""
        self._event(self._release, n - 1).set()


async def settle_tasks(*tasks: asyncio.Task[Any]) -> list[Any]:
    """Wait for ``tasks``; their results or exceptions (cancellations included)."""
    return list(await asyncio.gather(*tasks, return_exceptions=True))


@pytest.mark.timeout(20)
def test_the_gate_holds_calls_in_order_until_released(provider: FakeProvider) -> None:
    gate = Gate("a")
    params = {"api_base": provider.openai_base, "api_key": "sk-test"}
    messages = [{"role": "user", "content": "hi"}]

    async def scenario() -> tuple[int, int]:
        first = asyncio.create_task(gate(model="openai/a", messages=messages, **params))
        second = asyncio.create_task(gate(model="openai/a", messages=messages, **params))
        await gate.wait_entered(2)
        await gate(model="openai/b", messages=messages, **params)  # not gated
        assert not first.done()
        assert not second.done()
        gate.release(2)
        await second
        assert not first.done()
        gate.release(1)
        await first
        return gate.count("a"), gate.count("b")

    assert arun(scenario()) == (2, 1)
