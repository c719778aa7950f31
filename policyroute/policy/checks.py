"""Semantic checks: what the JSON Schema cannot say about a policy.

References between models, groups, routes and budgets; names used twice; routes that can never
match; cycles; weights; conditions; prices; secrets and environment variables; time zones and
limits; endpoints. Every problem is collected and returned, never raised. The checks read the
loaded tree defensively, so they also run (and stay quiet about shapes) when the schema found
problems.

Example:
    >>> from policyroute.policy.load import load_yaml
    >>> doc = load_yaml("policyroute: 1\\nname: x\\nmodels: {mini: {model: openai/gpt-4o-mini}}\\n"
    ...                 "routes: [{name: r, to: mni}]\\n")
    >>> for d in semantic_diagnostics(doc, environ={}):
    ...     print(d.format())
    <string>:4:24 routes[0].to: unknown model or group 'mni' (did you mean 'mini'?) [PR101]
    <string>:3:10 models.mini: model 'mini' is never used [PR105]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from policyroute.policy.budgetchecks import (
    check_clamp_floors,
    check_output_bounds,
    check_self_downgrades,
)
from policyroute.policy.budgetvalues import check_budget_values
from policyroute.policy.codes import CODES
from policyroute.policy.condchecks import always_true, check_condition
from policyroute.policy.diagnostics import Diagnostic, Severity
from policyroute.policy.endpoints import check_endpoints, check_param_headers
from policyroute.policy.envrefs import check_env
from policyroute.policy.filepaths import check_file_paths
from policyroute.policy.hints import close_or_defined
from policyroute.policy.load import JsonPath, LoadedDocument, format_path
from policyroute.policy.modelchecks import check_models, check_requirements
from policyroute.policy.nesting import MAX_EXPANSION, MAX_GROUP_DEPTH, measure
from policyroute.policy.redisurl import check_store_url
from policyroute.policy.retrychecks import check_retry_classes
from policyroute.policy.storechecks import check_store

__all__ = ["semantic_diagnostics"]


class Checker:
    """Collects diagnostics with positions from the loaded document."""

    def __init__(self, doc: LoadedDocument, *, strict: bool, environ: Mapping[str, str]) -> None:
        self.doc = doc
        self.strict = strict
        self.environ = environ
        self.diagnostics: list[Diagnostic] = []
        data = doc.data if isinstance(doc.data, dict) else {}
        self.data: dict[str, Any] = data
        self.models: dict[str, Any] = _dict(data.get("models"))
        self.groups: dict[str, Any] = _dict(data.get("groups"))
        self.routes: list[Any] = _list(data.get("routes"))
        self.budgets: list[Any] = _list(data.get("budgets"))
        self.expansions: dict[str, tuple[str, ...]] = {}

    def emit(
        self,
        code: str,
        path: JsonPath,
        message: str,
        *,
        key: bool = False,
        hint: str | None = None,
        severity: Severity | None = None,
    ) -> None:
        """Record one diagnostic at ``path`` (the key's position with ``key=True``)."""
        pos = self.doc.locate(path, key=key)
        self.diagnostics.append(
            Diagnostic(
                code,
                message,
                format_path(path),
                self.doc.file,
                pos.line,
                pos.column,
                severity or CODES[code].severity,
                hint,
            )
        )

    def route_names(self) -> list[str]:
        return [r["name"] for r in self.routes if isinstance(r, dict) and _is_str(r.get("name"))]


def semantic_diagnostics(
    doc: LoadedDocument, *, strict: bool = False, environ: Mapping[str, str]
) -> list[Diagnostic]:
    """Run every semantic check on ``doc`` and return what they found."""
    checker = Checker(doc, strict=strict, environ=environ)
    _check_names(checker)
    _check_groups(checker)
    _check_routes(checker)
    _check_budgets(checker)
    _check_unused(checker)
    check_models(checker)
    check_requirements(checker)
    check_output_bounds(checker)
    check_clamp_floors(checker)
    check_self_downgrades(checker)
    check_env(checker)
    check_store(checker)
    check_store_url(checker)
    check_file_paths(checker)
    check_budget_values(checker)
    check_endpoints(checker)
    check_param_headers(checker)
    check_retry_classes(checker)
    return checker.diagnostics


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def targets(value: Any) -> list[tuple[int | None, str]]:
    """The names in a ``to:`` value with their index in the list (``None`` for a string)."""
    if isinstance(value, str):
        return [(None, value)]
    return [(i, v) for i, v in enumerate(_list(value)) if isinstance(v, str)]


def group_members(group: Any) -> list[tuple[int, str]]:
    """The member names of a group with their index."""
    members = _list(group.get("models")) if isinstance(group, dict) else []
    return [(i, m) for i, m in enumerate(members) if isinstance(m, str)]


def expand(c: Checker, name: str) -> tuple[str, ...]:
    """The model aliases a model or group name stands for, each once, in the order first met
    (cycles, unknowns and nesting past MAX_GROUP_DEPTH skipped: each reported elsewhere)."""
    if name in c.models:
        return (name,)
    found = c.expansions.get(name)
    if found is None:
        found = tuple(dict.fromkeys(_expand(c, name, frozenset())))
        c.expansions[name] = found
    return found


def _expand(c: Checker, name: str, seen: frozenset[str]) -> Iterator[str]:
    if name in c.models:
        yield name
    elif name in c.groups and name not in seen and len(seen) < MAX_GROUP_DEPTH:
        done = c.expansions.get(name)
        if done is not None:
            yield from done
            return
        for _, member in group_members(c.groups[name]):
            yield from _expand(c, member, seen | {name})


def _check_names(c: Checker) -> None:
    for name in c.groups:
        if name in c.models:
            c.emit(
                "PR107",
                ("groups", name),
                f"'{name}' is both a model alias and a group name",
                key=True,
                hint="model aliases and group names share one namespace; rename one",
            )
    for code, items, what in (("PR108", c.routes, "routes"), ("PR109", c.budgets, "budgets")):
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            label = item.get("name") if isinstance(item, dict) else None
            if not isinstance(label, str):
                continue
            if label in first:
                c.emit(
                    code,
                    (what, i, "name"),
                    f"duplicate {what[:-1]} name '{label}'",
                    hint=f"first used by {what}[{first[label]}]",
                )
            else:
                first[label] = i


def _check_groups(c: Checker) -> None:
    known = [*c.models, *c.groups]
    for name, group in c.groups.items():
        for i, member in group_members(group):
            if member not in c.models and member not in c.groups:
                message, hint = _not_a_target(c, member, known)
                c.emit("PR102", ("groups", name, "models", i), message, hint=hint)

    def subgroups(name: str) -> list[tuple[str, None]]:
        members = group_members(c.groups.get(name))
        return [(m, None) for _, m in members if m in c.groups and m not in c.models]

    for loop, _ in _cycles(c.groups, subgroups):
        c.emit(
            "PR112",
            ("groups", loop[0]),
            "groups contain each other: " + " -> ".join([*loop, loop[0]]),
            key=True,
        )
    _check_nesting(c)
    for name, group in c.groups.items():
        if not isinstance(group, dict) or group.get("strategy") != "weighted":
            continue
        leaves = set(expand(c, name))
        weights = [_dict(c.models[m]).get("weight", 1) for m in leaves]
        numbers = [w for w in weights if isinstance(w, (int, float)) and not isinstance(w, bool)]
        if leaves and len(numbers) == len(weights) and sum(numbers) == 0:
            c.emit(
                "PR114",
                ("groups", name),
                f"the weights of weighted group '{name}' sum to zero",
                key=True,
                hint="give at least one member a weight above 0",
            )
        _check_weighted_overlap(c, name, group)


def _check_weighted_overlap(c: Checker, name: str, group: dict[str, Any]) -> None:
    """PR130: a weighted group whose members reach one model twice (directly and through a
    nested group, or through two nested groups): each place counts towards the model's chance
    of coming first, so its share is not the weight the policy gives it."""
    first: dict[str, str] = {}
    listed: set[str] = set()
    for i, member in group_members(group):
        if member in listed:
            continue  # a member listed twice is the schema's PR015
        listed.add(member)
        for model in expand(c, member):
            if model not in first:
                first[model] = member
                continue
            places = " and ".join(f"'{m}'" for m in dict.fromkeys((first[model], member)))
            c.emit(
                "PR130",
                ("groups", name, "models", i),
                f"weighted group '{name}' reaches model '{model}' through {places}:"
                " both places count towards its chance of coming first",
                hint="list each model once under a weighted group if its weight is its share",
            )


def _check_nesting(c: Checker) -> None:
    """PR129: groups nested too deep or expanding to too many entries (each cause once)."""
    members = {name: [m for _, m in group_members(g)] for name, g in c.groups.items()}
    sizes, depths = measure(members, c.models)
    for name, inner in members.items():
        if depths[name] == MAX_GROUP_DEPTH + 1:
            c.emit(
                "PR129",
                ("groups", name),
                f"group '{name}' nests groups {depths[name]} levels deep"
                f" (at most {MAX_GROUP_DEPTH})",
                key=True,
            )
        elif sizes[name] > MAX_EXPANSION and all(sizes.get(m, 0) <= MAX_EXPANSION for m in inner):
            c.emit(
                "PR129",
                ("groups", name),
                f"group '{name}' expands to more than {MAX_EXPANSION} entries through nested"
                " groups (a group listed by several others is expanded once for each)",
                key=True,
                hint="list each model once, in the group that uses it",
            )
    for i, route in enumerate(c.routes):
        names = [t for _, t in targets(route.get("to"))] if isinstance(route, dict) else []
        each = [1 if n in c.models else sizes.get(n, 0) for n in names]
        if sum(each) > MAX_EXPANSION and all(n <= MAX_EXPANSION for n in each):
            c.emit(
                "PR129",
                ("routes", i, "to"),
                f"this target expands to more than {MAX_EXPANSION} entries through nested groups",
            )


def _not_a_target(c: Checker, name: str, known: list[str]) -> tuple[str, str | None]:
    """What to say of a ``to`` entry or group member that is no model or group: a route's
    name is defined, so calling it unknown (with no suggestion) would mislead."""
    if name in c.route_names():
        return (
            f"'{name}' is a route, not a model or group",
            "a route's 'to' and a group's 'models' list models or groups; to send calls on"
            " to another route's models, list those models or a group holding them",
        )
    return f"unknown model or group '{name}'", close_or_defined(name, known, "models and groups")


def _check_routes(c: Checker) -> None:
    known = [*c.models, *c.groups]
    downgrade_targets = {t for _, t in _downgrades(c)}
    catch_all: tuple[int, str] | None = None
    for i, route in enumerate(c.routes):
        if not isinstance(route, dict):
            continue
        # the schema reports a name that is not a string; here it must not be hashed or shown
        rname = route["name"] if _is_str(route.get("name")) else f"#{i}"
        for j, target in targets(route.get("to")):
            if target not in c.models and target not in c.groups:
                message, hint = _not_a_target(c, target, known)
                where: JsonPath = ("routes", i, "to") if j is None else ("routes", i, "to", j)
                c.emit("PR101", where, message, hint=hint)
        if "when" in route:
            check_condition(route["when"], ("routes", i, "when"), c.emit)
        if catch_all is not None and rname not in downgrade_targets:
            c.emit(
                "PR110",
                ("routes", i),
                f"route '{rname}' can never match: route '{catch_all[1]}' (routes[{catch_all[0]}])"
                " above it matches every request",
                hint="move the catch-all route last",
            )
        is_catch_all = "when" not in route or always_true(route["when"])
        if catch_all is None and is_catch_all:
            catch_all = (i, rname)
    if c.routes and catch_all is None:
        c.emit(
            "PR111",
            ("routes",),
            "no route matches every request, so some requests would have nowhere to go",
            key=True,
            hint="end the list with a route that has no 'when'",
        )


def _downgrades(c: Checker) -> list[tuple[int, str]]:
    out = []
    for i, budget in enumerate(c.budgets):
        on_exceed = budget.get("on_exceed") if isinstance(budget, dict) else None
        if isinstance(on_exceed, dict) and _is_str(on_exceed.get("downgrade")):
            out.append((i, on_exceed["downgrade"]))
    return out


def _check_budgets(c: Checker) -> None:
    routes = c.route_names()
    for i, target in _downgrades(c):
        if target not in routes and target not in c.groups:
            if target in c.models:
                message = f"'{target}' is a model alias, not a route or group"
                hint: str | None = (
                    "downgrade to a route, or to a group that lists the model:"
                    f" groups: {{fallback: {{models: [{target}]}}}}"
                )
            else:
                message = f"unknown route or group '{target}'"
                hint = close_or_defined(target, [*routes, *c.groups], "routes and groups")
            c.emit("PR103", ("budgets", i, "on_exceed", "downgrade"), message, hint=hint)
        elif target in routes and (target in c.groups or target in c.models):
            # the guard looks models and groups up before routes: the route would be ignored,
            # while the cycle and reachability checks would reason about it
            other = "group" if target in c.groups else "model alias"
            c.emit(
                "PR128",
                ("budgets", i, "on_exceed", "downgrade"),
                f"downgrade target '{target}' is both a route and a {other}",
                hint=f"rename the route or the {other}",
            )
    for i, budget in enumerate(c.budgets):
        if not isinstance(budget, dict):
            continue
        for j, rname in enumerate(_list(budget.get("routes"))):
            if _is_str(rname) and rname not in routes:
                c.emit(
                    "PR104",
                    ("budgets", i, "routes", j),
                    f"unknown route '{rname}'",
                    hint=close_or_defined(rname, routes, "routes"),
                )
        warn = [w for w in _list(budget.get("warn_at")) if isinstance(w, (int, float))]
        wrong = next(((a, b) for a, b in itertools.pairwise(warn) if b <= a), None)
        if wrong is not None:
            c.emit(
                "PR123",
                ("budgets", i, "warn_at"),
                "warn_at fractions must be strictly ascending,"
                f" but {wrong[1]:g} follows {wrong[0]:g}",
                hint="list each fraction once, smallest first",
            )
    _check_downgrade_cycles(c, routes)


def _check_downgrade_cycles(c: Checker, routes: list[str]) -> None:
    """A budget on route A downgrading to B, and one on B downgrading to A, never settles."""
    edges: dict[str, list[tuple[str, int]]] = {r: [] for r in routes}
    for i, target in _downgrades(c):
        if target not in edges:
            continue  # groups are end points: the call keeps its route
        scope = _list(_dict(c.budgets[i]).get("routes")) or routes
        for source in scope:
            if _is_str(source) and source in edges and source != target:
                edges[source].append((target, i))
    for loop, budget in _cycles(routes, edges.__getitem__):
        c.emit(
            "PR113",
            ("budgets", budget, "on_exceed", "downgrade"),
            "budget downgrades form a cycle: " + " -> ".join([*loop, loop[0]]),
        )


_Label = TypeVar("_Label")


def _cycles(
    nodes: Iterable[str], edges: Callable[[str], Iterable[tuple[str, _Label]]]
) -> Iterator[tuple[list[str], _Label]]:
    """Each cycle reachable from ``nodes``, once: its nodes in order, and the label of the edge
    that closes it. ``edges(node)`` gives a node's successors with their labels."""
    # an iterative depth-first search, each node entered once: enumerating every path from
    # every node took exponential time, and recursion failed on long chains
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for root in nodes:
        if root in state:
            continue
        trail = [root]
        state[root] = 1
        pending = [iter(edges(root))]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                state[trail.pop()] = 2
                pending.pop()
                continue
            target, label = step
            if state.get(target) == 1:
                loop = trail[trail.index(target) :]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    yield loop, label
            elif target not in state:
                state[target] = 1
                trail.append(target)
                pending.append(iter(edges(target)))


def _check_unused(c: Checker) -> None:
    used: set[str] = set()
    for route in c.routes:
        if isinstance(route, dict):
            used.update(t for _, t in targets(route.get("to")))
    for group in c.groups.values():
        used.update(m for _, m in group_members(group))
    used.update(t for _, t in _downgrades(c))
    for name in c.models:
        if name not in used:
            c.emit("PR105", ("models", name), f"model '{name}' is never used", key=True)
    for name in c.groups:
        if name not in used:
            c.emit("PR106", ("groups", name), f"group '{name}' is never used", key=True)
