"""Deadlines for sync streams that a blocked read would not notice.

A sync stream checks its first-token and idle deadlines as each chunk arrives, and httpx's
read timeout bounds a silent connection. Neither catches a provider that keeps sending
bytes litellm swallows without yielding a chunk (Anthropic ``ping`` events, SSE comments):
every read succeeds, no chunk arrives, and the call waits for as long as the provider
keeps it up. A :class:`Watchdog` thread checks the deadline while the stream is being read
and, once it has passed, closes the stream so that the blocked iteration ends; the driver
then raises the watchdog's timeout instead of whatever the close caused.

Example:
    >>> dog = Watchdog(lambda: None, close=lambda: None)
    >>> with dog.reading():
    ...     pass
    >>> dog.stop(); dog.expired is None
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from policyroute.errors import ProviderError

__all__ = ["Watchdog"]


class Watchdog:
    """Calls ``close`` once ``check`` returns an error while a read is under way.

    Args:
        check: returns the timeout error when the deadline has passed, else ``None``.
        close: closes the stream being read (called from the watchdog's thread).
        interval: seconds between checks.
    """

    def __init__(
        self,
        check: Callable[[], ProviderError | None],
        *,
        close: Callable[[], None],
        interval: float = 0.05,
    ) -> None:
        self._check = check
        self._close = close
        self._interval = interval
        self._stopped = threading.Event()
        self._reading = False
        self.expired: ProviderError | None = None
        self._thread = threading.Thread(target=self._watch, name="policyroute-watchdog")
        self._thread.daemon = True
        self._thread.start()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Mark a read of the stream; the deadline is only enforced inside one (time the
        consumer spends between chunks is not the provider's to answer for)."""
        self._reading = True
        try:
            yield
        finally:
            self._reading = False

    def stop(self) -> None:
        """Stop watching (idempotent); waits for the thread so none outlives the stream."""
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self._reading:
                continue
            error = self._check()
            if error is not None:
                self.expired = error
                self._close()
                return
