"""Nested groups and downgrade chains of any shape are checked in bounded time and depth."""

from __future__ import annotations

import pytest

from policyroute.errors import PolicyError
from policyroute.policy.compile import compile_policy
from policyroute.policy.model import GroupSpec, ModelSpec, PolicySpec, RouteSpec, TargetSpec
from policyroute.policy.nesting import MAX_EXPANSION, MAX_GROUP_DEPTH, measure
from policyroute.policy.validate import validate_text

HEAD = "policyroute: 1\nname: t\nmodels:\n  a: {model: openai/gpt-4o-mini}\n"


def _chain(n: int) -> str:
    groups = "".join(
        f"  g{i}: {{models: [{f'g{i + 1}' if i < n - 1 else 'a'}]}}\n" for i in range(n)
    )
    return HEAD + "groups:\n" + groups + "routes:\n  - {name: d, to: g0}\n"


def _dag(n: int) -> str:
    groups = "".join(
        f"  g{i}: {{models: [{', '.join(['a', *(f'g{j}' for j in range(i + 1, n))])}]}}\n"
        for i in range(n)
    )
    return HEAD + "groups:\n" + groups + "routes:\n  - {name: d, to: g0}\n"


def _codes(text: str) -> list[tuple[str, str]]:
    return [(d.code, d.path) for d in validate_text(text, environ={}).diagnostics]


def test_a_long_chain_of_groups_is_one_pr129_not_a_recursion_error() -> None:
    depth = MAX_GROUP_DEPTH + 1
    assert _codes(_chain(1500)) == [("PR129", f"groups.g{1500 - depth}")]


def test_groups_nested_to_the_limit_are_accepted() -> None:
    assert _codes(_chain(MAX_GROUP_DEPTH)) == []


@pytest.mark.timeout(60)  # expanding g0's 2**23 entries would not end in time
def test_groups_listing_each_other_many_times_are_refused_quickly() -> None:
    # g13 is the first to expand past 1000 entries (2**10); g0 would expand to 2**23
    assert _codes(_dag(24)) == [("PR129", "groups.g13")]


def test_a_route_listing_many_groups_is_refused_at_its_target() -> None:
    groups = "".join(f"  g{i}: {{models: [{', '.join(['a'] * 40)}]}}\n" for i in range(30))
    names = ", ".join(f"g{i}" for i in range(30))
    text = HEAD + "groups:\n" + groups + f"routes:\n  - {{name: d, to: [{names}]}}\n"
    assert _codes(text) == [("PR129", "routes[0].to")]


def test_a_long_downgrade_chain_is_checked_without_recursion() -> None:
    n = 1200
    routes = "".join(f"  - {{name: r{i}, to: a, when: {{metadata.k: v{i}}}}}\n" for i in range(n))
    budgets = "".join(
        f"  - {{name: b{i}, limit_usd: 1, window: day, routes: [r{i}],"
        f" on_exceed: {{downgrade: r{i + 1}}}}}\n"
        for i in range(n - 1)
    )
    closing = f"  - {{name: back, limit_usd: 1, window: day, routes: [r{n - 1}],"
    closing += " on_exceed: {downgrade: r0}}\n"
    text = HEAD + "routes:\n" + routes + "  - {name: d, to: a}\nbudgets:\n" + budgets + closing
    assert _codes(text) == [("PR113", f"budgets[{n - 1}].on_exceed.downgrade")]


@pytest.mark.timeout(60)  # walking the 2**23 paths one by one would not end in time
def test_many_downgrade_paths_are_checked_in_linear_time() -> None:
    # every route downgrades to every later one: a DAG with 2**23 paths from the first route
    n = 24
    routes = "".join(f"  - {{name: r{i}, to: a, when: {{metadata.k: v{i}}}}}\n" for i in range(n))
    budgets = "".join(
        f"  - {{name: b{i}-{j}, limit_usd: 1, window: day, routes: [r{i}],"
        f" on_exceed: {{downgrade: r{j}}}}}\n"
        for i in range(n)
        for j in range(i + 1, n)
    )
    assert _codes(HEAD + "routes:\n" + routes + "  - {name: d, to: a}\nbudgets:\n" + budgets) == []


def test_measure_counts_repeats_and_depth() -> None:
    sizes, depths = measure({"g": ["a", "h", "h", "x"], "h": ["a", "b"], "c": ["c"]}, {"a", "b"})
    assert (sizes["g"], depths["g"], sizes["h"], depths["h"], sizes["c"]) == (5, 2, 2, 1, 0)


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_compiling_a_spec_built_in_code_is_bounded_too(shape: str) -> None:
    if shape == "deep":
        n = MAX_GROUP_DEPTH + 5
        groups = {f"g{i}": (f"g{i + 1}",) if i < n - 1 else ("a",) for i in range(n)}
    else:
        groups = {f"g{i}": ("a", *(f"g{j}" for j in range(i + 1, 14))) for i in range(14)}
    spec = PolicySpec(
        name="t",
        version=1,
        models={"a": ModelSpec(alias="a", model="openai/gpt-4o-mini")},
        groups={
            name: GroupSpec(name=name, strategy="ordered", models=members)
            for name, members in groups.items()
        },
        routes=(RouteSpec(name="d", to=TargetSpec(("g0",))),),
    )
    with pytest.raises(
        PolicyError, match=str(MAX_GROUP_DEPTH if shape == "deep" else MAX_EXPANSION)
    ):
        compile_policy(spec)
