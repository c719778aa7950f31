"""``fastest`` under concurrent calls: an unmeasured deployment is explored by one call, not by
every call made before its first answer; one slow outlier does not pin the choice for good."""

from __future__ import annotations

import math
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import pytest

from policyroute.execution.executor import Executor
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.routing.stats import DeploymentStatsTracker
from policyroute.routing.strategies import order_fastest, order_members
from policyroute.testing import FakeProvider

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fastest(stats: DeploymentStatsTracker, *aliases: str) -> list[str]:
    return order_members(
        "fastest",
        list(aliases),
        alias=str,
        price=lambda _: None,
        weight=lambda _: 1.0,
        stats=stats,
        rng=random.Random(0),
    )


# ------------------------------------------------------------------ exploration


def test_an_unmeasured_deployment_a_call_is_trying_is_not_tried_by_every_other_call() -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("b", 1.0)
    assert fastest(stats, "a", "b") == ["a", "b"]  # unmeasured: explored first
    stats.start("a")
    assert fastest(stats, "a", "b") == ["b", "a"]  # one call is exploring it already
    stats.finish("a", 0.5)
    assert fastest(stats, "a", "b") == ["a", "b"]  # measured, and faster


def test_a_deployment_being_explored_ranks_before_one_that_only_failed() -> None:
    stats = DeploymentStatsTracker()
    stats.record_failure("b")
    stats.start("a")
    assert fastest(stats, "b", "a") == ["a", "b"]
    assert order_fastest(["b", "a"], {"b": math.inf}.get) == ["a", "b"]


def test_concurrent_first_calls_spread_over_the_unmeasured_deployments(fp: FakeProvider) -> None:
    """Three calls at once from threads, nothing measured yet: each explores a different
    deployment instead of all three waiting on a."""
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    fp.reset()
    entered = threading.Semaphore(0)
    release = threading.Event()
    one_at_a_time = threading.Lock()

    def held(**params: Any) -> Any:
        entered.release()
        assert release.wait(timeout=20)
        # Routing is decided before this point; the calls themselves go one by one, as
        # threads entering litellm's client cache together leak a client (a litellm race).
        with one_at_a_time:
            return litellm.completion(**params)

    ask = Request(messages=[{"role": "user", "content": "hello"}])
    # A process's first call imports litellm's code for it, and is not measured: made first.
    Executor(load_policy_text(pool_policy(fp.openai_base, "warm-up", ["w"]))).complete(ask)
    ex = Executor(
        load_policy_text(pool_policy(fp.openai_base, "fastest-concurrent", ["a", "b", "c"])),
        completion=held,
    )
    with ThreadPoolExecutor(3) as pool:
        calls = []
        for _ in range(3):  # each call starts once the one before it is held
            calls.append(pool.submit(ex.complete, ask))
            assert entered.acquire(timeout=20)
        release.set()
        deployments = sorted(c.result(timeout=20).deployment for c in calls)
    assert deployments == ["a", "b", "c"]
    assert all(ex.stats.latency(x) is not None for x in "abc")
    assert all(ex.stats.in_flight(x) == 0 for x in "abc")


# ------------------------------------------------------------------ decay


def test_one_slow_outlier_is_outweighed_by_later_answers() -> None:
    stats = DeploymentStatsTracker(alpha=0.3)
    for _ in range(5):
        stats.record_latency("a", 1.0)
    stats.record_latency("a", 30.0)
    stats.record_latency("b", 2.0)
    assert fastest(stats, "a", "b") == ["b", "a"]
    for _ in range(8):
        stats.record_latency("a", 1.0)
    assert fastest(stats, "a", "b") == ["a", "b"]


def test_a_deployment_left_alone_after_an_outlier_is_tried_again_once_stale() -> None:
    clock = Clock()
    stats = DeploymentStatsTracker(stale_after=300, clock=clock)
    stats.record_latency("a", 30.0)
    stats.record_latency("b", 2.0)
    clock.now = 200.0
    stats.record_latency("b", 2.0)  # b keeps answering, a is never chosen
    assert fastest(stats, "a", "b") == ["b", "a"]
    clock.now = 301.0
    assert fastest(stats, "a", "b") == ["a", "b"]
    stats.start("a")  # the one call that re-measures it; the others keep going to b
    assert fastest(stats, "a", "b") == ["b", "a"]
    stats.finish("a", 1.0)
    assert stats.latency("a") == 1.0  # the old outlier is forgotten, not averaged in
    assert fastest(stats, "a", "b") == ["a", "b"]
