"""The worst-case cost of one attempt, before it is sent.

Budgets are enforced against this bound, so every choice here errs high: input tokens are
counted with litellm's tokenizer for the model, output is bounded by ``max_tokens`` (else the
policy default, else the model's output limit), input is priced at the highest tier (and at the
cache-write price when the prompt asks for caching, which costs more than plain input on
Anthropic), output at the higher of the output and reasoning rates, and the whole is multiplied
by ``n``.

Example:
    >>> est = worst_case(request, candidate, {"max_tokens": 100}, default_max_tokens=None)
    ... # doctest: +SKIP
    >>> est.cost  # doctest: +SKIP
    Decimal('0.0000615')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from policyroute._lazy import import_litellm
from policyroute.costs.pricing import lookup_litellm_entry
from policyroute.request import Request
from policyroute.routing.decision import Candidate

__all__ = ["Estimate", "count_input_tokens", "has_cache_control", "output_bound", "worst_case"]

FALLBACK_TOKENIZER_MODEL = "gpt-4o"
"""Tokenizer used for models litellm does not know; close enough for a bound with headroom."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A worst-case bound on one attempt's cost.

    Attributes:
        input_tokens: prompt tokens (messages and tools), counted once.
        output_tokens: the output bound per choice.
        cost: USD for all ``n`` choices at the worst rates; zero when ``priced`` is false.
        priced: false when the model has no known price (or output cannot be bounded).
        n: choices requested.
        input_rate / output_rate: the per-token USD rates used.
        problem: why the attempt could not be priced, when ``priced`` is false.
    """

    input_tokens: int
    output_tokens: int
    cost: Decimal
    priced: bool
    n: int = 1
    input_rate: Decimal = Decimal(0)
    output_rate: Decimal = Decimal(0)
    problem: str | None = None

    def cost_with_output(self, output_tokens: int) -> Decimal:
        """The bound if output were capped at ``output_tokens`` (for clamping max_tokens)."""
        return (self.input_tokens * self.input_rate + output_tokens * self.output_rate) * self.n


def has_cache_control(messages: Sequence[Mapping[str, Any]], tools: Any = None) -> bool:
    """Whether any message, content block or tool carries an Anthropic ``cache_control``."""
    items: list[Any] = list(messages) + list(tools or [])
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "cache_control" in item:
            return True
        content = item.get("content")
        if isinstance(content, list) and any(
            isinstance(block, Mapping) and "cache_control" in block for block in content
        ):
            return True
    return False


def count_input_tokens(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    token_counter: Callable[..., int] | None = None,
) -> int:
    """Prompt tokens of messages plus tools, with litellm's counter for ``model``.

    Images count as litellm's default image size: measuring them would fetch their URLs.
    """
    counter = token_counter or import_litellm().token_counter
    known = lookup_litellm_entry(model) is not None
    kwargs: dict[str, Any] = {"messages": list(messages), "use_default_image_token_count": True}
    if tools:
        kwargs["tools"] = list(tools)
    if known:
        try:
            return int(counter(model=model, **kwargs))
        except Exception:
            # A tokenizer litellm lists but cannot load (e.g. a gated Hugging Face one).
            pass
    return int(counter(model=FALLBACK_TOKENIZER_MODEL, **kwargs))


def output_bound(
    params: Mapping[str, Any], candidate: Candidate, default_max_tokens: int | None
) -> int | None:
    """The most output tokens one choice can produce, or ``None`` if nothing bounds it."""
    for key in ("max_tokens", "max_completion_tokens"):
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    if default_max_tokens is not None:
        return default_max_tokens
    return candidate.info.max_output_tokens


def worst_case(
    request: Request,
    candidate: Candidate,
    params: Mapping[str, Any],
    *,
    default_max_tokens: int | None,
    token_counter: Callable[..., int] | None = None,
) -> Estimate:
    """The most this attempt can cost.

    ``params`` are the attempt's merged litellm params (``max_tokens``, ``n``, ...).
    ``token_counter`` replaces ``litellm.token_counter`` (same keyword arguments).

    Example:
        >>> worst_case(request, candidate, {"max_tokens": 10}, default_max_tokens=None)
        ... # doctest: +SKIP
        Estimate(input_tokens=9, output_tokens=10, cost=Decimal('0.00000735'), priced=True, ...)
    """
    info = candidate.info
    raw_n = params.get("n", 1)
    n = raw_n if isinstance(raw_n, int) and not isinstance(raw_n, bool) and raw_n > 0 else 1
    tools = request.tools if request.tools is not None else params.get("tools")
    input_tokens = count_input_tokens(candidate.model, request.messages, tools, token_counter)
    output_tokens = output_bound(params, candidate, default_max_tokens)
    if not info.priced:
        return Estimate(
            input_tokens,
            output_tokens or 0,
            Decimal(0),
            priced=False,
            n=n,
            problem=f"model '{candidate.alias}' ({candidate.model}) has no known price",
        )
    if output_tokens is None:
        return Estimate(
            input_tokens,
            0,
            Decimal(0),
            priced=False,
            n=n,
            problem=f"the output of '{candidate.alias}' is unbounded: no max_tokens and no"
            " known output limit",
        )
    input_rates = [info.input_cost_per_token_max, info.input_cost_per_token]
    if has_cache_control(request.messages, tools):
        input_rates.append(info.cache_write_cost_per_token)
    output_rates = [
        info.output_cost_per_token_max,
        info.output_cost_per_token,
        info.reasoning_cost_per_token,
    ]
    input_rate = max(r for r in input_rates if r is not None)
    output_rate = max(r for r in output_rates if r is not None)
    cost = (input_tokens * input_rate + output_tokens * output_rate) * n
    return Estimate(
        input_tokens,
        output_tokens,
        cost,
        priced=True,
        n=n,
        input_rate=input_rate,
        output_rate=output_rate,
    )
