"""``fastest`` compares unstreamed answers at the length the request can have.

Two deployments whose answer-time lines cross: ``quick`` starts at once and generates slowly
(0.1 s + 10 ms a token), ``steady`` starts late and generates fast (1 s + 1 ms a token). At
the typical answer of about 400 tokens ``steady`` is faster (1.4 s against 4.1 s); an answer
capped at 20 tokens takes ``quick`` 0.3 s and ``steady`` 1.02 s. Every figure is fed by hand.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from policyroute.policy.compile import CompiledPolicy, compile_policy
from policyroute.policy.model import DefaultsSpec, Requirements
from policyroute.routing.output_bound import sent_output_bound
from policyroute.routing.stats import DeploymentStatsTracker

from .helpers import group, model, policy, route


def measured() -> DeploymentStatsTracker:
    """A tracker that has seen both deployments answer 100 and 500 tokens, 500 last (the
    moving mean, the typical length, is about 420)."""
    stats = DeploymentStatsTracker(alpha=0.5)
    for _ in range(6):
        for n in (100, 500):
            stats.record_latency("quick", 0.1 + 0.01 * n, output_tokens=n)
            stats.record_latency("steady", 1.0 + 0.001 * n, output_tokens=n)
    return stats


def compiled(
    *,
    route_params: dict[str, Any] | None = None,
    quick_params: dict[str, Any] | None = None,
    default_max_tokens: int | None = None,
) -> CompiledPolicy:
    return compile_policy(
        policy(
            [route("default", "pool", params=route_params or {})],
            models=[model("steady"), model("quick", params=quick_params or {})],
            groups=[group("pool", ("steady", "quick"), "fastest")],
            defaults=DefaultsSpec(max_tokens=default_max_tokens),
        )
    )


def order(policy_: CompiledPolicy, stats: Any, **request: Any) -> list[str]:
    decision = policy_.route({"messages": "x", **request}, stats=stats, trace=False)
    return [c.alias for c in decision.candidates]


def test_the_fits_cross_between_a_short_limit_and_the_typical_length() -> None:
    stats = measured()
    assert stats.typical_output_tokens == pytest.approx(420, abs=1)
    assert stats.ranking_latency("steady") < stats.ranking_latency("quick")  # type: ignore[operator]
    quick = stats.ranking_latency("quick", max_output_tokens=20)
    steady = stats.ranking_latency("steady", max_output_tokens=20)
    assert quick == pytest.approx(0.3, abs=0.02)
    assert steady == pytest.approx(1.02, abs=0.02)
    # a limit past the typical length changes nothing: answers are compared at the typical one
    assert stats.ranking_latency("quick", max_output_tokens=100_000) == stats.ranking_latency(
        "quick"
    )


def test_a_call_limit_of_20_tokens_picks_the_deployment_fastest_for_short_answers() -> None:
    stats = measured()
    plan = compiled()
    assert order(plan, stats) == ["steady", "quick"]
    assert order(plan, stats, max_tokens=20) == ["quick", "steady"]
    assert order(plan, stats, max_completion_tokens=20) == ["quick", "steady"]
    assert order(plan, stats, max_tokens=2000) == ["steady", "quick"]
    # a limit given as None is not given (the executor sends none)
    assert order(plan, stats, max_tokens=None) == ["steady", "quick"]


def test_the_larger_of_two_limits_bounds_the_answer() -> None:
    stats = measured()
    assert order(compiled(), stats, max_tokens=20, max_completion_tokens=2000) == [
        "steady",
        "quick",
    ]


def test_a_route_limit_counts_and_overrides_the_calls() -> None:
    stats = measured()
    assert order(compiled(route_params={"max_tokens": 20}), stats) == ["quick", "steady"]
    # the route's params win over the call's, as the executor merges them
    assert order(compiled(route_params={"max_tokens": 20}), stats, max_tokens=2000) == [
        "quick",
        "steady",
    ]
    assert order(compiled(route_params={"max_tokens": 2000}), stats, max_tokens=20) == [
        "steady",
        "quick",
    ]


def test_the_policy_default_limit_counts_unless_the_call_gives_one() -> None:
    stats = measured()
    plan = compiled(default_max_tokens=20)
    assert order(plan, stats) == ["quick", "steady"]
    assert order(plan, stats, max_tokens=2000) == ["steady", "quick"]
    assert order(plan, stats, max_completion_tokens=2000) == ["steady", "quick"]


def test_a_deployments_own_limit_compares_it_at_that_limit() -> None:
    stats = measured()
    # quick's params cap its answers at 20 tokens: its calls cannot take longer than that
    assert order(compiled(quick_params={"max_tokens": 20}), stats) == ["quick", "steady"]
    # ... unless the call overrides the deployment's params
    plan = compiled(quick_params={"max_tokens": 20})
    assert order(plan, stats, max_tokens=2000) == ["steady", "quick"]


def test_a_budget_downgrade_to_a_route_keeps_the_routes_limit() -> None:
    stats = measured()
    plan = compiled(route_params={"max_tokens": 20})
    request = {"messages": "x"}
    candidates = plan.candidates_for(
        "default", request, stats=stats, requirements=Requirements(tools=True)
    )
    assert [c.alias for c in candidates] == ["quick", "steady"]


def test_a_streamed_request_is_still_ranked_by_its_first_token() -> None:
    stats = measured()
    stats.record_latency("quick", 4.0, first_token=0.9)
    stats.record_latency("steady", 4.0, first_token=0.2)
    plan = compiled(default_max_tokens=20)
    assert order(plan, stats, stream=True, max_tokens=20) == ["steady", "quick"]
    trace = plan.route({"messages": "x", "stream": True, "max_tokens": 20}, stats=stats).trace
    assert "group 'pool' (fastest): steady 200ms to first token, quick 900ms to first token" in (
        trace
    )


class LatencyOnly:
    """User stats from before ``ranking_latency``: only the protocol's three methods."""

    def latency(self, alias: str) -> float | None:
        return {"steady": 1.0, "quick": 2.0}.get(alias)

    def in_flight(self, alias: str) -> int:
        return 0

    def is_available(self, alias: str) -> bool:
        return True


class Ranked(LatencyOnly):
    """User stats with a ``ranking_latency`` that takes the alias only."""

    def ranking_latency(self, alias: str) -> float | None:
        return {"steady": 0.5, "quick": 0.7}.get(alias)


class Bounded(LatencyOnly):
    """User stats whose ``ranking_latency`` reads the request's output limit."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int | None]] = []

    def ranking_latency(self, alias: str, *, max_output_tokens: int | None = None) -> float:
        self.asked.append((alias, max_output_tokens))
        short = max_output_tokens is not None and max_output_tokens < 100
        return {"steady": 0.5, "quick": 0.7 if not short else 0.1}[alias]


def test_user_stats_without_the_limit_parameter_keep_working() -> None:
    plan = compiled()
    for stats in (LatencyOnly(), Ranked()):
        assert order(plan, stats, max_tokens=20) == ["steady", "quick"]
        trace = plan.route({"messages": "x", "max_tokens": 20}, stats=stats).trace
        assert any(line.startswith("group 'pool' (fastest): steady ") for line in trace)


def test_user_stats_that_name_the_limit_parameter_are_told_it() -> None:
    plan = compiled()
    stats = Bounded()
    assert order(plan, stats) == ["steady", "quick"]
    assert sorted(stats.asked) == [("quick", None), ("steady", None)]
    stats.asked.clear()
    assert order(plan, stats, max_tokens=20) == ["quick", "steady"]
    assert ("quick", 20) in stats.asked
    stats.asked.clear()
    assert order(plan, stats, stream=True, max_tokens=20) == ["steady", "quick"]  # not a stream's


def test_explain_says_at_what_length_it_compared() -> None:
    stats = measured()
    plan = compiled()
    bounded = plan.route({"messages": "x", "max_tokens": 20}, stats=stats).trace
    assert re.fullmatch(
        r"group 'pool' \(fastest\): quick 3\d\dms at 20 output tokens \(output limit\),"
        r" steady 10\d\dms at 20 output tokens \(output limit\)",
        bounded[1],
    )
    typical = plan.route({"messages": "x", "max_tokens": 2000}, stats=stats).trace
    line = next(line for line in typical if line.startswith("group 'pool'"))
    assert "output tokens" not in line
    assert line.startswith("group 'pool' (fastest): steady ")


def test_explain_names_a_deployments_own_limit_only_on_that_deployment() -> None:
    stats = measured()
    trace = compiled(quick_params={"max_tokens": 20}).route({"messages": "x"}, stats=stats).trace
    line = next(line for line in trace if line.startswith("group 'pool'"))
    quick, steady = line.split(": ", 1)[1].split(", ")
    assert re.fullmatch(r"quick 3\d\dms at 20 output tokens \(output limit\)", quick)
    assert steady.startswith("steady ")
    assert steady.endswith("ms")


@pytest.mark.parametrize(
    ("call", "route_params", "model_params", "default", "expected"),
    [
        ({}, {}, {}, None, None),
        ({}, {}, {}, 256, 256),
        ({"max_tokens": 20}, {}, {}, 256, 20),
        ({"max_tokens": 20}, {"max_tokens": None}, {}, 256, 256),  # the route unsets it
        ({}, {}, {"max_tokens": 64}, 256, 64),
        ({"max_tokens": 2000}, {}, {"max_tokens": 64}, None, 2000),
        ({"max_completion_tokens": 30}, {}, {"max_tokens": 64}, None, 64),  # both sent
        ({"max_tokens": True}, {}, {}, 256, None),  # sent, but caps nothing
        ({"max_tokens": -1}, {}, {}, 256, None),
    ],
)
def test_the_limit_is_the_one_the_executor_sends(
    call: dict[str, Any],
    route_params: dict[str, Any],
    model_params: dict[str, Any],
    default: int | None,
    expected: int | None,
) -> None:
    assert sent_output_bound(call, route_params, model_params, default) == expected
