"""Conditions (``when:``) compiled to plain closures, plus the explanations ``explain`` prints.

Semantics (policy language v1):

- A fact that the request does not have, or whose value is ``None``, is *absent*, and so is
  ``tags`` when the call has no tag. Every operator is false on an absent fact except ``ne``,
  ``nin`` (true) and ``exists: false``.
- ``eq``/``ne``/``in``/``nin`` compare like JSON: ``true`` is not ``1``, ``[1]`` equals ``(1,)``.
- ``in`` on a list fact (``tags``) holds when any element is in the list; ``nin`` when none is.
- ``gt``/``gte``/``lt``/``lte`` compare numbers only (any :class:`numbers.Real`, such as
  numpy's, and ``Decimal``); a string or a bool is never greater or smaller than a number
  (false, not an exception).
- ``regex`` is :func:`re.search` (precompiled) on string facts only, over at most the first
  :data:`REGEX_TEXT_LIMIT` characters (``$`` then matches at the cut): Python's ``re`` cannot be
  interrupted, so a pattern whose time grows faster than the text (``\\s+y`` is quadratic) must
  not see a message of any length.
- ``contains``: a list fact contains an element equal to the value; a string fact contains the
  value as a substring.

Nothing is evaluated with ``eval``; each test becomes a closure over its operand.

Example:
    >>> from policyroute.policy.facts import RequestFacts
    >>> from policyroute.request import Request
    >>> when = FactCondition("metadata.task", (Test("in", ("code", "review")),))
    >>> check = compile_condition(when)
    >>> check(RequestFacts(Request(messages=[], metadata={"task": "code"})))
    True
    >>> describe(when)
    "metadata.task in ['code', 'review']"
"""

from __future__ import annotations

import numbers
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from policyroute.errors import PolicyError
from policyroute.policy.facts import MISSING, RequestFacts, fact_getter
from policyroute.policy.model import AllOf, AnyOf, Condition, FactCondition, Not, Test
from policyroute.policy.regex_degree import slow_search
from policyroute.policy.regex_risk import catastrophic
from policyroute.policy.regexes import compile_quietly

__all__ = [
    "REGEX_TEXT_LIMIT",
    "Predicate",
    "ValueTest",
    "compile_condition",
    "compile_test",
    "condition_facts",
    "describe",
    "explain",
    "json_eq",
]

Predicate = Callable[[RequestFacts], bool]
"""A compiled condition: facts in, bool out."""
ValueTest = Callable[[Any], bool]
"""A compiled test: a fact value (or MISSING) in, bool out."""

REGEX_TEXT_LIMIT: Final = 10_000
"""How many leading characters of a fact a ``regex`` test reads (a search bounded in time)."""

_NUMBER: Final = (int, float, Decimal)
_LIST: Final = (list, tuple)
_SYMBOL: Final[Mapping[str, str]] = {
    "eq": "==",
    "ne": "!=",
    "in": "in",
    "nin": "not in",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "regex": "=~",
    "contains": "contains",
}


_ORDERING: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _is_number(value: Any) -> bool:
    # numbers.Real also takes the numbers of other libraries that register as such (numpy's
    # int64, a pandas row's values) and fractions: ``eq`` and ``in`` already held for them.
    return isinstance(value, (*_NUMBER, numbers.Real)) and not isinstance(value, bool)


def json_eq(a: Any, b: Any) -> bool:
    """Equality as in JSON: bools are not numbers, lists and tuples compare alike.

    Example:
        >>> json_eq(True, 1), json_eq(1, 1.0), json_eq([1, "a"], (1, "a"))
        (False, True, True)
    """
    if a is MISSING or b is MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, _LIST) or isinstance(b, _LIST):
        return (
            isinstance(a, _LIST)
            and isinstance(b, _LIST)
            and len(a) == len(b)
            and all(json_eq(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(json_eq(a[k], b[k]) for k in a)
        )
    try:
        return bool(a == b)
    except Exception:  # exotic __eq__ (e.g. arrays): not equal for routing purposes
        return False


# --------------------------------------------------------------------------- tests


def _eq(operand: Any) -> ValueTest:
    if isinstance(operand, str):
        # `v == operand` would run v.__eq__ first: a numpy array in metadata answers with an
        # array whose truth value raises. Only a string can equal a string (MISSING cannot).
        return lambda v: isinstance(v, str) and v == operand
    if operand is None:
        return lambda v: False  # null is absent, and absent equals nothing
    return lambda v: json_eq(v, operand)


def _membership(operands: Any) -> ValueTest:
    """``v in operands`` with JSON equality, in O(1) for hashable scalars."""
    if isinstance(operands, str) or not isinstance(operands, (*_LIST, set, frozenset)):
        raise PolicyError(f"'in'/'nin' need a list, got {operands!r}")
    bools = frozenset(o for o in operands if isinstance(o, bool))
    # bools kept apart: True == 1 and hash(True) == hash(1), but JSON says they differ
    scalars = frozenset(
        o for o in operands if isinstance(o, (str, *_NUMBER)) and not isinstance(o, bool)
    )
    others = tuple(o for o in operands if not isinstance(o, (str, bool, *_NUMBER)))

    def one(v: Any) -> bool:
        if isinstance(v, bool):
            return v in bools
        try:
            if v in scalars:
                return True
        except TypeError:  # unhashable fact value (a mapping)
            pass
        return any(json_eq(v, o) for o in others)

    def test(v: Any) -> bool:
        if v is MISSING:
            return False
        if isinstance(v, _LIST):
            return any(one(e) for e in v)
        return one(v)

    return test


def _compare(op: str, operand: Any) -> ValueTest:
    if not _is_number(operand):
        raise PolicyError(f"'{op}' needs a number, got {operand!r}")
    compare = _ORDERING[op]

    def test(v: Any) -> bool:
        if not _is_number(v):
            return False
        try:
            return bool(compare(v, operand))
        # a Decimal NaN signals InvalidOperation when ordered; another library's number
        # may refuse to be compared with a Decimal operand
        except (ArithmeticError, TypeError):
            return False

    return test


def _regex(operand: Any) -> ValueTest:
    if not isinstance(operand, str):
        raise PolicyError(f"'regex' needs a string, got {operand!r}")
    try:
        search = compile_quietly(operand).search
    except (re.error, RecursionError, OverflowError) as exc:
        raise PolicyError(f"regex {operand!r} does not compile: {exc}") from exc
    risk = catastrophic(operand)
    if risk is not None:  # a spec built in code skips the checks that report PR127
        raise PolicyError(f"regex {operand!r} can take exponential time: {risk}")
    slow = slow_search(operand)
    if slow is not None:
        raise PolicyError(f"regex {operand!r} can take minutes on a long text: {slow}")
    limit = REGEX_TEXT_LIMIT
    # the slice bounds even a quadratic pattern (about 0.25 s for 10,000 spaces and `\s+y`)
    return lambda v: isinstance(v, str) and search(v[:limit]) is not None


def _contains(operand: Any) -> ValueTest:
    def test(v: Any) -> bool:
        if isinstance(v, _LIST):
            return any(json_eq(e, operand) for e in v)
        return isinstance(v, str) and isinstance(operand, str) and operand in v

    return test


def compile_test(test: Test) -> ValueTest:
    """Compile one operator and its operand into a function of the fact's value.

    Raises :class:`~policyroute.errors.PolicyError` for an operand of the wrong kind (the
    policy checks report these before compiling; this is the backstop).

    Example:
        >>> compile_test(Test("gt", 10))(12), compile_test(Test("gt", 10))("12")
        (True, False)
    """
    op, operand = test.op, test.value
    if op == "eq":
        return _eq(operand)
    if op == "ne":
        eq = _eq(operand)
        return lambda v: v is MISSING or not eq(v)
    if op == "in":
        return _membership(operand)
    if op == "nin":
        member = _membership(operand)
        return lambda v: v is MISSING or not member(v)
    if op in ("gt", "gte", "lt", "lte"):
        return _compare(op, operand)
    if op == "regex":
        return _regex(operand)
    if op == "contains":
        return _contains(operand)
    if op == "exists":
        if not isinstance(operand, bool):
            raise PolicyError(f"'exists' needs true or false, got {operand!r}")
        return (lambda v: v is not MISSING) if operand else (lambda v: v is MISSING)
    raise PolicyError(f"unknown operator {op!r}")


# --------------------------------------------------------------------------- conditions


def _always(_: RequestFacts) -> bool:
    return True


def _metadata_key(fact: str) -> str | None:
    """The key of a one-level ``metadata.<key>`` fact (the most common kind), else None."""
    head, _, key = fact.partition(".")
    return key if head == "metadata" and key and "." not in key else None


def _fact(cond: FactCondition) -> Predicate:
    tests = tuple(compile_test(t) for t in cond.tests)
    key = _metadata_key(cond.fact)
    if key is not None and len(tests) == 1:
        # fused read-and-test for `metadata.<key>`: one call per route on the hot path
        (only,) = tests
        only_test = cond.tests[0]
        if only_test.op == "eq" and isinstance(only_test.value, str):
            operand = only_test.value

            def metadata_eq(facts: RequestFacts) -> bool:
                value = facts.metadata.get(key)
                return isinstance(value, str) and value == operand  # see _eq

            return metadata_eq

        def metadata_test(facts: RequestFacts) -> bool:
            value = facts.metadata.get(key)
            return only(MISSING if value is None else value)

        return metadata_test
    get = fact_getter(cond.fact)
    if len(tests) == 1:
        (single,) = tests
        return lambda facts: single(get(facts))

    def all_tests(facts: RequestFacts) -> bool:
        value = get(facts)
        return all(t(value) for t in tests)

    return all_tests


def compile_condition(cond: Condition | None) -> Predicate:
    """Compile a condition tree into one predicate (``None`` = catch-all, always true).

    Example:
        >>> from policyroute.request import Request
        >>> is_long = compile_condition(FactCondition("message_count", (Test("gte", 2),)))
        >>> is_long(RequestFacts(Request(messages=[{"role": "user", "content": "x"}])))
        False
    """
    if cond is None:
        return _always
    if isinstance(cond, FactCondition):
        return _fact(cond)
    if isinstance(cond, AllOf):
        items = tuple(compile_condition(c) for c in cond.items)
        if not items:
            return _always
        if len(items) == 1:
            return items[0]
        if len(items) == 2:
            first, second = items
            return lambda facts: first(facts) and second(facts)
        return lambda facts: all(p(facts) for p in items)
    if isinstance(cond, AnyOf):
        options = tuple(compile_condition(c) for c in cond.items)
        if len(options) == 1:
            return options[0]
        return lambda facts: any(p(facts) for p in options)
    if isinstance(cond, Not):
        inner = compile_condition(cond.item)
        return lambda facts: not inner(facts)
    raise PolicyError(f"not a condition: {cond!r}")


def condition_facts(cond: Condition | None) -> frozenset[str]:
    """Every fact path a condition reads.

    Example:
        >>> sorted(condition_facts(Not(FactCondition("has_tools", (Test("eq", True),)))))
        ['has_tools']
    """
    if cond is None:
        return frozenset()
    if isinstance(cond, FactCondition):
        return frozenset({cond.fact})
    if isinstance(cond, Not):
        return condition_facts(cond.item)
    return frozenset().union(*(condition_facts(c) for c in cond.items))


# --------------------------------------------------------------------------- explanations


_SHOWN: Final = 100
"""Characters of a text (and items of a list) an explanation shows; the rest is counted."""


def _fmt(value: Any) -> str:
    # facts are the caller's data: a message of a megabyte, an integer too long for str(), an
    # object whose repr fails; an explanation names them, shortened, and never raises
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}... ({len(value)} characters)"
    if isinstance(value, int) and value.bit_length() > 4 * _SHOWN:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, _LIST):
        shown = ", ".join(_fmt(v) for v in value[:_SHOWN])
        more = f", ... ({len(value)} items)" if len(value) > _SHOWN else ""
        return f"[{shown}{more}]"
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({type(value).__name__})"


def _describe_test(fact: str, test: Test) -> str:
    if test.op == "exists":
        return f"{fact} exists" if test.value else f"{fact} absent"
    return f"{fact} {_SYMBOL[test.op]} {_fmt(test.value)}"


def describe(cond: Condition | None) -> str:
    """The condition as one readable line (``metadata.task in ['code', 'review']``).

    Example:
        >>> describe(AnyOf((FactCondition("has_tools", (Test("eq", True),)),
        ...                 FactCondition("input_tokens", (Test("gt", 1000),)))))
        'any(has_tools == true, input_tokens > 1000)'
    """
    if cond is None:
        return "catch-all"
    if isinstance(cond, FactCondition):
        return " and ".join(_describe_test(cond.fact, t) for t in cond.tests)
    if isinstance(cond, AllOf):
        return " and ".join(describe(c) for c in cond.items) if cond.items else "always"
    if isinstance(cond, AnyOf):
        return "any(" + ", ".join(describe(c) for c in cond.items) + ")"
    return f"not ({describe(cond.item)})"


def _why_not(fact: str, value: Any, test: Test) -> str:
    if value is MISSING:
        return f"{fact} is absent"
    if test.op == "exists":
        return f"{fact}={_fmt(value)} is present"
    return f"{fact}={_fmt(value)} not {_SYMBOL[test.op]} {_fmt(test.value)}"


def explain(cond: Condition | None, facts: RequestFacts) -> tuple[bool, str]:
    """Evaluate ``cond`` the way its compiled predicate does and say why it holds or not.

    On success the reason describes what held; on failure it names the first test that failed
    with the fact's value (``input_tokens=12 not > 100000``). Evaluation short-circuits in the
    same order as the compiled predicate, so it computes no more facts.

    Example:
        >>> from policyroute.request import Request
        >>> explain(FactCondition("message_count", (Test("gt", 3),)),
        ...         RequestFacts(Request(messages=[])))
        (False, 'message_count=0 not > 3')
    """
    if cond is None:
        return True, "catch-all"
    if isinstance(cond, FactCondition):
        value = fact_getter(cond.fact)(facts)
        for test in cond.tests:
            if not compile_test(test)(value):
                return False, _why_not(cond.fact, value, test)
        return True, describe(cond)
    if isinstance(cond, AllOf):
        for item in cond.items:
            ok, why = explain(item, facts)
            if not ok:
                return False, why
        return True, describe(cond)
    if isinstance(cond, AnyOf):
        reasons = []
        for item in cond.items:
            ok, why = explain(item, facts)
            if ok:
                return True, why
            reasons.append(why)
        return False, "none of: " + "; ".join(reasons) if reasons else "any() of nothing"
    ok, why = explain(cond.item, facts)
    if ok:
        return False, f"not ({why}) failed"
    return True, f"not ({describe(cond.item)})"
