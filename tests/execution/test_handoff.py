"""A call cancelled while litellm prepares it in its worker thread leaves nothing behind.

litellm's ``acompletion`` builds the request in a thread and awaits the coroutine the thread
returns. Here the thread is slowed down (litellm's own ``completion`` is wrapped with a sleep)
so that the cancellation lands inside that window every time: the coroutine must not be
orphaned ("coroutine ... was never awaited", an error under this suite's warning filters),
the caller must see its cancellation, and the call must be settled and receipted.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from budgets.slow_stores import CANCELLED, assert_settled, one_model_policy
from langchain_core.messages import HumanMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute._lazy import import_litellm
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink
from policyroute.execution import handoff
from policyroute.execution.handoff import in_handoff
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)
PREPARING_S = 0.15
HANG_S = 5.0


@pytest.fixture
def slow_preparation(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Slows litellm's preparation down; the event is set when the thread has handed back."""
    main = import_litellm().main
    real = main.completion
    prepared = threading.Event()

    def slowly(*args: Any, **kwargs: Any) -> Any:
        time.sleep(PREPARING_S)  # in litellm's worker thread
        try:
            return real(*args, **kwargs)
        finally:
            prepared.set()

    monkeypatch.setattr(main, "completion", slowly)
    return prepared


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        # Never answers in time: a cancellation that did not reach the started call would
        # leave the caller waiting for this.
        provider.set_default("a", Fault.no_response(timeout=HANG_S))
        yield provider


def _accounting(fp: FakeProvider) -> tuple[PolicyAccounting, list[dict[str, Any]]]:
    policy = one_model_policy(fp.openai_base, "handoff")
    receipts: list[dict[str, Any]] = []
    return PolicyAccounting.from_policy(policy, sinks=[CallableSink(receipts.append)]), receipts


async def _cancelled_while_preparing(call: Any, prepared: threading.Event) -> None:
    task = asyncio.ensure_future(call)
    await asyncio.sleep(PREPARING_S / 3)
    assert not prepared.is_set()
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Delivered once the thread handed back, not after the provider's hang.
    assert time.monotonic() - cancelled_at < HANG_S / 2
    # Wait for the thread's end, where the coroutine comes back, and for the loop to drop it.
    assert await asyncio.to_thread(prepared.wait, 10)
    await asyncio.sleep(0.05)


def _nothing_orphaned(caught: list[warnings.WarningMessage]) -> None:
    gc.collect()
    never_awaited = [w for w in caught if "was never awaited" in str(w.message)]
    assert never_awaited == []


def _settled_as_cancelled(acct: PolicyAccounting, receipts: list[dict[str, Any]]) -> None:
    assert acct.guard is not None
    assert_settled(acct.guard.store, receipts, *CANCELLED)


@pytest.mark.asyncio
@pytest.mark.parametrize("api", ["acompletion", "ainvoke", "astream"])
async def test_cancelled_while_litellm_prepares_the_call(
    fp: FakeProvider, slow_preparation: threading.Event, api: str
) -> None:
    acct, receipts = _accounting(fp)
    messages = [{"role": "user", "content": "hello"}]
    llm = ChatPolicyRoute(policy=acct.policy, accounting=acct)

    async def drain() -> None:
        async for _ in llm.astream([HumanMessage("hello")]):
            pass

    calls = {
        "acompletion": lambda: policyroute.acompletion(
            policy=acct.policy, messages=messages, accounting=acct
        ),
        "ainvoke": lambda: llm.ainvoke([HumanMessage("hello")]),
        "astream": drain,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await _cancelled_while_preparing(calls[api](), slow_preparation)
        _nothing_orphaned(caught)
    _settled_as_cancelled(acct, receipts)
    acct.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("slow_preparation")
async def test_the_preparation_window_is_recognised() -> None:
    # If a litellm release moves the wait for its thread, this says so before users see
    # orphaned coroutines again.
    litellm = import_litellm()
    task = asyncio.ensure_future(
        litellm.acompletion(
            model="openai/a",
            api_base="http://127.0.0.1:9/v1",
            api_key="sk-test",
            messages=[{"role": "user", "content": "hi"}],
            mock_response="ok",
        )
    )
    await asyncio.sleep(PREPARING_S / 3)
    assert in_handoff(task.get_coro())
    await task
    assert not in_handoff(task.get_coro())


@pytest.mark.asyncio
async def test_a_stuck_preparation_is_cancelled_after_the_bound(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = import_litellm().main
    real = main.completion
    done = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        try:
            return real(*args, **kwargs)
        finally:
            done.set()

    monkeypatch.setattr(main, "completion", stuck)
    monkeypatch.setattr(handoff, "HANDOFF_WAIT_S", 0.1)
    acct, receipts = _accounting(fp)
    call = policyroute.acompletion(
        policy=acct.policy, messages=[{"role": "user", "content": "hello"}], accounting=acct
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # the thread's coroutine is orphaned here, as before
        task = asyncio.ensure_future(call)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not done.is_set()  # cancelled after the bound, before the thread ended
        assert await asyncio.to_thread(done.wait, 10)
        await asyncio.sleep(0.05)
        gc.collect()
    _settled_as_cancelled(acct, receipts)
    acct.close()
