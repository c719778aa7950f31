"""``fastest`` explores an unmeasured member with one call at a time, per kind of request.

A deployment's figures are kept per kind (time to first token for streams, answer time for
unstreamed calls), so only a call of the request's kind can be measuring what the request is
ranked by. Calls started without saying their kind count for both, as before.
"""

from __future__ import annotations

import random
from typing import Any

from policyroute.policy.compile import compile_policy
from policyroute.routing.stats import DeploymentStatsTracker
from policyroute.routing.strategies import order_members

from .helpers import group, policy, route

KW: dict[str, Any] = {"alias": str, "price": lambda _: None, "weight": lambda _: 1.0}


def fastest(stats: Any, *aliases: str, stream: bool = False) -> list[str]:
    return order_members(
        "fastest", list(aliases), stats=stats, rng=random.Random(0), stream=stream, **KW
    )


def both_kinds_known_for_a() -> DeploymentStatsTracker:
    stats = DeploymentStatsTracker()
    stats.record_latency("a", 1.0, output_tokens=100)
    stats.record_latency("a", 2.0, first_token=0.2)
    return stats


def test_streams_in_flight_do_not_keep_unstreamed_requests_from_exploring() -> None:
    stats = both_kinds_known_for_a()
    stats.record_latency("b", 2.0, first_token=0.1)  # b has only streamed so far
    stats.start("b", stream=True)  # and streams again
    assert fastest(stats, "a", "b") == ["b", "a"]
    policy_ = compile_policy(
        policy([route("default", "pool")], groups=[group("pool", ("a", "b"), "fastest")])
    )
    decision = policy_.route({"messages": "x"}, stats=stats, trace=False)
    assert [c.alias for c in decision.candidates] == ["b", "a"]


def test_unstreamed_calls_in_flight_do_not_keep_streams_from_exploring() -> None:
    stats = both_kinds_known_for_a()
    stats.record_latency("b", 0.5, output_tokens=100)  # b has only answered unstreamed
    stats.start("b", stream=False)
    assert fastest(stats, "a", "b", stream=True) == ["b", "a"]


def test_a_call_of_the_requests_kind_is_exploring_already() -> None:
    stats = both_kinds_known_for_a()
    stats.record_latency("b", 2.0, first_token=0.1)
    stats.start("b", stream=False)  # an unstreamed call is measuring b for unstreamed calls
    assert fastest(stats, "a", "b") == ["a", "b"]
    stats.finish("b", stream=False)
    assert fastest(stats, "a", "b") == ["b", "a"]


def test_a_call_started_without_its_kind_counts_for_both() -> None:
    stats = both_kinds_known_for_a()
    stats.start("b")
    assert fastest(stats, "a", "b") == ["a", "b"]
    assert fastest(stats, "a", "b", stream=True) == ["a", "b"]


def test_in_flight_counts_by_kind_and_in_all() -> None:
    stats = DeploymentStatsTracker()
    stats.start("b", stream=True)
    stats.start("b", stream=True)
    stats.start("b", stream=False)
    stats.start("b")
    assert stats.in_flight("b") == 4
    assert stats.in_flight("b", stream=True) == 3  # all but the unstreamed one
    assert stats.in_flight("b", stream=False) == 2  # all but the two streams
    with stats.track("b", stream=False):
        assert stats.in_flight("b", stream=False) == 3
        assert stats.in_flight("b", stream=True) == 3  # an unstreamed call is not a stream
    stats.finish("b", stream=True)
    stats.finish("b", stream=True)
    assert stats.in_flight("b", stream=False) == 2
    stats.finish("b", stream=False)
    stats.finish("b")
    assert (stats.in_flight("b"), stats.in_flight("b", stream=True)) == (0, 0)


def test_least_busy_counts_every_call() -> None:
    stats = DeploymentStatsTracker()
    stats.start("a", stream=True)
    order = order_members(
        "least_busy", ["a", "b"], stats=stats, rng=random.Random(0), stream=False, **KW
    )
    assert order == ["b", "a"]
