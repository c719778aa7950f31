"""Runtime observations of deployments: latency, calls in flight, availability.

:class:`DeploymentStatsTracker` implements
:class:`~policyroute.routing.decision.DeploymentStats`, which the ``fastest`` and
``least_busy`` strategies read and routing consults to move circuit-open deployments last.
It is thread-safe; one tracker is meant to be shared by every call of a process.

Example:
    >>> stats = DeploymentStatsTracker()
    >>> with stats.track("mini"):
    ...     stats.in_flight("mini")
    1
    >>> stats.in_flight("mini"), stats.latency("mini") is not None
    (0, True)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from policyroute.errors import PolicyRouteError

__all__ = ["DeploymentStatsTracker"]


class DeploymentStatsTracker:
    """EWMA latency and in-flight counts per deployment alias, behind one lock.

    Args:
        alpha: weight of the newest observation in the moving average (0 < alpha <= 1).
        availability: a predicate saying whether a deployment may be used now; the executor's
            circuit breaker plugs in here. Without one every deployment is available.
    """

    __slots__ = ("_alpha", "_availability", "_in_flight", "_latency", "_lock")

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        availability: Callable[[str], bool] | None = None,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise PolicyRouteError(f"alpha must be in (0, 1], got {alpha!r}")
        self._alpha = alpha
        self._availability = availability
        self._lock = threading.Lock()
        self._latency: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}

    # ------------------------------------------------------------------ DeploymentStats

    def latency(self, alias: str) -> float | None:
        """The moving average of observed latencies in seconds, or ``None`` before any."""
        return self._latency.get(alias)

    def in_flight(self, alias: str) -> int:
        """Calls started and not yet finished on ``alias``."""
        return self._in_flight.get(alias, 0)

    def is_available(self, alias: str) -> bool:
        """What the availability predicate says (``True`` without one)."""
        predicate = self._availability
        return True if predicate is None else bool(predicate(alias))

    # ------------------------------------------------------------------ recording

    def set_availability(self, predicate: Callable[[str], bool] | None) -> None:
        """Plug in (or remove) the availability predicate, e.g. a circuit breaker's."""
        self._availability = predicate

    def record_latency(self, alias: str, seconds: float) -> None:
        """Fold one observed latency into the moving average."""
        with self._lock:
            previous = self._latency.get(alias)
            if previous is None:
                self._latency[alias] = seconds
            else:
                self._latency[alias] = previous + self._alpha * (seconds - previous)

    def start(self, alias: str) -> None:
        """Count one more call in flight on ``alias``."""
        with self._lock:
            self._in_flight[alias] = self._in_flight.get(alias, 0) + 1

    def finish(self, alias: str, latency: float | None = None) -> None:
        """Count one call less in flight and, if given, record its latency."""
        with self._lock:
            count = self._in_flight.get(alias, 0) - 1
            if count > 0:
                self._in_flight[alias] = count
            else:
                self._in_flight.pop(alias, None)
            if latency is not None:
                previous = self._latency.get(alias)
                self._latency[alias] = (
                    latency if previous is None else previous + self._alpha * (latency - previous)
                )

    @contextmanager
    def track(self, alias: str) -> Iterator[None]:
        """Count a call in flight for the block; record its latency if it did not raise.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> with stats.track("mini"):
            ...     pass
            >>> stats.latency("mini") is not None
            True
        """
        self.start(alias)
        began = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.finish(alias, time.perf_counter() - began if ok else None)

    def reset(self) -> None:
        """Forget every latency observed.

        Calls in flight stay counted: they are running, and each counts itself out when it
        ends; forgetting them would let those ends cancel out calls started after the reset.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> stats.start("mini"); stats.record_latency("mini", 0.5); stats.reset()
            >>> stats.latency("mini"), stats.in_flight("mini")
            (None, 1)
        """
        with self._lock:
            self._latency.clear()
