"""Semantic checks of conditions (``when``): fact paths, regexes, operators that cannot hold.

Works on the loaded tree, defensively: the schema may already have reported a malformed
condition, and these checks must neither crash on it nor report it twice.

Example:
    >>> always_true({"all": []}), always_true({"has_tools": True})
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from policyroute._written import written
from policyroute.policy.facts_catalog import DERIVED_FACTS, FACT_PREFIXES, FACT_ROOTS, fact_type
from policyroute.policy.hints import boolean_word_hint, did_you_mean
from policyroute.policy.load import JsonPath
from policyroute.policy.regex_degree import slow_search
from policyroute.policy.regex_risk import catastrophic
from policyroute.policy.regexes import regex_warnings

__all__ = ["always_true", "check_condition"]

Emit = Callable[..., None]

_COMBINATORS = ("all", "any", "not")
_ORDER_OPS = ("gt", "gte", "lt", "lte")


def always_true(cond: Any) -> bool:
    """Whether a condition holds for every request (``all: []``, ``x: {ne: null}``, nestings).

    ``ne: null`` and ``nin: []`` hold on every value, an absent fact included.
    """
    if not isinstance(cond, dict) or not cond:
        return False
    for key, value in cond.items():
        if key == "all":
            if not (isinstance(value, list) and all(always_true(c) for c in value)):
                return False
        elif key == "any":
            if not (isinstance(value, list) and any(always_true(c) for c in value)):
                return False
        elif key == "not" or not _always_holds(value):
            return False
    return True


def _always_holds(test: Any) -> bool:
    """A fact's test that holds for every value, absent included (``ne: null``, ``nin: []``)."""
    return (
        isinstance(test, dict)
        and bool(test)
        and all((op, _shape(v)) in (("ne", "null"), ("nin", "[]")) for op, v in test.items())
    )


def check_condition(cond: Any, path: JsonPath, emit: Emit) -> None:
    """Report invalid fact paths, bad regexes and impossible tests under ``cond``."""
    if not isinstance(cond, dict):
        return
    for key, value in cond.items():
        here = (*path, key)
        if key in ("all", "any"):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    check_condition(item, (*here, i), emit)
        elif key == "not":
            check_condition(value, here, emit)
        elif isinstance(key, str) and key and _check_fact_path(key, here, emit):
            _check_test(key, value, here, emit)


def _check_fact_path(fact: str, path: JsonPath, emit: Emit) -> bool:
    parts = fact.split(".")
    if any(not part for part in parts):
        emit("PR116", path, f"fact path {fact!r} has an empty segment", key=True)
        return False
    root = parts[0]
    if root not in FACT_ROOTS:
        emit(
            "PR116",
            path,
            f"unknown fact {root!r}",
            key=True,
            hint=did_you_mean(root, FACT_ROOTS)
            or "facts are metadata.<path>, params.<name>, " + ", ".join(DERIVED_FACTS),
        )
        return False
    if root in FACT_PREFIXES and len(parts) == 1:
        emit(
            "PR116",
            path,
            f"fact {root!r} needs a field name",
            key=True,
            hint=f"e.g. {root}.user_id" if root == "metadata" else "e.g. params.temperature",
        )
        return False
    if root not in FACT_PREFIXES and len(parts) > 1:
        emit("PR116", path, f"fact {root!r} has no field {'.'.join(parts[1:])!r}", key=True)
        return False
    return True


def _check_test(fact: str, test: Any, path: JsonPath, emit: Emit) -> None:
    if isinstance(test, dict):
        ops = test
    elif isinstance(test, (str, int, float, bool)) or test is None:
        ops = {"eq": test}
    else:
        return
    pattern = ops.get("regex")
    if isinstance(pattern, str):
        _check_regex(pattern, (*path, "regex") if isinstance(test, dict) else path, emit)
    for op, value in ops.items():
        vacuous = _VACUOUS.get((op, _shape(value)))
        if vacuous:
            where = (*path, op) if isinstance(test, dict) else path
            emit("PR117", where, f"{fact}: {vacuous[0]}", hint=vacuous[1])
    kind = fact_type(fact)
    if kind is None:
        return
    for op, value in ops.items():
        if (op, _shape(value)) in _VACUOUS:
            continue  # reported above, once
        problem = _impossible(kind, op, value)
        if problem:
            where = (*path, op) if isinstance(test, dict) else path
            hint = _TYPE_HINTS.get(kind)
            if kind == "bool":
                hint = (
                    boolean_word_hint(value) or f"this fact is true or false: use e.g. {fact}: true"
                )
            emit("PR117", where, f"{fact}: {problem}", hint=hint)


def _check_regex(pattern: str, path: JsonPath, emit: Emit) -> None:
    try:
        warned = regex_warnings(pattern)
    except re.error as exc:
        emit("PR115", path, f"regex does not compile: {exc.msg} at position {exc.pos}")
        return
    except RecursionError:  # re's parser recurses once per group
        emit("PR115", path, "regex does not compile: its groups are nested too deeply")
        return
    except OverflowError as exc:  # a{4294967295}
        emit("PR115", path, f"regex does not compile: {exc}")
        return
    risk = catastrophic(pattern)
    if risk is not None:
        emit(
            "PR127",
            path,
            f"regex can take exponential time on some texts: {risk}",
            hint="repeat one thing once: (a+)+ is a+, (\\w+\\s?)+ is [\\w\\s]+; or end each"
            " repeated part with a character it cannot match, as in (\\w+,)+",
        )
    slow = None if risk is not None else slow_search(pattern)
    if slow is not None:
        emit(
            "PR127",
            path,
            f"regex can take minutes on a long text: {slow}",
            hint="a regex is searched for anywhere, so a leading .* is not needed (foo.*bar);"
            " put a character the repetitions cannot match between them (\\w+ \\w+), or"
            " anchor the pattern with ^",
        )
    for message in warned:
        # it compiles today, but a later Python may read it differently (FutureWarning)
        emit(
            "PR115",
            path,
            f"regex may change meaning in a future Python: {message}",
            hint="escape a literal '[', '-', '&', '~' or '|' inside [...] with a backslash",
            severity="warning",
        )


# Tests that hold for no value at all, whatever the fact: (message, hint).
_VACUOUS: dict[tuple[str, str], tuple[str, str]] = {
    ("eq", "null"): (
        "'eq: null' never holds: a fact that is null counts as absent",
        "test absence with exists: false",
    ),
    ("in", "[]"): ("'in: []' never holds: the list is empty", "list the values to match"),
}


def _shape(value: Any) -> str:
    if value is None:
        return "null"
    return "[]" if isinstance(value, list) and not value else ""


_TYPE_HINTS = {
    "int": "this fact is a whole number: use eq, ne, in, nin, gt, gte, lt or lte",
    "str": "this fact is text: use eq, ne, in, nin, regex or contains",
    "str_or_null": "this fact is text or null: use eq, ne, in, nin, regex, contains or exists",
    "list": "tags is a list: use contains, in, nin or exists",
}


# What each fact type is, in the words of a diagnostic (never the catalog's type names).
_KIND_WORDS = {
    "int": "a whole number",
    "bool": "true or false",
    "str": "text",
    "str_or_null": "text or null",
    "list": "a list",
}


def _fits(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "str_or_null":
        return value is None or isinstance(value, str)
    return True


def _impossible(kind: str, op: str, value: Any) -> str | None:
    """Why ``op: value`` can never hold for a fact of type ``kind``, or ``None`` if it can."""
    if op == "exists":
        return None
    if kind == "list":
        if op in ("eq", "ne"):
            return f"'{op}' compares the whole tag list; use contains to test one tag"
        if op in (*_ORDER_OPS, "regex"):
            return f"'{op}' does not apply to a list"
        # tags are strings: a tag can never equal a number, a list or a mapping
        if op == "contains" and not isinstance(value, str):
            return f"tags are text: no tag can equal {written(value)}"
        in_tags = op == "in" and isinstance(value, list) and value
        if in_tags and not any(isinstance(v, str) for v in value):
            return f"tags are text: no value in {written(value)} can equal a tag"
        return None
    words = _KIND_WORDS.get(kind, kind)
    if op in _ORDER_OPS:
        return None if kind == "int" else f"'{op}' compares numbers, but the fact is {words}"
    if op == "regex" or op == "contains":
        if not kind.startswith("str"):
            return f"'{op}' needs text, but the fact is {words}"
        if op == "contains" and not isinstance(value, str):
            return f"'contains' finds text in text, but {written(value)} is not text"
        return None
    if op in ("eq", "ne") and not _fits(kind, value):
        return f"{written(value)} can never equal this fact, which is {words}"
    in_op = op in ("in", "nin") and isinstance(value, list) and value
    if in_op and not any(_fits(kind, v) for v in value):
        return f"no value in {written(value)} can equal this fact, which is {words}"
    return None
