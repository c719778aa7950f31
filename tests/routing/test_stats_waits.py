"""The stats tracker's record of a cancelled wait (``record_wait``): a lower bound on how long
the deployment takes, which only ever makes it look slower."""

from __future__ import annotations

import pytest

from policyroute.routing.stats import DeploymentStatsTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_moves_neither_the_answered_latency_nor_the_success_rate() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.record_latency("a", 1.0)
    stats.record_failure("a")  # failing 0.5: ranked at twice its figure
    stats.record_wait("a", 3.0, stream=False)
    assert stats.latency("a") == 1.0
    assert stats.ranking_latency("a") == pytest.approx(2.0 / 0.5)


def test_each_kind_learns_from_its_own_waits() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.record_latency("a", 1.0)  # unstreamed
    stats.record_latency("a", 2.0, first_token=0.2)  # streamed
    stats.record_wait("a", 0.6, stream=True)
    assert stats.ranking_latency("a", stream=True) == pytest.approx(0.4)
    assert stats.ranking_latency("a") == pytest.approx(1.0)


def test_an_unmeasured_deployment_takes_the_wait_only_if_nothing_known_takes_longer() -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("slow", 4.0)
    stats.record_wait("new", 1.0, stream=False)
    assert stats.ranking_latency("new") is None  # "slow" answers later than 1 s: nothing learnt
    stats.record_wait("new", 5.0, stream=False)
    assert stats.ranking_latency("new") == pytest.approx(5.0)


def test_a_stale_figure_is_not_what_a_wait_is_compared_with() -> None:
    clock = Clock()
    stats = DeploymentStatsTracker(alpha=0.5, stale_after=60.0, clock=clock)
    stats.record_latency("a", 10.0)
    stats.record_latency("b", 20.0)
    clock.now += 61.0  # both figures stale
    stats.record_wait("a", 2.0, stream=False)
    assert stats.ranking_latency("a") == pytest.approx(2.0)  # a fresh start, not 10 + 2 folded
    assert stats.ranking_latency("b") is None


def test_a_wait_keeps_a_deployment_measured_as_fresh() -> None:
    clock = Clock()
    stats = DeploymentStatsTracker(alpha=0.5, stale_after=60.0, clock=clock)
    stats.record_latency("a", 1.0)
    clock.now += 50.0
    stats.record_wait("a", 3.0, stream=False)
    clock.now += 50.0  # 100 s after the answer, 50 after the wait
    assert stats.ranking_latency("a") == pytest.approx(2.0)
