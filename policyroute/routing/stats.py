"""Runtime observations of deployments: latency, failures, calls in flight, availability.

:class:`DeploymentStatsTracker` implements
:class:`~policyroute.routing.decision.DeploymentStats`, which the ``fastest`` and
``least_busy`` strategies read and routing consults to move circuit-open deployments last.
It is thread-safe; one tracker is meant to be shared by every call of a process.

``fastest`` ranks by :meth:`DeploymentStatsTracker.ranking_latency`, not by the bare latency:

- a failure counts as one more attempt to make, so the figure is the latency divided by the
  observed success rate (both moving averages), and a deployment that has only ever failed
  ranks after every deployment that has answered;
- observations go stale (``stale_after``, 5 minutes by default): a deployment nobody has tried
  for that long is unmeasured again, so ``fastest`` tries it once more instead of remembering
  one slow answer for ever, and sees it recover.

Example:
    >>> stats = DeploymentStatsTracker()
    >>> with stats.track("mini"):
    ...     stats.in_flight("mini")
    1
    >>> stats.in_flight("mini"), stats.latency("mini") is not None
    (0, True)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from policyroute.errors import PolicyRouteError

__all__ = ["DeploymentStatsTracker"]

_PRUNE_FLOOR: Final = 64


@dataclass(frozen=True, slots=True)
class _Seen:
    """What is known of one deployment; replaced whole, so a reader never sees half of it."""

    latency: float | None  # moving average of answered latencies
    failing: float  # moving average of 1 per failure, 0 per answer
    at: float  # clock time of the newest observation


class DeploymentStatsTracker:
    """Moving averages of latency and failures, and in-flight counts, per deployment alias.

    Args:
        alpha: weight of the newest observation in the moving averages (0 < alpha <= 1).
        availability: a predicate saying whether a deployment may be used now; the executor's
            circuit breaker plugs in here. Without one every deployment is available.
        stale_after: seconds after which a deployment's observations no longer rank it
            (``None``: never); a call already in flight on it keeps them until it ends.
        clock: monotonic seconds (injectable for tests).
    """

    __slots__ = (
        "_alpha",
        "_availability",
        "_clock",
        "_in_flight",
        "_lock",
        "_prune_at",
        "_seen",
        "_stale_after",
    )

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        availability: Callable[[str], bool] | None = None,
        stale_after: float | None = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise PolicyRouteError(f"alpha must be in (0, 1], got {alpha!r}")
        if stale_after is not None and not stale_after > 0:
            raise PolicyRouteError(f"stale_after must be > 0 seconds, got {stale_after!r}")
        self._alpha = alpha
        self._availability = availability
        self._stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}
        self._in_flight: dict[str, int] = {}
        self._prune_at = _PRUNE_FLOOR

    # ------------------------------------------------------------------ DeploymentStats

    def latency(self, alias: str) -> float | None:
        """The moving average of answered latencies in seconds, or ``None`` before any."""
        seen = self._seen.get(alias)
        return None if seen is None else seen.latency

    def in_flight(self, alias: str) -> int:
        """Calls started and not yet finished on ``alias``."""
        return self._in_flight.get(alias, 0)

    def is_available(self, alias: str) -> bool:
        """What the availability predicate says (``True`` without one)."""
        predicate = self._availability
        return True if predicate is None else bool(predicate(alias))

    # ------------------------------------------------------------------ what fastest reads

    def ranking_latency(self, alias: str) -> float | None:
        """The figure ``fastest`` orders by: expected seconds to an answer.

        ``None`` when nothing fresh is known (never observed, or stale with no call in
        flight); ``inf`` when every fresh observation is a failure; otherwise the latency over
        the success rate.

        Example:
            >>> stats = DeploymentStatsTracker(alpha=0.5)
            >>> stats.record_failure("a"); stats.ranking_latency("a")
            inf
            >>> stats.record_latency("a", 1.0); stats.ranking_latency("a")
            2.0
        """
        seen = self._seen.get(alias)
        if seen is None or (self._stale(seen, self._clock()) and not self._in_flight.get(alias)):
            return None
        if seen.latency is None or seen.failing >= 1.0:
            return math.inf
        return seen.latency / (1.0 - seen.failing)

    # ------------------------------------------------------------------ recording

    def set_availability(self, predicate: Callable[[str], bool] | None) -> None:
        """Plug in (or remove) the availability predicate, e.g. a circuit breaker's."""
        self._availability = predicate

    def record_latency(self, alias: str, seconds: float) -> None:
        """Fold one answer, ``seconds`` long, into the moving averages."""
        with self._lock:
            self._fold(alias, seconds)

    def record_failure(self, alias: str) -> None:
        """Fold one failure of the deployment (not of the request, nor a cancellation)."""
        with self._lock:
            self._fold(alias, None)

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
                self._fold(alias, latency)

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
        """Forget every latency and failure observed.

        Calls in flight stay counted: they are running, and each counts itself out when it
        ends; forgetting them would let those ends cancel out calls started after the reset.

        Example:
            >>> stats = DeploymentStatsTracker()
            >>> stats.start("mini"); stats.record_latency("mini", 0.5); stats.reset()
            >>> stats.latency("mini"), stats.in_flight("mini")
            (None, 1)
        """
        with self._lock:
            self._seen.clear()

    # ------------------------------------------------------------------ internals

    def _stale(self, seen: _Seen, now: float) -> bool:
        return self._stale_after is not None and now - seen.at > self._stale_after

    def _fold(self, alias: str, seconds: float | None) -> None:
        """Fold an answer (``seconds``) or a failure (``None``); the caller holds the lock."""
        now = self._clock()
        old = self._seen.get(alias)
        if old is not None and self._stale(old, now):
            old = None  # a deployment that recovered must not carry its old figures
        failed = 1.0 if seconds is None else 0.0
        if old is None:
            self._seen[alias] = _Seen(seconds, failed, now)
        else:
            a = self._alpha
            latency = old.latency
            if seconds is not None:
                latency = seconds if latency is None else latency + a * (seconds - latency)
            self._seen[alias] = _Seen(latency, old.failing + a * (failed - old.failing), now)
        if len(self._seen) > self._prune_at:
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Drop stale observations of idle deployments, so many short-lived aliases (policies
        reloaded under new names) do not pile up; amortised by doubling the threshold."""
        if self._stale_after is not None:
            for alias in [a for a, s in self._seen.items() if self._stale(s, now)]:
                if not self._in_flight.get(alias):
                    del self._seen[alias]
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._seen))
