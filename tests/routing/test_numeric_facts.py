"""Ordering tests (``gt``, ``gte``, ``lt``, ``lte``) hold for any real number a call's metadata
carries, as ``eq`` and ``in`` already did: numpy's integers (a pandas row's values) and
fractions are numbers, though not ``int`` or ``float``."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from policyroute.explain import explain
from policyroute.policy.compile import compile_policy
from policyroute.policy.conditions import compile_test
from policyroute.policy.model import Test as T
from policyroute.request import Request

from .helpers import fc, msgs, policy, route

SIX: list[Any] = [6, 6.0, Decimal(6), Fraction(6)]
NOT_NUMBERS: list[Any] = [True, "7", [7], {"n": 7}]
try:
    import numpy
except ImportError:  # not a dependency: its cases are left out
    pass
else:
    SIX += [numpy.int64(6), numpy.int32(6), numpy.uint8(6), numpy.float32(6.0)]
    NOT_NUMBERS.append(numpy.bool_(True))


@pytest.mark.parametrize("six", SIX, ids=lambda v: type(v).__name__)
def test_every_real_number_is_ordered_as_it_is_compared(six: Any) -> None:
    assert compile_test(T("eq", 6))(six)
    assert compile_test(T("in", (6,)))(six)
    assert compile_test(T("gt", 5))(six)
    assert compile_test(T("gte", 6))(six)
    assert compile_test(T("lt", 6.5))(six)
    assert compile_test(T("lte", Decimal("6.0")))(six)
    assert not compile_test(T("gt", 6))(six)
    assert not compile_test(T("lt", Decimal(6)))(six)


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_what_is_no_number_is_never_greater_nor_smaller(value: Any) -> None:
    assert not compile_test(T("gt", 0))(value)
    assert not compile_test(T("lt", 100))(value)


@pytest.mark.parametrize("six", SIX, ids=lambda v: type(v).__name__)
def test_a_call_routes_by_a_numeric_metadata_value_as_explain_says(six: Any) -> None:
    compiled = compile_policy(
        policy(
            [
                route("big", "a", when=fc("metadata.n", "gt", 5)),
                route("default", "b"),
            ]
        )
    )
    request = Request(messages=msgs(), metadata={"n": six})
    assert compiled.route(request).route == "big"
    assert explain(compiled, request).route == "big"
    small = Request(messages=msgs(), metadata={"n": six - 2})
    assert compiled.route(small).route == "default"
