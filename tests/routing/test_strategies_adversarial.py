"""Adversarial checks of the group strategies: weighted draws, fastest under failures and time,
and what the trace says."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from policyroute.policy.compile import compile_policy
from policyroute.request import Request
from policyroute.routing import DeploymentStatsTracker
from policyroute.routing.strategies import order_members, order_weighted

from .helpers import group, model, msgs, policy, route

KW = {"alias": str, "price": lambda _: None, "weight": lambda _: 1.0}


def _firsts(weights: dict[str, float], draws: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    names = list(weights)
    return Counter(order_weighted(names, weights.__getitem__, rng)[0] for _ in range(draws))


def test_weighted_small_equal_weights_split_evenly() -> None:
    """``u ** (1 / 0.001)`` underflowed to 0.0 half the time; the tie went to the first listed
    member, which then won 61% of draws instead of 50%."""
    draws = 20_000
    firsts = _firsts({"a": 0.001, "b": 0.001}, draws, seed=11)
    # binomial(20000, 0.5): sd 0.0035, so 0.02 is over 5 sd
    assert abs(firsts["a"] / draws - 0.5) < 0.02


def test_weighted_small_weights_keep_their_ratio() -> None:
    draws = 20_000
    firsts = _firsts({"a": 0.0005, "b": 0.0015}, draws, seed=5)
    assert abs(firsts["b"] / draws - 0.75) < 0.02


def test_weighted_first_and_second_picks_match_the_weights() -> None:
    """Chi-square of the first pick against 1:2:3:4, and the second pick given the first,
    which sampling without replacement fixes too (p(b second | a first) = 2/9)."""
    weights = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    rng = random.Random(2024)
    draws = 20_000
    orders = [order_weighted(list(weights), weights.__getitem__, rng) for _ in range(draws)]
    firsts = Counter(o[0] for o in orders)
    chi2 = sum((firsts[k] - draws * w / 10) ** 2 / (draws * w / 10) for k, w in weights.items())
    assert chi2 < 16.27  # 3 degrees of freedom, p = 0.001
    after_a = [o[1] for o in orders if o[0] == "a"]
    share_b = Counter(after_a)["b"] / len(after_a)
    assert abs(share_b - 2 / 9) < 5 * math.sqrt((2 / 9) * (7 / 9) / len(after_a))


def test_weighted_single_and_zero_weight_members() -> None:
    rng = random.Random(0)
    assert order_weighted(["only"], lambda _: 1.0, rng) == ["only"]
    assert order_weighted(["z", "y"], lambda _: 0.0, rng) == ["z", "y"]
    for _ in range(200):
        assert order_weighted(["z", "a"], {"z": 0.0, "a": 1e-9}.__getitem__, rng)[0] == "a"


# ------------------------------------------------------------------ fastest


def test_fastest_ranks_a_deployment_that_only_fails_after_one_that_answers() -> None:
    """Failures were not observed at all: a deployment that only ever failed stayed
    'unmeasured' and ``fastest`` put it first on every call."""
    stats = DeploymentStatsTracker()
    for _ in range(3):
        stats.start("a")
        stats.finish("a")
        stats.record_failure("a")
    stats.record_latency("b", 2.0)
    assert stats.latency("a") is None  # still no answered latency
    assert stats.ranking_latency("a") == math.inf
    order = order_members("fastest", ["a", "b", "c"], stats=stats, rng=random.Random(0), **KW)
    assert order == ["c", "b", "a"]  # c unmeasured first, then b, then the failing a


def test_fastest_counts_failures_against_a_fast_deployment() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.record_latency("a", 1.0)
    stats.record_latency("b", 1.5)
    stats.record_failure("a")  # a now answers half the time: as if 2 s
    assert stats.ranking_latency("a") == pytest.approx(2.0)
    assert order_members("fastest", ["a", "b"], stats=stats, rng=random.Random(0), **KW) == [
        "b",
        "a",
    ]
    stats.record_latency("a", 1.0)
    stats.record_latency("a", 1.0)  # recovering: failure share 0.125
    assert stats.ranking_latency("a") == pytest.approx(1.0 / 0.875)
    assert order_members("fastest", ["b", "a"], stats=stats, rng=random.Random(0), **KW) == [
        "a",
        "b",
    ]


def test_fastest_forgets_a_slow_outlier_once_it_goes_stale() -> None:
    """One slow answer used to rank a deployment last for good: nothing tried it again, so
    its figure never changed and ``fastest`` never saw it recover."""
    now = [0.0]
    stats = DeploymentStatsTracker(stale_after=60.0, clock=lambda: now[0])
    stats.record_latency("b", 30.0)  # one outlier
    stats.record_latency("a", 1.0)
    order = order_members("fastest", ["b", "a"], stats=stats, rng=random.Random(0), **KW)
    assert order == ["a", "b"]
    for _ in range(10):  # a keeps answering, b is never tried
        now[0] += 10.0
        stats.record_latency("a", 1.0)
    order = order_members("fastest", ["b", "a"], stats=stats, rng=random.Random(0), **KW)
    assert order == ["b", "a"], "b's outlier is stale: b is unmeasured and tried again"
    stats.record_latency("b", 0.5)  # b recovered; the stale 30 s does not weigh on it
    assert stats.ranking_latency("b") == pytest.approx(0.5)
    assert stats.latency("b") == pytest.approx(0.5)


def test_a_stale_deployment_with_a_probe_in_flight_keeps_its_figure() -> None:
    """While one call re-measures a stale deployment, the others do not all pile onto it."""
    now = [0.0]
    stats = DeploymentStatsTracker(stale_after=60.0, clock=lambda: now[0])
    stats.record_failure("b")
    now[0] = 100.0
    assert stats.ranking_latency("b") is None
    stats.start("b")
    assert stats.ranking_latency("b") == math.inf
    stats.finish("b")  # cancelled: no observation, so b is stale again
    assert stats.ranking_latency("b") is None


def test_ties_and_no_observations_keep_the_listed_order() -> None:
    stats = DeploymentStatsTracker()

    def fastest() -> list[str]:
        return order_members("fastest", list("cab"), stats=stats, rng=random.Random(0), **KW)

    assert fastest() == list("cab")
    for alias in "cab":
        stats.record_latency(alias, 1.0)
    assert fastest() == list("cab")
    for alias in "cab":
        stats.record_failure(alias)
    assert fastest() == list("cab")


def test_trace_says_a_deployment_is_failing() -> None:
    compiled = compile_policy(
        policy(
            [route("default", "pool")],
            models=[model("a"), model("b")],
            groups=[group("pool", ("a", "b"), "fastest")],
        )
    )
    stats = DeploymentStatsTracker()
    stats.record_failure("a")
    stats.record_latency("b", 0.25)
    decision = compiled.route(Request(messages=msgs()), stats=stats, trace=True)
    assert [c.alias for c in decision.candidates] == ["b", "a"]
    assert any("b 250ms, a failing" in line for line in decision.trace), decision.trace


def test_stale_observations_of_many_aliases_do_not_pile_up() -> None:
    now = [0.0]
    stats = DeploymentStatsTracker(stale_after=1.0, clock=lambda: now[0])
    for i in range(20_000):
        now[0] = i * 0.01  # each alias observed once, then never again
        stats.record_latency(f"m{i}", 0.1)
    assert len(stats._seen) < 1_000  # the bound is the point
