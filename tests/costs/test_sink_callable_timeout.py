"""``CallableSink(fn, timeout=...)``: a receipt callable that stops answering (a service that
accepts the connection and never replies) no longer holds up the calls, cancelled ones
included. The receipt it did not take is kept to resend."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from policyroute import load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink
from policyroute.errors import ReceiptError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider

from .helpers import FAKE_A_POLICY

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 0.2


def _llm(tmp_path: Path, fake_a: FakeProvider, sink: CallableSink) -> tuple[ChatPolicyRoute, Any]:
    path = tmp_path / "p.yaml"
    path.write_text(FAKE_A_POLICY.format(base=fake_a.openai_base))
    acct = PolicyAccounting(load_policy(path), guard=None, sinks=[sink])
    return ChatPolicyRoute(policy=path, accounting=acct), acct


class _Service:
    """An async receipt service that hangs until ``up`` is set."""

    def __init__(self) -> None:
        self.up = False
        self.received: list[Mapping[str, Any]] = []

    async def __call__(self, record: Mapping[str, Any]) -> None:
        while not self.up:
            await asyncio.sleep(0.01)
        self.received.append(record)


def _kinds(acct: PolicyAccounting) -> list[str]:
    return sorted(str(record["kind"]) for record in acct.unwritten)


@pytest.mark.asyncio
async def test_ainvoke_goes_on_when_an_async_callable_hangs(
    tmp_path: Path, fake_a: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    service = _Service()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(service, timeout=TIMEOUT))

    started = time.monotonic()
    answer = await asyncio.wait_for(llm.ainvoke("hello"), 10)
    assert answer.content == "hi"
    assert time.monotonic() - started < 5
    assert _kinds(acct) == ["attempt", "call"]
    assert "did not finish within 0.2s (kept in PolicyAccounting.unwritten)" in caplog.text

    service.up = True
    assert await acct.aresend_unwritten() == 2
    assert sorted(r["kind"] for r in service.received) == ["attempt", "call"]
    assert not acct.unwritten


@pytest.mark.asyncio
async def test_a_cancelled_call_is_not_held_up_by_a_hung_async_callable(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    """Cancelled while its receipt is being written, a call waits for the write, which
    outlasts cancellation: only the sink's timeout ends that wait."""
    service = _Service()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(service, timeout=TIMEOUT))
    task = asyncio.create_task(llm.ainvoke("hello"))
    while not fake_a.requests:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the answer is in: the attempt's receipt is being written
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done, "the cancelled call never ended"
    assert task.cancelled()
    assert "attempt" in _kinds(acct)


def test_invoke_goes_on_when_a_blocking_callable_hangs(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    """Sync code runs a blocking callable with a timeout in the sink's thread, and leaves it
    there past the deadline. The write may still land later: the copy kept to resend is then
    a second one, which reports count once."""
    release = threading.Event()
    received: list[Mapping[str, Any]] = []

    def post(record: Mapping[str, Any]) -> None:
        release.wait(30)
        received.append(record)

    llm, acct = _llm(tmp_path, fake_a, CallableSink(post, blocking=True, timeout=TIMEOUT))
    started = time.monotonic()
    assert llm.invoke("hello").content == "hi"
    assert time.monotonic() - started < 5
    assert _kinds(acct) == ["attempt", "call"]
    release.set()
    assert acct.resend_unwritten() == 2
    assert sorted(r["kind"] for r in received).count("attempt") >= 1


def test_invoke_goes_on_when_an_async_callable_hangs(tmp_path: Path, fake_a: FakeProvider) -> None:
    service = _Service()
    llm, acct = _llm(tmp_path, fake_a, CallableSink(service, timeout=TIMEOUT))
    assert llm.invoke("hello").content == "hi"
    assert _kinds(acct) == ["attempt", "call"]
    assert service.received == []  # cancelled at the deadline: nothing half delivered


def test_a_blocking_callable_that_answers_in_time_is_written_once(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    received: list[Mapping[str, Any]] = []
    sink = CallableSink(received.append, blocking=True, timeout=5)
    llm, acct = _llm(tmp_path, fake_a, sink)
    llm.invoke("hello")
    asyncio.run(llm.ainvoke("hello"))
    assert [r["kind"] for r in received] == ["attempt", "call"] * 2
    assert not acct.unwritten
    sink.close()


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, True, "5"])
def test_a_timeout_that_is_no_positive_number_of_seconds_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="CallableSink timeout must be a positive number"):
        CallableSink(print, timeout=bad)


def test_the_refusal_names_the_callable_and_the_timeout() -> None:
    async def post(record: Mapping[str, Any]) -> None:
        await asyncio.sleep(30)

    with pytest.raises(ReceiptError, match=r"receipt callable .*post did not finish within 0\.05s"):
        CallableSink(post, timeout=0.05).write({"kind": "call"})
