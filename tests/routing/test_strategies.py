"""Group strategies and the deployment statistics tracker."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from policyroute.errors import PolicyError, PolicyRouteError
from policyroute.routing import DeploymentStatsTracker
from policyroute.routing.strategies import (
    order_cheapest,
    order_fastest,
    order_least_busy,
    order_members,
    order_weighted,
)


def test_cheapest_unpriced_last_ties_keep_order() -> None:
    prices = {"a": 5, "b": None, "c": 1, "d": 5, "e": None}
    assert order_cheapest(list("abcde"), prices.get) == list("cadbe")


def test_fastest_unmeasured_first_then_by_latency() -> None:
    latency = {"a": 0.5, "c": 0.1, "d": 0.5}
    assert order_fastest(list("abcd"), latency.get) == list("bcad")
    assert order_fastest(list("abc"), lambda _: None) == list("abc")


def test_least_busy_ties_keep_order() -> None:
    busy = {"a": 3, "b": 1, "c": 1}
    assert order_least_busy(list("abc"), busy.__getitem__) == list("bca")


def test_weighted_is_a_permutation_with_zero_weights_last() -> None:
    weights = {"a": 1.0, "b": 0.0, "c": 2.0, "d": 0.0}
    rng = random.Random(1)
    for _ in range(50):
        order = order_weighted(list("abcd"), weights.__getitem__, rng)
        assert sorted(order) == list("abcd")
        assert order[2:] == ["b", "d"]


def test_weighted_follows_the_weights() -> None:
    weights = {"a": 1.0, "b": 3.0}
    rng = random.Random(1234)
    firsts = Counter(order_weighted(["a", "b"], weights.__getitem__, rng)[0] for _ in range(4000))
    assert 0.70 < firsts["b"] / 4000 < 0.80


def test_weighted_is_reproducible_with_a_seeded_rng() -> None:
    weights = dict.fromkeys("abcdef", 1.0)
    first = order_weighted(list("abcdef"), weights.__getitem__, random.Random(9))
    again = order_weighted(list("abcdef"), weights.__getitem__, random.Random(9))
    assert first == again


def test_order_members_dispatch() -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("a", 2.0)
    stats.record_latency("b", 1.0)
    stats.start("b")
    kw = {"alias": str, "price": {"a": 2, "b": 1}.get, "weight": lambda _: 1.0}
    rng = random.Random(0)
    assert order_members("ordered", ["b", "a"], stats=stats, rng=rng, **kw) == ["b", "a"]
    assert order_members("cheapest", ["a", "b"], stats=None, rng=rng, **kw) == ["b", "a"]
    assert order_members("fastest", ["a", "b"], stats=stats, rng=rng, **kw) == ["b", "a"]
    assert order_members("fastest", ["a", "b"], stats=None, rng=rng, **kw) == ["a", "b"]
    assert order_members("least_busy", ["b", "a"], stats=stats, rng=rng, **kw) == ["a", "b"]
    assert order_members("least_busy", ["b", "a"], stats=None, rng=rng, **kw) == ["b", "a"]
    with pytest.raises(PolicyError):
        order_members("random", ["a"], stats=None, rng=rng, **kw)  # type: ignore[arg-type]


def test_tracker_ewma_and_in_flight() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    assert stats.latency("a") is None
    stats.record_latency("a", 1.0)
    stats.record_latency("a", 3.0)
    assert stats.latency("a") == pytest.approx(2.0)
    stats.start("a")
    stats.start("a")
    assert stats.in_flight("a") == 2
    stats.finish("a", latency=4.0)
    assert stats.in_flight("a") == 1
    assert stats.latency("a") == pytest.approx(3.0)
    stats.finish("a")
    assert stats.in_flight("a") == 0
    stats.reset()
    assert stats.latency("a") is None


def test_tracker_track_records_only_successes() -> None:
    stats = DeploymentStatsTracker()
    seen: list[int] = []

    def failing_call() -> None:
        with stats.track("a"):
            seen.append(stats.in_flight("a"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_call()
    assert seen == [1]
    assert stats.in_flight("a") == 0
    assert stats.latency("a") is None
    with stats.track("a"):
        pass
    assert stats.latency("a") is not None


def test_tracker_availability_predicate() -> None:
    open_circuits = {"b"}
    stats = DeploymentStatsTracker(availability=lambda alias: alias not in open_circuits)
    assert stats.is_available("a")
    assert not stats.is_available("b")
    stats.set_availability(None)
    assert stats.is_available("b")
    with pytest.raises(PolicyRouteError):
        DeploymentStatsTracker(alpha=0)


def test_tracker_is_thread_safe() -> None:
    stats = DeploymentStatsTracker()

    def work() -> None:
        for _ in range(2000):
            stats.start("a")
            stats.finish("a", latency=0.1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.in_flight("a") == 0
    assert stats.latency("a") == pytest.approx(0.1)
