"""A latency no clock gives (NaN, infinite, negative) handed to the stats tracker is left out:
it would stay in the moving averages and make fastest's order undefined."""

from __future__ import annotations

import math

import pytest

from policyroute.routing.stats import DeploymentStatsTracker


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_an_impossible_latency_is_left_out(bad: float) -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("a", bad, output_tokens=10)
    stats.record_latency("a", 1.0, output_tokens=10)
    ranked = stats.ranking_latency("a")
    assert ranked is not None
    assert math.isfinite(ranked)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_an_impossible_first_token_time_is_left_out(bad: float) -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("a", 2.0, first_token=bad)
    stats.record_latency("a", 2.0, first_token=0.5)
    ranked = stats.ranking_latency("a", stream=True)
    assert ranked is not None
    assert math.isfinite(ranked)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0])
def test_an_impossible_wait_is_left_out(bad: float) -> None:
    stats = DeploymentStatsTracker()
    stats.record_wait("a", bad, stream=False)
    stats.record_wait("a", bad, stream=True)
    assert stats.ranking_latency("a") is None
    assert stats.ranking_latency("a", stream=True) is None
