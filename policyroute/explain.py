"""Explain a routing decision: which route, which deployments, at what worst-case cost, and why.

:func:`explain` routes one request through a compiled policy and gathers everything a person
debugging a policy wants to see into an :class:`Explanation`; :func:`render_text` prints it and
:meth:`Explanation.as_dict` gives it to JSON. ``policyroute explain`` is a thin wrapper.

Example:
    >>> policy = load_policy("policies/tiered.yaml")  # doctest: +SKIP
    >>> ex = explain(policy, {"messages": "hi", "metadata": {"risk": "low"}})  # doctest: +SKIP
    >>> ex.route, [c.alias for c in ex.candidates]  # doctest: +SKIP
    ('fast', ['local', 'mini'])
    >>> print(render_text(ex))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from policyroute._display_width import display_width, pad, printable
from policyroute.budgets.windows import MISSING_SCOPE, scope_values
from policyroute.costs.redact import redact_params
from policyroute.policy.facts import TokenCounter, request_from_mapping
from policyroute.policytest_.draws import groups_reached
from policyroute.request import Request
from policyroute.request_checks import check_params

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.model import BudgetSpec, PolicySpec, Requirements
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

    ``unset_env`` lists ``(field, variable)`` pairs where the model's ``api_base`` or
    ``api_key`` reads a variable that was not set when the policy loaded: the call still
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
    unset_env: tuple[tuple[str, str], ...] = ()


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
                    "input_per_mtok": _dec_str(c.input_per_mtok),
                    "output_per_mtok": _dec_str(c.output_per_mtok),
                    "price_source": c.price_source,
                    "context_window": c.context_window,
                    "worst_case": {
                        "input_tokens": c.input_tokens,
                        "output_tokens": c.output_tokens,
                        "cost_usd": _dec_str(c.worst_case_cost),
                        "missing": list(c.missing),
                        "server_tools": list(c.server_tools),
                        "server_tool_cost_usd": _dec_str(c.server_tool_cost),
                    },
                    "refused_at_call_time": (
                        {
                            "error_class": "authentication",
                            "unset": [{"field": f, "variable": v} for f, v in c.unset_env],
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
                    "limit_usd": _dec_str(b.limit_usd),
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


def _dec_str(value: Decimal | None) -> str | None:
    if value is None:
        return None
    # normalize() drops trailing zeros; "f" keeps 1E-7 from turning into scientific notation
    return format(value.normalize(), "f")


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


def _unset_env(reads: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``("api_key: ${KEY}",)`` (as :attr:`ModelSpec.unset_env` gives them) ->
    ``(("api_key", "KEY"),)``."""
    pairs = []
    for read in reads:
        field, _, ref = read.partition(": ")
        pairs.append((field, ref.removeprefix("${").removesuffix("}")))
    return tuple(pairs)


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
        unset_env=_unset_env(candidate.spec.unset_env),
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


# --------------------------------------------------------------------------- text


def _usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${_dec_str(value)}"


def _worst_case(c: CandidateLine) -> str:
    """The worst-case cell: the cost, else what keeps it from being known."""
    if c.worst_case_cost is not None:
        if c.server_tool_cost is not None:
            return f"{_usd(c.worst_case_cost)} (incl. {_usd(c.server_tool_cost)} server tools)"
        return _usd(c.worst_case_cost)
    labels = {
        "price": "unpriced",
        "output_bound": "output unbounded",
        "server_tools": "server tools unbounded",
    }
    return ", ".join(labels.get(m, m) for m in c.missing) or "unpriced"


def _refusal(c: CandidateLine) -> str:
    """Why a call would send ``c`` nothing: the variables its endpoint or key reads."""
    reads = " and ".join(f"{field} reads ${{{var}}}" for field, var in c.unset_env)
    which = "which is" if len(c.unset_env) == 1 else "which are"
    return (
        f"{c.alias} would be refused at call time: {reads}, {which} not set"
        " (every attempt on it fails as authentication, nothing sent)"
    )


def _tokens(c: CandidateLine) -> str:
    output = "?" if "output_bound" in c.missing else str(c.output_tokens)
    return f"{c.input_tokens}+{output}"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows aligned in columns, each cell made printable and measured in terminal columns
    (a CJK character takes two)."""
    cells = [[printable(cell) for cell in row] for row in rows]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        indent + "  ".join(pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class TextStyle(Protocol):
    """How :func:`render_text` sets parts of its text apart; the CLI passes its ANSI colours.

    Example:
        >>> class Shout:
        ...     def bold(self, text: str) -> str: return text.upper()
        ...     cyan = dim = yellow = bold
        >>> render_text(ex, style=Shout())  # doctest: +SKIP
    """

    def bold(self, text: str) -> str:
        """Headings."""
        ...

    def cyan(self, text: str) -> str:
        """The chosen route."""
        ...

    def dim(self, text: str) -> str:
        """Secondary detail."""
        ...

    def yellow(self, text: str) -> str:
        """Skipped deployments."""
        ...


def _unstyled(text: str) -> str:
    return text


class _Plain:
    """Text left as it is."""

    bold = cyan = dim = yellow = staticmethod(_unstyled)


def render_text(explanation: Explanation, *, style: TextStyle | None = None) -> str:
    """A human-readable rendering of ``explanation`` (emphasised as ``style`` says; plain text
    by default).
    """
    s = style or _Plain()
    ex = explanation
    out = [f"{s.bold('policy')}  {ex.policy}"]
    route = f"{s.bold('route')}   {s.cyan(ex.route)}"
    if ex.route_description:
        route += s.dim(f"  ({printable(ex.route_description)})")
    out.append(route)

    out.append(s.bold("candidates") + s.dim("  (tried in this order)"))
    if ex.candidates:
        rows = [["#", "alias", "model", "in $/Mtok", "out $/Mtok", "worst case", "tokens in+out"]]
        for i, c in enumerate(ex.candidates, 1):
            alias = c.alias if c.via is None else f"{c.alias} (via {c.via})"
            rows.append(
                [
                    str(i),
                    alias,
                    c.model,
                    _dec_str(c.input_per_mtok) or "?",
                    _dec_str(c.output_per_mtok) or "?",
                    _worst_case(c),
                    _tokens(c),
                ]
            )
        out.extend(_table(rows))
        out.extend(s.yellow(f"  {printable(_refusal(c))}") for c in ex.candidates if c.unset_env)
        if all(c.unset_env for c in ex.candidates):
            out.append(s.yellow("  no candidate can answer: a call would be refused on every one"))
    else:
        out.append("  (none)")
    out.extend(s.dim(f"  note: {printable(note)}") for note in ex.order_notes)

    if ex.params:
        items = ", ".join(f"{k}={_scalar(v)}" for k, v in ex.params.items())
        out.append(f"{s.bold('params')}  {printable(items)}")
    if ex.requirements:
        items = ", ".join(f"{k}={_scalar(v)}" for k, v in ex.requirements.items())
        out.append(f"{s.bold('requires')}  {items}")

    out.append(s.bold("budgets"))
    if ex.budgets:
        rows = []
        for b in ex.budgets:
            scope = "global" if b.per is None else f"{b.per}={b.scope or '(absent)'}"
            warn = ", ".join(f"{w:.0%}" for w in b.warn_at)
            rows.append(
                [
                    b.name,
                    scope,
                    f"{_usd(b.limit_usd)} per {b.window}",
                    f"warn at {warn}" if warn else "",
                    f"on exceed: {b.on_exceed}",
                ]
            )
        out.extend(_table(rows))
    else:
        out.append("  (none)")

    if ex.skipped:
        out.append(s.bold("skipped"))
        out.extend(f"  {s.yellow(alias)}: {printable(why)}" for alias, why in ex.skipped)

    out.append(s.bold("trace"))
    out.extend(f"  {printable(line)}" for line in ex.trace)
    return "\n".join(out)
