"""Per-call tallies: the running totals of one call's attempts, for its call receipt.

Each attempt that settles adds its usage, its cost and the deployment it went to (with the
model and provider it resolved to) to its call's tally; the call receipt is built from it
when the call finishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from policyroute.execution.hooks import Usage

__all__ = ["CallTally"]


@dataclass(slots=True)
class CallTally:
    """Running totals of one call's attempts, for its call receipt."""

    cost: Decimal = Decimal(0)
    usage: Usage = field(default_factory=Usage)
    deployments: dict[str, tuple[str, str]] = field(default_factory=dict)  # alias: model, provider
    usage_estimated: bool = False

    def add(
        self,
        usage: Usage,
        cost: Decimal,
        alias: str,
        model: str,
        provider: str,
        *,
        estimated: bool = False,
    ) -> None:
        """Add one attempt: its usage, its cost, and the deployment (``alias``) it went to."""
        self.cost += cost
        self.usage_estimated = self.usage_estimated or estimated
        # Field by field: ``dataclasses.astuple`` deep-copies every value (tens of us a call).
        total = self.usage
        self.usage = Usage(
            input_tokens=total.input_tokens + usage.input_tokens,
            output_tokens=total.output_tokens + usage.output_tokens,
            cache_read_tokens=total.cache_read_tokens + usage.cache_read_tokens,
            cache_write_tokens=total.cache_write_tokens + usage.cache_write_tokens,
            reasoning_tokens=total.reasoning_tokens + usage.reasoning_tokens,
            cache_write_1h_tokens=total.cache_write_1h_tokens + usage.cache_write_1h_tokens,
        )
        self.deployments[alias] = (model, provider)
