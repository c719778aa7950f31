"""A MultiSink whose sinks fail in part: resending writes to the failing ones only.

A receipt is written once to each sink. When one sink of a :class:`MultiSink` refuses it, the
receipt is kept for that sink alone: resending it must not write it a second time to the
sinks of the MultiSink that took it the first time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink, JsonlSink, MultiSink
from policyroute.costs.unwritten import UnwrittenReceipts
from policyroute.errors import ReceiptError

from .helpers import jsonl_records, make_policy
from .test_accounting import _ok
from .test_resend_unwritten import Flaky

pytestmark = pytest.mark.usefixtures("quiet_accounting")


def test_resend_skips_the_sinks_of_a_multi_sink_that_took_the_receipt(
    tmp_path: Path, make_attempt: Any
) -> None:
    flaky, path = Flaky(), tmp_path / "r.jsonl"
    policy = make_policy()
    multi = MultiSink([CallableSink(flaky), JsonlSink(path)])
    acct = PolicyAccounting(policy, guard=None, sinks=[multi])
    attempt = make_attempt(policy)
    acct.settle(attempt, acct.admit(attempt), _ok())
    assert len(acct.unwritten) == 1
    assert len(jsonl_records(path)) == 1

    flaky.down = False
    assert acct.resend_unwritten() == 1

    assert len(jsonl_records(path)) == 1  # not appended a second time
    assert flaky.taken == jsonl_records(path)
    assert not acct.unwritten


def test_async_resend_skips_the_sinks_of_a_multi_sink_that_took_the_receipt(
    tmp_path: Path, make_attempt: Any
) -> None:
    flaky, path = Flaky(), tmp_path / "r.jsonl"
    policy = make_policy()
    acct = PolicyAccounting(
        policy, guard=None, sinks=[MultiSink([JsonlSink(path), CallableSink(flaky)])]
    )

    async def run() -> int:
        attempt = make_attempt(policy)
        await acct.asettle(attempt, await acct.aadmit(attempt), _ok())
        flaky.down = False
        return await acct.aresend_unwritten()

    assert asyncio.run(run()) == 1
    assert len(jsonl_records(path)) == 1
    assert len(flaky.taken) == 1


def test_nested_multi_sinks_name_the_sinks_that_refused() -> None:
    first, second, third = Flaky(), Flaky(down=False), Flaky()
    refusing_first, refusing_third = CallableSink(first), CallableSink(third)
    multi = MultiSink(
        [refusing_first, MultiSink([CallableSink(second), refusing_third])],
    )
    kept = UnwrittenReceipts()
    record = {"kind": "call", "request_id": "r-1"}

    with pytest.raises(ReceiptError) as raised:
        multi.write(record)
    kept.keep(record, multi, raised.value)
    first.down = third.down = False

    assert kept.resend([multi]) == 1
    assert len(first.taken) == len(second.taken) == len(third.taken) == 1


def test_a_multi_sink_still_refusing_keeps_its_receipt_for_the_refusing_sink(
    tmp_path: Path,
) -> None:
    flaky, path = Flaky(), tmp_path / "r.jsonl"
    multi = MultiSink([CallableSink(flaky), JsonlSink(path)])
    kept = UnwrittenReceipts()
    record = {"kind": "call", "request_id": "r-1"}
    with pytest.raises(ReceiptError) as raised:
        multi.write(record)
    kept.keep(record, multi, raised.value)

    assert kept.resend([multi]) == 0  # still down
    flaky.down = False
    assert kept.resend([multi]) == 1

    assert len(jsonl_records(path)) == 1
    assert len(flaky.taken) == 1


class _Buggy:
    """A third-party sink (no awrite) whose own error, while ``down``, is not a ReceiptError."""

    blocking = True

    def __init__(self) -> None:
        self.down = True
        self.taken: list[Mapping[str, Any]] = []

    def write(self, record: Mapping[str, Any]) -> None:
        if self.down:
            raise ValueError("a bug in the sink")
        self.taken.append(record)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_sinks_own_error_keeps_the_receipt_for_that_sink_alone(
    tmp_path: Path, make_attempt: Any, mode: str
) -> None:
    # Before: the whole MultiSink was kept, and resending wrote the JSON-lines copy twice.
    buggy, path = _Buggy(), tmp_path / "r.jsonl"
    policy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[MultiSink([buggy, JsonlSink(path)])])
    attempt = make_attempt(policy)
    if mode == "sync":
        acct.settle(attempt, acct.admit(attempt), _ok())
    else:

        async def run() -> None:
            await acct.asettle(attempt, await acct.aadmit(attempt), _ok())

        asyncio.run(run())
    assert len(acct.unwritten) == 1
    assert len(jsonl_records(path)) == 1

    buggy.down = False
    assert acct.resend_unwritten() == 1
    assert len(jsonl_records(path)) == 1  # not appended a second time
    assert len(buggy.taken) == 1
    assert not acct.unwritten
