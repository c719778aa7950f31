"""What ``policyroute explain`` says about each member of a group it ordered.

One note per member, by the group's strategy: ``cheapest`` its prices, ``weighted`` its
weight, ``fastest`` the figure it was ranked by (and what it is the time to when not a whole
answer of the typical length), ``least_busy`` its calls in flight.

Example:
    >>> format_price(Decimal("0.00000015"))
    '$0.15'
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from policyroute.policy.model import Strategy
from policyroute.routing.decision import DeploymentStats
from policyroute.routing.output_bound import OutputBound
from policyroute.routing.stats import DeploymentStatsTracker
from policyroute.routing.strategies import ranking_latency

if TYPE_CHECKING:
    from policyroute.routing.candidates import Entry

__all__ = ["format_price", "order_note"]

_MILLION: Final = Decimal(1_000_000)


def format_price(per_token: Decimal | None) -> str:
    """A per-token price as dollars per million tokens (``$0.15``, ``$0.60``, ``$0.075``)."""
    if per_token is None:
        return "?"
    per_mtok = (per_token * _MILLION).normalize()
    # Formatting rounds in the value's own precision; quantize() would need the context's
    # 28 digits and raise on a price the schema allows, such as 1e30 per Mtok.
    cents = f"{per_mtok:.2f}"
    return f"${cents}" if Decimal(cents) == per_mtok else f"${per_mtok:f}"


def order_note(
    strategy: Strategy,
    entry: Entry,
    stats: DeploymentStats | None,
    stream: bool,
    bound: OutputBound | None = None,
) -> str:
    """How ``entry`` stands in its group's ``strategy`` (what ``explain`` prints per member):
    its price, weight, latency or load. ``bound`` gives each deployment's output limit for
    an unstreamed request (see :func:`~policyroute.routing.strategies.ranking_latency`).

    Example:
        >>> order_note("weighted", entry, None, False)  # doctest: +SKIP
        'mini weight 3'
    """
    if strategy == "cheapest":
        info = entry.candidate.info
        if not info.priced:
            return f"{entry.alias} unpriced"
        return (
            f"{entry.alias} {format_price(info.input_cost_per_token)}/"
            f"{format_price(info.output_cost_per_token)} per Mtok"
        )
    if strategy == "weighted":
        return f"{entry.alias} weight {entry.weight:g}"
    if strategy == "fastest":
        seconds = None if stats is None else ranking_latency(stats, stream, bound)(entry.alias)
        if seconds is None:
            return f"{entry.alias} no data"
        if math.isinf(seconds):
            return f"{entry.alias} failing"
        return f"{entry.alias} {seconds * 1000:.0f}ms{_compared_at(entry, stats, stream, bound)}"
    if strategy == "least_busy":
        busy = 0 if stats is None else stats.in_flight(entry.alias)
        return f"{entry.alias} {busy} in flight"
    return entry.alias


def _compared_at(
    entry: Entry, stats: DeploymentStats | None, stream: bool, bound: OutputBound | None
) -> str:
    """What a fastest note's figure is the time to, when not a whole answer of typical length
    (only a tracker says which length it compared at)."""
    if stream:
        return " to first token"
    limit = None if bound is None else bound(entry.alias)
    if (
        limit is not None
        and isinstance(stats, DeploymentStatsTracker)
        and limit < stats.typical_output_tokens
    ):
        return f" at {limit} output tokens (output limit)"
    return ""
