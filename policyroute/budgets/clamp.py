"""The arithmetic of ``clamp_max_tokens``: how much output a budget's remaining money buys.

Example:
    >>> est = Estimate(100, 900, Decimal("0.001"), True, input_rate=Decimal("1e-6"),
    ...                output_rate=Decimal("1e-6"))
    >>> max_tokens_within(est, Decimal("0.0006"))
    499
    >>> thinking_within({"type": "enabled", "budget_tokens": 2048}, 1500)
    {'type': 'enabled', 'budget_tokens': 1499}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any, Literal

from policyroute._lazy import import_litellm
from policyroute._money import EXACT
from policyroute._thinking import anthropic_format, provider_and_name
from policyroute.costs.estimate import Estimate
from policyroute.policy.model import ModelSpec

__all__ = [
    "MIN_THINKING_BUDGET",
    "clamped_cost",
    "effort_thinking",
    "max_tokens_within",
    "thinking_within",
]

MIN_THINKING_BUDGET = 1024
"""Anthropic's smallest extended-thinking ``budget_tokens``."""

_ONE_NANO = Decimal("1e-9")
# The clamp's arithmetic runs in EXACT, not the thread's context: rounded to an application's
# low ``getcontext().prec``, the room left read more than it is, and the clamped call was
# refused by the store instead of fitting.


def max_tokens_within(estimate: Estimate, money: Decimal) -> int | None:
    """The largest max_tokens whose worst case costs at most ``money``; None if none does."""
    with localcontext(EXACT):
        # One nano-dollar of slack: stores round charges up to whole nano-dollars.
        fixed = estimate.input_tokens * estimate.input_rate + estimate.server_tool_cost
        room = money / estimate.n - fixed - _ONE_NANO
        if room < 0:
            return None
        if estimate.output_rate <= 0:
            return estimate.output_tokens
        return min(estimate.output_tokens, math.floor(room / estimate.output_rate))


def clamped_cost(estimate: Estimate, max_tokens: int) -> Decimal:
    """The worst case of ``estimate`` with its output capped at ``max_tokens``, exact.

    Example:
        >>> est = Estimate(0, 2_000_000, Decimal(2), True, output_rate=Decimal("1e-6"))
        >>> clamped_cost(est, 1_234_567)
        Decimal('1.234567')
    """
    with localcontext(EXACT):
        return estimate.cost_with_output(max_tokens)


def effort_thinking(spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The extended thinking litellm makes of the call's ``reasoning_effort`` for an
    Anthropic-format deployment, when the call does not give ``thinking`` itself.

    litellm turns ``reasoning_effort: high`` into ``thinking.budget_tokens`` 4096 on Claude,
    whatever ``max_tokens`` is: a clamp below that budget needs the thinking written out,
    lowered with :func:`thinking_within`, in place of the effort. ``None`` when the call sets
    no effort, gives ``thinking``, or the deployment is not Anthropic's format; an effort
    litellm cannot map is left for litellm to refuse.
    """
    effort = params.get("reasoning_effort")
    if isinstance(effort, Mapping):  # litellm also takes {"effort": "high", "summary": ...}
        effort = effort.get("effort")
    if not isinstance(effort, str) or params.get("thinking") is not None:
        return None
    if not anthropic_format(spec):
        return None
    provider, name = provider_and_name(spec)
    try:
        mapped = import_litellm().AnthropicConfig.map_reasoning_effort(
            effort, model=name, custom_llm_provider=provider
        )
    except Exception:
        return None
    return dict(mapped) if isinstance(mapped, Mapping) else None


def thinking_within(thinking: Any, max_tokens: int) -> dict[str, Any] | Literal[False] | None:
    """Extended thinking fitted under a clamped ``max_tokens``.

    Anthropic refuses a ``thinking.budget_tokens`` that is not below ``max_tokens`` (or is
    under :data:`MIN_THINKING_BUDGET`), so a clamp that left it above would send a call bound
    to fail. Returns the lowered ``thinking``, ``None`` when it needs no change, or ``False``
    when no thinking budget fits.
    """
    if not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return None
    budget_tokens = thinking.get("budget_tokens")
    if not isinstance(budget_tokens, int) or budget_tokens < max_tokens:
        return None
    if max_tokens - 1 < MIN_THINKING_BUDGET:
        return False
    return {**thinking, "budget_tokens": max_tokens - 1}
