"""An accounting with several receipt sinks writes each receipt to them at once: a sink that
waits (its service down, say) holds up none of the others' receipts, and its own are written,
none lost, once it answers again."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from policyroute import load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

# A backstop against a hang, never reached when the code is right: each wait ends on an event.
BACKSTOP_S = 20.0

POLICY = """
policyroute: 1
name: two-sinks
models:
  m:
    model: openai/fake-m
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - {{name: default, to: m}}
receipts: {{sink: none}}
store: {{backend: memory}}
"""


class _Gated:
    """A blocking sink function that waits for ``release`` before it records a receipt."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.kinds: list[str] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.entered.set()
        assert self.release.wait(BACKSTOP_S), "never released"
        self.kinds.append(str(record["kind"]))


@pytest.mark.parametrize("stuck_first", [True, False])
def test_a_waiting_sink_holds_up_no_other_sinks_receipts(stuck_first: bool) -> None:
    stuck = _Gated()
    seen: list[str] = []
    other_wrote = threading.Event()

    def other(record: Mapping[str, Any]) -> None:
        seen.append(str(record["kind"]))
        other_wrote.set()

    sinks = [CallableSink(stuck, blocking=True), CallableSink(other, blocking=True)]
    if not stuck_first:
        sinks.reverse()

    async def main(base: str) -> None:
        policy = load_policy(POLICY.format(base=base))
        accounting = PolicyAccounting.from_policy(policy, sinks=sinks)
        chat = ChatPolicyRoute(policy=policy, accounting=accounting)
        call = asyncio.ensure_future(chat.ainvoke("hi"))
        # Before: with the stuck sink first, the other sink got nothing until it answered.
        assert await asyncio.to_thread(other_wrote.wait, BACKSTOP_S)
        assert seen == ["attempt"]
        assert await asyncio.to_thread(stuck.entered.wait, BACKSTOP_S)
        assert stuck.kinds == []
        assert not call.done()  # receipts are written before the call returns
        stuck.release.set()
        answer = await asyncio.wait_for(call, BACKSTOP_S)
        assert answer.content
        assert len(accounting.unwritten) == 0
        accounting.close()

    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        asyncio.run(main(fp.openai_base))
    assert seen == ["attempt", "call"]
    assert stuck.kinds == ["attempt", "call"]


def test_a_refusing_sink_among_several_keeps_its_receipts_unwritten() -> None:
    seen: list[str] = []

    def refuse(record: Mapping[str, Any]) -> None:
        raise OSError("disk full")

    async def main(base: str) -> PolicyAccounting:
        policy = load_policy(POLICY.format(base=base))
        accounting = PolicyAccounting.from_policy(
            policy,
            sinks=[
                CallableSink(refuse, blocking=True),
                CallableSink(lambda r: seen.append(str(r["kind"])), blocking=True),
            ],
        )
        chat = ChatPolicyRoute(policy=policy, accounting=accounting)
        await chat.ainvoke("hi")
        return accounting

    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        accounting = asyncio.run(main(fp.openai_base))
    assert seen == ["attempt", "call"]
    assert len(accounting.unwritten) == 2
    accounting.close()


def test_the_loop_end_lets_a_receipt_being_written_to_several_sinks_finish() -> None:
    # asyncio.run's end cancels every task left: the accounting's work holds that back until
    # it has written its receipts, and so must the writes it makes to each sink at once.
    main_returned = False
    entered = asyncio.Event()
    slow_kinds: list[str] = []
    quick_kinds: list[str] = []

    async def slow(record: Mapping[str, Any]) -> None:
        if record["kind"] == "attempt":
            entered.set()
            while not main_returned:
                await asyncio.sleep(0.005)
            # Past here, the loop's end has cancelled every task there was.
            await asyncio.sleep(0.005)
        slow_kinds.append(str(record["kind"]))

    accountings: list[PolicyAccounting] = []
    left: list[asyncio.Future[Any]] = []

    async def main(base: str) -> None:
        nonlocal main_returned
        policy = load_policy(POLICY.format(base=base))
        accounting = PolicyAccounting.from_policy(
            policy,
            sinks=[
                CallableSink(slow),
                CallableSink(lambda r: quick_kinds.append(str(r["kind"])), blocking=True),
            ],
        )
        accountings.append(accounting)
        chat = ChatPolicyRoute(policy=policy, accounting=accounting)
        left.append(asyncio.ensure_future(chat.ainvoke("hi")))
        await asyncio.wait_for(entered.wait(), BACKSTOP_S)
        main_returned = True  # the call is left to asyncio.run's end, mid-receipt

    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        asyncio.run(main(fp.openai_base))
    (accounting,) = accountings
    assert slow_kinds == ["attempt", "call"]
    assert quick_kinds == ["attempt", "call"]
    assert len(accounting.unwritten) == 0
    accounting.close()
