"""What an attempt actually cost: its token usage, and the price of that usage in USD.

Usage is read from a response by :mod:`policyroute.costs.usage_read` (every provider's shape,
impossible counts set to 0); a count made locally is flagged by
:mod:`policyroute.costs.estimated_mark`. The names of both are re-exported here.

Prices: a model litellm can price costs exactly what ``litellm.completion_cost`` says (the same
figure litellm's own logging reports), read as ``Decimal(repr(float))`` so no binary rounding
leaks in, quantised to 1e-9 USD. A model priced by the policy costs its per-token prices times
the usage. A model nobody can price costs 0 with source ``"none"``.

Example:
    >>> usage_from_response({"usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    Usage(input_tokens=10, output_tokens=5, cache_read_tokens=0, cache_write_tokens=0, \
reasoning_tokens=0, cache_write_1h_tokens=0)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Literal

from policyroute._fields import read as _get
from policyroute._lazy import import_litellm
from policyroute._money import WIDE
from policyroute.costs.estimated_mark import mark_usage_estimated, usage_estimated
from policyroute.costs.pricing import served_from
from policyroute.costs.usage_read import (
    MAX_TOKENS,
    sound_usage,
    usage_from_response,
)

# Re-exported: the executor's usage checks read these from here.
from policyroute.costs.usage_read import _usage_from_object as _usage_from_object
from policyroute.costs.usage_read import _usage_object as _usage_object
from policyroute.execution.hooks import AttemptInfo, AttemptOutcome, Usage
from policyroute.policy.model import ModelInfo
from policyroute.routing.decision import Candidate

__all__ = [
    "MAX_TOKENS",
    "QUANTUM",
    "CostResult",
    "PriceSource",
    "actual_cost",
    "attempt_cost",
    "charged_usage",
    "cost_from_usage",
    "count_locally",
    "mark_usage_estimated",
    "sound_usage",
    "to_decimal",
    "usage_estimated",
    "usage_from_response",
]

_log = logging.getLogger("policyroute.costs")

QUANTUM = Decimal("1e-9")
"""Internal precision of costs (USD); receipts show 6 decimal places."""

PriceSource = Literal["litellm", "policy", "none"]
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CostResult:
    """A cost in USD and where its price came from.

    ``usage_estimated``: some of the tokens priced were counted locally (litellm's token
    counter) because the provider's own count never arrived, as for a stream cut before its
    final usage chunk.

    Example:
        >>> CostResult(Decimal("0.000125"), "litellm").cost
        Decimal('0.000125')
    """

    cost: Decimal
    source: PriceSource
    usage_estimated: bool = False


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """A float as the shortest decimal that round-trips, quantised to :data:`QUANTUM`.

    Raises ``ValueError`` for NaN and infinities, which are no amount of money.

    Example:
        >>> to_decimal(0.1 + 0.2)
        Decimal('0.300000000')
    """
    if isinstance(value, float):
        value = repr(value)
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"cost {value!r} is not a finite amount")
    return amount.quantize(QUANTUM, context=WIDE)


# --------------------------------------------------------------------------- prices


def _price_from_info(usage: Usage, info: ModelInfo) -> Decimal:
    """Usage times per-token prices; cache and reasoning fall back to the input/output rate."""
    # In WIDE, not the application's context: rounded to a low precision, a sum of many
    # tokens' prices read less than it is (an undercharge).
    with localcontext(WIDE):
        inp = info.input_cost_per_token or _ZERO
        out = info.output_cost_per_token or _ZERO
        read_rate = info.cache_read_cost_per_token
        write_rate = info.cache_write_cost_per_token
        reasoning_rate = info.reasoning_cost_per_token
        read = usage.cache_read_tokens if read_rate is not None else 0
        write = usage.cache_write_tokens if write_rate is not None else 0
        reasoning = usage.reasoning_tokens if reasoning_rate is not None else 0
        cost = Decimal(max(usage.input_tokens - read - write, 0)) * inp
        cost += Decimal(max(usage.output_tokens - reasoning, 0)) * out
        if read_rate is not None:
            cost += Decimal(read) * read_rate
        if write_rate is not None:
            cost += Decimal(write) * write_rate
        if reasoning_rate is not None:
            cost += Decimal(reasoning) * reasoning_rate
        return cost.quantize(QUANTUM)


def _litellm_usage(usage: Usage) -> Any:
    litellm = import_litellm()
    return litellm.Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details={
            "cached_tokens": usage.cache_read_tokens,
            "cache_creation_tokens": usage.cache_write_tokens,
            # litellm prices hour-long writes at their own rate when it is told how many.
            "cache_creation_token_details": {
                "ephemeral_5m_input_tokens": usage.cache_write_tokens - hour,
                "ephemeral_1h_input_tokens": hour,
            },
        }
        if (hour := min(usage.cache_write_1h_tokens, usage.cache_write_tokens))
        else {
            "cached_tokens": usage.cache_read_tokens,
            "cache_creation_tokens": usage.cache_write_tokens,
        },
        completion_tokens_details={"reasoning_tokens": usage.reasoning_tokens},
        cache_read_input_tokens=usage.cache_read_tokens,
        cache_creation_input_tokens=usage.cache_write_tokens,
    )


def cost_from_usage(usage: Usage, candidate: Candidate, *, service_tier: Any = None) -> CostResult:
    """The cost of ``usage`` on ``candidate``'s deployment, without a full response.

    For a stream cut midway (the usage seen so far) and for provider errors that billed the
    input. litellm-priced models go through ``litellm.cost_per_token`` so the figure matches
    what :func:`actual_cost` would say for a response carrying the same usage, hour-long
    Anthropic cache writes included. A policy price has a single cache-write rate, used for
    both lifetimes.

    Example:
        >>> cost_from_usage(Usage(input_tokens=1000), candidate).cost  # doctest: +SKIP
        Decimal('0.000150000')
    """
    info = candidate.info
    usage = sound_usage(usage, candidate.model)
    if info.price_source == "policy":
        return CostResult(_price_from_info(usage, info), "policy")
    if info.price_source == "none":
        return CostResult(_ZERO, "none")
    if usage.total_tokens == 0:
        return CostResult(_ZERO, "litellm")
    litellm = import_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=candidate.model,
            usage_object=_litellm_usage(usage),
            service_tier=service_tier if isinstance(service_tier, str) else None,
            **served_from(candidate.model, candidate.litellm_params),
        )
        total = float(prompt_cost) + float(completion_cost)
    except Exception as exc:  # litellm raises bare Exceptions for unmapped models
        _log.warning("litellm could not price %s (%s); using its listed prices", candidate, exc)
        return CostResult(_price_from_info(usage, info), "litellm")
    if not math.isfinite(total) or total < 0:
        # Counts that contradict each other (more cached than sent) can make litellm's
        # figure negative; the listed prices clamp each kind of token at zero.
        _log.warning(
            "litellm priced %s at %r for %s; using its listed prices", usage, total, candidate
        )
        return CostResult(_price_from_info(usage, info), "litellm")
    return CostResult(to_decimal(total), "litellm")


def actual_cost(
    response: Any,
    candidate: Candidate,
    *,
    use_attached: bool = False,
    usage: Usage | None = None,
    service_tier: Any = None,
) -> CostResult:
    """The exact cost of a response from ``candidate``'s deployment.

    For a litellm-priced model this is ``litellm.completion_cost(completion_response=response,
    model=candidate.model)``, nothing else, so receipts agree with litellm's own accounting.
    With ``use_attached``, the figure litellm attached to a response it returned from
    ``completion``/``acompletion`` (priced there with the same model) is read back instead of
    pricing the response a second time; pass it only for such responses, not for streams
    assembled afterwards, which litellm prices from the model name the provider echoed.

    A response whose usage holds an impossible count (see :func:`sound_usage`) is priced
    from its usage with those counts at 0 instead: litellm would price them as they are,
    below zero or at 10^24 dollars. ``usage``: the response's usage when the caller has
    already read it (saves reading it again). ``service_tier``: the tier the call asked for,
    which prices the answer when the answer does not name the tier that served it (as litellm
    prices the answers it returns; an assembled stream may not name it).

    Example:
        >>> actual_cost(response, candidate)  # doctest: +SKIP
        CostResult(cost=Decimal('0.000042500'), source='litellm')
    """
    info = candidate.info
    if info.price_source == "none":
        return CostResult(_ZERO, "none")
    if usage is None:
        raw = _usage_object(response)
        usage = Usage() if raw is None else _usage_from_object(raw)
    sound = sound_usage(usage, candidate.model)
    served = _get(response, "service_tier")
    tier = served if isinstance(served, str) else service_tier
    if info.price_source == "policy" or sound is not usage:
        return cost_from_usage(sound, candidate, service_tier=tier)
    known = _litellm_reported_cost(response) if use_attached else None
    if known is not None:
        return CostResult(known, "litellm")
    litellm = import_litellm()
    try:
        cost = float(
            litellm.completion_cost(
                completion_response=response,
                model=candidate.model,
                # litellm prices at the tier the answer names, else at the one asked for
                optional_params=(
                    {"service_tier": service_tier} if isinstance(service_tier, str) else None
                ),
                **served_from(candidate.model, candidate.litellm_params),
            )
        )
    except Exception as exc:  # e.g. a plain dict litellm cannot read; price the usage instead
        _log.debug("litellm.completion_cost failed for %s: %s", candidate, exc)
        return cost_from_usage(usage, candidate, service_tier=tier)
    if not math.isfinite(cost) or cost < 0:
        return cost_from_usage(usage, candidate, service_tier=tier)
    return CostResult(to_decimal(cost), "litellm")


def _litellm_reported_cost(response: Any) -> Decimal | None:
    """The cost litellm computed for ``response`` when it returned it, if it did.

    ``litellm.completion``/``acompletion`` price every answer before returning it (with
    ``completion_cost``, given the same model) and keep the figure in
    ``response._hidden_params["response_cost"]``; reading it back saves pricing the same
    response twice. Plain dicts and responses litellm could not price carry no usable figure
    and are priced by :func:`actual_cost` itself.
    """
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        return None
    cost = hidden.get("response_cost")
    if isinstance(cost, bool) or not isinstance(cost, int | float):
        return None
    if not math.isfinite(cost) or cost < 0:
        return None
    return to_decimal(float(cost))


# --------------------------------------------------------------------------- attempts


def attempt_cost(attempt: AttemptInfo, outcome: AttemptOutcome) -> tuple[Usage, CostResult]:
    """The usage and cost of an attempt, however it ended.

    - answered: :func:`actual_cost` of the response (exactly litellm's figure), its cost
      saying ``usage_estimated`` when the executor counted the answer's tokens locally
      (:func:`mark_usage_estimated`: a stream that ended without the provider's usage, or
      a response whose counts were impossible);
    - answered from litellm's response cache (``outcome.cache_hit``): 0, with no usage,
      however it ended: no provider was reached;
    - refused, or not billed by the provider (refused by it or unreachable): 0;
    - a billed failure: its input only;
    - cut or cancelled after the provider started: the usage seen so far, with tokens counted
      locally where the provider's usage never arrived (it comes in the last chunk); the
      cost then says ``usage_estimated``. The input so counted is the whole prompt as a budget
      estimate counts it: messages, tools, response schema, hidden tool prompts.

    Example:
        >>> attempt_cost(attempt, AttemptOutcome(status="error"))  # doctest: +SKIP
        (Usage(...), CostResult(cost=Decimal('0'), source='litellm'))
    """
    candidate = attempt.candidate
    if outcome.cache_hit:
        # The tokens stay on the answer the caller gets; the receipt and the budgets count
        # what providers billed, and none billed this.
        return Usage(), CostResult(_ZERO, candidate.info.price_source)
    response = outcome.response
    if outcome.status != "ok" or response is None:
        usage, estimated = charged_usage(attempt, outcome)
        if outcome.status == "refused" or not outcome.provider_billed:
            return usage, CostResult(_ZERO, candidate.info.price_source)
        # The provider's usage (which may name the tier served) never arrived: the tier asked
        # for.
        cost = cost_from_usage(usage, candidate, service_tier=attempt.params.get("service_tier"))
        return usage, dataclasses.replace(cost, usage_estimated=True) if estimated else cost
    # An answer's own usage is the most complete (cache writes included).
    unary = not attempt.params.get("stream")
    read_from_response = unary and outcome.usage is not None
    if read_from_response:
        usage = outcome.usage or Usage()  # read from this very response when it arrived
    else:
        usage = usage_from_response(response)
        if usage.total_tokens == 0 and outcome.usage is not None:
            usage = outcome.usage
    # A unary answer is priced by litellm before it is returned; a stream is assembled here.
    cost = actual_cost(
        response,
        candidate,
        use_attached=unary,
        usage=usage if read_from_response else None,
        service_tier=attempt.params.get("service_tier"),
    )
    if usage_estimated(response):
        cost = dataclasses.replace(cost, usage_estimated=True)
    return sound_usage(usage, candidate.model), cost


def charged_usage(attempt: AttemptInfo, outcome: AttemptOutcome) -> tuple[Usage, bool]:
    """The usage an attempt that did not answer (failed, cut, cancelled, refused) is charged,
    and whether some of it was counted locally: what :func:`attempt_cost` prices.

    The executor's usage is what the provider reported before the end. A billed attempt whose
    provider never reported its input, or a cut stream's output, has them counted here; a
    billed failure is charged its input only.
    """
    response = outcome.response
    reported = outcome.usage if outcome.usage is not None else Usage()
    # The partial answer of a broken stream is assembled by litellm, which counts its tokens
    # when no usage chunk came.
    usage = usage_from_response(response) if response is not None else Usage()
    estimated = False
    if reported.total_tokens or usage.total_tokens == 0:
        if not reported.output_tokens and usage.output_tokens:
            # The provider reported its input when the stream began (Anthropic's
            # message_start) and the output never: the partial answer counts what arrived.
            reported = dataclasses.replace(
                reported,
                output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
            estimated = True
        usage = reported
    else:
        estimated = True
    model = attempt.candidate.model
    usage = sound_usage(usage, model)
    if outcome.status == "refused" or not outcome.provider_billed:
        return usage, estimated
    partial = getattr(outcome.error, "partial_text", "")
    if usage.input_tokens == 0 or (usage.output_tokens == 0 and partial):
        # The usage chunk comes last, so a stream cut midway reported none: count what
        # was sent and what arrived (the partial text) as the provider would bill it.
        estimated = True
        usage = Usage(
            input_tokens=usage.input_tokens or _input_counted(attempt),
            output_tokens=usage.output_tokens
            or (count_locally(model, text=partial) if partial else 0),
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
        )
    if outcome.status == "error":
        # A billed failure is charged for its input only; nothing useful came back.
        usage = Usage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
        )
    return usage, estimated


def _input_counted(attempt: AttemptInfo) -> int:
    # The messages alone leave out what a provider bills as input besides them: the tools,
    # the response schema, Anthropic's tool prompt. The budget's estimate counts all of it.
    from policyroute.costs.estimate import worst_case

    try:
        request, candidate = attempt.call.request, attempt.candidate
        return worst_case(request, candidate, attempt.params, default_max_tokens=None).input_tokens
    except Exception:
        _log.debug("could not count the prompt for %s", attempt.candidate, exc_info=True)
        return count_locally(attempt.candidate.model, messages=list(attempt.call.request.messages))


def count_locally(model: str, **what: Any) -> int:
    """Tokens counted locally (``messages=`` as budget estimates count them, audio and video
    included; ``text=`` by litellm); 0 if they cannot be."""
    try:
        if "messages" in what:
            from policyroute.costs.estimate import count_input_tokens

            return count_input_tokens(model, what["messages"], None)
        return int(import_litellm().token_counter(model=model, **what))
    except Exception:
        _log.debug("could not count tokens for %s", model, exc_info=True)
        return 0
