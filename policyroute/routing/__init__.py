"""Routing: the decision for one request, group strategies and deployment statistics.

The router itself is :class:`policyroute.policy.compile.CompiledPolicy`; this package holds
what it produces (:class:`Decision`, :class:`Candidate`) and what it consults at run time
(:class:`DeploymentStats`, implemented by :class:`DeploymentStatsTracker`).

Example:
    >>> from policyroute.routing import DeploymentStatsTracker
    >>> DeploymentStatsTracker().is_available("mini")
    True
"""

from __future__ import annotations

from policyroute.routing.decision import Candidate, Decision, DeploymentStats
from policyroute.routing.stats import DeploymentStatsTracker
from policyroute.routing.strategies import (
    STRATEGIES,
    order_cheapest,
    order_fastest,
    order_least_busy,
    order_members,
    order_weighted,
)

__all__ = [
    "STRATEGIES",
    "Candidate",
    "Decision",
    "DeploymentStats",
    "DeploymentStatsTracker",
    "order_cheapest",
    "order_fastest",
    "order_least_busy",
    "order_members",
    "order_weighted",
]
