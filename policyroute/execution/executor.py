"""The executor: the only retry layer between policyroute and litellm.

For each call it routes the request, then tries the candidate deployments left to right:
each attempt is admitted by accounting, sent through litellm (whose own retries are off),
classified if it fails, and settled whatever its end. A failure's class decides, as the
policy's ``defaults.retry`` says, whether the same deployment is tried again after a backoff,
the next candidate is tried, or the call stops. Circuit-open deployments are skipped.

Example:
    >>> executor = Executor(policy)  # doctest: +SKIP
    >>> result = executor.complete(Request(messages=[{"role": "user", "content": "hi"}]))
    ... # doctest: +SKIP
    >>> result.deployment, result.response.choices[0].message.content  # doctest: +SKIP
    ('mini', 'Hello!')
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from policyroute._interrupts import held_interrupts
from policyroute._lazy import import_litellm
from policyroute.errors import BudgetExceeded, ProviderError, StreamInterruptedError
from policyroute.execution.attempt import AttemptRun
from policyroute.execution.breaker import BREAKER_CLASSES, CircuitBreakers, Permit
from policyroute.execution.call import CallState, RoutingPolicy
from policyroute.execution.client_fill import with_one_client_per_key
from policyroute.execution.handoff import handed_off
from policyroute.execution.hooks import (
    Accounting,
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallOutcome,
    LeaseRenewal,
    NullAccounting,
)
from policyroute.execution.lease import LeaseTimer
from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop, closes_with_loop
from policyroute.execution.result import (
    AttemptRecord,
    CallResult,
    StreamDelta,
    StreamDone,
    StreamEvent,
)
from policyroute.execution.timeouts import call_seconds, within
from policyroute.execution.unary_deadline import UnaryDeadline
from policyroute.execution.unlogged import unlogged_call
from policyroute.execution.url_credentials import (
    with_credentials_as_header,
    with_credentials_as_header_async,
)
from policyroute.request import Request
from policyroute.routing.stats import DeploymentStatsTracker

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = [
    "AttemptRecord",
    "CallResult",
    "Executor",
    "StreamDelta",
    "StreamDone",
    "StreamEvent",
]

# Grace on top of the litellm timeout for the outer deadline (async: the call's task is
# cancelled; sync: its HTTP response is cut): litellm's own timeout should normally fire
# first and say more; the outer one catches a call that ignores it, or a provider that keeps
# sending its answer a few bytes at a time (httpx's timeout bounds each read).
_OUTER_TIMEOUT_GRACE = 1.0

_log = logging.getLogger("policyroute.execution")

_ZERO = Decimal(0)

# Exactly NullAccounting (``type(...) is``, not a subclass that may override a hook) does
# nothing in its hooks: the async paths call its sync twins, which answer the same without a
# coroutine each, and skip its ``finish`` with the CallOutcome built for it. Checked per call,
# since ``Executor.accounting`` is a public attribute.

CallStatus = Literal["ok", "error", "cancelled", "interrupted", "refused"]


class Executor:
    """Runs requests through litellm as a compiled policy says.

    Args:
        policy: the compiled policy (routes, candidates, ``defaults``).
        accounting: budgets and receipts around each attempt (default: none).
        stats: latency and in-flight tracker shared with routing (default: a new one).
            The executor's circuit breakers become its availability predicate.
        breakers: circuit breakers per deployment (default: from the policy's defaults).
        completion: the sync completion callable (default ``litellm.completion``).
        acompletion: the async completion callable (default ``litellm.acompletion``).
        sleep: how to wait between retries in sync calls (injectable for tests).
        asleep: how to wait between retries in async calls.
        rng: random source for backoff jitter.
        clock: monotonic seconds, for renewing budget leases during streams (tests inject it).

    Example:
        >>> executor = Executor(policy, sleep=lambda s: None)  # doctest: +SKIP
        >>> executor.complete(request).attempts  # doctest: +SKIP
    """

    def __init__(
        self,
        policy: CompiledPolicy | RoutingPolicy,
        *,
        accounting: Accounting | None = None,
        stats: DeploymentStatsTracker | None = None,
        breakers: CircuitBreakers | None = None,
        completion: Callable[..., Any] | None = None,
        acompletion: Callable[..., Awaitable[Any]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy: RoutingPolicy = policy
        self.accounting: Accounting = accounting if accounting is not None else NullAccounting()
        self.breakers = (
            breakers if breakers is not None else CircuitBreakers(policy.defaults.circuit_breaker)
        )
        self.stats = stats if stats is not None else DeploymentStatsTracker()
        self.stats.set_availability(self.breakers.is_available)
        self._completion = completion
        self._acompletion = acompletion
        self._sleep = sleep
        self._asleep = asleep
        self._rng = rng
        self._clock = clock
        self._renews = callable(getattr(self.accounting, "renew", None))

    # ------------------------------------------------------------------ public API

    def complete(self, request: Request) -> CallResult:
        """Run ``request`` to completion, with retries and fallback.

        Raises the classified :class:`~policyroute.errors.ProviderError` when a failure's
        class says stop, :class:`~policyroute.errors.AllCandidatesFailedError` when every
        candidate failed, and :class:`~policyroute.errors.BudgetExceeded` unchanged.
        """
        call = self.start(request, stream=False)
        if type(self.accounting) is NullAccounting:
            return self._run(call)  # nothing to finish
        result: CallResult | None = None
        error: BaseException | None = None
        try:
            result = self._run(call)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            with held_interrupts():
                self.accounting.finish(call.info, self.call_outcome(call, result, error))

    async def acomplete(self, request: Request) -> CallResult:
        """Async twin of :meth:`complete`; cancelling it settles and finishes the call."""
        if not closes_with_loop(asyncio.get_running_loop()):
            await close_litellm_clients_with_loop()
        call = self.start(request, stream=False)
        if type(self.accounting) is NullAccounting:
            return await self._arun(call)  # nothing to finish
        result: CallResult | None = None
        error: BaseException | None = None
        try:
            result = await self._arun(call)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self.accounting.afinish(call.info, self.call_outcome(call, result, error))

    def stream(self, request: Request) -> Generator[StreamEvent, None, None]:
        """Stream ``request``: :class:`StreamDelta` events, then one :class:`StreamDone`.

        Failures before the first content token fall over transparently; after it, the
        stream ends with :class:`~policyroute.errors.StreamInterruptedError`. Closing the
        generator early settles the call at once.
        """
        from policyroute.execution.streaming import stream_sync

        return stream_sync(self, request)

    def astream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """Async twin of :meth:`stream`."""
        from policyroute.execution.streaming import stream_async

        return stream_async(self, request)

    # ------------------------------------------------------------------ shared steps

    @property
    def completion_fn(self) -> Callable[..., Any]:
        """The sync completion callable (litellm's unless one was injected).

        litellm's own is made to build one HTTP client per cache key when threads call it at
        once (:mod:`policyroute.execution.client_fill`), and to send an ``api_base``'s user
        info as an ``Authorization: Basic`` header (:mod:`.url_credentials`)."""
        if self._completion is None:
            litellm_completion = with_credentials_as_header(import_litellm().completion)
            self._completion = with_one_client_per_key(litellm_completion)
        return self._completion

    @property
    def acompletion_fn(self) -> Callable[..., Awaitable[Any]]:
        """The async completion callable (litellm's unless one was injected); litellm's own
        sends an ``api_base``'s user info as a header, which its aiohttp transport cannot
        take in the URL (:mod:`policyroute.execution.url_credentials`)."""
        if self._acompletion is None:
            self._acompletion = with_credentials_as_header_async(import_litellm().acompletion)
        return self._acompletion

    def start(self, request: Request, *, stream: bool) -> CallState:
        """Route ``request`` and open the state of its call."""
        # Routing reads ``stream`` (a routing fact, and what fastest ranks by): a stream is
        # one even when the caller's Request did not say so.
        routed = request if request.stream or not stream else replace(request, stream=True)
        decision = self.policy.route(routed, stats=self.stats, trace=False)
        return CallState(self.policy, request, decision, self.breakers, self._rng, stream=stream)

    def choose(self, call: CallState) -> AttemptInfo:
        """The call's next attempt (:meth:`CallState.next_attempt`), counted in flight on its
        deployment from now on.

        Counted when chosen, not once admitted: a budget's reservation may take a while (a
        SQLite or Redis store), and ``least_busy`` and ``fastest`` calls routed meanwhile must
        see the deployment taken. The count is given back by whatever ends the attempt: its
        settling (:meth:`observe`) once admitted, or :meth:`end_attempt` / :meth:`aadmit` when it
        is refused, re-routed by a budget downgrade, cancelled or interrupted before it is sent.
        """
        attempt = call.next_attempt()
        self.stats.start(attempt.candidate.alias, stream=call.streamed)
        return attempt

    def _give_back(self, call: CallState, attempt: AttemptInfo, admission: Admission) -> None:
        """Give back what an admitted attempt that will not be sent holds: its count in
        flight and breaker permit (:meth:`_not_sent`), and its reservation, settled free as
        ``cancelled``, which the call lists as it lists every attempt made. A failure to
        settle is logged: the caller is already raising what stopped the attempt."""
        self._not_sent(call, attempt)
        outcome = AttemptOutcome(status="cancelled")
        cost = _ZERO
        try:
            cost = self.accounting.settle(attempt, admission, outcome)
        except Exception:
            _log.exception("giving back the reservation of %s failed", attempt.candidate.alias)
        finally:
            call.record(attempt, outcome, None, cost)

    async def aadmit(self, call: CallState, attempt: AttemptInfo) -> Admission | None:
        """Admission of ``attempt`` (made by :meth:`choose`), or ``None`` when accounting
        re-routed the call instead (a budget downgrade: ``call`` now holds the new
        candidates). Refused, cancelled or re-routed, the attempt gives back its count in
        flight. Sync attempts are admitted inside the ``try`` that settles them
        (:meth:`_attempt`, and :mod:`~policyroute.execution.stream_sync` for streams)."""
        accounting = self.accounting
        try:
            if type(accounting) is NullAccounting:
                admission = accounting.admit(attempt)
            else:
                admission = await accounting.aadmit(attempt)
        except BaseException:
            self._not_sent(call, attempt)
            raise
        return self._admitted(call, attempt, admission)

    def _not_sent(self, call: CallState, attempt: AttemptInfo) -> None:
        """Give back what :meth:`choose` took for an attempt that will not be sent: its count
        in flight, and its breaker permit (a half-open probe's)."""
        self.stats.finish(attempt.candidate.alias, stream=call.streamed)
        call.release_permit()

    def _admitted(
        self, call: CallState, attempt: AttemptInfo, admission: Admission
    ) -> Admission | None:
        if admission.downgrade_to is None:
            return admission
        self.reroute(call, attempt, admission.downgrade_to)
        return None

    def reroute(self, call: CallState, attempt: AttemptInfo, downgrade_to: str) -> None:
        """Re-route ``call`` as a budget's downgrade of ``attempt`` asks: the attempt, never
        sent, gives back what :meth:`choose` took, and ``call`` takes the new candidates."""
        self._not_sent(call, attempt)
        call.downgrade(downgrade_to, self.stats)

    def lease_timer(self, admission: Admission) -> LeaseTimer | None:
        """When to renew ``admission``'s lease during a stream; ``None``: never."""
        if admission.lease_seconds is None or not self._renews:
            return None
        return LeaseTimer(admission.lease_seconds, self._clock)

    def renew(self, attempt: AttemptInfo, admission: Admission) -> None:
        """Renew the attempt's reservation; a failure is logged, never raised into a stream."""
        try:
            cast(LeaseRenewal, self.accounting).renew(attempt, admission)
        except Exception:
            _log.exception("renewing the budget lease of %s failed", attempt.candidate.alias)

    async def arenew(self, attempt: AttemptInfo, admission: Admission) -> None:
        """Async twin of :meth:`renew`."""
        try:
            await cast(LeaseRenewal, self.accounting).arenew(attempt, admission)
        except Exception:
            _log.exception("renewing the budget lease of %s failed", attempt.candidate.alias)

    def observe(
        self,
        attempt: AttemptInfo,
        outcome: AttemptOutcome,
        error: ProviderError | None,
        permit: Permit | None = None,
        latency_s: float | None = None,
        *,
        stream: bool = False,
        measured: bool = True,
    ) -> None:
        """Feed an attempt's end to the stats tracker and the circuit breaker.

        ``permit`` is the breaker permit the attempt went out with: only the holder of a
        half-open probe ends the probe. ``latency_s`` is the provider's share of the attempt
        (a stream's reads, not its consumer's pauses); the outcome's latency by default.
        ``stream``: the kind the attempt was counted in flight as. ``measured=False``: the
        attempt's times are not the deployment's (see
        :meth:`~policyroute.execution.attempt.AttemptRun.set_up_meanwhile`), and are left out.
        An answer from litellm's response cache (``outcome.cache_hit``) never reached the
        deployment: neither its times nor its end are fed to the stats or the breaker, whose
        probe it held is given back.
        """
        alias = attempt.candidate.alias
        if outcome.cache_hit:
            # A hit takes a cache read's time, a fraction of a provider's: ranked by it, the
            # deployment would look faster than it is; counted as its success, it would close
            # the breaker of a deployment that is down, or reset its failures in a row.
            self.stats.finish(alias, stream=stream)
            if permit is not None:
                self.breakers.release(alias, permit)
            return
        ok = outcome.status == "ok"
        latency = outcome.latency_s if latency_s is None else latency_s
        if not measured:
            # Ranked by times seconds too long, the first deployment a process tries would be
            # left alone until its figures went stale: it stays unmeasured and is tried again.
            self.stats.finish(alias, stream=stream)
        elif ok:
            # fastest ranks streams by their first token, answers by their length's time
            usage = outcome.usage
            self.stats.finish(
                alias,
                latency,
                output_tokens=None if usage is None else usage.output_tokens,
                first_token=outcome.time_to_first_token_s,
                stream=stream,
            )
        elif outcome.status == "cancelled":
            # A stream its consumer stopped reading after the first token still showed how
            # soon the deployment answers, which is what streams are ranked by: without it, a
            # deployment whose streams are all closed early would never be measured.
            first_token = outcome.time_to_first_token_s
            self.stats.finish(alias, first_token=first_token, stream=stream)
            if first_token is None and latency is not None:
                # Cancelled while still waiting (the caller's own timeout, say): the
                # deployment takes at least that long, which fastest must not forget, or a
                # deployment that hangs would be tried first again by the next call.
                self.stats.record_wait(alias, latency, stream=stream)
        else:
            self.stats.finish(alias, stream=stream)
        # A stream cut after its first tokens ("interrupted") failed as much as one that
        # never began: a deployment that cuts every stream must open its breaker too.
        if not ok and error is not None and error.error_class in BREAKER_CLASSES:
            self.stats.record_failure(alias)  # so fastest does not keep trying it first
        if ok:
            self.breakers.record_success(alias, permit)
        elif error is not None:
            self.breakers.record_failure(alias, error.error_class, permit)
        elif permit is not None:
            self.breakers.release(alias, permit)

    def settle(self, call: CallState, admission: Admission, run: AttemptRun) -> None:
        """Observe, settle (once) and record how ``run`` ended; a Ctrl-C meanwhile is raised
        once it is done (:func:`~policyroute._interrupts.held_interrupts`)."""
        with held_interrupts():
            self._settle(call, admission, run)

    def _observed(self, call: CallState, run: AttemptRun) -> AttemptOutcome:
        """``run``'s outcome, fed to :meth:`observe` with the call's breaker permit."""
        outcome = run.finalize()
        self.observe(
            run.attempt,
            outcome,
            run.error,
            call.take_permit(),
            run.provider_latency(),
            stream=run.streamed,
            measured=not run.set_up_meanwhile(),
        )
        return outcome

    def _settle(self, call: CallState, admission: Admission, run: AttemptRun) -> None:
        attempt, outcome, error = run.attempt, self._observed(call, run), run.error
        # Recorded even when settling raises (at cost 0): the call lists every attempt made.
        cost = _ZERO
        try:
            cost = self.accounting.settle(attempt, admission, outcome)
        finally:
            call.record(attempt, outcome, error, cost)

    async def asettle(self, call: CallState, admission: Admission, run: AttemptRun) -> None:
        """Async twin of :meth:`settle`."""
        attempt, outcome, error = run.attempt, self._observed(call, run), run.error
        accounting = self.accounting
        cost = _ZERO
        try:
            if type(accounting) is NullAccounting:
                cost = accounting.settle(attempt, admission, outcome)
            else:
                cost = await accounting.asettle(attempt, admission, outcome)
        finally:
            call.record(attempt, outcome, error, cost)

    @staticmethod
    def call_outcome(
        call: CallState, result: CallResult | None, error: BaseException | None
    ) -> CallOutcome:
        """The :class:`CallOutcome` handed to ``Accounting.finish``."""
        elapsed = time.perf_counter() - call.info.started_monotonic
        if result is not None:
            return CallOutcome(
                status="ok",
                deployment=result.deployment,
                response=result.response,
                attempts=len(call.attempts),
                cost=call.cost,
                latency_s=elapsed,
                time_to_first_token_s=result.time_to_first_token_s,
                route=call.route,
                cache_hit=result.cache_hit,
            )
        status: CallStatus
        if isinstance(error, BudgetExceeded):
            status = "refused"
        elif isinstance(error, StreamInterruptedError):
            status = "interrupted"
        elif error is None or not isinstance(error, Exception):
            status = "cancelled"  # CancelledError, GeneratorExit, KeyboardInterrupt
        else:
            status = "error"
        deployment = call.attempts[-1].alias if call.attempts else None
        return CallOutcome(
            status=status,
            deployment=deployment,
            error=error,
            attempts=len(call.attempts),
            cost=call.cost,
            latency_s=elapsed,
            route=call.route,
        )

    # ------------------------------------------------------------------ non-streaming

    def _run(self, call: CallState) -> CallResult:
        while True:
            answer = self._attempt(call)
            if answer is None:
                continue  # a budget downgrade re-routed the call
            if isinstance(answer, CallResult):
                return answer
            delay = call.failed(answer)
            if delay is not None:
                self._sleep(delay)

    async def _arun(self, call: CallState) -> CallResult:
        while True:
            attempt = self.choose(call)
            admission = await self.aadmit(call, attempt)
            if admission is None:
                continue
            answer = await self._aattempt(call, attempt, admission)
            if isinstance(answer, CallResult):
                return answer
            delay = call.failed(answer)
            if delay is not None:
                await self._asleep(delay)

    def _attempt(self, call: CallState) -> CallResult | ProviderError | None:
        """Choose, admit, send and settle the call's next attempt; ``None`` when a budget
        downgrade re-routed the call instead (``call`` then holds the new candidates).

        What the attempt takes, its count in flight (:meth:`choose`) and its reservation, is
        taken inside the ``try`` that gives it back, under :func:`held_interrupts` until
        ``attempt``, ``admission`` and ``run`` say what is held: a Ctrl-C that arrives
        meanwhile is raised once they do, and whatever ends the attempt from its choice on
        (a Ctrl-C too, or a step after its admission failing) finds what to give back.
        Sync streams do the same (:mod:`~policyroute.execution.stream_sync`).
        """
        attempt: AttemptInfo | None = None  # counted in flight
        admission: Admission | None = None  # and holding its reservation
        run: AttemptRun | None = None  # set up: settling gives both back
        deadline: UnaryDeadline | None = None
        try:
            with held_interrupts():
                attempt = self.choose(call)
                admission = self.accounting.admit(attempt)
                downgrade_to = admission.downgrade_to
                if downgrade_to is not None:
                    chosen, attempt, admission = attempt, None, None
                    self.reroute(call, chosen, downgrade_to)
                    return None
                run = AttemptRun(attempt)
            params = admission.params
            messages = call.messages_for(attempt)
            completion = self.completion_fn  # imports litellm on first use, before the clock
            # httpx bounds each read by the timeout, not the answer: the deadline cuts a
            # response still being read after the timeout plus the async path's grace.
            deadline = UnaryDeadline.after(params.get("timeout"), grace=_OUTER_TIMEOUT_GRACE)
            with unlogged_call(params):
                if deadline is None:
                    answer = completion(messages=messages, **params)
                else:
                    with deadline:
                        answer = completion(messages=messages, **params)
            run.answered(answer)
        except Exception as exc:
            if run is None:
                raise  # refused by accounting, or failed before it was set up: given back below
            if deadline is not None and deadline.cut:
                run.timed_out(exc, deadline.seconds)
            else:
                run.failed(exc)
        except BaseException as exc:  # KeyboardInterrupt: billed if the request went out
            if run is not None:
                run.stopped(exc)
            raise
        finally:
            # A Ctrl-C meanwhile is raised once what the attempt holds is given back. Nothing
            # is held when no attempt was chosen, or once a downgrade gave it back.
            with held_interrupts():
                if attempt is not None:
                    self.end_attempt(call, attempt, admission, run)
        return run.answer(call)

    def end_attempt(
        self,
        call: CallState,
        attempt: AttemptInfo,
        admission: Admission | None,
        run: AttemptRun | None,
    ) -> None:
        """Give back what ``attempt`` holds, however far it got: settle its ``run`` once it
        was set up, else give back its reservation (:meth:`_give_back`) or, not admitted or
        admitted as a downgrade, its count in flight (:meth:`_not_sent`)."""
        if admission is None or admission.downgrade_to is not None:
            self._not_sent(call, attempt)
        elif run is None:
            self._give_back(call, attempt, admission)
        else:
            self._settle(call, admission, run)

    async def _aattempt(
        self, call: CallState, attempt: AttemptInfo, admission: Admission
    ) -> CallResult | ProviderError:
        params = admission.params
        # Counted in flight since choose(): settling gives the count back.
        run = AttemptRun(attempt)
        try:
            seconds = call_seconds(params.get("timeout"))
            outer = None if seconds is None else seconds + _OUTER_TIMEOUT_GRACE
            messages = call.messages_for(attempt)
            pending = handed_off(self.acompletion_fn(messages=messages, **params))
            with unlogged_call(params):
                answer = await within(pending, outer)
            run.answered(answer)
        except Exception as exc:
            run.failed(exc)
        except BaseException as exc:  # cancelled: billed if the request went out
            run.stopped(exc)
            raise
        finally:
            await self.asettle(call, admission, run)
        return run.answer(call)
