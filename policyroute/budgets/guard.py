"""The budget guard: refuse, downgrade or clamp an attempt before it is sent.

For each attempt the guard computes the attempt's worst-case cost
(:func:`~policyroute.costs.estimate.worst_case`), builds one line per budget in scope and scope
value (``per: tags`` with three tags is three lines), and reserves the worst case on all lines
at once in the store. If a line would go over its limit, the refusing budget's ``on_exceed``
decides: ``block`` raises :class:`~policyroute.errors.BudgetExceeded`, ``downgrade`` asks the
executor to re-route, ``clamp_max_tokens`` lowers ``max_tokens`` until the worst case fits.
After the attempt, :meth:`BudgetGuard.settle` turns the reservation into the actual spend.

Example:
    >>> guard = BudgetGuard(policy, MemoryStore())  # doctest: +SKIP
    >>> admission = guard.admit(attempt)  # doctest: +SKIP
    >>> charges = guard.settle(admission, Decimal("0.0012"))  # doctest: +SKIP

``admit`` raises ``BudgetExceeded`` when a budget refuses and its ``on_exceed`` is ``block``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from policyroute._blocking import BlockingPool
from policyroute._shielded import despite_cancellation
from policyroute.budgets.charges import (
    BudgetCharge,
    ReservedLine,
    reclaimed_charges,
    settled_charges,
)
from policyroute.budgets.clamp import (
    MIN_THINKING_BUDGET,
    clamped_cost,
    effort_thinking,
    thinking_within,
)
from policyroute.budgets.planning import LinePlanner
from policyroute.budgets.refusal import (
    Refusal,
    breaking_refusal,
    check_call_lines,
    clamped_max_tokens,
    exceeded,
    store_refusal,
)
from policyroute.budgets.stores.base import BudgetStore, LineState, ReserveLine, ReserveResult
from policyroute.costs.estimate import OUTPUT_LIMIT_KEYS, Estimate
from policyroute.errors import BudgetExceeded
from policyroute.execution.hooks import Admission, AttemptInfo
from policyroute.execution.timeouts import call_seconds

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["BudgetCharge", "BudgetGuard", "Reclaimed", "Reservation", "ReservedLine"]

_CLAMP_ROUNDS = 3
# Extra lease beyond a request's timeout, for the settle that follows it.
_LEASE_MARGIN_S = 30.0
_DOWNGRADE_MEMORY = 10_000
# State reads of stores without an async twin (a third party's, Redis's sync client), shared
# by every guard: they are rare (a clamp after a refusal), so a few threads serve them.
_STATE_READS = BlockingPool("policyroute-budget-state", 4)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The handle an admitted attempt carries to :meth:`BudgetGuard.settle`.

    ``reclaimed`` holds the thresholds that reserving it crossed by reclaiming expired
    reservations (see :attr:`BudgetCharge.reclaimed`); settling returns them with the
    attempt's own charges, so they are reported with its receipt.
    """

    reservation_id: str
    lines: tuple[ReservedLine, ...]
    estimate: Estimate
    amount: Decimal
    reclaimed: tuple[BudgetCharge, ...] = ()


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """The handle of an attempt that is not sent (a downgrade) but whose reservation attempt
    crossed thresholds by reclaiming expired reservations: ``reclaimed`` is for the caller to
    report at once, as no settle follows.

    A refusal carries them the same way: :class:`~policyroute.errors.BudgetExceeded` raised
    by the guard has a ``reclaimed`` attribute (an empty tuple when nothing was crossed).

    Example:
        >>> admission = guard.admit(attempt)  # doctest: +SKIP
        >>> getattr(admission.handle, "reclaimed", ())  # doctest: +SKIP
        (BudgetCharge(budget='daily', scope='u1', ..., reclaimed=True),)
    """

    reclaimed: tuple[BudgetCharge, ...]


@dataclass(frozen=True, slots=True)
class _Reserve:
    """A store call the admission logic needs: reserve these lines."""

    lines: list[ReserveLine]
    reservation_id: str
    lease_seconds: float
    now: float


@dataclass(frozen=True, slots=True)
class _States:
    """A store call the admission logic needs: the state of these lines (to clamp)."""

    keys: tuple[str, ...]
    now: float


_StoreOp = _Reserve | _States


class BudgetGuard:
    """Checks and reserves every budget in scope of an attempt, atomically.

    Args:
        policy: the compiled policy (for ``defaults.max_tokens`` and the store's lease).
        store: where budget state lives (shared by every process enforcing the policy).
        clock: seconds since the epoch; injectable for tests.
        token_counter: replaces ``litellm.token_counter`` when estimating.
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        store: BudgetStore,
        *,
        clock: Callable[[], float] = time.time,
        token_counter: Callable[..., int] | None = None,
    ) -> None:
        self.policy = policy
        self.store = store
        self._clock = clock
        self._lease = float(policy.spec.store.lease)
        self._planner = LinePlanner(policy, clock=clock, token_counter=token_counter)
        # Per request: the downgrade targets it was sent to, in order (a dict as ordered set).
        self._downgrades: OrderedDict[str, dict[str, None]] = OrderedDict()
        self._downgrades_lock = threading.Lock()
        # A downgrade to a route makes the call that route's (its budgets and ``per: route``
        # scope apply from then on); one to a group keeps the call's route. The stand-in
        # policies of unit tests may carry no routes at all.
        self._route_names = frozenset(getattr(policy, "route_names", ()))

    # ------------------------------------------------------------------ admit

    def admit(self, attempt: AttemptInfo) -> Admission:
        """Reserve the attempt's worst case on every budget in scope, or apply ``on_exceed``."""
        steps = self._admission(attempt)
        try:
            op = next(steps)
            while True:
                if isinstance(op, _Reserve):
                    reply: Any = self.store.reserve(
                        op.lines,
                        reservation_id=op.reservation_id,
                        lease_seconds=op.lease_seconds,
                        now=op.now,
                    )
                else:
                    reply = {key: self.store.state(key, now=op.now) for key in op.keys}
                op = steps.send(reply)
        except StopIteration as done:
            admission: Admission = done.value
            return admission

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        """Async twin of :meth:`admit`."""
        steps = self._admission(attempt)
        try:
            op = next(steps)
            while True:
                if isinstance(op, _Reserve):
                    reply: Any = await self._areserve(op)
                else:
                    reply = {key: await _astate(self.store, key, op.now) for key in op.keys}
                op = steps.send(reply)
        except StopIteration as done:
            admission: Admission = done.value
            return admission

    async def _areserve(self, op: _Reserve) -> ReserveResult:
        # A store may finish a reservation after the caller stops waiting for it (a worker
        # thread, a Redis script already run): cancelled while reserving, the caller would
        # never learn of a reservation that holds the budget until its lease runs out. The
        # reservation is awaited to its end, then given back, then the cancellation goes on.
        reserving = self.store.areserve(
            op.lines,
            reservation_id=op.reservation_id,
            lease_seconds=op.lease_seconds,
            now=op.now,
        )
        try:
            return await despite_cancellation(reserving)
        except asyncio.CancelledError:
            await despite_cancellation(self.store.arelease(op.reservation_id, now=op.now))
            raise

    def _admission(self, attempt: AttemptInfo) -> Generator[_StoreOp, Any, Admission]:
        """The admission decision, with each store call yielded to the caller.

        :meth:`admit` and :meth:`aadmit` run this same logic and differ only in how they
        answer the store calls (a ``ReserveResult`` for :class:`_Reserve`, a key → LineState
        mapping for :class:`_States`).

        Thresholds that the store's reclaiming crossed meanwhile ride on whatever comes out:
        the reservation, a :class:`Reclaimed` handle (a downgrade), or the refusal.
        """
        reclaimed: list[BudgetCharge] = []
        try:
            admission = yield from self._decide(attempt, reclaimed)
        except BudgetExceeded as exc:
            # BudgetExceeded (errors.py) has no field for them; they ride on the instance.
            vars(exc)["reclaimed"] = tuple(reclaimed)
            raise
        if not reclaimed:
            return admission
        handle = admission.handle
        if isinstance(handle, Reservation):
            return replace(admission, handle=replace(handle, reclaimed=tuple(reclaimed)))
        return replace(admission, handle=Reclaimed(tuple(reclaimed)))

    def _decide(
        self, attempt: AttemptInfo, reclaimed: list[BudgetCharge]
    ) -> Generator[_StoreOp, Any, Admission]:
        """:meth:`_admission` itself; the reclaimed crossings reserving found go to
        ``reclaimed``."""
        plan = self._planner.plan(attempt, self._route_of(attempt))
        if plan is None:
            return Admission(params=attempt.params)
        lines, estimate = plan
        params: Mapping[str, Any] = attempt.params
        amount = estimate.cost
        for _ in range(_CLAMP_ROUNDS):
            # 128 random bits, as unique as uuid4 and cheaper to make.
            rid = os.urandom(16).hex()
            refusal = check_call_lines(lines, amount)
            if refusal is None:
                store_lines = [rl.reserve_line(amount) for rl in lines if rl.window.persistent]
                if not store_lines:
                    return self._admitted(params, rid, lines, estimate, amount, None)
                lease = self._lease_for(params)
                result: ReserveResult = yield _Reserve(store_lines, rid, lease, self._clock())
                if result.reclaimed:
                    reclaimed.extend(reclaimed_charges(result.reclaimed))
                if result.ok:
                    return self._admitted(params, rid, lines, estimate, amount, lease)
                refusal = store_refusal(lines, result)
            final = refusal
            states: dict[str, LineState] = {}
            action = refusal.line.budget.on_exceed.action
            if action == "clamp_max_tokens" or (
                action == "downgrade" and any(rl.budget.on_exceed.action == "block" for rl in lines)
            ):
                states = yield _States(tuple(rl.key for rl in lines), self._clock())
                # The outcome must not hang on which budget the store checked first: of the
                # budgets the call as asked would break, one that blocks refuses it, else one
                # that downgrades re-routes it, and only then is max_tokens clamped.
                blocking = breaking_refusal(lines, states, amount, "block")
                if blocking is not None:
                    raise exceeded(blocking, amount)
                if action == "clamp_max_tokens":
                    refusal = breaking_refusal(lines, states, amount, "downgrade") or refusal
            outcome = self._on_refusal(attempt, refusal, estimate, amount, params, lines, states)
            if isinstance(outcome, Admission):
                return outcome
            params, amount = outcome
        # Still refused after clamping as far as the budgets' states allowed: others raced us.
        raise exceeded(final, amount)

    # ------------------------------------------------------------------ settle

    def settle(self, admission: Admission, actual_cost: Decimal) -> tuple[BudgetCharge, ...]:
        """Turn the admission's reservation into ``actual_cost`` of spend (idempotent)."""
        handle = admission.handle
        if not isinstance(handle, Reservation):
            return ()
        states: list[LineState] = []
        if any(rl.window.persistent for rl in handle.lines):
            states = self.store.settle(handle.reservation_id, actual_cost, now=self._clock())
        return _with_reclaimed(handle, states, actual_cost)

    async def asettle(self, admission: Admission, actual_cost: Decimal) -> tuple[BudgetCharge, ...]:
        """Async twin of :meth:`settle`."""
        handle = admission.handle
        if not isinstance(handle, Reservation):
            return ()
        states: list[LineState] = []
        if any(rl.window.persistent for rl in handle.lines):
            states = await self.store.asettle(handle.reservation_id, actual_cost, now=self._clock())
        return _with_reclaimed(handle, states, actual_cost)

    # ------------------------------------------------------------------ renew

    def renew(self, admission: Admission) -> bool:
        """Extend the lease of the admission's reservation while its attempt still runs.

        Returns ``False`` only when the store no longer holds the reservation (its lease ran
        out and it was, or is being, charged its worst case); ``True`` when it was renewed or
        there is no store reservation to renew.
        """
        handle = admission.handle
        if not isinstance(handle, Reservation) or admission.lease_seconds is None:
            return True
        return self.store.renew(handle.reservation_id, admission.lease_seconds, now=self._clock())

    async def arenew(self, admission: Admission) -> bool:
        """Async twin of :meth:`renew`."""
        handle = admission.handle
        if not isinstance(handle, Reservation) or admission.lease_seconds is None:
            return True
        return await self.store.arenew(
            handle.reservation_id, admission.lease_seconds, now=self._clock()
        )

    # ------------------------------------------------------------------ call end

    def forget_call(self, request_id: str) -> None:
        """Drop what the guard keeps of a call while it runs (the downgrades it made), once
        the call has ended; the accounting calls it from ``finish``, on every outcome.

        A call still running under the same request id would lose its record of downgrades
        and could be downgraded once more to a target it was already sent to: request ids
        are meant to be unique per call.

        Example:
            >>> guard.forget_call(attempt.call.request.request_id)  # doctest: +SKIP
        """
        # Most calls are never downgraded: a length check spares them the lock.
        if self._downgrades:
            with self._downgrades_lock:
                self._downgrades.pop(request_id, None)

    # ------------------------------------------------------------------ internals

    def _route_of(self, attempt: AttemptInfo) -> str:
        """The route the attempt is charged as: the last route its call was downgraded to,
        else the route that matched it."""
        if self._route_names:
            with self._downgrades_lock:
                targets = tuple(self._downgrades.get(attempt.call.request.request_id, ()))
            for target in reversed(targets):
                if target in self._route_names:
                    return target
        return attempt.call.decision.route

    def _lease_for(self, params: Mapping[str, Any]) -> float:
        """The lease of one reservation: the store's, or longer than the attempt may run.

        A call that is still legitimately running must not see its reservation reclaimed (and
        charged at its worst case) by another process. Streams renew their lease while chunks
        flow (so they keep the store's lease, and a crashed process's streams are reclaimed
        soon); a single non-streamed request cannot, so its lease covers its own timeout.
        """
        if params.get("stream"):
            return self._lease
        # A number, or an httpx.Timeout by its longest limit, as the executor bounds the call.
        timeout = call_seconds(params.get("timeout"))
        if timeout is not None and timeout > 0:
            return max(self._lease, timeout + _LEASE_MARGIN_S)
        return self._lease

    def _admitted(
        self,
        params: Mapping[str, Any],
        rid: str,
        lines: tuple[ReservedLine, ...],
        estimate: Estimate,
        amount: Decimal,
        lease: float | None,
    ) -> Admission:
        """The admission of a reservation; ``lease`` is ``None`` when no line is in the store
        (per-call budgets hold nothing there, so there is nothing to renew)."""
        handle = Reservation(rid, lines, estimate, amount)
        return Admission(params=params, estimate=amount, handle=handle, lease_seconds=lease)

    def _on_refusal(
        self,
        attempt: AttemptInfo,
        refusal: Refusal,
        estimate: Estimate,
        amount: Decimal,
        params: Mapping[str, Any],
        lines: Sequence[ReservedLine],
        states: Mapping[str, LineState],
    ) -> Admission | tuple[Mapping[str, Any], Decimal]:
        """An Admission (downgrade), new (params, amount) to retry with (clamp), or raise."""
        on_exceed = refusal.line.budget.on_exceed
        if on_exceed.action == "downgrade" and on_exceed.target is not None:
            if not self._first_downgrade(attempt.call.request.request_id, on_exceed.target):
                raise exceeded(refusal, amount, note="already downgraded once")
            return Admission(params=params, estimate=amount, downgrade_to=on_exceed.target)
        if on_exceed.action == "clamp_max_tokens":
            clamped = clamped_max_tokens(estimate, lines, states)
            if clamped is None or clamped < on_exceed.min_tokens:
                raise exceeded(
                    refusal, amount, note=f"max_tokens cannot be clamped to {on_exceed.min_tokens}"
                )
            # Every output limit the call gives is lowered: the provider may honour either.
            keys = [k for k in OUTPUT_LIMIT_KEYS if k in params] or ["max_tokens"]
            new_params = {**params, **dict.fromkeys(keys, clamped)}
            # Thinking asked for as reasoning_effort is written out, so that it can be lowered.
            effort = effort_thinking(attempt.candidate.spec, params)
            thinking = thinking_within(params.get("thinking") or effort, clamped)
            if thinking is False:
                raise exceeded(
                    refusal,
                    amount,
                    note=f"max_tokens cannot be clamped to {MIN_THINKING_BUDGET + 1}: extended"
                    f" thinking needs budget_tokens of at least {MIN_THINKING_BUDGET}, below"
                    " max_tokens",
                )
            if thinking is not None:
                new_params["thinking"] = thinking
                if effort is not None:
                    del new_params["reasoning_effort"]
            return new_params, clamped_cost(estimate, clamped)
        raise exceeded(refusal, amount)

    def _first_downgrade(self, request_id: str, target: str) -> bool:
        # A downgrade whose target is refused again must not bounce forever. The record goes
        # when the call ends (forget_call); the trim only bounds the records of calls whose
        # end the guard is never told of (a guard used without PolicyAccounting).
        with self._downgrades_lock:
            seen = self._downgrades.setdefault(request_id, {})
            self._downgrades.move_to_end(request_id)
            while len(self._downgrades) > _DOWNGRADE_MEMORY:
                self._downgrades.popitem(last=False)
            if target in seen:
                return False
            seen[target] = None
            return True


def _with_reclaimed(
    handle: Reservation, states: Sequence[LineState], actual: Decimal
) -> tuple[BudgetCharge, ...]:
    charges = settled_charges(handle.lines, states, actual)
    # Only the settle that settled the reservation reports them: settling again (it is
    # idempotent) must not report the crossings a second time.
    if states:
        charges += handle.reclaimed
    return charges


async def _astate(store: BudgetStore, key: str, now: float) -> LineState:
    # State reads are rare (clamping only) and the protocol keeps them sync. A store with an
    # async twin (SQLite) reads through it, in its own threads; any other in a pool of this
    # module's, never the loop's default executor, which the application's calls share.
    astate = getattr(store, "astate", None)
    if astate is not None:
        state: LineState = await astate(key, now=now)
        return state
    return await _STATE_READS.run(store.state, key, now=now)
