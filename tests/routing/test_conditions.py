"""Conditions: every operator, absent facts, nesting and type mismatches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from policyroute.errors import PolicyError
from policyroute.policy.conditions import (
    compile_condition,
    compile_test,
    condition_facts,
    describe,
    explain,
    json_eq,
)
from policyroute.policy.facts import MISSING, RequestFacts
from policyroute.policy.model import AllOf, AnyOf, Not
from policyroute.policy.model import Test as T
from policyroute.request import Request

from .helpers import fc


def facts(**metadata: Any) -> RequestFacts:
    return RequestFacts(
        Request(messages=[{"role": "user", "content": "hi"}], metadata=metadata, tags=("a", "b"))
    )


def holds(op: str, operand: Any, value: Any) -> bool:
    return compile_test(T(op, operand))(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("op", "operand", "value", "expected"),
    [
        ("eq", "x", "x", True),
        ("eq", "x", "y", False),
        ("eq", 1, 1.0, True),
        ("eq", 1, True, False),
        ("eq", True, 1, False),
        ("eq", True, True, True),
        ("eq", [1, "a"], (1, "a"), True),
        ("eq", {"k": 1}, {"k": 1}, True),
        ("eq", {"k": 1}, {"k": True}, False),
        ("ne", "x", "y", True),
        ("ne", "x", "x", False),
        ("ne", 1, True, True),
        ("in", ["a", "b"], "b", True),
        ("in", ["a", "b"], "c", False),
        ("in", [1, 2], 2.0, True),
        ("in", [1], True, False),
        ("in", [True], 1, False),
        ("in", [True, 1], 1, True),
        ("in", [[1, 2]], [1, 2], False),  # a list fact means "any element in the list"
        ("in", [{"k": 1}], {"k": 1}, True),
        ("in", ["a", "b"], ["z", "b"], True),
        ("in", ["a", "b"], ["z"], False),
        ("in", [], "a", False),
        ("nin", ["a"], "b", True),
        ("nin", ["a"], "a", False),
        ("nin", ["a"], ["z", "a"], False),
        ("gt", 10, 11, True),
        ("gt", 10, 10, False),
        ("gte", 10, 10, True),
        ("lt", 10, 9.5, True),
        ("lt", 10, 10, False),
        ("lte", 10, 10, True),
        ("gt", 10, Decimal("10.5"), True),
        ("gt", Decimal("0.5"), 1, True),
        ("gt", 0, "5", False),  # a string never compares with a number
        ("lt", 10, "5", False),
        ("gt", 0, True, False),  # bools are not numbers
        ("lte", 1, [0], False),
        ("regex", r"^eu-", "eu-west", True),
        ("regex", r"west", "eu-west", True),  # searched, not full-matched
        ("regex", r"^west", "eu-west", False),
        ("regex", r"\d", 5, False),
        ("contains", "b", ["a", "b"], True),
        ("contains", "z", ["a", "b"], False),
        ("contains", "ell", "hello", True),
        ("contains", 1, [True], False),
        ("contains", 1, "x1", False),
        ("contains", "x", {"x": 1}, False),
        ("exists", True, "v", True),
        ("exists", False, "v", False),
    ],
)
def test_operator(op: str, operand: Any, value: Any, expected: bool) -> None:
    assert holds(op, operand, value) is expected


@pytest.mark.parametrize(
    ("op", "operand", "expected"),
    [
        ("eq", "x", False),
        ("eq", None, False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("nin", ["x"], True),
        ("gt", 0, False),
        ("gte", 0, False),
        ("lt", 0, False),
        ("lte", 0, False),
        ("regex", ".*", False),
        ("contains", "x", False),
        ("exists", True, False),
        ("exists", False, True),
    ],
)
def test_absent_fact(op: str, operand: Any, expected: bool) -> None:
    assert holds(op, operand, MISSING) is expected
    predicate = compile_condition(fc("metadata.nope", op, operand))
    assert predicate(facts()) is expected


def test_null_metadata_counts_as_absent() -> None:
    f = facts(user=None, nested={"a": None})
    assert compile_condition(fc("metadata.user", "exists", False))(f)
    assert compile_condition(fc("metadata.nested.a", "exists", False))(f)
    assert compile_condition(fc("metadata.nested.a.b", "exists", False))(f)
    assert not compile_condition(fc("metadata.nested", "exists", False))(f)


def test_deep_metadata_path() -> None:
    f = facts(user={"tier": "gold", "age": 3})
    assert compile_condition(fc("metadata.user.tier", "eq", "gold"))(f)
    assert compile_condition(fc("metadata.user.age", "gt", 2))(f)
    assert not compile_condition(fc("metadata.user.tier.x", "exists", True))(f)


def test_tags_list_fact() -> None:
    f = facts()
    assert compile_condition(fc("tags", "contains", "a"))(f)
    assert compile_condition(fc("tags", "in", ["z", "b"]))(f)
    assert not compile_condition(fc("tags", "in", ["z"]))(f)
    assert compile_condition(fc("tags", "nin", ["z"]))(f)
    assert not compile_condition(fc("tags", "eq", "a"))(f)


def test_several_tests_on_one_fact_must_all_hold() -> None:
    cond = AllOf(())
    assert compile_condition(cond)(facts())
    from policyroute.policy.model import FactCondition

    between = FactCondition("metadata.n", (T("gt", 1), T("lt", 5)))
    assert compile_condition(between)(facts(n=3))
    assert not compile_condition(between)(facts(n=7))


def test_nesting() -> None:
    cond = AllOf(
        (
            AnyOf((fc("metadata.task", "in", ["code", "review"]), fc("has_tools", "eq", True))),
            Not(fc("metadata.tier", "eq", "free")),
        )
    )
    check = compile_condition(cond)
    assert check(facts(task="code"))
    assert not check(facts(task="code", tier="free"))
    assert not check(facts(task="chat"))
    assert check(facts(task="review", tier="gold"))
    assert compile_condition(None)(facts())
    assert condition_facts(cond) == {"metadata.task", "has_tools", "metadata.tier"}


@pytest.mark.parametrize(
    "test",
    [
        T("gt", "10"),
        T("lt", True),
        T("in", "abc"),
        T("regex", "("),
        T("regex", 3),
        T("exists", "yes"),
        T("bogus", 1),  # type: ignore[arg-type]
    ],
)
def test_bad_operands_are_policy_errors(test: T) -> None:
    with pytest.raises(PolicyError):
        compile_test(test)


def test_json_eq() -> None:
    assert json_eq([1, [2, {"a": True}]], (1, (2, {"a": True})))
    assert not json_eq([1], [1, 2])
    assert not json_eq({"a": 1}, {"b": 1})
    assert not json_eq(MISSING, MISSING)


def test_describe_and_explain() -> None:
    cond = AnyOf((fc("metadata.task", "in", ["code", "review"]), fc("has_tools", "eq", True)))
    assert describe(cond) == "any(metadata.task in ['code', 'review'], has_tools == true)"
    assert describe(None) == "catch-all"
    assert describe(Not(fc("metadata.x", "exists", True))) == "not (metadata.x exists)"
    assert explain(cond, facts(task="code")) == (True, "metadata.task in ['code', 'review']")
    ok, why = explain(cond, facts())
    assert not ok
    assert why == "none of: metadata.task is absent; has_tools=false not == true"
    assert explain(fc("message_count", "gt", 3), facts()) == (False, "message_count=1 not > 3")
    assert explain(fc("metadata.x", "exists", False), facts(x=1)) == (
        False,
        "metadata.x=1 is present",
    )
    assert explain(Not(fc("message_count", "eq", 1)), facts())[0] is False
    assert explain(None, facts()) == (True, "catch-all")
