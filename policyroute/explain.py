"""Explain a routing decision: which route, which deployments, at what worst-case cost, and why.

:func:`explain` routes one request through a compiled policy and gathers everything a person
debugging a policy wants to see into an :class:`Explanation`; :func:`render_text` (from
:mod:`policyroute.explain_text`, importable from here too) prints it and
:meth:`Explanation.as_dict` gives it to JSON. ``policyroute explain`` is a thin wrapper.

Example:
    >>> policy = load_policy("policies/tiered.yaml")  # doctest: +SKIP
    >>> ex = explain(policy, {"messages": "hi", "metadata": {"risk": "low"}})  # doctest: +SKIP
    >>> ex.route, [c.alias for c in ex.candidates]  # doctest: +SKIP
    ('fast', ['local', 'mini'])
    >>> print(render_text(ex))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from policyroute.budgets.windows import MISSING_SCOPE, scope_values
from policyroute.costs.redact import redact_params
from policyroute.explain_text import TextStyle, decimal_text, render_text
from policyroute.policy.facts import TokenCounter, request_from_mapping
from policyroute.policytest_.draws import groups_reached
from policyroute.request import Request
from policyroute.request_checks import check_params

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.model import BudgetSpec, PolicySpec, Requirements, UnsetVariable
    from policyroute.routing.decision import Candidate, Decision

__all__ = [
    "FORMAT_VERSION",
    "BudgetLine",
    "CandidateLine",
    "Explanation",
    "TextStyle",
    "explain",
    "render_text",
]

FORMAT_VERSION = 1
"""The layout of :meth:`Explanation.as_dict` (``format_version`` in it): raised when a field is
removed, renamed or changes meaning, not when one is added (docs/cli-json.md)."""

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class CandidateLine:
    """One candidate deployment, in the order it would be tried.

    Prices are USD per million tokens (``None`` when unknown); ``worst_case_cost`` is the most
    the call could cost on this deployment: counted input tokens plus ``output_tokens`` (the
    call's max_tokens, else the policy default, else the model's output limit). It is ``None``
    when that cannot be known, and ``missing`` says why: ``"price"`` (the model has none),
    ``"output_bound"`` (nothing bounds the output; ``output_tokens`` is then 0),
    ``"server_tools"`` (the request offers server-side tools and the model gives no
    ``max_server_tool_cost_usd``), or several. ``server_tools`` names the server-side tools
    the request offers, and ``server_tool_cost`` is what the worst case adds for them per
    choice (``None`` when it offers none or their bound is unknown).

    ``unset_env`` lists where the model's ``api_base`` or ``api_key`` reads a variable that
    was not set when the policy loaded (``field`` and ``variable``): the call still
    routes to the deployment, but every attempt on it fails as ``authentication`` before
    anything is sent (:attr:`~policyroute.policy.model.ModelSpec.unset_env`).
    """

    alias: str
    model: str
    via: str | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    price_source: str
    context_window: int | None
    input_tokens: int
    output_tokens: int
    worst_case_cost: Decimal | None
    missing: tuple[str, ...] = ()
    server_tools: tuple[str, ...] = ()
    server_tool_cost: Decimal | None = None
    unset_env: tuple[UnsetVariable, ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """A budget line the request is charged to: the budget and the scope value of the line.

    A ``per: tags`` budget charges one line per distinct tag, so it gives one BudgetLine each.
    """

    name: str
    limit_usd: Decimal
    window: str
    per: str | None
    scope: str | None
    warn_at: tuple[float, ...]
    on_exceed: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything :func:`explain` found out about one request."""

    policy: str
    route: str
    route_description: str | None
    candidates: tuple[CandidateLine, ...]
    params: Mapping[str, Any]
    requirements: Mapping[str, Any]
    budgets: tuple[BudgetLine, ...]
    skipped: tuple[tuple[str, str], ...]
    trace: tuple[str, ...]
    order_notes: tuple[str, ...] = ()
    """Why a call may try the candidates in another order than shown (random draws, latency,
    calls in flight, open circuits), which an offline explanation cannot know."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; money is given as decimal strings so nothing is rounded."""
        return {
            "format_version": FORMAT_VERSION,
            "policy": self.policy,
            "route": self.route,
            "route_description": self.route_description,
            "candidates": [
                {
                    "alias": c.alias,
                    "model": c.model,
                    "via": c.via,
                    "input_per_mtok": decimal_text(c.input_per_mtok),
                    "output_per_mtok": decimal_text(c.output_per_mtok),
                    "price_source": c.price_source,
                    "context_window": c.context_window,
                    "worst_case": {
                        "input_tokens": c.input_tokens,
                        "output_tokens": c.output_tokens,
                        "cost_usd": decimal_text(c.worst_case_cost),
                        "missing": list(c.missing),
                        "server_tools": list(c.server_tools),
                        "server_tool_cost_usd": decimal_text(c.server_tool_cost),
                    },
                    "refused_at_call_time": (
                        {
                            "error_class": "authentication",
                            "unset": [
                                {"field": u.field, "variable": u.variable} for u in c.unset_env
                            ],
                        }
                        if c.unset_env
                        else None
                    ),
                }
                for c in self.candidates
            ],
            "params": dict(self.params),
            "requirements": dict(self.requirements),
            "budgets": [
                {
                    "name": b.name,
                    "limit_usd": decimal_text(b.limit_usd),
                    "window": b.window,
                    "per": b.per,
                    "scope": b.scope,
                    "warn_at": list(b.warn_at),
                    "on_exceed": b.on_exceed,
                }
                for b in self.budgets
            ],
            "skipped": [{"alias": alias, "reason": reason} for alias, reason in self.skipped],
            "order_notes": list(self.order_notes),
            "trace": list(self.trace),
        }


def _per_mtok(per_token: Decimal | None) -> Decimal | None:
    return None if per_token is None else per_token * _MILLION


def _requirements_dict(req: Requirements) -> dict[str, Any]:
    fields = ("tools", "vision", "json_schema", "reasoning", "min_context_window")
    return {f: getattr(req, f) for f in fields if getattr(req, f) is not None}


def _on_exceed(budget: BudgetSpec) -> str:
    action = budget.on_exceed
    if action.action == "downgrade":
        return f"downgrade to {action.target}"
    if action.action == "clamp_max_tokens":
        return f"clamp max_tokens (min {action.min_tokens})"
    return "block"


def _scopes(budget: BudgetSpec, request: Request, decision: Decision) -> tuple[str | None, ...]:
    """The scope values the budget guard charges this request to (``None``: one global line, or
    the fact is absent), worked out by the guard's own function so the two never disagree: a
    ``per: tags`` budget charges one line per distinct tag, and a value that is not a string is
    written as JSON (``true``, not ``True``).
    """
    if budget.per is None:
        return (None,)
    model = decision.candidates[0].alias if decision.candidates else ""
    values = scope_values(budget.per, request, route=decision.route, model=model)
    return tuple(None if v == MISSING_SCOPE else v for v in values)


_RUN_TIME_ORDER = {
    "weighted": "is drawn at random by weight on every call: the order shown is one draw",
    "fastest": "is ordered by measured latency at run time (none offline: the order listed)",
    "least_busy": "is ordered by calls in flight at run time (none offline: the order listed)",
}


def _order_notes(spec: PolicySpec, route: str, candidates: int) -> tuple[str, ...]:
    """What may change the order of the candidates from call to call."""
    route_spec = next((r for r in spec.routes if r.name == route), None)
    if route_spec is None:
        return ()
    notes = [
        f"group {g.name!r} ({g.strategy}) {_RUN_TIME_ORDER[g.strategy]}"
        for g in groups_reached(route_spec.to.names, spec.groups)
        if g.strategy in _RUN_TIME_ORDER and len(g.models) > 1
    ]
    if candidates > 1:
        notes.append("a deployment whose circuit is open at run time is tried last")
    return tuple(notes)


def _candidate_line(
    candidate: Candidate,
    request: Request,
    params: Mapping[str, Any],
    *,
    default_max_tokens: int | None,
    token_counter: TokenCounter | None,
) -> CandidateLine:
    from policyroute.costs.estimate import worst_case

    counter: Callable[..., int] | None = None
    if token_counter is not None:
        # worst_case calls litellm's keyword signature; a caller's counter sees the request.
        def counter(**_: Any) -> int:
            return token_counter(request)

    # merged as the executor merges them: deployment < call < route (a model's own
    # max_tokens bounds its output as much as the call's)
    params = {**candidate.spec.params, **candidate.litellm_params, **params}
    estimate = worst_case(
        request,
        candidate,
        params,
        default_max_tokens=default_max_tokens,
        token_counter=counter,
    )
    info = candidate.info
    return CandidateLine(
        alias=candidate.alias,
        model=candidate.model,
        via=candidate.via,
        input_per_mtok=_per_mtok(info.input_cost_per_token),
        output_per_mtok=_per_mtok(info.output_cost_per_token),
        price_source=info.price_source,
        context_window=info.max_input_tokens,
        input_tokens=estimate.input_tokens,
        output_tokens=estimate.output_tokens,
        worst_case_cost=estimate.cost if estimate.priced else None,
        missing=estimate.missing,
        server_tools=estimate.server_tools,
        server_tool_cost=(
            estimate.server_tool_cost
            if estimate.server_tools and "server_tools" not in estimate.missing
            else None
        ),
        unset_env=candidate.spec.unset_env,
    )


def explain(
    policy: CompiledPolicy,
    request: Request | Mapping[str, Any],
    *,
    token_counter: TokenCounter | None = None,
) -> Explanation:
    """Route ``request`` through ``policy`` and explain the decision.

    ``request`` is a :class:`~policyroute.request.Request` or a mapping as in policy test
    files. ``token_counter`` counts input tokens for both routing and the cost estimates;
    without it litellm's counter is used, with each candidate's own tokenizer for its estimate.
    Raises :class:`~policyroute.errors.RequestError` for a malformed request and
    :class:`~policyroute.errors.RoutingError` when the policy has no answer.
    """
    req = request if isinstance(request, Request) else request_from_mapping(request)
    # The cost estimate would read a malformed output limit as no limit at all.
    check_params(req.params)
    decision = policy.route(req, token_counter=token_counter, trace=True)
    spec = policy.spec
    route_spec = next((r for r in spec.routes if r.name == decision.route), None)
    params = {**req.params, **decision.params}
    candidates = tuple(
        _candidate_line(
            c, req, params, default_max_tokens=spec.defaults.max_tokens, token_counter=token_counter
        )
        for c in decision.candidates
    )
    budgets = tuple(
        BudgetLine(
            name=b.name,
            limit_usd=b.limit_usd,
            window=b.window.describe(),
            per=b.per,
            scope=scope,
            warn_at=b.warn_at,
            on_exceed=_on_exceed(b),
        )
        for b in decision.budgets
        for scope in _scopes(b, req, decision)
    )
    return Explanation(
        policy=spec.name,
        route=decision.route,
        route_description=route_spec.description if route_spec else None,
        candidates=candidates,
        # Printed to terminals and CI logs: a literal credential header is shown redacted.
        params=redact_params(decision.params),
        requirements=_requirements_dict(decision.requirements),
        budgets=budgets,
        skipped=decision.skipped,
        trace=decision.trace,
        order_notes=_order_notes(spec, decision.route, len(candidates)),
    )
