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
from decimal import Decimal
from typing import Any, Literal

from policyroute.costs.estimate import Estimate

__all__ = ["MIN_THINKING_BUDGET", "max_tokens_within", "thinking_within"]

MIN_THINKING_BUDGET = 1024
"""Anthropic's smallest extended-thinking ``budget_tokens``."""

_ONE_NANO = Decimal("1e-9")


def max_tokens_within(estimate: Estimate, money: Decimal) -> int | None:
    """The largest max_tokens whose worst case costs at most ``money``; None if none does."""
    # One nano-dollar of slack: stores round charges up to whole nano-dollars.
    room = money / estimate.n - estimate.input_tokens * estimate.input_rate - _ONE_NANO
    if room < 0:
        return None
    if estimate.output_rate <= 0:
        return estimate.output_tokens
    return min(estimate.output_tokens, math.floor(room / estimate.output_rate))


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
