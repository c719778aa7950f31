"""What routing decides for one request.

Example:
    >>> decision.route, [c.alias for c in decision.candidates]  # doctest: +SKIP
    ('code', ['sonnet', 'mini'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from policyroute.costs.redact import redact_params
from policyroute.policy.model import BudgetSpec, ModelInfo, ModelSpec, Requirements

__all__ = ["Candidate", "Decision", "DeploymentStats"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment to try, in order.

    ``litellm_params`` are the keyword arguments that select and reach the deployment
    (``model``, ``api_base``, ``api_key``, ``api_version``, ``timeout``); the call's own
    parameters are merged in by the executor. ``repr`` never shows the key.
    """

    alias: str
    spec: ModelSpec
    info: ModelInfo
    litellm_params: Mapping[str, Any]
    via: str | None = None  # the group it came from, if any

    @property
    def model(self) -> str:
        """The litellm model string."""
        return self.spec.model

    def __repr__(self) -> str:
        return f"Candidate(alias={self.alias!r}, model={self.spec.model!r}, via={self.via!r})"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :meth:`CompiledPolicy.route`.

    Attributes:
        route: name of the matched route.
        candidates: deployments to try, left to right.
        params: parameter overrides from the route (merged over the call's own).
        budgets: budgets in scope for this request.
        requirements: capabilities the candidates had to have.
        trace: human-readable lines saying why (``policyroute explain`` prints them).
        skipped: aliases dropped, with the reason (capability, circuit open, ...).
    """

    route: str
    candidates: tuple[Candidate, ...]
    params: Mapping[str, Any]
    budgets: tuple[BudgetSpec, ...]
    requirements: Requirements
    trace: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        # The route's ``params`` may carry a credential header: shown redacted.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["params"] = redact_params(self.params)
        return f"Decision({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


class DeploymentStats(Protocol):
    """Runtime observations the ``fastest`` and ``least_busy`` strategies read."""

    def latency(self, alias: str) -> float | None:
        """Observed latency of the deployment in seconds (e.g. an EWMA), if any."""

    def in_flight(self, alias: str) -> int:
        """Calls currently in flight on the deployment."""

    def is_available(self, alias: str) -> bool:
        """False while the deployment's circuit breaker is open."""
