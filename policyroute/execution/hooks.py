"""The seam between the executor and accounting (budgets and receipts).

The executor knows how to reach providers; it knows nothing of money. Before each attempt it
asks :meth:`Accounting.admit` (which may reserve budget, clamp ``max_tokens``, ask for a
downgrade, or refuse with :class:`~policyroute.errors.BudgetExceeded`); after each attempt,
whatever its end, it calls :meth:`Accounting.settle` exactly once; after the call it calls
:meth:`Accounting.finish` exactly once. While a stream runs, an accounting that also has
:class:`LeaseRenewal`'s methods is asked to renew the attempt's reservation every third of its
lease (:attr:`Admission.lease_seconds`), so a long stream is not reclaimed as a crashed one.
:class:`NullAccounting` does nothing and is what the executor uses when no budgets or receipts
are configured.

Example:
    >>> acct = NullAccounting()
    >>> acct.admit(attempt).params is attempt.params  # doctest: +SKIP
    True
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol

from policyroute.errors import ErrorClass, RequestError
from policyroute.request import Request
from policyroute.routing.decision import Candidate, Decision

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = [
    "Accounting",
    "Admission",
    "AttemptInfo",
    "AttemptOutcome",
    "AttemptStatus",
    "CallInfo",
    "CallOutcome",
    "LeaseRenewal",
    "NullAccounting",
    "Usage",
    "WaitSource",
    "check_accounting",
]

AttemptStatus = Literal["ok", "error", "cancelled", "interrupted", "refused"]
"""How an attempt ended. ``interrupted``: a stream broke after tokens reached the caller;
``refused``: accounting refused it before anything was sent."""

WaitSource = Literal["retry_after", "rate_limit_reset", "backoff"]
"""Why the executor waited before an attempt: the provider's ``Retry-After`` (or
``retry-after-ms``, or the ``retryDelay`` Google puts in its error body), the reset its
rate-limit headers announced, or policyroute's own backoff."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one attempt, as the provider reported them (zeros when unknown).

    ``input_tokens`` includes cached reads and cache writes; ``output_tokens`` includes
    reasoning tokens (the OpenAI convention; Anthropic usage is normalised to it).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0
    """Of ``cache_write_tokens``, those kept for an hour (Anthropic's ``ttl: 1h``), priced
    higher than five-minute writes."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class CallInfo:
    """One call to policyroute, across all its attempts."""

    request: Request
    policy: CompiledPolicy
    decision: Decision
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class AttemptInfo:
    """One attempt on one deployment.

    ``params`` are the litellm keyword arguments of the attempt (everything but ``messages``),
    already merged: deployment params < call params < route params. ``number`` counts attempts
    within the call from 1; ``retry`` counts tries of this deployment from 0. ``waited_s`` is
    how long the executor slept before this attempt, as it asked its sleep function (capped
    by ``retry_after_max``; 0 when it did not wait: a call's first attempt, an immediate
    fall-over); ``wait_source`` says why (``None``: no wait). ``route`` is the route the
    attempt runs as: the one that matched, or the last route a budget downgraded the call to
    (its ``params`` then apply, and its budgets).
    """

    call: CallInfo
    candidate: Candidate
    params: Mapping[str, Any]
    number: int
    retry: int = 0
    route: str = ""
    waited_s: float = 0.0
    wait_source: WaitSource | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """Accounting's answer before an attempt.

    Attributes:
        params: the params to send (``max_tokens`` may have been clamped to fit a budget).
        estimate: the worst-case cost reserved for the attempt, if computed.
        handle: opaque state that :meth:`Accounting.settle` receives back (the reservation).
        downgrade_to: when set, do not send this attempt: re-route the call to this route or
            group (``CompiledPolicy.candidates_for``) and ask again for each new candidate.
        lease_seconds: when set, the reservation expires (and is charged its worst case)
            unless renewed within this many seconds; streams renew it while chunks flow.
    """

    params: Mapping[str, Any]
    estimate: Decimal | None = None
    handle: Any = None
    downgrade_to: str | None = None
    lease_seconds: float | None = None


@dataclass(slots=True)
class AttemptOutcome:
    """How an attempt ended, for settling its reservation and writing its receipt.

    ``response`` is litellm's ``ModelResponse`` (for a stream: the answer assembled from the
    chunks received, with the usage chunk's usage; for a stream cut, cancelled or abandoned
    after content arrived, the partial answer, so that the output received is priced);
    ``usage`` is what the provider reported, or what was seen before a stream broke.
    ``provider_billed`` is true when the provider processed the input (an answer, even a
    partial one), false when it refused or was unreachable. ``cache_hit`` is true when
    litellm answered from its own response cache (``litellm.cache``) without reaching the
    provider: such an attempt is not billed, costs nothing, and says nothing about the
    deployment's speed or health.
    """

    status: AttemptStatus
    response: Any = None
    usage: Usage | None = None
    error: BaseException | None = None
    error_class: ErrorClass | None = None
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    provider_billed: bool = False
    litellm_call_id: str | None = None
    cache_hit: bool = False


@dataclass(slots=True)
class CallOutcome:
    """How the whole call ended.

    ``route`` is the route the call ended as: the last route a budget downgraded it to, else
    the one that matched (``None``: the matched one, for outcomes built elsewhere).
    ``cache_hit``: the answer came from litellm's response cache (its answering attempt's
    :attr:`AttemptOutcome.cache_hit`).
    """

    status: Literal["ok", "error", "cancelled", "interrupted", "refused"]
    deployment: str | None = None
    response: Any = None
    error: BaseException | None = None
    attempts: int = 0
    cost: Decimal = Decimal(0)
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    route: str | None = None
    cache_hit: bool = False


class Accounting(Protocol):
    """Budget and receipt bookkeeping around the executor's attempts.

    Implementations must make :meth:`settle` and :meth:`finish` safe to call from ``finally``
    blocks: they must not raise for a normal provider failure, and they must release what
    :meth:`admit` reserved even when the outcome carries no usage.
    """

    def admit(self, attempt: AttemptInfo) -> Admission:
        """Check and reserve before the attempt; may raise ``BudgetExceeded``."""

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        """Async twin of :meth:`admit`."""

    def settle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        """Settle the reservation to the actual cost, write the attempt receipt; return cost."""

    async def asettle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        """Async twin of :meth:`settle`."""

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        """Write the call receipt."""

    async def afinish(self, call: CallInfo, outcome: CallOutcome) -> None:
        """Async twin of :meth:`finish`."""


# Classes in a protocol's MRO whose names are none of its methods.
_NOT_PROTOCOLS = (Protocol, Generic, object)


def _protocol_methods(protocol: type) -> tuple[str, ...]:
    """The public methods a :class:`~typing.Protocol` declares, its base protocols' first,
    each in the order written.

    Example:
        >>> _protocol_methods(LeaseRenewal)
        ('renew', 'arenew')
    """
    names: dict[str, None] = {}
    for cls in reversed(protocol.__mro__):
        if cls in _NOT_PROTOCOLS or not getattr(cls, "_is_protocol", False):
            continue
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                names[name] = None
    return tuple(names)


# What the executor calls on an accounting: every method the protocol declares.
_ACCOUNTING_METHODS = _protocol_methods(Accounting)


def check_accounting(accounting: object) -> None:
    """Raise :class:`~policyroute.errors.RequestError` unless ``accounting`` is ``None`` or has
    every method of :class:`Accounting`: given where it is passed, rather than as an
    ``AttributeError`` from inside the executor at the first call.

    Example:
        >>> check_accounting(NullAccounting())
        >>> try:
        ...     check_accounting(5)
        ... except RequestError as exc:
        ...     print(str(exc).split("; ")[1])
        got int, without admit, aadmit, settle, asettle, finish, afinish
    """
    if accounting is None:
        return
    missing = [m for m in _ACCOUNTING_METHODS if not callable(getattr(accounting, m, None))]
    if missing:
        raise RequestError(
            "accounting must be a PolicyAccounting, NullAccounting() or another object"
            f" with the methods {', '.join(_ACCOUNTING_METHODS)}; got"
            f" {type(accounting).__name__}, without {', '.join(missing)}"
        )


class LeaseRenewal(Protocol):
    """Optional methods of an :class:`Accounting`: keep an attempt's reservation alive.

    The executor calls them only for admissions with :attr:`Admission.lease_seconds` set, and
    only if the accounting has them; like :meth:`Accounting.settle` they must not raise for a
    store failure (a lost lease costs the worst case, it must not break a running stream).
    """

    def renew(self, attempt: AttemptInfo, admission: Admission) -> None:
        """Extend the lease of ``admission``'s reservation; the attempt is still running."""

    async def arenew(self, attempt: AttemptInfo, admission: Admission) -> None:
        """Async twin of :meth:`renew`."""


class NullAccounting:
    """Accounting that reserves nothing and writes nothing."""

    def admit(self, attempt: AttemptInfo) -> Admission:
        return Admission(params=attempt.params)

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        return Admission(params=attempt.params)

    def settle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        return Decimal(0)

    async def asettle(
        self, attempt: AttemptInfo, admission: Admission, outcome: AttemptOutcome
    ) -> Decimal:
        return Decimal(0)

    def renew(self, attempt: AttemptInfo, admission: Admission) -> None:
        return None

    async def arenew(self, attempt: AttemptInfo, admission: Admission) -> None:
        return None

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        return None

    async def afinish(self, call: CallInfo, outcome: CallOutcome) -> None:
        return None
