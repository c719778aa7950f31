"""Facts of any type and size route (and explain) without raising: conditions are total."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from policyroute.policy.compile import compile_policy

from .helpers import fc, model, policy, route

CONDITIONS = [
    fc("metadata.x", "gt", 5),
    fc("metadata.x", "lte", 5.5),
    fc("metadata.x", "in", (1, "a", True)),
    fc("metadata.x", "nin", (1, "a")),
    fc("metadata.x", "regex", "a"),
    fc("metadata.x", "contains", "a"),
    fc("metadata.x", "eq", 1),
    fc("metadata.x", "ne", (1,)),
    fc("metadata.x.y", "eq", 1),
    fc("metadata.x", "exists", True),
]


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


VALUES: list[Any] = [
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("-Infinity"),
    float("nan"),
    float("inf"),
    10**5000,
    "é" * 3,
    "a" * 1_000_000,
    b"a",
    [1, [2]],
    {"a": 1, "y": 1},
    {1, 2},
    datetime.datetime(2026, 1, 1),
    complex(1, 1),
    _BadRepr(),
    list(range(10_000)),
]


@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_any_metadata_value_routes_without_raising(value: Any, trace: bool) -> None:
    routes = [route(f"r{i}", "a", cond) for i, cond in enumerate(CONDITIONS)]
    compiled = compile_policy(policy([*routes, route("d", "b")]))
    decision = compiled.route({"messages": "hi", "metadata": {"x": value}}, trace=trace)
    assert decision.route in compiled.route_names
    assert all(len(line) < 2_000 for line in decision.trace)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN")])
def test_a_decimal_nan_is_neither_greater_nor_smaller(value: Decimal) -> None:
    routes = [
        route("gt", "a", fc("metadata.x", "gt", 5)),
        route("lte", "a", fc("metadata.x", "lte", 5)),
        route("d", "b"),
    ]
    compiled = compile_policy(policy(routes))
    assert compiled.route({"messages": "hi", "metadata": {"x": value}}).route == "d"


def test_an_explanation_shortens_a_huge_message() -> None:
    compiled = compile_policy(
        policy(
            [route("r", "a", fc("last_user_message", "eq", "hi")), route("d", "b")],
            [model("a", window=None), model("b", window=None)],
        )
    )
    decision = compiled.route({"messages": "x" * 1_000_000})
    (skipped,) = [line for line in decision.trace if line.startswith("route 'r'")]
    assert "(1000000 characters)" in skipped
    assert len(skipped) < 300
