"""Receipts a sink refused are written again by resend_unwritten once the sink recovers, to
the sinks that refused them only, through a real call as through the accounting directly."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink, JsonlSink
from policyroute.costs.unwritten import UnwrittenReceipts, describe_sink
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider

from .helpers import FAKE_A_POLICY, jsonl_records, make_policy
from .test_accounting import _ok

pytestmark = pytest.mark.usefixtures("quiet_accounting")


class Flaky:
    """A sink body that refuses while ``down`` and records what it took."""

    def __init__(self, down: bool = True) -> None:
        self.down = down
        self.taken: list[Mapping[str, Any]] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        if self.down:
            raise OSError("disk full")
        self.taken.append(record)


def test_resend_writes_only_to_the_sink_that_refused(make_attempt: Any) -> None:
    flaky, healthy = Flaky(), Flaky(down=False)
    policy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(flaky), CallableSink(healthy)])
    attempt = make_attempt(policy)
    acct.settle(attempt, acct.admit(attempt), _ok())
    assert len(acct.unwritten) == 1
    assert len(healthy.taken) == 1

    assert acct.resend_unwritten() == 0  # still down: kept
    assert len(acct.unwritten) == 1

    flaky.down = False
    assert acct.resend_unwritten() == 1
    assert not acct.unwritten
    assert flaky.taken == healthy.taken  # the same receipt, once each
    assert acct.resend_unwritten() == 0


def test_a_receipt_refused_by_two_sinks_waits_for_both(make_attempt: Any) -> None:
    first, second = Flaky(), Flaky()
    policy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(first), CallableSink(second)])
    attempt = make_attempt(policy)
    acct.settle(attempt, acct.admit(attempt), _ok())
    assert len(acct.unwritten) == 1  # one receipt, refused twice

    first.down = False
    assert acct.resend_unwritten() == 0
    assert len(first.taken) == 1
    assert len(acct.unwritten) == 1

    second.down = False
    assert acct.resend_unwritten() == 1
    assert len(first.taken) == 1  # not sent again to the sink that took it
    assert len(second.taken) == 1


def test_still_refused_is_logged_at_warning(
    make_attempt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky()
    policy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(flaky)])
    attempt = make_attempt(policy)
    acct.settle(attempt, acct.admit(attempt), _ok())
    logging.getLogger("policyroute.accounting").disabled = False
    with caplog.at_level(logging.WARNING, logger="policyroute.accounting"):
        assert acct.resend_unwritten() == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "still not written to CallableSink" in record.getMessage()
    assert "disk full" in record.getMessage()


def test_async_resend_awaits_an_async_sink(make_attempt: Any) -> None:
    taken: list[Mapping[str, Any]] = []
    down = True

    async def write(record: Mapping[str, Any]) -> None:
        if down:
            raise OSError("database away")
        taken.append(record)

    policy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(write)])
    attempt = make_attempt(policy)
    asyncio.run(acct.asettle(attempt, acct.admit(attempt), _ok()))
    assert len(acct.unwritten) == 1
    down = False
    assert asyncio.run(acct.aresend_unwritten()) == 1
    assert len(taken) == 1
    assert not acct.unwritten


def test_receipts_of_real_calls_reach_the_file_once_it_can_be_written(
    fake_a: FakeProvider, tmp_path: Path
) -> None:
    blocker = tmp_path / "receipts"
    blocker.write_text("a file where the receipts directory should be")
    policy = load_policy_text(FAKE_A_POLICY.format(base=fake_a.openai_base))
    acct = PolicyAccounting.from_policy(policy, sinks=[JsonlSink(str(blocker / "{date}.jsonl"))])
    llm = ChatPolicyRoute(policy=policy, accounting=acct)
    assert llm.invoke([HumanMessage("hello")]).content == "hi"
    assert asyncio.run(llm.ainvoke([HumanMessage("hello")])).content == "hi"
    assert [r["kind"] for r in acct.unwritten] == ["attempt", "call"] * 2

    blocker.unlink()
    assert acct.resend_unwritten() == 4
    (written,) = list(blocker.iterdir())
    records = jsonl_records(written)
    assert [r["kind"] for r in records] == ["attempt", "call"] * 2
    assert len({r["request_id"] for r in records}) == 2
    assert not acct.unwritten


def test_the_oldest_receipt_dropped_from_a_full_store_is_not_resent() -> None:
    sink = CallableSink(Flaky())
    kept = UnwrittenReceipts(maxlen=2)
    records = [{"kind": "call", "n": n} for n in range(3)]
    for record in records:
        kept.keep(record, sink)
    assert [r["n"] for r in kept] == [1, 2]
    target = Flaky(down=False)
    assert kept.resend([CallableSink(target)]) == 0  # refused by `sink`, which is still down
    assert kept.resend([]) == 0
    assert [r["n"] for r in kept] == [1, 2]


def test_a_receipt_kept_again_after_a_clear_is_resent_to_its_new_refuser_only() -> None:
    first, second = Flaky(down=False), Flaky(down=False)
    a, b = CallableSink(first), CallableSink(second)
    kept = UnwrittenReceipts()
    record = {"kind": "call", "request_id": "r-1"}
    kept.keep(record, a)
    kept.clear()  # an operator saved them elsewhere and dropped them
    kept.keep(record, b)

    assert kept.resend([a, b]) == 1
    assert first.taken == []  # before: written to `a` too, which had not refused it this time
    assert second.taken == [record]


class _HeldFirst:
    """A sink body whose first write waits for ``release``; records what it took."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.taken: list[Mapping[str, Any]] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(20), "never released"
        self.taken.append(record)


def test_two_resends_at_once_write_each_receipt_once() -> None:
    body = _HeldFirst()
    sink = CallableSink(body)
    kept = UnwrittenReceipts()
    for n in range(3):
        kept.keep({"kind": "call", "n": n}, sink)
    counts: list[int] = []
    first = threading.Thread(target=lambda: counts.append(kept.resend([sink])))
    first.start()
    assert body.entered.wait(20)

    try:
        second = kept.resend([sink])
    finally:
        body.release.set()
        first.join(20)

    assert second == 0  # every receipt was being written by the first resend
    assert counts == [3]
    assert [r["n"] for r in body.taken] == [0, 1, 2]  # before: 1 and 2 twice, 0 twice
    assert not kept


def test_two_async_resends_at_once_write_each_receipt_once() -> None:
    taken: list[int] = []

    async def main() -> list[int]:
        entered, release = asyncio.Event(), asyncio.Event()

        async def held_first(record: Mapping[str, Any]) -> None:
            if not entered.is_set():
                entered.set()
                await release.wait()
            taken.append(record["n"])

        sink = CallableSink(held_first)
        kept = UnwrittenReceipts()
        for n in range(3):
            kept.keep({"kind": "call", "n": n}, sink)
        first = asyncio.ensure_future(kept.aresend([sink]))
        await entered.wait()
        try:
            second = await kept.aresend([sink])
        finally:
            release.set()
        return [await first, second, len(kept)]

    assert asyncio.run(main()) == [3, 0, 0]
    assert taken == [0, 1, 2]


def test_the_oldest_receipt_dropped_from_a_full_store_is_logged_with_its_sink(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logging.getLogger("policyroute.accounting").disabled = False  # quiet_accounting's
    sink = CallableSink(Flaky())
    kept = UnwrittenReceipts(maxlen=2)
    records = [{"kind": "call", "request_id": f"r-{n}"} for n in range(3)]
    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        for record in records:
            kept.keep(record, sink)

    # Before: dropped without a word.
    (dropped,) = caplog.records
    assert dropped.getMessage() == (
        "receipt r-0/call dropped from PolicyAccounting.unwritten, which keeps the last 2:"
        f" never written to {describe_sink(sink)}"
    )
    assert describe_sink(sink).startswith("CallableSink ")
    assert dropped.policyroute_receipt is records[0]  # type: ignore[attr-defined]
