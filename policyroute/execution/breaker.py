"""Per-deployment circuit breakers.

A deployment that keeps failing is skipped for a while instead of being sent every call::

    closed ──N failures in a row──► open ──cooldown elapsed──► half-open (one probe)
      ▲                               ▲                              │
      └──────────── probe succeeds ───┼──────────────────────────────┤
                                      └──────── probe fails ─────────┘

Only failures that say something about the deployment count (rate limit, timeout, server
error, connection, malformed response, authentication); a bad request, an oversized prompt
or a content-filter refusal is the caller's doing and leaves the breaker alone.

Concurrent calls share the breakers: :meth:`CircuitBreakers.acquire` hands each caller a
:class:`Permit` saying whether it holds the half-open probe, and the caller gives that permit
back with its outcome, so a call sent before the breaker opened (and ending while a probe is
in flight) can neither end the probe nor let a second one through.

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

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from policyroute.errors import ErrorClass
from policyroute.policy.model import CircuitBreakerSpec

__all__ = ["BREAKER_CLASSES", "BreakerState", "CircuitBreakers", "Permit"]

BreakerState = Literal["closed", "open", "half_open"]

BREAKER_CLASSES: frozenset[ErrorClass] = frozenset(
    {"rate_limit", "timeout", "server_error", "connection", "malformed_response", "authentication"}
)
"""Error classes that count against a deployment's breaker."""


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call ``alias`` once; ``probe`` is the ticket of the half-open probe it holds.

    Example:
        >>> Permit("mini").is_probe, Permit("mini", probe=7).is_probe
        (False, True)
    """

    alias: str
    probe: int | None = None

    @property
    def is_probe(self) -> bool:
        """Whether this call is the breaker's probe (its end decides open or closed)."""
        return self.probe is not None


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    # Ticket of the probe in flight: only the permit carrying it may end the probe.
    probe: int | None = None

    def owns_probe(self, permit: Permit | None) -> bool:
        # No permit: a caller of the single-call API (allow/release), taken as the owner.
        return permit is None or (permit.probe is not None and permit.probe == self.probe)


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
        self._tickets = itertools.count(1)

    def state(self, alias: str) -> BreakerState:
        """The breaker's state now (``open`` turns ``half_open`` once the cooldown is over)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return "closed"
            if b.probe is not None or self._clock() - b.opened_at >= self.spec.cooldown:
                return "half_open"
            return "open"

    def is_available(self, alias: str) -> bool:
        """Whether a call to ``alias`` would be let through now (does not take the probe)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return True
            return b.probe is None and self._clock() - b.opened_at >= self.spec.cooldown

    def acquire(self, alias: str) -> Permit | None:
        """Ask to call ``alias`` now: a :class:`Permit`, or ``None`` while the breaker is open
        (or half-open with its probe taken). In half-open state the first caller gets the probe.

        The permit goes back with the call's end (:meth:`record_success`,
        :meth:`record_failure` or :meth:`release`), or the probe slot stays taken.

        Example:
            >>> cb = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=0))
            >>> cb.acquire("mini")
            Permit(alias='mini', probe=None)
            >>> cb.record_failure("mini", "timeout")
            >>> probe = cb.acquire("mini"); probe.is_probe, cb.acquire("mini")
            (True, None)
            >>> cb.release("mini", probe); cb.acquire("mini").is_probe
            True
        """
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return Permit(alias)
            if b.probe is not None or self._clock() - b.opened_at < self.spec.cooldown:
                return None
            b.probe = next(self._tickets)
            return Permit(alias, b.probe)

    def allow(self, alias: str) -> bool:
        """Whether a call to ``alias`` may go now (:meth:`acquire` without the permit).

        A caller that got ``True`` must report back with :meth:`record_success`,
        :meth:`record_failure` or :meth:`release`, or the probe slot stays taken.
        """
        return self.acquire(alias) is not None

    def force(self, alias: str) -> Permit:
        """Let one call through whatever the state (the last resort when all are open)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return Permit(alias)
            b.probe = next(self._tickets)
            return Permit(alias, b.probe)

    def opened_at(self, alias: str) -> float | None:
        """When the breaker last opened (clock time), or ``None`` if it is closed."""
        with self._lock:
            b = self._breakers.get(alias)
            return None if b is None else b.opened_at

    def record_success(self, alias: str, permit: Permit | None = None) -> None:
        """A call to ``alias`` succeeded: close its breaker (any call's answer shows the
        deployment works, so ``permit`` only says which call it was)."""
        with self._lock:
            b = self._breakers.get(alias)
            if b is not None:
                b.failures, b.opened_at, b.probe = 0, None, None

    def record_failure(
        self, alias: str, error_class: ErrorClass, permit: Permit | None = None
    ) -> None:
        """A call to ``alias`` failed; open the breaker when the failures say so.

        A failed probe reopens the breaker for a full cooldown. The failure of a call that
        does not hold the probe (``permit`` without its ticket) counts, but leaves a probe
        in flight to decide.
        """
        if error_class not in BREAKER_CLASSES:
            self.release(alias, permit)
            return
        with self._lock:
            b = self._breakers.setdefault(alias, _Breaker())
            b.failures += 1
            owner = b.probe is not None and b.owns_probe(permit)
            if owner or b.opened_at is not None or b.failures >= self.spec.failures:
                b.opened_at = self._clock()
            if owner:
                b.probe = None

    def release(self, alias: str, permit: Permit | None = None) -> None:
        """Give back a probe slot unused (the call was refused, cancelled or said nothing).

        Only the holder of the probe gives it back: another call's ``permit`` changes nothing.
        """
        with self._lock:
            b = self._breakers.get(alias)
            if b is not None and b.owns_probe(permit):
                b.probe = None

    def reset(self, alias: str | None = None) -> None:
        """Close the breaker of ``alias``, or of every deployment when ``alias`` is ``None``."""
        with self._lock:
            if alias is None:
                self._breakers.clear()
            else:
                self._breakers.pop(alias, None)
