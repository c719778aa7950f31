"""Compile a :class:`~policyroute.policy.model.PolicySpec` into an immutable router.

Compiling happens once per policy: model info is resolved, conditions become closures, exact
matches are indexed, targets are expanded as far as they can be without seeing a request, and
per-route budgets and parameters are frozen. Routing is then a pure function of the compiled
policy and the request, safe to call from many threads at once.

Example:
    >>> from policyroute.policy.model import ModelSpec, PolicySpec, RouteSpec, TargetSpec
    >>> spec = PolicySpec(
    ...     name="demo", version=1,
    ...     models={"mini": ModelSpec(alias="mini", model="openai/gpt-4o-mini")},
    ...     groups={}, routes=(RouteSpec(name="default", to=TargetSpec(("mini",))),))
    >>> policy = compile_policy(spec)
    >>> decision = policy.route({"messages": [{"role": "user", "content": "hi"}]})
    >>> decision.route, [c.alias for c in decision.candidates]
    ('default', ['mini'])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, NoReturn

from policyroute.costs.pricing import resolve_model_info
from policyroute.errors import PolicyError, RoutingError
from policyroute.policy.conditions import describe, explain
from policyroute.policy.facts import RequestFacts, request_from_mapping
from policyroute.policy.model import (
    BudgetSpec,
    DefaultsSpec,
    ModelInfo,
    PolicySpec,
    Requirements,
    RouteSpec,
    Secret,
)
from policyroute.request import Request
from policyroute.routing.candidates import Entry, TargetPlan, build_nodes, static_reason
from policyroute.routing.decision import Candidate, Decision, DeploymentStats
from policyroute.routing.index import RouteMatcher

__all__ = ["CompiledPolicy", "canonical_hash", "compile_policy"]

_NO_REQUIREMENTS: Final = Requirements()
TokenCounter = Callable[[Request], int]


def _canonical(value: Any) -> Any:
    """A JSON-able, order-independent form of spec data; secrets by source, never value."""
    if isinstance(value, Secret):
        return {"$secret": value.source}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out["$type"] = type(value).__name__
        return out
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, float):
        return {"$float": repr(value)}
    return value


def canonical_hash(spec: PolicySpec) -> str:
    """sha256 (hex) of the spec's canonical JSON form: same policy, same hash.

    Example:
        >>> canonical_hash(spec) == canonical_hash(spec)  # doctest: +SKIP
        True
    """
    text = json.dumps(_canonical(spec), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Route:
    """A compiled route: what a match hands to the Decision."""

    __slots__ = ("budgets", "decision", "name", "params", "plan", "spec")

    def __init__(self, spec: RouteSpec, plan: TargetPlan, budgets: tuple[BudgetSpec, ...]) -> None:
        self.spec = spec
        self.name = spec.name
        self.plan = plan
        self.params: Mapping[str, Any] = MappingProxyType(dict(spec.params))
        self.budgets = budgets
        # Decisions are immutable: a request that changes nothing about the precomputed
        # candidates shares this one, so the hot path allocates no Decision at all.
        self.decision: Decision | None = None
        if plan.static_candidates:
            self.decision = Decision(
                route=self.name,
                candidates=plan.static_candidates,
                params=self.params,
                budgets=budgets,
                requirements=plan.requirements,
                trace=(),
                skipped=plan.static_skipped,
            )


class CompiledPolicy:
    """An immutable, thread-safe router built by :func:`compile_policy`.

    Attributes:
        spec: the policy it was compiled from.
        name: the policy's name.
        content_hash: sha256 identifying the policy's content (put in receipts).
        source: where the policy came from (a path), if known.
        defaults: execution defaults (retry, timeouts, circuit breaker).

    Example:
        >>> policy.route({"messages": "hi", "metadata": {"task": "code"}}).route  # doctest: +SKIP
        'code'
    """

    __slots__ = (
        "_budgets",
        "_candidates",
        "_infos",
        "_matcher",
        "_rng",
        "_routes",
        "_routes_by_name",
        "_targets",
        "content_hash",
        "defaults",
        "name",
        "source",
        "spec",
    )

    spec: PolicySpec
    name: str
    content_hash: str
    source: str | None
    defaults: DefaultsSpec
    _budgets: tuple[BudgetSpec, ...]
    _candidates: dict[tuple[str, str | None], Candidate]
    _infos: Mapping[str, ModelInfo]
    _matcher: RouteMatcher
    _rng: random.Random
    _routes: tuple[_Route, ...]
    _routes_by_name: Mapping[str, _Route]
    _targets: Mapping[str, TargetPlan]

    def __init__(
        self,
        spec: PolicySpec,
        *,
        source: str | None = None,
        content_hash: str = "",
        rng: random.Random | None = None,
    ) -> None:
        init = object.__setattr__
        init(self, "spec", spec)
        init(self, "name", spec.name)
        init(self, "source", source)
        init(self, "content_hash", content_hash or canonical_hash(spec))
        init(self, "defaults", spec.defaults)
        init(self, "_rng", rng if rng is not None else random.Random())
        infos = {alias: resolve_model_info(m) for alias, m in spec.models.items()}
        init(self, "_infos", MappingProxyType(infos))
        init(self, "_candidates", {})
        init(self, "_budgets", spec.budgets)

        routes = tuple(
            _Route(
                r,
                self._plan(r.to.names, r.require, f"route '{r.name}'", r.params),
                self._scope(r.name),
            )
            for r in spec.routes
        )
        init(self, "_routes", routes)
        init(self, "_routes_by_name", MappingProxyType({r.name: r for r in routes}))
        targets = {
            name: self._plan((name,), _NO_REQUIREMENTS, name)
            for name in (*spec.models, *spec.groups)
        }
        init(self, "_targets", MappingProxyType(targets))
        init(self, "_matcher", RouteMatcher([r.when for r in spec.routes]))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"CompiledPolicy is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"CompiledPolicy is immutable (cannot delete {name!r})")

    def __repr__(self) -> str:
        return (
            f"CompiledPolicy(name={self.name!r}, routes={len(self._routes)},"
            f" hash={self.content_hash[:12]!r})"
        )

    # ------------------------------------------------------------------ compile helpers

    def _candidate(self, alias: str, via: str | None) -> Candidate:
        key = (alias, via)
        cached = self._candidates.get(key)
        if cached is not None:
            return cached
        model = self.spec.models.get(alias)
        if model is None:
            raise PolicyError(f"unknown model or group {alias!r} in policy {self.name!r}")
        connection: dict[str, Any] = {"model": model.model}
        if model.api_base is not None:
            connection["api_base"] = model.api_base
        if model.api_key is not None and model.api_key.is_set:
            connection["api_key"] = model.api_key.reveal()
        if model.api_version is not None:
            connection["api_version"] = model.api_version
        timeout = model.timeout if model.timeout is not None else self.defaults.timeout
        if timeout is not None:
            connection["timeout"] = timeout
        # the deployment's own params first: they must not redirect the call elsewhere
        params = MappingProxyType({**model.params, **connection})
        candidate = Candidate(
            alias=alias, spec=model, info=self._infos[alias], litellm_params=params, via=via
        )
        self._candidates[key] = candidate
        return candidate

    def _entry(self, alias: str, via: str | None, require: Requirements) -> Entry:
        candidate = self._candidate(alias, via)
        info = candidate.info
        price = (
            info.input_cost_per_token + info.output_cost_per_token  # type: ignore[operator]
            if info.priced
            else None
        )
        return Entry(
            candidate=candidate,
            price=price,
            weight=candidate.spec.weight,
            tools=info.supports_tools,
            vision=info.supports_vision,
            json_schema=info.supports_json_schema,
            window=info.max_input_tokens,
            static_reason=static_reason(candidate, require),
        )

    def _plan(
        self,
        names: tuple[str, ...],
        require: Requirements,
        label: str,
        params: Mapping[str, Any] | None = None,
    ) -> TargetPlan:
        nodes = build_nodes(names, groups=self.spec.groups, make_entry=self._entry, require=require)
        requirements = require
        for name in names:
            group = self.spec.groups.get(name)
            if group is not None:
                requirements = requirements.merge(group.require)
        # the route's params and the default output limit: fastest compares unstreamed
        # answers at the output limit the call will send
        return TargetPlan(
            label,
            nodes,
            requirements,
            params=params if params is not None else {},
            default_max_tokens=self.defaults.max_tokens,
        )

    def _scope(self, route: str) -> tuple[BudgetSpec, ...]:
        return tuple(b for b in self._budgets if b.routes is None or route in b.routes)

    # ------------------------------------------------------------------ public API

    @property
    def route_names(self) -> tuple[str, ...]:
        """The routes, in the order they are tried."""
        return tuple(r.name for r in self._routes)

    @property
    def indexed_facts(self) -> int:
        """How many facts the route index looks up per request (0: plain linear scan)."""
        return self._matcher.indexed_facts

    def model_info(self, alias: str) -> ModelInfo:
        """Prices, limits and capabilities of a deployment, resolved at compile time.

        Raises :class:`~policyroute.errors.RoutingError` for an alias the policy lacks.
        """
        info = self._infos.get(alias)
        if info is None:
            raise RoutingError(f"policy {self.name!r} has no model {alias!r}")
        return info

    def budgets_for(self, route: str) -> tuple[BudgetSpec, ...]:
        """Budgets charged for calls routed by ``route`` (global ones included)."""
        compiled = self._routes_by_name.get(route)
        return compiled.budgets if compiled is not None else self._scope(route)

    def route(
        self,
        request: Request | Mapping[str, Any],
        *,
        stats: DeploymentStats | None = None,
        token_counter: TokenCounter | None = None,
        trace: bool = True,
    ) -> Decision:
        """Decide where ``request`` goes: the first matching route and its candidates.

        ``Decision.params`` holds the route's parameter overrides. The executor merges call
        parameters in this order, later winning: the deployment's ``params`` (already in
        ``Candidate.litellm_params``) < the call's own parameters < the route's ``params``.
        With ``trace=False`` no explanation is built (the executor's hot path).

        Raises :class:`~policyroute.errors.RoutingError` when no route matches,
        :class:`~policyroute.errors.NoCandidateError` when every candidate was dropped, and
        :class:`~policyroute.errors.RequestError` for a malformed mapping request.

        Example:
            >>> policy.route({"messages": "hi"}).trace  # doctest: +SKIP
            ("route 'default' matched: catch-all", 'candidates: mini')
        """
        if not isinstance(request, Request):
            request = request_from_mapping(request)
        facts = RequestFacts(request, token_counter)
        lines: list[str] | None = None
        if trace:
            lines = []
            index = self._explain_match(facts, lines)
        else:
            index = self._matcher.first_match(facts)
        if index < 0:
            raise RoutingError(
                f"no route of policy {self.name!r} matches this request;"
                " add a catch-all route (one without `when`) last"
            )
        compiled = self._routes[index]
        candidates, skipped, requirements = compiled.plan.resolve(
            facts, stats, self._rng, lines, route=compiled.name
        )
        if lines is not None:
            lines.append("candidates: " + ", ".join(c.alias for c in candidates))
        elif (
            candidates is compiled.plan.static_candidates
            and requirements is compiled.plan.requirements
            and skipped is compiled.plan.static_skipped
            and compiled.decision is not None
        ):
            return compiled.decision
        return Decision(
            route=compiled.name,
            candidates=candidates,
            params=compiled.params,
            budgets=compiled.budgets,
            requirements=requirements,
            trace=tuple(lines) if lines is not None else (),
            skipped=skipped,
        )

    def _explain_match(self, facts: RequestFacts, lines: list[str]) -> int:
        for i, compiled in enumerate(self._routes):
            ok, why = explain(compiled.spec.when, facts)
            lines.append(f"route '{compiled.name}' {'matched' if ok else 'skipped'}: {why}")
            if ok:
                return i
        return -1

    def route_params(self, name: str) -> Mapping[str, Any] | None:
        """The ``params`` of the route ``name`` (what a call downgraded to it sends), ``None``
        when no route has that name.

        Example:
            >>> policy.route_params("cheap")  # doctest: +SKIP
            mappingproxy({'max_tokens': 256})
        """
        compiled = self._routes_by_name.get(name)
        return None if compiled is None else compiled.params

    def candidates_for(
        self,
        target: str,
        request: Request | Mapping[str, Any],
        *,
        stats: DeploymentStats | None = None,
        requirements: Requirements | None = None,
        token_counter: TokenCounter | None = None,
    ) -> tuple[Candidate, ...]:
        """Candidates for a model alias, a group, or a route's target (budget downgrades).

        Model aliases and groups are looked up first, then route names (a route brings its
        ``require``). ``requirements`` are added to whatever the target requires, and the
        request's own requirements (tools, images, size) apply as in :meth:`route`.

        Raises :class:`~policyroute.errors.RoutingError` for an unknown target and
        :class:`~policyroute.errors.NoCandidateError` when nothing is left.

        Example:
            >>> [c.alias for c in policy.candidates_for("cheap", request)]  # doctest: +SKIP
            ['local', 'mini', 'haiku']
        """
        if not isinstance(request, Request):
            request = request_from_mapping(request)
        plan = self._targets.get(target)
        names: tuple[str, ...] = (target,)
        base = _NO_REQUIREMENTS
        route: str | None = None
        params: Mapping[str, Any] | None = None
        if plan is None:
            compiled = self._routes_by_name.get(target)
            if compiled is None:
                raise RoutingError(
                    f"policy {self.name!r} has no model, group or route named {target!r}"
                )
            plan = compiled.plan
            names = compiled.spec.to.names
            base = compiled.spec.require
            params = compiled.spec.params
            route = target
        if requirements is not None and requirements != _NO_REQUIREMENTS:
            plan = self._plan(names, base.merge(requirements), target, params)
        facts = RequestFacts(request, token_counter)
        candidates, _, _ = plan.resolve(facts, stats, self._rng, None, route=route)
        return candidates

    def describe_routes(self) -> tuple[str, ...]:
        """One line per route: its name, condition and target (for ``explain`` listings)."""
        return tuple(
            f"{r.name}: when {describe(r.spec.when)} -> {', '.join(r.spec.to.names)}"
            for r in self._routes
        )


def compile_policy(
    spec: PolicySpec,
    *,
    source: str | None = None,
    content_hash: str = "",
    rng: random.Random | None = None,
) -> CompiledPolicy:
    """Compile a validated policy into a :class:`CompiledPolicy`.

    ``content_hash`` identifies the policy in receipts; when empty, a sha256 of the spec's
    canonical form is used. ``rng`` drives ``weighted`` groups (inject a seeded one in tests).
    Raises :class:`~policyroute.errors.PolicyError` if the spec references something it does
    not define (the semantic checks report these first, with positions).

    Example:
        >>> compile_policy(spec).route_names  # doctest: +SKIP
        ('code', 'default')
    """
    return CompiledPolicy(spec, source=source, content_hash=content_hash, rng=rng)
