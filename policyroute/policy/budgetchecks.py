"""Semantic checks of what budgets need from the models they cover.

A budget is enforced against each call's worst-case cost, and the output half of that bound is
the call's ``max_tokens``, else ``defaults.max_tokens``, else the model's output limit (the
policy's ``max_output_tokens``, else litellm's). A model a budget covers where none of these is
known can only be called with ``max_tokens`` given at the call: every other call is refused.
That is worth a warning (PR134) rather than an error, since callers that always pass
``max_tokens`` are served.

The models a budget covers are those of the routes in its scope, and those its own
``on_exceed: {downgrade: ...}`` sends calls to (followed through further downgrades). A
route's ``params`` go with the call when it is downgraded, so they bound the models it is
downgraded to as well.

Example:
    >>> from policyroute.policy.validate import validate_text
    >>> text = "policyroute: 1\\nname: t\\nmodels: {m: {model: acme/x, price: "
    >>> text += "{input_per_mtok: 1, output_per_mtok: 2}}}\\nroutes: [{name: d, to: m}]\\n"
    >>> text += "budgets: [{name: daily, limit_usd: 5, window: day}]\\n"
    >>> [d.code for d in validate_text(text, environ={}).diagnostics]
    ['PR134']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from policyroute.costs.pricing import resolve_model_info
from policyroute.policy.model import ModelSpec

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_clamp_floors", "check_output_bounds", "check_self_downgrades"]


def _limit(value: Any) -> bool:
    """Whether ``value`` is a usable token limit (the schema reports any other)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _params_bound(owner: Any) -> bool:
    params = owner.get("params") if isinstance(owner, dict) else None
    return isinstance(params, dict) and _limit(params.get("max_tokens"))


def _output_known(model: dict[str, Any]) -> bool:
    """Whether the policy or litellm gives the model an output limit."""
    return _output_limit(model) is not None


def _output_limit(model: Any) -> int | None:
    """The model's output limit: the policy's ``max_output_tokens``, else litellm's."""
    if not isinstance(model, dict):
        return None
    if _limit(model.get("max_output_tokens")):
        return int(model["max_output_tokens"])
    if not isinstance(model.get("model"), str) or not model["model"]:
        return None
    return resolve_model_info(ModelSpec(alias="", model=model["model"])).max_output_tokens


def _budget_name(budget: dict[str, Any], index: int) -> str:
    name = budget.get("name")
    return name if isinstance(name, str) else f"budgets[{index}]"


def _downgrade(budget: dict[str, Any]) -> str | None:
    on_exceed = budget.get("on_exceed")
    target = on_exceed.get("downgrade") if isinstance(on_exceed, dict) else None
    return target if isinstance(target, str) else None


def _named(names: Iterable[str], most: int = 5) -> str:
    listed = list(names)
    shown = ", ".join(f"'{n}'" for n in listed[:most])
    return shown + (f" and {len(listed) - most} more" if len(listed) > most else "")


class _Calls:
    """Where calls go under budgets, as a graph over routes: a call on a route is charged to
    the route's budgets, reaches the models of its ``to`` and of the groups those budgets
    downgrade to, and moves on to the routes they downgrade to (charged there from then on).

    Each route is a node (an unnamed one, ``#i``, is covered only by budgets that list no
    routes); a node without budgets calls nothing guarded and has no successors.
    """

    def __init__(self, c: Checker) -> None:
        from policyroute.policy.checks import targets

        self.c = c
        self.to: dict[str, list[str]] = {}
        self.unbounded_starts: list[str] = []
        for i, route in enumerate(c.routes):
            if not isinstance(route, dict):
                continue
            name = route.get("name")
            node = name if isinstance(name, str) else f"#{i}"
            if node in self.to:
                continue  # a duplicate name is PR108; the guard knows the first
            self.to[node] = [t for _, t in targets(route.get("to"))]
            if not _params_bound(route):
                self.unbounded_starts.append(node)
        self.everywhere: list[tuple[str, dict[str, Any]]] = []
        self.scoped: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for i, budget in enumerate(c.budgets):
            if not isinstance(budget, dict):
                continue
            scope = budget.get("routes")
            entry = (_budget_name(budget, i), budget)
            if not isinstance(scope, list):
                self.everywhere.append(entry)
                continue
            for route_name in dict.fromkeys(r for r in scope if isinstance(r, str)):
                self.scoped.setdefault(route_name, []).append(entry)
        self._everywhere_groups, self._everywhere_routes = self._split(self.everywhere)

    def _split(self, budgets: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], list[str]]:
        """The downgrade targets of ``budgets``: models or groups (the call keeps its route),
        then routes (the guard looks models and groups up first)."""
        groups, routes = [], []
        for _, budget in budgets:
            target = _downgrade(budget)
            if target is None:
                continue
            if target in self.c.groups or target in self.c.models:
                groups.append(target)
            elif target in self.to:
                routes.append(target)
        return groups, routes

    def budgets(self, node: str) -> list[str]:
        """The names of the budgets charged on ``node``."""
        return [n for n, _ in (*self.everywhere, *self.scoped.get(node, ()))]

    def reached(self, node: str) -> tuple[set[str], list[str]]:
        """The model aliases called on ``node`` and the routes it downgrades to."""
        from policyroute.policy.checks import expand

        if not self.everywhere and node not in self.scoped:
            return set(), []
        groups, routes = self._split(self.scoped.get(node, []))
        names = [*self.to[node], *self._everywhere_groups, *groups]
        return {m for n in names for m in expand(self.c, n)}, [*self._everywhere_routes, *routes]


def check_output_bounds(c: Checker) -> None:
    """PR134: a model a budget covers whose output nothing in the policy bounds."""
    defaults = c.data.get("defaults")
    if not c.budgets or (isinstance(defaults, dict) and _limit(defaults.get("max_tokens"))):
        return
    suspects = {
        alias
        for alias, m in c.models.items()
        if isinstance(m, dict)
        and isinstance(m.get("model"), str)
        and m["model"]
        and not _params_bound(m)
        and not _output_known(m)
    }
    if not suspects:
        return
    calls = _Calls(c)
    # every route a call can be charged as, from a route whose params give no max_tokens (its
    # params go along when the call is downgraded), each visited once
    models: dict[str, set[str]] = {}
    callers: dict[str, list[str]] = {}
    pending = list(calls.unbounded_starts)
    seen = set(pending)
    while pending:
        node = pending.pop()
        models[node], onward = calls.reached(node)
        for target in onward:
            callers.setdefault(target, []).append(node)
            if target not in seen:
                seen.add(target)
                pending.append(target)
    starts = set(calls.unbounded_starts)
    for alias in c.models:
        if alias not in suspects:
            continue
        where = [node for node in calls.to if alias in models.get(node, ())]
        if not where:
            continue
        budgets = dict.fromkeys(b for node in where for b in calls.budgets(node))
        routes = [node for node in _upstream(where, callers) if node in starts]
        model = c.models[alias]
        plural = "s" if len(budgets) > 1 else ""
        route_plural = "s" if len(routes) > 1 else ""
        c.emit(
            "PR134",
            ("models", alias),
            f"model '{alias}' ({model['model']}) has no known output limit and no max_tokens"
            f" applies to it: budget{plural} {_named(budgets)} cannot bound the cost of a call"
            " to it, so each call that does not give max_tokens is refused",
            key=True,
            hint=f"add max_output_tokens: <its limit> to model '{alias}', or max_tokens to"
            f" defaults, to the model's params or to the params of route{route_plural}"
            f" {_named(routes)}",
        )


def _upstream(nodes: list[str], callers: dict[str, list[str]]) -> list[str]:
    """``nodes`` and every node a downgrade leads from to one of them, in the order met."""
    found = dict.fromkeys(nodes)
    pending = list(nodes)
    while pending:
        for caller in callers.get(pending.pop(), ()):
            if caller not in found:
                found[caller] = None
                pending.append(caller)
    return list(found)


def check_clamp_floors(c: Checker) -> None:
    """PR144: ``clamp_max_tokens`` with a ``min_tokens`` above the output limit of every model
    the budget covers. A clamped call sends fewer tokens than it asked for, and no call can
    ask for more than its model writes: every call the budget would clamp is refused, as with
    ``on_exceed: block``. (Models whose limit is unknown make the check say nothing.)"""
    calls: _Calls | None = None
    for i, budget in enumerate(c.budgets):
        on_exceed = budget.get("on_exceed") if isinstance(budget, dict) else None
        clamp = on_exceed.get("clamp_max_tokens") if isinstance(on_exceed, dict) else None
        floor = clamp.get("min_tokens") if isinstance(clamp, dict) else None
        if not isinstance(floor, int) or not _limit(floor):
            continue
        if calls is None:
            calls = _Calls(c)
        name = _budget_name(budget, i)
        aliases = {
            alias
            for node in calls.to
            if name in calls.budgets(node)
            for alias in calls.reached(node)[0]
        }
        limits = [_output_limit(c.models.get(alias)) for alias in aliases]
        if not limits or any(limit is None for limit in limits):
            continue
        most = max(limit for limit in limits if limit is not None)
        if floor <= most:
            continue
        c.emit(
            "PR144",
            ("budgets", i, "on_exceed", "clamp_max_tokens", "min_tokens"),
            f"budget '{name}' clamps max_tokens no lower than {floor}, above the output limit"
            f" of every model it covers (at most {most}): every call it would clamp is"
            " refused, as with on_exceed: block",
            hint=f"give a min_tokens of at most {most}, or on_exceed: block if that is meant",
        )


def check_self_downgrades(c: Checker) -> None:
    """PR145: a budget that downgrades to the only route it guards. A call the budget refuses
    is re-routed to the route it is on, where the same budget refuses it again: the downgrade
    never admits a call, and reads as if it did."""
    routes = c.route_names()
    for i, budget in enumerate(c.budgets):
        target = _downgrade(budget) if isinstance(budget, dict) else None
        if target is None or target not in routes or target in c.groups or target in c.models:
            continue
        scope = budget.get("routes")
        guarded = (
            {r for r in scope if isinstance(r, str)} if isinstance(scope, list) else set(routes)
        )
        if guarded != {target}:
            continue
        name = _budget_name(budget, i)
        c.emit(
            "PR145",
            ("budgets", i, "on_exceed", "downgrade"),
            f"budget '{name}' downgrades to route '{target}', the only route it guards: a call"
            " it refuses there is refused again, so the downgrade never admits one",
            hint="downgrade to a cheaper route or group, or use on_exceed: block",
        )
