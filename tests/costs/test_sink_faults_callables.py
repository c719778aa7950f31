"""A user's callable sink: sync or async, called from sync or async code, failing or slow."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute import load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink, MultiSink
from policyroute.errors import ReceiptError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider

from .helpers import FAKE_A_POLICY


def _llm(
    tmp_path: Path, fake_a: FakeProvider, *sinks: Any
) -> tuple[ChatPolicyRoute, PolicyAccounting]:
    path = tmp_path / "p.yaml"
    path.write_text(FAKE_A_POLICY.format(base=fake_a.openai_base))
    policy = load_policy(path)
    acct = PolicyAccounting(policy, guard=None, sinks=sinks)
    return ChatPolicyRoute(policy=path, accounting=acct), acct


class _AsyncCollector:
    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def __call__(self, record: Mapping[str, Any]) -> None:
        self.loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        self.records.append(record)


@pytest.mark.asyncio
async def test_an_async_callable_is_awaited_on_the_callers_loop(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    collect = _AsyncCollector()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(collect))

    answer = await llm.ainvoke("hello")

    assert answer.content == "hi"
    assert [r["kind"] for r in collect.records] == ["attempt", "call"]
    assert set(collect.loops) == {asyncio.get_running_loop()}
    assert not acct.unwritten


@pytest.mark.asyncio
async def test_an_async_callable_inside_a_multi_sink_is_awaited(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    collect = _AsyncCollector()
    plain: list[Mapping[str, Any]] = []
    llm, acct = _llm(
        tmp_path, fake_a, MultiSink([CallableSink(plain.append), CallableSink(collect)])
    )

    await llm.ainvoke("hello")

    assert [r["kind"] for r in collect.records] == ["attempt", "call"]
    assert plain == collect.records
    assert not acct.unwritten


def test_an_async_callable_receives_the_receipts_of_a_sync_call(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    collect = _AsyncCollector()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(collect))

    llm.invoke("hello")

    assert [r["kind"] for r in collect.records] == ["attempt", "call"]
    assert not acct.unwritten


def test_a_sync_call_with_an_async_callable_leaves_the_threads_event_loop_set(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    collect = _AsyncCollector()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(collect))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # as code that runs its own loop now and then does
    try:
        llm.invoke("hello")
        for _ in llm.stream("hello"):
            pass

        # Before: the thread was left with no event loop, and this raised RuntimeError.
        assert asyncio.get_event_loop() is loop
        assert not loop.is_closed()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert [r["kind"] for r in collect.records] == ["attempt", "call"] * 2
    assert loop not in collect.loops  # each receipt ran on a loop of its own
    assert not acct.unwritten


@pytest.mark.asyncio
async def test_an_async_callable_written_synchronously_under_a_running_loop_runs_aside(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    """A sync call made where an event loop runs (a notebook cell, sync code called from a
    coroutine): the async callable cannot run on that loop, which the call blocks. It runs on
    a loop of its own in a thread of its own. Before, the receipts were refused
    ("called synchronously from a thread whose event loop is running") and only kept."""
    collect = _AsyncCollector()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(collect))

    assert llm.invoke("hello").content == "hi"
    for _ in llm.stream("hello"):
        pass

    assert [r["kind"] for r in collect.records] == ["attempt", "call"] * 2
    assert asyncio.get_running_loop() not in collect.loops
    assert not acct.unwritten


@pytest.mark.asyncio
async def test_an_async_callable_bound_to_the_running_loop_fails_aside_and_is_kept() -> None:
    """What the callable awaits belongs to the caller's loop, which waits for the write: the
    write fails (it cannot deadlock) and says why."""
    running = asyncio.get_running_loop()
    ready = running.create_future()

    async def bound(record: Mapping[str, Any]) -> None:
        await ready  # a future of the caller's loop

    with pytest.raises(ReceiptError, match=r"receipt callable .*bound failed: .*"):
        CallableSink(bound, timeout=5).write({"kind": "call"})
    ready.cancel()


def test_a_raising_callable_is_reported_and_the_answer_kept(
    tmp_path: Path, fake_a: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(record: Mapping[str, Any]) -> None:
        raise ConnectionError("collector down")

    llm, acct = _llm(tmp_path, fake_a, CallableSink(refuse))

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        answer = llm.invoke("hello")

    assert answer.content == "hi"
    assert [r["kind"] for r in acct.unwritten] == ["attempt", "call"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 2
    assert all("refuse" in m and "collector down" in m for m in messages)


class _BuggySink:
    """A user's own sink class (not a CallableSink) with a bug: a KeyError on every write."""

    blocking = False

    def write(self, record: Mapping[str, Any]) -> None:
        {}[record["kind"]]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
def test_a_sink_objects_own_error_is_logged_with_its_type_and_traceback(
    tmp_path: Path, fake_a: FakeProvider, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    llm, acct = _llm(tmp_path, fake_a, _BuggySink())

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        answer = llm.invoke("hello") if how == "invoke" else asyncio.run(llm.ainvoke("hello"))

    assert answer.content == "hi"
    assert [r["kind"] for r in acct.unwritten] == ["attempt", "call"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    # Before: "not written to _BuggySink: 'attempt'", which does not say what went wrong.
    assert [r.getMessage().split(": ", 1)[1] for r in errors] == [
        "KeyError: 'attempt' (kept in PolicyAccounting.unwritten)",
        "KeyError: 'call' (kept in PolicyAccounting.unwritten)",
    ]
    assert all(r.exc_info is not None and r.exc_info[0] is KeyError for r in errors)


class _SlowAsyncSink:
    """An async callable that takes a while; ``started`` is set when a write begins."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.kinds: list[str] = []

    async def __call__(self, record: Mapping[str, Any]) -> None:
        self.started.set()
        await asyncio.sleep(0.05)
        self.kinds.append(str(record["kind"]))


@pytest.mark.asyncio
async def test_cancelling_a_call_while_its_receipt_is_written_loses_no_receipt(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    sink = _SlowAsyncSink()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(sink))
    task = asyncio.create_task(llm.ainvoke("hello"))
    await sink.started.wait()  # the attempt receipt is being written

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sink.kinds == ["attempt", "call"]
    assert not acct.unwritten


@pytest.mark.asyncio
async def test_cancelling_a_call_while_its_budget_settles_still_settles_and_records_it(
    make_attempt: Any,
) -> None:
    from .fakes import FakeGuard
    from .helpers import make_policy
    from .test_accounting import _ok

    class SlowGuard(FakeGuard):
        async def asettle(self, admission: Any, actual_cost: Any) -> Any:
            settling.set()
            await asyncio.sleep(0.05)
            return self.settle(admission, actual_cost)

    settling = asyncio.Event()
    written: list[Mapping[str, Any]] = []
    policy = make_policy()
    guard = SlowGuard()
    acct = PolicyAccounting(policy, guard=guard, sinks=[CallableSink(written.append)])
    attempt = make_attempt(policy)
    admission = acct.admit(attempt)
    task = asyncio.create_task(acct.asettle(attempt, admission, _ok()))
    await settling.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(guard.settled) == 1
    assert [r["kind"] for r in written] == ["attempt"]
    assert Decimal(written[0]["budgets"][0]["spent"]) == round(guard.settled[0][1], 6)
