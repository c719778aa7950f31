"""A Ctrl-C that arrives while a sync call settles its attempt or writes its call's receipt is
raised once that work is done: the reservation is settled, both receipts are written, and the
caller still gets its ``KeyboardInterrupt``. One that arrives as the reservation is made is
raised once the executor holds it, and the reservation is given back.

The SIGINT is delivered (``_thread.interrupt_main``, which runs Python's SIGINT handler as a
real Ctrl-C does) as accounting has made the reservation, begins to settle the attempt, or to
finish the call, or, for a stream, as the attempt it was admitted for is being set up. Before,
the interrupt cut that work short: the reservation stayed held until its lease ran out (and was
then charged its worst case), and the receipts were never written.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import receipts_in
from langchain_core.messages import HumanMessage

from policyroute import ChatPolicyRoute, api
from policyroute.accounting import PolicyAccounting
from policyroute.execution.executor import Executor
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
)
from policyroute.policy.loader import load_policy
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(
        threading.current_thread() is not threading.main_thread(),
        reason="Python delivers SIGINT to the main thread only",
    ),
]

MESSAGES = [{"role": "user", "content": "hi"}]


class InterruptedAccounting(PolicyAccounting):
    """The policy's accounting, with a Ctrl-C arriving as ``when`` begins (once)."""

    when = ""

    def _interrupt(self, step: str) -> None:
        if step == self.when:
            self.when = ""
            _thread.interrupt_main()

    def admit(self, attempt: AttemptInfo) -> Admission:
        admission = super().admit(attempt)
        self._interrupt("admit")  # the reservation is made
        return admission

    def settle(self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome) -> Any:
        self._interrupt("settle")
        return super().settle(attempt, admission, outcome)

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        self._interrupt("finish")
        super().finish(call, outcome)


@pytest.fixture
def accounting(metered_policy: Path) -> Iterator[InterruptedAccounting]:
    acct = InterruptedAccounting.from_policy(load_policy(metered_policy))
    yield acct
    acct.close()


def _invoke(policy: Path, acct: PolicyAccounting) -> None:
    ChatPolicyRoute(policy=policy, accounting=acct).invoke([HumanMessage("hi")])


def _lc_stream(policy: Path, acct: PolicyAccounting) -> None:
    for _ in ChatPolicyRoute(policy=policy, accounting=acct).stream([HumanMessage("hi")]):
        pass


def _completion(policy: Path, acct: PolicyAccounting) -> None:
    api.completion(policy=policy, messages=MESSAGES, accounting=acct)


def _completion_stream(policy: Path, acct: PolicyAccounting) -> None:
    for _ in api.completion(policy=policy, messages=MESSAGES, stream=True, accounting=acct):
        pass


CALLS: dict[str, Callable[[Path, PolicyAccounting], None]] = {
    "invoke": _invoke,
    "stream": _lc_stream,
    "completion": _completion,
    "completion-stream": _completion_stream,
}


def _assert_settled(folder: Path, call_status: str, call_error: str | None) -> None:
    # The attempt answered in full before the interrupt: it is charged its answer.
    attempt, call = receipts_in(folder)
    assert (attempt["kind"], attempt["status"]) == ("attempt", "ok")
    assert (call["kind"], call["status"], call["error"]) == ("call", call_status, call_error)
    assert call["attempts"] == 1
    assert Decimal(call["cost"]) == Decimal(attempt["cost"]) > 0
    (budget,) = attempt["budgets"]
    assert Decimal(budget["reserved"]) == 0
    assert Decimal(budget["spent"]) == Decimal(attempt["cost"])


@pytest.mark.parametrize("when", ["settle", "finish"])
@pytest.mark.parametrize("mode", list(CALLS))
def test_a_ctrl_c_while_accounting_settles_is_raised_once_it_is_done(
    fp: FakeProvider,
    metered_policy: Path,
    accounting: InterruptedAccounting,
    mode: str,
    when: str,
) -> None:
    fp.script("a", Reply(text="one two three"), Reply(text="again"))
    accounting.when = when

    with pytest.raises(KeyboardInterrupt):
        CALLS[mode](metered_policy, accounting)

    if when == "settle":  # the call had not ended: the interrupt ends it
        _assert_settled(metered_policy.parent, "cancelled", "KeyboardInterrupt")
    else:  # the call had answered: its receipt says so, and the interrupt comes after
        _assert_settled(metered_policy.parent, "ok", None)
    CALLS[mode](metered_policy, accounting)  # the next call goes through
    assert len(receipts_in(metered_policy.parent)) == 4


class InterruptingClock:
    """A monotonic clock whose first reading comes with a Ctrl-C: the stream's lease timer
    reads it as the attempt it was admitted for is set up, before its request is sent."""

    def __init__(self) -> None:
        self.armed = True

    def __call__(self) -> float:
        if self.armed:
            self.armed = False
            _thread.interrupt_main()
        return 0.0


@pytest.mark.parametrize("mode", list(CALLS))
def test_a_ctrl_c_as_the_reservation_is_made_gives_it_back(
    fp: FakeProvider, metered_policy: Path, accounting: InterruptedAccounting, mode: str
) -> None:
    fp.script("a", Reply(text="after"))
    accounting.when = "admit"

    with pytest.raises(KeyboardInterrupt):
        CALLS[mode](metered_policy, accounting)

    assert not fp.requests_for("a")
    _assert_given_back(metered_policy.parent)
    CALLS[mode](metered_policy, accounting)
    assert len(receipts_in(metered_policy.parent)) == 4


def _assert_given_back(folder: Path) -> None:
    """One attempt, never sent: free, and nothing left reserved."""
    attempt, call = receipts_in(folder)
    assert (attempt["kind"], attempt["status"], Decimal(attempt["cost"])) == (
        "attempt",
        "cancelled",
        Decimal(0),
    )
    assert (call["kind"], call["status"], call["error"]) == (
        "call",
        "cancelled",
        "KeyboardInterrupt",
    )
    (budget,) = attempt["budgets"]
    assert (Decimal(budget["reserved"]), Decimal(budget["spent"])) == (Decimal(0), Decimal(0))


def test_a_ctrl_c_while_a_stream_attempt_is_set_up_settles_its_reservation(
    fp: FakeProvider, metered_policy: Path, accounting: InterruptedAccounting
) -> None:
    fp.script("a", Reply(text="never sent"))
    executor = Executor(
        load_policy(metered_policy), accounting=accounting, clock=InterruptingClock()
    )

    with pytest.raises(KeyboardInterrupt):
        for _ in executor.stream(Request(messages=MESSAGES)):
            pass

    assert not fp.requests_for("a")
    _assert_given_back(metered_policy.parent)
