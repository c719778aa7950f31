"""First-match-wins route matching that stays nearly flat as routes grow.

Many routes test one fact for an exact value (``metadata.tenant: t123``, ``metadata.task:
{in: [code, review]}``). Such a test is a necessary condition of its route, so a request
whose fact value is ``v`` can only match routes indexed under ``v`` — plus the routes that
could not be indexed. :class:`RouteMatcher` keeps, per indexed fact, a map from value to the
(sorted) indices of those routes merged with the unindexed ones, looks the request's values up,
and evaluates only the candidates, in route order, so the first match is the same one a linear
scan would find.

Only cheap facts (``metadata.*``, ``params.*``, ``tags``, ``model``, ...) are indexed: looking
a fact up happens for every request, and ``input_tokens`` must stay unevaluated unless a
condition that reaches it needs it.

Example:
    >>> from policyroute.policy.model import FactCondition, Test
    >>> from policyroute.policy.facts import RequestFacts
    >>> from policyroute.request import Request
    >>> conds = [FactCondition("metadata.t", (Test("eq", "a"),)),
    ...          FactCondition("metadata.t", (Test("eq", "b"),)), None]
    >>> m = RouteMatcher(conds)
    >>> m.first_match(RequestFacts(Request(messages=[], metadata={"t": "b"})))
    1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from policyroute.policy.conditions import Predicate, compile_condition
from policyroute.policy.facts import (
    CHEAP_FACTS,
    FACT_PREFIXES,
    MISSING,
    FactGetter,
    RequestFacts,
    fact_getter,
)
from policyroute.policy.model import AllOf, Condition, FactCondition

__all__ = ["RouteMatcher", "index_keys"]

_SCALAR: Final = (str, int, float, Decimal)
_LIST: Final = (list, tuple)
_NOTHING: Final[tuple[int, ...]] = ()


def _cheap(fact: str) -> bool:
    return fact in CHEAP_FACTS or fact.partition(".")[0] in FACT_PREFIXES


def _values(test_op: str, operand: Any) -> frozenset[Any] | None:
    """The exact values an ``eq``/``in`` operand admits, if all are indexable scalars."""
    if test_op == "eq":
        operands: Sequence[Any] = (operand,)
    elif test_op == "in" and isinstance(operand, _LIST):
        operands = operand
    else:
        return None
    # bools are indexable too, but kept apart from numbers (True == 1 in Python, not in JSON)
    for o in operands:
        if not isinstance(o, (*_SCALAR, bool)) or o != o:  # o != o: NaN never equals anything
            return None
    return frozenset((type(o) is bool, o) for o in operands)


def index_keys(cond: Condition | None) -> dict[str, frozenset[Any]]:
    """Facts a condition requires to be one of a few exact values: ``{fact: keys}``.

    Keys are ``(is_bool, value)`` pairs. Only top-level tests (the condition itself, or items
    of a top-level ``all``) count, because only those are necessary for the route to match.

    Example:
        >>> from policyroute.policy.model import Test
        >>> sorted(index_keys(FactCondition("metadata.t", (Test("in", ["a", "b"]),)))["metadata.t"])
        [(False, 'a'), (False, 'b')]
    """
    exact: dict[str, list[frozenset[Any]]] = {}
    member: dict[str, list[frozenset[Any]]] = {}
    stack: list[Condition] = [] if cond is None else [cond]
    while stack:
        item = stack.pop()
        if isinstance(item, AllOf):
            stack.extend(item.items)
        elif isinstance(item, FactCondition) and _cheap(item.fact):
            for test in item.tests:
                keys = _values(test.op, test.value)
                if keys is not None:
                    (exact if test.op == "eq" else member).setdefault(item.fact, []).append(keys)
    out: dict[str, frozenset[Any]] = {}
    for fact in {**exact, **member}:
        if fact in exact:
            # An ``eq`` on a scalar holds for a scalar alone: the value must pass every test.
            out[fact] = frozenset.intersection(*exact[fact], *member.get(fact, ()))
        else:
            # ``in`` alone: a list fact (tags, a metadata list) passes each test when any of
            # its elements does, so ``[a, 0]`` passes ``{in: [a]}`` and ``{in: [0]}`` with no
            # element in both; only the union holds every element that can pass one.
            out[fact] = frozenset.union(*member[fact])
    return out


class _Table:
    __slots__ = ("bools", "get", "scalars")

    def __init__(
        self,
        get: FactGetter,
        scalars: dict[Any, tuple[int, ...]],
        bools: dict[bool, tuple[int, ...]],
    ) -> None:
        self.get = get
        self.scalars = scalars
        self.bools = bools

    def lookup(self, value: Any) -> tuple[int, ...] | None:
        if isinstance(value, bool):
            return self.bools.get(value)
        try:
            return self.scalars.get(value)
        except TypeError:  # unhashable value: equals no indexed scalar
            return None


class RouteMatcher:
    """Finds the first route whose condition holds, evaluating as few conditions as it can.

    Args:
        conditions: each route's condition in order (``None`` = catch-all).
        min_routes: index a fact only if at least this many routes test it exactly (one
            lookup per request is worth it only when it can rule several routes out).
    """

    __slots__ = ("_always", "_predicates", "_tables")

    def __init__(self, conditions: Sequence[Condition | None], *, min_routes: int = 2) -> None:
        self._predicates: tuple[Predicate, ...] = tuple(compile_condition(c) for c in conditions)
        keyed = [index_keys(c) for c in conditions]
        frequency = Counter(fact for keys in keyed for fact in keys)
        # each route is indexed under its most shared exact fact: fewer tables, fewer lookups
        chosen: list[str | None] = []
        for keys in keyed:
            usable = [f for f in keys if frequency[f] >= min_routes]
            chosen.append(max(usable, key=lambda f: frequency[f]) if usable else None)

        # a catch-all ends the search: no later route is ever reached
        stop = len(conditions)
        for i, cond in enumerate(conditions):
            if cond is None:
                stop = i + 1
                break
        always = tuple(i for i in range(stop) if chosen[i] is None)
        self._always = always

        tables: list[_Table] = []
        for fact in dict.fromkeys(f for f in chosen[:stop] if f is not None):
            by_key: dict[Any, list[int]] = {}
            for i in range(stop):
                if chosen[i] == fact:
                    for key in keyed[i][fact]:
                        by_key.setdefault(key, []).append(i)
            scalars: dict[Any, tuple[int, ...]] = {}
            bools: dict[bool, tuple[int, ...]] = {}
            for (is_bool, value), indices in by_key.items():
                merged = tuple(sorted(set(indices).union(always)))
                if is_bool:
                    bools[value] = merged
                else:
                    scalars[value] = merged
            tables.append(_Table(fact_getter(fact), scalars, bools))
        self._tables = tuple(tables)

    @property
    def indexed_facts(self) -> int:
        """How many facts are indexed (for tests and ``explain``)."""
        return len(self._tables)

    def candidates(self, facts: RequestFacts) -> tuple[int, ...]:
        """Indices of the routes that may match, ascending."""
        hits: tuple[int, ...] | None = None
        for table in self._tables:
            value = table.get(facts)
            if value is MISSING:
                continue
            if value.__class__ is str:  # the common case, without the generic lookup's checks
                got = table.scalars.get(value)
                if not got:
                    continue
                found_t = got
            elif isinstance(value, _LIST):
                # a list fact matches `in` when any element does: union of the elements' routes
                found: set[int] = set()
                for element in value:
                    got = table.lookup(element)
                    if got:
                        found.update(got)
                if not found:
                    continue
                found.update(self._always)
                found_t = tuple(sorted(found))
            else:
                got = table.lookup(value)
                if not got:
                    continue
                found_t = got
            hits = found_t if hits is None else tuple(sorted(set(hits).union(found_t)))
        return self._always if hits is None else hits

    def first_match(self, facts: RequestFacts) -> int:
        """Index of the first route whose condition holds, or ``-1``."""
        predicates = self._predicates
        for i in self.candidates(facts) if self._tables else self._always:
            if predicates[i](facts):
                return i
        return -1

    def first_match_linear(self, facts: RequestFacts) -> int:
        """The same answer by evaluating every route in order (reference and ``explain``)."""
        for i, predicate in enumerate(self._predicates):
            if predicate(facts):
                return i
        return -1
