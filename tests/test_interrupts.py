"""``held_interrupts``: the first Ctrl-C inside is raised as the block ends, a second at once,
the handler it replaced is put back, and outside the main thread nothing is held."""

from __future__ import annotations

import _thread
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from policyroute._interrupts import held_interrupts

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Python delivers SIGINT to the main thread only",
)


@pytest.fixture(autouse=True)
def _default_handler_kept() -> Iterator[None]:
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


def _work() -> int:
    return sum(range(1000))  # Python code, where a pending signal's handler runs


def _held_work(interrupts: int, done: list[bool]) -> None:
    with held_interrupts():
        for _ in range(interrupts):
            _thread.interrupt_main()
            _work()
        done.append(True)


def test_a_ctrl_c_inside_is_raised_once_the_block_is_done() -> None:
    done: list[bool] = []
    with pytest.raises(KeyboardInterrupt):
        _held_work(1, done)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_is_not_held() -> None:
    done: list[bool] = []
    with pytest.raises(KeyboardInterrupt):
        _held_work(2, done)
    assert done == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_replaced_handler_gets_the_signal_afterwards() -> None:
    seen: list[tuple[int, bool]] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append((signum, inside))

    signal.signal(signal.SIGINT, handler)
    inside = True
    with held_interrupts():
        _thread.interrupt_main()
        _work()
        inside = False
    _work()
    assert seen == [(signal.SIGINT, False)]
    assert signal.getsignal(signal.SIGINT) is handler


def test_an_ignored_sigint_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with held_interrupts():
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_nothing_is_held_in_another_thread() -> None:
    handlers: list[object] = []

    def run() -> None:
        with held_interrupts():
            handlers.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert handlers == [signal.default_int_handler]
