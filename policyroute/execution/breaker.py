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
in flight) can neither end the probe nor let a second one through. Once a breaker has closed
again (a call answered, or :meth:`CircuitBreakers.reset`), the failures of calls let through
before that describe the outage that is over and count for nothing: a recovered deployment is
not shut again by the timeouts of calls that were sent during its outage.

A probe that never reports back (its thread hangs, its stream is kept open unread) would keep
the deployment out of use for good; after its lease (the cooldown, at least ``probe_lease``
seconds) another call may probe.

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
from typing import Final, Literal

from policyroute.errors import ErrorClass, PolicyRouteError
from policyroute.policy.model import CircuitBreakerSpec

__all__ = ["BREAKER_CLASSES", "DEFAULT_PROBE_LEASE", "BreakerState", "CircuitBreakers", "Permit"]

BreakerState = Literal["closed", "open", "half_open"]

BREAKER_CLASSES: frozenset[ErrorClass] = frozenset(
    {
        "rate_limit",
        "timeout",
        "server_error",
        "connection",
        "malformed_response",
        "authentication",
        "not_found",
    }
)
"""Error classes that count against a deployment's breaker."""

DEFAULT_PROBE_LEASE: Final = 60.0
"""Seconds a half-open probe holds its slot at least (the cooldown, when longer)."""


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call ``alias`` once; ``probe`` is the ticket of the half-open probe it holds.

    ``issued`` numbers the permit in the order permits were given (``None``: unknown, as for
    a permit made by hand): the failure of a call let through before its breaker last closed
    does not count.

    Example:
        >>> Permit("mini").is_probe, Permit("mini", probe=7).is_probe
        (False, True)
    """

    alias: str
    probe: int | None = None
    issued: int | None = None

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
    probe_at: float = 0.0
    # Ticket count when the breaker last closed: permits issued before say nothing of now.
    closed_at_ticket: int = 0

    def owns_probe(self, permit: Permit | None) -> bool:
        # No permit: a caller of the single-call API (allow/release), taken as the owner.
        return permit is None or (permit.probe is not None and permit.probe == self.probe)


class CircuitBreakers:
    """One circuit breaker per deployment alias; safe to share across threads and tasks.

    No method awaits or blocks, so one lock serves threads and asyncio tasks alike.
    :meth:`is_available` has the signature of
    :meth:`~policyroute.routing.decision.DeploymentStats.is_available`, so it can be given
    to the stats tracker as its availability predicate.

    Args:
        spec: failures in a row that open a breaker, and the cooldown before a probe.
        clock: monotonic seconds (injectable for tests).
        probe_lease: the least time a half-open probe keeps its slot without reporting back;
            the lease is the cooldown when that is longer.
    """

    def __init__(
        self,
        spec: CircuitBreakerSpec,
        clock: Callable[[], float] = time.monotonic,
        *,
        probe_lease: float = DEFAULT_PROBE_LEASE,
    ) -> None:
        if not probe_lease > 0:
            raise PolicyRouteError(f"probe_lease must be > 0 seconds, got {probe_lease!r}")
        self.spec = spec
        self._clock = clock
        self._lease = max(spec.cooldown, probe_lease)
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}
        self._tickets = itertools.count(1)
        self._reset_at_ticket = 0  # ticket count at the last reset of every breaker

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
            return b is None or b.opened_at is None or self._may_probe(b, self._clock())

    def acquire(self, alias: str) -> Permit | None:
        """Ask to call ``alias`` now: a :class:`Permit`, or ``None`` while the breaker is open
        (or half-open with its probe taken). In half-open state the first caller gets the probe.

        The permit goes back with the call's end (:meth:`record_success`,
        :meth:`record_failure` or :meth:`release`), or the probe slot stays taken until its
        lease is over.

        Example:
            >>> cb = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=0))
            >>> cb.acquire("mini")
            Permit(alias='mini', probe=None, issued=1)
            >>> cb.record_failure("mini", "timeout")
            >>> probe = cb.acquire("mini"); probe.is_probe, cb.acquire("mini")
            (True, None)
            >>> cb.release("mini", probe); cb.acquire("mini").is_probe
            True
        """
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return Permit(alias, issued=next(self._tickets))
            now = self._clock()
            if not self._may_probe(b, now):
                return None
            return self._probe(alias, b, now)

    def allow(self, alias: str) -> bool:
        """Whether a call to ``alias`` may go now (:meth:`acquire` without the permit).

        A caller that got ``True`` must report back with :meth:`record_success`,
        :meth:`record_failure` or :meth:`release`, or the probe slot stays taken.
        """
        return self.acquire(alias) is not None

    def force(self, alias: str) -> Permit | None:
        """Let one call through before the cooldown is over, as the breaker's probe (the last
        resort when every deployment of a call is open); ``None`` while a probe is in flight,
        so that concurrent calls do not all go to a deployment that may still be down.

        Example:
            >>> cb = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=60))
            >>> cb.record_failure("mini", "timeout")
            >>> cb.force("mini").is_probe, cb.force("mini")
            (True, None)
        """
        with self._lock:
            b = self._breakers.get(alias)
            if b is None or b.opened_at is None:
                return Permit(alias, issued=next(self._tickets))
            now = self._clock()
            if self._probing(b, now):
                return None
            return self._probe(alias, b, now)

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
            if b is None:
                return
            if b.opened_at is not None:
                b.closed_at_ticket = next(self._tickets)
            b.failures, b.opened_at, b.probe = 0, None, None

    def record_failure(
        self, alias: str, error_class: ErrorClass, permit: Permit | None = None
    ) -> None:
        """A call to ``alias`` failed; open the breaker when the failures say so.

        A failed probe reopens the breaker for a full cooldown. The failure of a call that
        does not hold the probe (``permit`` without its ticket) counts, but leaves a probe
        in flight to decide; that of a call let through before the breaker last closed (or
        was reset) does not count.
        """
        if error_class not in BREAKER_CLASSES:
            self.release(alias, permit)
            return
        with self._lock:
            b = self._breakers.setdefault(alias, _Breaker())
            if self._outdated(b, permit):
                return
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
        """Close the breaker of ``alias``, or of every deployment when ``alias`` is ``None``.

        Calls already in flight are not counted afterwards: their failures happened under the
        state that the reset has just dismissed.
        """
        with self._lock:
            ticket = next(self._tickets)
            if alias is None:
                self._breakers.clear()
                self._reset_at_ticket = ticket
            else:
                self._breakers[alias] = _Breaker(closed_at_ticket=ticket)

    # ------------------------------------------------------------------ internals
    # The caller holds the lock.

    def _probing(self, b: _Breaker, now: float) -> bool:
        """Whether a probe is in flight and within its lease."""
        return b.probe is not None and now - b.probe_at < self._lease

    def _may_probe(self, b: _Breaker, now: float) -> bool:
        """Whether an open breaker lets a probe go now: cooled down, no probe in flight."""
        opened = b.opened_at
        cooled = opened is None or now - opened >= self.spec.cooldown
        return cooled and not self._probing(b, now)

    def _probe(self, alias: str, b: _Breaker, now: float) -> Permit:
        # A new ticket: a probe whose lease ran out can no longer end the probe.
        b.probe, b.probe_at = next(self._tickets), now
        return Permit(alias, b.probe, b.probe)

    def _outdated(self, b: _Breaker, permit: Permit | None) -> bool:
        if permit is None or permit.issued is None:
            return False
        return permit.issued < max(b.closed_at_ticket, self._reset_at_ticket)
