"""The state of one call across its attempts, shared by the sync and async drivers.

:class:`CallState` holds no I/O: it picks the next deployment (skipping circuit-open ones),
builds each attempt's litellm params, decides after a failure whether to retry, fall over or
stop, and records every attempt. The executor and the stream drivers do the calling, the
sleeping and the accounting around it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from policyroute._thinking import (
    anthropic_format,
    has_thinking,
    messages_for,
    origin_of,
    tool_choice_for,
)
from policyroute.api_headers import HEADER_PARAMS, merged_headers
from policyroute.errors import (
    AllCandidatesFailedError,
    AllCandidatesRefusedError,
    AuthenticationError,
    NoCandidateError,
    ProviderError,
)
from policyroute.execution.backoff import backoff_delay, wait_source
from policyroute.execution.breaker import CircuitBreakers, Permit
from policyroute.execution.hooks import AttemptInfo, AttemptOutcome, CallInfo, Usage, WaitSource
from policyroute.execution.one_tool_call import ONE_TOOL_CALL_KEY
from policyroute.execution.one_tool_call import apply as ask_one_tool_call
from policyroute.execution.response_format import (
    SCHEMA_KEY,
    needs_instruction,
    response_format_for,
)
from policyroute.execution.response_format import messages_for as json_messages_for
from policyroute.execution.result import AttemptRecord, CallResult
from policyroute.execution.tool_arguments import messages_for as arguments_for
from policyroute.execution.tool_arguments import takes_raw_arguments
from policyroute.policy.model import NEVER_RETRIED, DefaultsSpec, Requirements, RetrySpec, Secret
from policyroute.request import Request
from policyroute.retries import TRANSIENT
from policyroute.routing.decision import Candidate, Decision, DeploymentStats

__all__ = ["Action", "CallState", "RoutingPolicy"]


class RoutingPolicy(Protocol):
    """What the executor needs of a compiled policy."""

    @property
    def defaults(self) -> DefaultsSpec:
        """Execution defaults (retries, timeouts, breaker, max_tokens)."""

    def route(
        self,
        request: Request,
        *,
        stats: DeploymentStats | None = None,
        token_counter: Any = None,
        trace: bool = True,
    ) -> Decision:
        """Decide the route and the ordered candidates for ``request``."""

    def candidates_for(
        self,
        target: str,
        request: Request,
        *,
        stats: DeploymentStats | None = None,
        requirements: Requirements | None = None,
    ) -> Sequence[Candidate]:
        """The candidates of a route or group name (budget downgrades)."""

    def route_params(self, name: str) -> Mapping[str, Any] | None:
        """The ``params`` of the route ``name``; ``None`` when no route has that name."""


@dataclass(frozen=True, slots=True)
class Action:
    """What to do after a failed attempt: ``retry`` after ``delay`` s, ``next`` or ``stop``.

    ``source`` says where a retry's delay came from (the provider's hint or the backoff).
    """

    kind: Literal["retry", "next", "stop"]
    delay: float = 0.0
    source: WaitSource | None = None


class CallState:
    """One call: its decision, the candidates left, and the attempts made so far."""

    __slots__ = (
        "_bad_arguments",
        "_breakers",
        "_call_params",
        "_current",
        "_defaults",
        "_downgrades",
        "_forced",
        "_permit",
        "_retry",
        "_rng",
        "_route_params",
        "_skipped",
        "_thinking",
        "_wait_source",
        "_waited",
        "attempts",
        "candidates",
        "cost",
        "decision",
        "errors",
        "info",
        "messages",
        "policy",
        "request",
        "route",
        "streamed",
    )

    def __init__(
        self,
        policy: RoutingPolicy,
        request: Request,
        decision: Decision,
        breakers: CircuitBreakers,
        rng: random.Random | None,
        *,
        stream: bool,
    ) -> None:
        self.policy = policy
        self.request = request
        self.decision = decision
        # The route the call runs as: the matched one until a budget downgrades it to another
        # route, whose params then apply (a downgrade to a model or group keeps the route).
        self.route = decision.route
        self._route_params: Mapping[str, Any] = decision.params
        self._defaults = policy.defaults
        self._breakers = breakers
        self._rng = rng
        self.candidates: deque[Candidate] = deque(decision.candidates)
        self._skipped: list[Candidate] = []
        self._forced = False
        self._downgrades: set[str] = set()
        self.attempts: list[AttemptRecord] = []
        self.errors: list[ProviderError] = []
        self.cost = Decimal(0)
        # CallInfo names the concrete compiled policy; any RoutingPolicy stands in for it.
        compiled: Any = policy
        self.info = CallInfo(request=request, policy=compiled, decision=decision)
        self.messages: list[Any] = (
            request.messages if isinstance(request.messages, list) else list(request.messages)
        )
        self._thinking: bool | None = None  # whether a turn carries thinking blocks; unread
        self._bad_arguments: bool | None = None  # whether a tool call's arguments need {}; unread
        self._call_params = _call_params(request, stream)
        # The kind of call its attempts are counted in flight as (DeploymentStatsTracker.start).
        self.streamed = stream
        self._current: Candidate | None = None
        self._retry = 0
        # The breaker permit of the attempt under way, handed back with its end (take_permit).
        self._permit: Permit | None = None
        # The sleep failed() asked for, carried by the next attempt made (attempt_info).
        self._waited = 0.0
        self._wait_source: WaitSource | None = None

    # ------------------------------------------------------------------ sequencing
    # The drivers (sync, async, streamed or not) all run the same loop:
    #     attempt = call.next_attempt(); admit it; run it; on failure sleep(call.failed(error))
    # These two methods hold the loop's decisions so that each driver only does its I/O.

    def next_attempt(self) -> AttemptInfo:
        """The next attempt: a retry of the current deployment, or the next candidate's first.

        Each attempt takes its breaker permit here, right before it is admitted and sent, so
        no permit (a half-open probe) is held while the call sleeps between attempts.
        Raises the call's final error (:meth:`exhausted`) when no candidate is left.
        """
        if self._current is not None:
            permit = self._breakers.acquire(self._current.alias)
            if permit is None:
                # Opened (by this call or others) while waiting to retry: fall over instead.
                self._current = None
            else:
                self._permit = permit
        if self._current is None:
            candidate = self.next_candidate()
            if candidate is None:
                raise self.exhausted()
            self._current, self._retry = candidate, 0
        try:
            return self.attempt_info(self._current, self._retry)
        except BaseException:
            self.release_permit()
            raise

    def take_permit(self) -> Permit | None:
        """The breaker permit of the attempt under way, handed over to whoever reports its
        end to the breaker (once: a second call returns ``None``)."""
        permit, self._permit = self._permit, None
        return permit

    def release_permit(self) -> None:
        """Give the attempt's breaker permit back unused (the attempt was never sent)."""
        permit = self.take_permit()
        if permit is not None:
            self._breakers.release(permit.alias, permit)

    def failed(self, error: ProviderError) -> float | None:
        """After a failed attempt: the delay before retrying it, or ``None`` to move on.

        Raises ``error`` (with the call's attempts attached) when its class says stop.
        """
        if self._current is None:
            raise self.fail(error)
        action = self.after_failure(error, self._current, self._retry)
        if action.kind == "retry":
            self._retry += 1
            self._waited, self._wait_source = action.delay, action.source
            return action.delay
        if action.kind == "next":
            self._current = None
            self._waited, self._wait_source = 0.0, None
            return None
        raise self.fail(error)

    # ------------------------------------------------------------------ candidates

    def next_candidate(self) -> Candidate | None:
        """The next deployment to try, skipping circuit-open ones.

        When every deployment of the call is open and nothing was tried yet, the one whose
        breaker opened longest ago is tried anyway: failing fast on every call while all
        providers cool down would turn a partial outage into a full one. It goes as its
        breaker's probe, so concurrent calls do not all go to a deployment that may be down.
        """
        while self.candidates:
            candidate = self.candidates.popleft()
            permit = self._breakers.acquire(candidate.alias)
            if permit is not None:
                self._permit = permit
                return candidate
            self._skipped.append(candidate)
        if self.attempts or self._forced or not self._skipped:
            return None
        self._forced = True
        breakers = self._breakers
        for oldest in sorted(self._skipped, key=lambda c: breakers.opened_at(c.alias) or 0.0):
            permit = breakers.force(oldest.alias)
            if permit is not None:
                self._permit = permit
                return oldest
        return None

    def downgrade(self, target: str, stats: DeploymentStats | None = None) -> None:
        """Replace the remaining candidates with those of ``target`` (a budget downgrade)."""
        if target in self._downgrades:
            raise NoCandidateError(
                f"budget downgrade to '{target}' was already applied for this call;"
                " check the budgets' on_exceed targets",
                route=self.route,
            )
        self._downgrades.add(target)
        candidates = self.policy.candidates_for(target, self.request, stats=stats)
        if not candidates:
            raise NoCandidateError(
                f"budget downgrade target '{target}' has no usable candidate",
                route=self.route,
            )
        params = self.policy.route_params(target)
        if params is not None:
            self.route = target
            self._route_params = params
        self.candidates = deque(candidates)
        self._skipped.clear()
        self._forced = False
        self._current = None

    # ------------------------------------------------------------------ attempts

    def messages_for(self, attempt: AttemptInfo) -> list[Any]:
        """The messages as sent for ``attempt``: each turn's thinking blocks only where they
        hold (see :mod:`policyroute._thinking`); :attr:`messages` itself when nothing changes.
        JSON mode without a schema adds a system instruction on an Anthropic-format deployment
        (see :mod:`policyroute.execution.response_format`), read from the attempt's params as
        :meth:`_params` adapted them for the deployment. A tool call's arguments that are no
        JSON object go as ``{}`` where the deployment cannot take them as text (see
        :mod:`policyroute.execution.tool_arguments`).

        Raises :class:`~policyroute.errors.AuthenticationError` (nothing sent) when the
        deployment's ``api_base`` or ``api_key`` reads a variable that was not set: litellm
        would send the call to the provider's public endpoint, or with another key.
        """
        spec = attempt.candidate.spec
        if spec.unset_env:
            raise _unset_endpoint(attempt.candidate)
        if self._thinking is None:
            self._thinking = has_thinking(self.messages)
        anthropic = anthropic_format(spec)
        messages = self.messages
        if self._thinking:
            messages = messages_for(messages, origin_of(spec), anthropic_format=anthropic)
        if self._bad_arguments is None:
            # Once per call, not per attempt: whether any tool call's arguments need adapting
            # at all (the thinking adaptation above never changes a tool call). When none do,
            # no deployment's make needs to be known.
            self._bad_arguments = arguments_for(self.messages) is not self.messages
        if self._bad_arguments and not takes_raw_arguments(spec):
            messages = arguments_for(messages)
        if needs_instruction(attempt.params, anthropic_format=anthropic):
            messages = json_messages_for(messages)
        return messages

    def attempt_info(self, candidate: Candidate, retry: int) -> AttemptInfo:
        """The :class:`AttemptInfo` of the next attempt, with its merged litellm params."""
        return AttemptInfo(
            call=self.info,
            candidate=candidate,
            params=self._params(candidate),
            number=len(self.attempts) + 1,
            retry=retry,
            route=self.route,
            waited_s=self._waited,
            wait_source=self._wait_source,
        )

    def _params(self, candidate: Candidate) -> dict[str, Any]:
        # deployment < call < route; litellm_params already carry the deployment's own.
        params = {**candidate.spec.params, **candidate.litellm_params}
        key = params.get("api_key")
        if isinstance(key, Secret):
            params["api_key"] = key.reveal()
        call_params, route_params = self._call_params, self._route_params
        layered = [
            (name, params.get(name))
            for name in HEADER_PARAMS
            if name in call_params or name in route_params
        ]
        params.update(call_params)
        params.update(route_params)
        for name, own in layered:
            # Headers add up, name by name in the same order: a call's X-Trace does not take
            # away the policy's X-Team, nor a route's X-Route the call's X-Trace.
            headers = merged_headers(own, call_params.get(name), route_params.get(name))
            if headers is not None:
                params[name] = headers
        metadata = params.get("metadata")
        if type(metadata) is dict:
            # litellm writes into the metadata it is given (timing windows, hidden params):
            # each attempt hands it a copy of the caller's, not what the last attempt left.
            params["metadata"] = dict(metadata)
        if "tool_choice" in params:
            params["tool_choice"] = tool_choice_for(
                params, anthropic_format=anthropic_format(candidate.spec)
            )
        if "response_format" in params:
            params["response_format"] = response_format_for(
                params, anthropic_format=anthropic_format(candidate.spec)
            )
        params.pop(SCHEMA_KEY, None)  # only the line above reads it; no provider may see it
        if ONE_TOOL_CALL_KEY in params:
            ask_one_tool_call(params, str(params.get("model")), params.get("api_base"))
        # A limit given as None is not given (litellm drops it): the default applies then too.
        if (
            params.get("max_tokens") is None
            and params.get("max_completion_tokens") is None
            and self._defaults.max_tokens is not None
        ):
            params["max_tokens"] = self._defaults.max_tokens
        if params.get("timeout") is None:
            if self._defaults.timeout is None:
                params.pop("timeout", None)
            else:
                params["timeout"] = self._defaults.timeout
        # policyroute is the only retry layer: neither litellm nor the SDK below may retry.
        params["num_retries"] = 0
        params["max_retries"] = 0
        # litellm's sync completion reads num_retries=0 as unset (`0 or litellm.num_retries`),
        # so an application's global litellm.num_retries retried inside each attempt; a retry
        # policy of no retries is read first, on both paths.
        params["retry_policy"] = {"DefaultRetries": 0}
        return params

    def record(
        self,
        attempt: AttemptInfo,
        outcome: AttemptOutcome,
        error: ProviderError | None,
        cost: Decimal,
    ) -> None:
        """Remember how an attempt ended: its settled ``outcome`` (status, latency, whether
        litellm's response cache answered), its ``error`` and what it cost."""
        self.cost += cost
        self.attempts.append(
            AttemptRecord(
                alias=attempt.candidate.alias,
                model=attempt.candidate.model,
                status=outcome.status,
                error_class=None if error is None else error.error_class,
                latency_s=outcome.latency_s,
                retry=attempt.retry,
                cost=cost,
                number=attempt.number,
                waited_s=attempt.waited_s,
                wait_source=attempt.wait_source,
                cache_hit=outcome.cache_hit,
            )
        )
        # Cleared only once an attempt was made: one re-routed by a budget downgrade before
        # it was sent leaves the wait to the attempt that takes its place.
        self._waited, self._wait_source = 0.0, None
        if error is not None:
            self.errors.append(error)

    def after_failure(self, error: ProviderError, candidate: Candidate, retry: int) -> Action:
        """Retry the same deployment, fall over to the next one, or stop."""
        spec = self._defaults.retry
        cls = error.error_class
        if (
            cls in spec.on
            and cls not in NEVER_RETRIED
            and not error.failed_locally
            and retry < spec.attempts
            and self._breakers.is_available(candidate.alias)
            and not self._beyond_cap(error, spec)
        ):
            delay = backoff_delay(spec, retry, retry_after=error.retry_after, rng=self._rng)
            return Action("retry", delay, wait_source(error))
        if cls in spec.fallback_on or cls in spec.on:
            return Action("next")
        if (error.params_unsupported or error.failed_locally) and (
            self.candidates or len(self.errors) > 1
        ):
            # A parameter this provider alone refuses, or a failure in this process before
            # sending (another provider's code may not meet it): like a capability the
            # deployment lacks, it says nothing about the call or the deployment's health.
            # Met on the last candidate after others failed, the call ends as any call that
            # ran out of candidates (exhausted): a rate limit met earlier keeps it transient.
            return Action("next")
        return Action("stop")

    def _beyond_cap(self, error: ProviderError, spec: RetrySpec) -> bool:
        """Whether ``error`` asks for a longer wait than ``spec`` allows while another
        deployment could answer now: retrying after the cap would likely be refused again."""
        if error.retry_after is None or error.retry_after <= spec.retry_after_max:
            return False
        if error.error_class not in spec.fallback_on:
            return False
        return any(self._breakers.is_available(c.alias) for c in self.candidates)

    def fail(self, error: ProviderError) -> ProviderError:
        """``error`` with the call's attempts and route attached, ready to raise."""
        error.attempts = tuple(self.attempts)
        error.route = self.route
        return error

    def exhausted(self) -> ProviderError:
        """The error raised when no candidate is left."""
        if not self.errors:
            skipped = [c.alias for c in self._skipped]
            if not skipped:
                raise NoCandidateError(
                    f"route '{self.route}' has no candidate for this request",
                    route=self.route,
                )
            raise NoCandidateError(
                f"route '{self.route}': every candidate is circuit-open"
                f" ({', '.join(skipped)}); retry after the cooldown or reset the breakers",
                route=self.route,
                skipped=skipped,
            )
        tried = ", ".join(f"{e.deployment}: {e.error_class}" for e in self.errors)
        # A circuit-open candidate tried anyway, as its breaker's probe, was not skipped.
        probed = {e.deployment for e in self.errors}
        skipped = [c.alias for c in self._skipped if c.alias not in probed]
        open_note = ""
        if skipped:
            open_note = f"; skipped circuit-open: {', '.join(skipped)}"
        # The last error's own message says why, which the class names alone do not.
        # Refused everywhere for a reason the same call meets again: a retry of the whole call
        # cannot help (a circuit-open candidate skipped may still take it after its cooldown).
        refused = not skipped and not any(e.error_class in TRANSIENT for e in self.errors)
        kind = AllCandidatesRefusedError if refused else AllCandidatesFailedError
        err = kind(
            f"route '{self.route}': all {len(self.attempts)} attempt(s) failed"
            f" ({tried}){open_note}; last error: {self.errors[-1]}",
            errors=self.errors,
            deployment=self.errors[-1].deployment,
            model=self.errors[-1].model,
            status_code=self.errors[-1].status_code,
            retry_after=self.errors[-1].retry_after,
        )
        # ``except RateLimitError`` code migrated to this class reads the wait from it too.
        err.retry_after_source = self.errors[-1].retry_after_source
        err.__cause__ = self.errors[-1]  # tracebacks show the last failure's own chain
        return self.fail(err)

    def result(
        self,
        attempt: AttemptInfo,
        response: Any,
        usage: Usage,
        ttft: float | None,
    ) -> CallResult:
        """The :class:`CallResult` of a call that ``attempt`` answered."""
        return CallResult(
            response=response,
            decision=self.decision,
            route=self.route,
            deployment=attempt.candidate.alias,
            model=attempt.candidate.model,
            attempts=tuple(self.attempts),
            cost=self.cost,
            usage=usage,
            request_id=self.request.request_id,
            time_to_first_token_s=ttft,
            candidate=attempt.candidate,
        )


def _call_params(request: Request, stream: bool) -> Mapping[str, Any]:
    params = dict(request.params)
    params.pop("stream", None)  # the driver's to say (below)
    if request.tools is not None:
        params["tools"] = request.tools
    if request.tool_choice is not None:
        params["tool_choice"] = request.tool_choice
    if request.response_format is not None:
        params["response_format"] = request.response_format
    if stream:
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
    else:
        params.pop("stream_options", None)
    return params


def _unset_endpoint(candidate: Candidate) -> AuthenticationError:
    """The error of an attempt on a deployment whose ``api_base`` or ``api_key`` reads a
    variable the environment did not set (:attr:`ModelSpec.unset_env`)."""
    spec = candidate.spec
    reads = " and ".join(f"{u.field}: ${{{u.variable}}}" for u in spec.unset_env)
    instead = (
        "the provider's public endpoint"
        if any(u.field == "api_base" for u in spec.unset_env)
        else "the key of the provider's usual variable, if that is set"
    )
    return AuthenticationError(
        f"deployment '{candidate.alias}': {reads} is not set in the environment, so nothing was"
        f" sent (litellm would have used {instead}); set it, and check deployed policies with"
        " 'policyroute validate --strict'",
        deployment=candidate.alias,
        model=spec.model,
    )
