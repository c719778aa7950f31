"""Holding a Ctrl-C back while a sync call settles its budgets and writes its receipts.

Python raises ``KeyboardInterrupt`` in the main thread between any two bytecodes. One that
lands while a sync attempt is being settled (priced, its reservation settled in the budget
store, its receipt written) or while its call's receipt is written cuts that work short: the
reservation stays held until its lease ends, and is then charged its worst case, and the
receipts are never written. The async drivers finish the same work through a cancellation
(:func:`~policyroute._shielded.despite_cancellation`); the sync drivers run it inside
:func:`held_interrupts`, which holds a SIGINT that arrives meanwhile and hands it to the handler
it replaced once the work is done: the ``KeyboardInterrupt`` is raised then, from where the
work ends. Only the first is held: a second Ctrl-C, for work stuck on a locked store, goes
through at once.

Outside the main thread (where Python never delivers signals), with no Python handler for
SIGINT, or outside the main interpreter, nothing is held.

Example:
    >>> with held_interrupts():
    ...     settled = True
    >>> settled
    True
"""

from __future__ import annotations

import importlib
import signal as _stdlib_signal
import threading
from contextlib import AbstractContextManager, nullcontext
from types import FrameType, TracebackType
from typing import Any

signal: Any
try:
    # signal's own functions convert each handler to an enum and back: ~12 us a call, where
    # those of CPython's _signal, which it wraps, take ~1 us; every sync call holds twice.
    signal = importlib.import_module("_signal")
except ImportError:  # another interpreter
    signal = _stdlib_signal

__all__ = ["held_interrupts"]

_NOT_HELD: AbstractContextManager[None] = nullcontext()


def held_interrupts() -> AbstractContextManager[None]:
    """A context in which the first SIGINT is held until it exits (see the module)."""
    if threading.current_thread() is not threading.main_thread():
        return _NOT_HELD
    return _Held()


class _Held:
    """Holds the first SIGINT received while entered, for the handler it replaced."""

    __slots__ = ("_previous", "_received")

    def __init__(self) -> None:
        self._previous: Any = None
        self._received: tuple[int, FrameType | None] | None = None

    def __enter__(self) -> None:
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):  # SIG_IGN, SIG_DFL, or a handler set outside Python
            return
        self._previous = previous  # first: a signal may come as soon as _hold is installed
        try:
            signal.signal(signal.SIGINT, self._hold)
        except ValueError:  # not the main interpreter
            self._previous = None

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self._received = (signum, frame)
        signal.signal(signal.SIGINT, self._previous)  # a second one is not held

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        previous = self._previous
        if previous is None:
            return
        if signal.getsignal(signal.SIGINT) == self._hold:
            signal.signal(signal.SIGINT, previous)
        # From here on a signal goes to ``previous``; _hold may still have taken one.
        received = self._received
        if received is not None:
            self._received = None
            previous(*received)  # KeyboardInterrupt, now that the work is done
