"""The sync stream watchdog: it enforces a deadline only while the stream is being read."""

from __future__ import annotations

import threading
import time

from policyroute.errors import ProviderTimeoutError
from policyroute.execution.watchdog import Watchdog


def test_fires_during_a_read_and_closes_once() -> None:
    closed = threading.Event()
    calls: list[int] = []
    late = ProviderTimeoutError("late")
    dog = Watchdog(lambda: late, close=lambda: (calls.append(1), closed.set()), interval=0.01)
    with dog.reading():
        assert closed.wait(2)
    time.sleep(0.05)
    dog.stop()
    assert dog.expired is late
    assert calls == [1]


def test_never_fires_between_reads() -> None:
    dog = Watchdog(lambda: ProviderTimeoutError("late"), close=lambda: None, interval=0.01)
    time.sleep(0.1)  # the consumer is busy: not the provider's time
    dog.stop()
    assert dog.expired is None


def test_stays_quiet_while_the_deadline_holds() -> None:
    dog = Watchdog(lambda: None, close=lambda: None, interval=0.01)
    with dog.reading():
        time.sleep(0.05)
    dog.stop()
    dog.stop()  # idempotent
    assert dog.expired is None
