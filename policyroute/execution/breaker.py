"""Per-deployment circuit breakers.

A deployment that keeps failing is skipped for a while instead of being sent every call::

    closed ──N failures in a row──► open ──cooldown elapsed──► half-open (one probe)
      ▲                               ▲                              │
      └──────────── probe succeeds ───┼──────────────────────────────┤
                                      └──────── probe fails ─────────┘

Only failures that say something about the deployment count (rate limit, timeout, server
error, connection, malformed response, authentication); a bad request, an oversized prompt
or a content-filter refusal is the caller's doing and leaves the breaker alone.

Example:
    >>> from policyroute.policy.model import CircuitBreakerSpec
    >>> now = [0.0]
    >>> cb = CircuitBreakers(CircuitBreakerSpec(failures=2, cooldown=10), clock=lambda: now[0])
    >>> cb.record_failure("mini", "server_error"); cb.record_failure("mini", "timeout")
    >>> cb.state("mini"), cb.allow("mini")
    ('open', False)
    >>> now[0] = 10.0
    >>> cb.allow("mini"), cb.allow("mini")   # one probe only
    (True, False)
    >>> cb.record_success("mini"); cb.state("mini")
    'closed'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from policyroute.errors import ErrorClass
from policyroute.policy.model import CircuitBreakerSpec

__all__ = ["BREAKER_CLASSES", "BreakerState", "CircuitBreakers"]

BreakerState = Literal["closed", "open", "half_open"]

BREAKER_CLASSES: frozenset[ErrorClass] = frozenset(
    {"rate_limit", "timeout", "server_error", "connection", "malformed_response", "authentication"}
)
"""Error classes that count against a deployment's breaker."""


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreakers:
    """One circuit breaker per deployment alias; safe to share across threads and tasks.

    No method awaits or blocks, so one lock serves threads and asyncio tasks alike.
    :meth:`is_available` has the signature of
    :meth:`~policyroute.routing.decision.DeploymentStats.is_available`, so it can be given
    to the stats tracker as its availability predicate.
    """

    def __init__(
        self, spec: CircuitBreakerSpec, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}

    def state(self, alias: str) -> BreakerState:
        """The breaker's state now (``open`` turns ``half_open`` once the cooldown is over)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return "closed"
            if b.probing or self._clock() - b.opened_at >= self.spec.cooldown:
                return "half_open"
            return "open"

    def is_available(self, alias: str) -> bool:
        """Whether a call to ``alias`` would be let through now (does not take the probe)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return True
            return not b.probing and self._clock() - b.opened_at >= self.spec.cooldown

    def allow(self, alias: str) -> bool:
        """Ask to call ``alias`` now. In half-open state the first caller gets the probe.

        A caller that got ``True`` must report back with :meth:`record_success`,
        :meth:`record_failure` or :meth:`release`, or the probe slot stays taken.
        """
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return True
            if b.probing or self._clock() - b.opened_at < self.spec.cooldown:
                return False
            b.probing = True
            return True

    def force(self, alias: str) -> None:
        """Let one call through whatever the state (the last resort when all are open)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is not None and b.opened_at is not None:
                b.probing = True

    def opened_at(self, alias: str) -> float | None:
        """When the breaker last opened (clock time), or ``None`` if it is closed."""
        with self._lock:
            b = self._breakers.get(alias)
            return None if b is None else b.opened_at

    def record_success(self, alias: str) -> None:
        """A call to ``alias`` succeeded: close its breaker."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is not None:
                b.failures, b.opened_at, b.probing = 0, None, False

    def record_failure(self, alias: str, error_class: ErrorClass) -> None:
        """A call to ``alias`` failed; open the breaker when the failures say so."""
        if error_class not in BREAKER_CLASSES:
            self.release(alias)
            return
        with self._lock:
            b = self._breakers.setdefault(alias, _Breaker())
            b.failures += 1
            if b.probing or b.opened_at is not None or b.failures >= self.spec.failures:
                b.opened_at = self._clock()
            b.probing = False

    def release(self, alias: str) -> None:
        """Give back a probe slot unused (the call was refused, cancelled or said nothing)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is not None:
                b.probing = False

    def reset(self, alias: str | None = None) -> None:
        """Close the breaker of ``alias``, or of every deployment when ``alias`` is ``None``."""
        with self._lock:
            if alias is None:
                self._breakers.clear()
            else:
                self._breakers.pop(alias, None)
