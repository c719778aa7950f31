"""The indexed matcher picks the same route as a plain linear reading of the policy.

The reference evaluator below is written from the language definition, independently of
policyroute.policy.conditions, so these properties check the compiled conditions too.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyroute.policy.compile import compile_policy
from policyroute.policy.facts import RequestFacts
from policyroute.policy.model import AllOf, AnyOf, Condition, FactCondition, Not
from policyroute.policy.model import Test as T
from policyroute.request import Request
from policyroute.routing.index import RouteMatcher, index_keys

from .helpers import model, policy, route

ABSENT = object()
FACTS = ["metadata.k1", "metadata.k2", "metadata.k1.sub", "tags", "params.temperature",
         "message_count", "has_tools", "model"]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(["a", "b", "c", "x1"]),
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from([0.0, 1.0, 1.5]),
)
values = st.one_of(
    scalars,
    st.none(),
    st.lists(scalars, max_size=3),
    st.fixed_dictionaries({"sub": scalars}),
)


@st.composite
def value_tests(draw: st.DrawFn) -> T:
    op = draw(st.sampled_from(["eq", "eq", "eq", "in", "in", "ne", "nin", "gt", "gte", "lt",
                               "lte", "regex", "contains", "exists"]))  # fmt: skip
    if op in ("in", "nin"):
        operand: Any = draw(st.lists(scalars, max_size=4))
    elif op in ("gt", "gte", "lt", "lte"):
        operand = draw(st.sampled_from([0, 1, 2, 1.5]))
    elif op == "regex":
        operand = draw(st.sampled_from(["^a", "b", r"\d", "^x1$"]))
    elif op == "exists":
        operand = draw(st.booleans())
    else:
        operand = draw(st.one_of(scalars, st.lists(scalars, max_size=2)))
    return T(op, operand)


fact_conditions = st.builds(
    FactCondition,
    st.sampled_from(FACTS),
    st.lists(value_tests(), min_size=1, max_size=2).map(tuple),
)
conditions: st.SearchStrategy[Condition] = st.recursive(
    fact_conditions,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: AllOf(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=5,
)
# policies lean on exact matches so that the index is exercised, as in real policies
exact = st.builds(
    lambda fact, v, more: AllOf((FactCondition(fact, (T("eq", v),)), *more)),
    st.sampled_from(["metadata.k1", "metadata.k2", "tags", "model", "params.temperature"]),
    scalars,
    st.lists(conditions, max_size=1),
)
route_conditions = st.lists(st.one_of(exact, exact, conditions, st.none()), min_size=1, max_size=12)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    metadata = draw(st.dictionaries(st.sampled_from(["k1", "k2", "k3"]), values, max_size=3))
    params = draw(st.dictionaries(st.just("temperature"), values, max_size=1))
    return Request(
        messages=[{"role": "user", "content": "m"}] * draw(st.integers(0, 3)),
        metadata=metadata,
        params=params,
        tags=draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)),
        tools=draw(st.sampled_from([None, [], [{"type": "function"}]])),
        model=draw(st.sampled_from([None, "a", "b"])),
    )


# --------------------------------------------------------------------------- reference


def ref_fact(request: Request, path: str) -> Any:
    head, _, rest = path.partition(".")
    if head in ("metadata", "params"):
        value: Any = request.metadata if head == "metadata" else request.params
        for key in rest.split("."):
            if not isinstance(value, dict) or value.get(key) is None:
                return ABSENT
            value = value[key]
        return value
    simple = {
        "tags": list(request.tags) or ABSENT,  # a call without tags has no tags fact
        "message_count": len(request.messages),
        "has_tools": bool(request.tools),
        "model": ABSENT if request.model is None else request.model,
    }
    return simple[path]


def norm(v: Any) -> Any:
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("num", float(v))
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, (list, tuple)):
        return ("list", tuple(norm(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((k, norm(x)) for k, x in v.items())))
    return ("other", id(v))


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def ref_test(v: Any, t: T) -> bool:
    present = v is not ABSENT
    op, x = t.op, t.value
    if op == "exists":
        return present == x
    if op == "ne":
        return not present or norm(v) != norm(x)
    if op == "nin":
        return not ref_test(v, T("in", x))
    if not present:
        return False
    if op == "eq":
        return x is not None and norm(v) == norm(x)
    if op == "in":
        wanted = {norm(o) for o in x}
        if isinstance(v, list):
            return any(norm(e) in wanted for e in v)
        return norm(v) in wanted
    if op in ("gt", "gte", "lt", "lte"):
        if not is_num(v):
            return False
        return {"gt": v > x, "gte": v >= x, "lt": v < x, "lte": v <= x}[op]
    if op == "regex":
        return isinstance(v, str) and re.search(x, v) is not None
    if op == "contains":
        if isinstance(v, list):
            return any(norm(e) == norm(x) for e in v)
        return isinstance(v, str) and isinstance(x, str) and x in v
    raise AssertionError(op)


def ref_holds(cond: Condition | None, request: Request) -> bool:
    if cond is None:
        return True
    if isinstance(cond, FactCondition):
        value = ref_fact(request, cond.fact)
        return all(ref_test(value, t) for t in cond.tests)
    if isinstance(cond, AllOf):
        return all(ref_holds(c, request) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(ref_holds(c, request) for c in cond.items)
    return not ref_holds(cond.item, request)


def ref_first(conds: list[Condition | None], request: Request) -> int:
    return next((i for i, c in enumerate(conds) if ref_holds(c, request)), -1)


# --------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(conds=route_conditions, reqs=st.lists(requests(), min_size=1, max_size=8))
def test_indexed_matcher_equals_reference(
    conds: list[Condition | None], reqs: list[Request]
) -> None:
    for min_routes in (1, 2):
        matcher = RouteMatcher(conds, min_routes=min_routes)
        for request in reqs:
            expected = ref_first(conds, request)
            assert matcher.first_match(RequestFacts(request)) == expected
            assert matcher.first_match_linear(RequestFacts(request)) == expected


@settings(max_examples=40, deadline=None)
@given(conds=route_conditions, reqs=st.lists(requests(), min_size=1, max_size=4))
def test_compiled_policy_routes_like_reference(
    conds: list[Condition | None], reqs: list[Request]
) -> None:
    routes = [route(f"r{i}", "a", c) for i, c in enumerate(conds)] + [route("fallback", "a")]
    compiled = compile_policy(policy(routes, models=[model("a")]))
    names = [r.name for r in routes]
    for request in reqs:
        expected = names[ref_first([*conds, None], request)]
        assert compiled.route(request, trace=False).route == expected
        assert compiled.route(request, trace=True).route == expected


def test_index_is_used_for_exact_matches() -> None:
    conds: list[Condition | None] = [
        FactCondition("metadata.tenant", (T("eq", f"t{i}"),)) for i in range(50)
    ]
    conds.insert(25, FactCondition("message_count", (T("gt", 5),)))
    conds.append(None)
    matcher = RouteMatcher(conds)
    assert matcher.indexed_facts == 1
    facts = RequestFacts(Request(messages=[], metadata={"tenant": "t40"}))
    assert matcher.candidates(facts) == (25, 41, 51)
    assert matcher.first_match(facts) == 41
    unknown = RequestFacts(Request(messages=[], metadata={"tenant": "zz"}))
    assert matcher.candidates(unknown) == (25, 51)


def test_routes_after_a_catch_all_are_never_candidates() -> None:
    conds: list[Condition | None] = [
        FactCondition("metadata.t", (T("eq", "a"),)),
        None,
        FactCondition("metadata.t", (T("eq", "a"),)),
    ]
    matcher = RouteMatcher(conds, min_routes=1)
    facts = RequestFacts(Request(messages=[], metadata={"t": "a"}))
    assert matcher.candidates(facts) == (0, 1)


def test_index_keys() -> None:
    both = AllOf(
        (
            FactCondition("metadata.t", (T("in", ["a", "b", True]),)),
            FactCondition("metadata.t", (T("eq", "a"),)),
            AnyOf((FactCondition("metadata.u", (T("eq", "x"),)),)),
            FactCondition("input_tokens", (T("eq", 5),)),
        )
    )
    assert index_keys(both) == {"metadata.t": frozenset({(False, "a")})}
    assert index_keys(FactCondition("metadata.t", (T("in", [["x"]]),))) == {}
    assert index_keys(None) == {}


def test_a_list_fact_passing_two_in_tests_through_different_elements_is_found() -> None:
    # [a, 0] passes {in: [a]} through "a" and {in: [0]} through 0, with no element in both:
    # indexed under the keys both tests share (none), the route was never tried.
    both_in = AllOf(
        (
            Not(FactCondition("metadata.k1", (T("eq", "a"),))),
            FactCondition("metadata.k2", (T("in", ["a"]), T("in", [0]))),
        )
    )
    facts = RequestFacts(Request(messages=[], metadata={"k2": ["a", 0]}))
    for min_routes in (1, 2):
        matcher = RouteMatcher([both_in, both_in], min_routes=min_routes)
        assert matcher.first_match(facts) == matcher.first_match_linear(facts) == 0
    assert index_keys(both_in) == {"metadata.k2": frozenset({(False, "a"), (False, 0)})}
