"""What ``fastest`` measures: time to first token for streams, time per answer length otherwise.

Every figure here is fed by hand (and aged by an injected clock), so nothing depends on how
fast the machine is.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any

import pytest

from policyroute.policy.compile import compile_policy
from policyroute.routing.answer_time import PRIOR_BASE_TOKENS, AnswerFit
from policyroute.routing.stats import DeploymentStatsTracker
from policyroute.routing.strategies import order_members, ranking_latency

from .helpers import group, policy, route

KW: dict[str, Any] = {"alias": str, "price": lambda _: None, "weight": lambda _: 1.0}


def fastest(stats: Any, *aliases: str, stream: bool = False) -> list[str]:
    return order_members(
        "fastest", list(aliases), stats=stats, rng=random.Random(0), stream=stream, **KW
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(stats: DeploymentStatsTracker, alias: str, base: float, per_token: float, n: int):
    """Record one unstreamed answer of ``n`` tokens from a deployment of that speed."""
    stats.record_latency(alias, base + per_token * n, output_tokens=n)


# ---------------------------------------------------------------------------- streams


def test_a_stream_is_ranked_by_its_first_token_not_by_its_length() -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("slow_start", 1.0, first_token=0.8)  # short answer, late start
    stats.record_latency("quick_start", 6.0, first_token=0.1)  # long answer, early start
    assert fastest(stats, "slow_start", "quick_start", stream=True) == ["quick_start", "slow_start"]
    assert stats.ranking_latency("quick_start", stream=True) == pytest.approx(0.1)
    # the bare latency (the protocol's figure) still averages whole answers
    assert stats.latency("quick_start") == pytest.approx(6.0)


def test_time_to_first_token_is_a_moving_average() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.record_latency("a", 2.0, first_token=1.0)
    stats.record_latency("a", 2.0, first_token=3.0)
    assert stats.time_to_first_token("a") == pytest.approx(2.0)
    assert stats.time_to_first_token("never") is None


def test_streams_and_answers_are_measured_apart() -> None:
    """A deployment measured only by streams is unmeasured for unstreamed requests (and the
    reverse), so each kind of request tries it once instead of trusting the other figure."""
    stats = DeploymentStatsTracker()
    stats.record_latency("streamed", 0.5, first_token=0.1)
    answer(stats, "answered", 0.2, 0.001, 100)
    assert stats.ranking_latency("streamed") is None
    assert stats.ranking_latency("answered", stream=True) is None
    assert fastest(stats, "answered", "streamed") == ["streamed", "answered"]
    assert fastest(stats, "answered", "streamed", stream=True) == ["answered", "streamed"]


def test_an_unmeasured_stream_target_is_explored_one_call_at_a_time() -> None:
    stats = DeploymentStatsTracker()
    stats.record_latency("known", 3.0, first_token=0.5)
    answer(stats, "new", 0.2, 0.001, 100)  # known for answers, not for streams
    stats.start("new")  # a streamed call is trying it
    assert fastest(stats, "new", "known", stream=True) == ["known", "new"]
    stats.finish("new", 2.0, first_token=0.2)
    assert fastest(stats, "new", "known", stream=True) == ["new", "known"]


# ---------------------------------------------------------------------------- answers


def test_a_deployment_that_got_long_answers_does_not_look_slow() -> None:
    """quick starts fast and generates as fast as slow_start, but happened to get answers a
    hundred times longer: its mean latency is higher, its answers are not slower."""
    stats = DeploymentStatsTracker()
    for n in (1800, 2200, 2000, 1900, 2100):
        answer(stats, "quick", 0.2, 0.001, n)
    for n in (10, 30, 20, 15, 25):
        answer(stats, "slow_start", 1.5, 0.001, n)
    assert stats.latency("quick") > stats.latency("slow_start")  # type: ignore[operator]
    assert fastest(stats, "slow_start", "quick") == ["quick", "slow_start"]


def test_answers_of_one_length_each_are_compared_at_one_length() -> None:
    """No spread in either deployment's answers: the prior's fixed part decides, and the
    deployment that produced 100 times the tokens in twice the time ranks first."""
    stats = DeploymentStatsTracker()
    for _ in range(3):
        stats.record_latency("bulk", 1.0, output_tokens=4000)
        stats.record_latency("terse", 0.5, output_tokens=40)
    assert fastest(stats, "terse", "bulk") == ["bulk", "terse"]


def test_a_slow_generator_is_not_mistaken_for_a_fast_one() -> None:
    """Both answered answers of the same lengths: the faster line wins at the typical length,
    and the fit finds each deployment's two parts."""
    stats = DeploymentStatsTracker(alpha=0.2)
    for n in (100, 500, 300, 700, 200, 600, 400) * 3:
        answer(stats, "snappy", 0.3, 0.002, n)
        answer(stats, "sluggish", 0.5, 0.02, n)
    fit = stats.answer_fit("sluggish")
    assert fit is not None
    assert fit.base == pytest.approx(0.5, abs=0.05)
    assert fit.per_token == pytest.approx(0.02, rel=0.05)
    assert fastest(stats, "sluggish", "snappy") == ["snappy", "sluggish"]
    typical = stats.typical_output_tokens
    assert 200 < typical < 600
    assert stats.ranking_latency("snappy") == pytest.approx(0.3 + 0.002 * typical, rel=0.02)


def test_the_typical_length_decides_between_a_quick_start_and_a_fast_generator() -> None:
    """starter answers sooner, generator generates faster: which is faster depends on how long
    answers are, and the tracker compares them at the length its answers typically have."""
    stats = DeploymentStatsTracker(alpha=0.5)
    for n in (10, 30, 20, 10, 30, 20):
        answer(stats, "starter", 0.1, 0.01, n)
        answer(stats, "generator", 1.0, 0.001, n)
    assert fastest(stats, "generator", "starter") == ["starter", "generator"]
    for n in (3000, 5000, 4000, 3000, 5000, 4000):
        answer(stats, "starter", 0.1, 0.01, n)
        answer(stats, "generator", 1.0, 0.001, n)
    assert fastest(stats, "starter", "generator") == ["generator", "starter"]


def test_answers_of_unknown_length_count_as_typical() -> None:
    stats = DeploymentStatsTracker()
    for _ in range(3):
        answer(stats, "a", 0.2, 0.001, 500)
    stats.record_latency("b", 0.9)  # no token count
    assert stats.typical_output_tokens == pytest.approx(500)
    assert stats.ranking_latency("b") == pytest.approx(0.9)
    assert stats.typical_output_tokens == pytest.approx(500)  # unknown lengths do not move it


def test_without_any_token_counts_the_figure_is_the_latency() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.record_latency("a", 1.0)
    stats.record_latency("a", 3.0)
    assert stats.ranking_latency("a") == pytest.approx(2.0) == stats.latency("a")


def test_the_fit_with_no_spread_is_the_prior() -> None:
    fit = AnswerFit.first(2.0, 100)
    per_token = 2.0 / (100 + PRIOR_BASE_TOKENS)
    assert fit.per_token == pytest.approx(per_token)
    assert fit.base == pytest.approx(PRIOR_BASE_TOKENS * per_token)
    assert fit.seconds_for(100) == pytest.approx(2.0)


def test_noise_never_makes_a_part_negative() -> None:
    fit = AnswerFit.first(1.0, 100)
    fit = fit.fold(5.0, 50, 0.5)  # the shorter answer took longer: a negative slope
    assert fit.per_token == 0.0
    assert fit.seconds_for(1000) == pytest.approx(fit.seconds)
    fit = AnswerFit.first(0.1, 100).fold(10.0, 1000, 0.9)  # steeper than through the origin
    assert fit.base >= 0.0
    assert fit.seconds_for(0) >= 0.0


def test_reset_forgets_the_typical_length() -> None:
    stats = DeploymentStatsTracker()
    answer(stats, "a", 0.2, 0.001, 800)
    stats.reset()
    assert stats.typical_output_tokens == 0.0
    assert stats.answer_fit("a") is None


# ---------------------------------------------------------------------------- what is kept


def test_failures_count_against_both_kinds() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.record_latency("a", 3.0, first_token=0.4)
    stats.record_latency("a", 1.0, output_tokens=0)
    stats.record_failure("a")
    assert stats.ranking_latency("a", stream=True) == pytest.approx(0.4 / 0.5)
    assert stats.ranking_latency("a") == pytest.approx(1.0 / 0.5)


def test_a_deployment_that_only_failed_ranks_last_for_both_kinds() -> None:
    stats = DeploymentStatsTracker()
    stats.record_failure("bad")
    stats.record_latency("good", 9.0, first_token=2.0)
    answer(stats, "good", 5.0, 0.01, 100)
    assert stats.ranking_latency("bad", stream=True) == math.inf
    assert fastest(stats, "bad", "good", stream=True) == ["good", "bad"]
    assert fastest(stats, "bad", "good") == ["good", "bad"]


def test_each_kind_goes_stale_on_its_own() -> None:
    clock = Clock()
    stats = DeploymentStatsTracker(stale_after=300, clock=clock)
    stats.record_latency("a", 3.0, first_token=0.5)
    clock.now += 200
    answer(stats, "a", 0.2, 0.001, 100)
    clock.now += 200  # the stream is 400 s old, the answer 200 s
    assert stats.ranking_latency("a", stream=True) is None
    assert stats.ranking_latency("a") is not None
    stats.start("a")  # a call in flight keeps what it will replace
    assert stats.ranking_latency("a", stream=True) == pytest.approx(0.5)
    stats.finish("a", 2.0, first_token=4.0)
    assert stats.ranking_latency("a", stream=True) == pytest.approx(4.0)  # not averaged in
    clock.now += 400
    assert stats.ranking_latency("a") is None
    assert stats.ranking_latency("a", stream=True) is None


def test_a_stale_answer_fit_starts_over() -> None:
    clock = Clock()
    stats = DeploymentStatsTracker(stale_after=300, clock=clock)
    answer(stats, "a", 5.0, 0.01, 100)
    stats.record_latency("a", 1.0, first_token=0.2)  # streams keep the record fresh
    clock.now += 200
    stats.record_latency("a", 1.0, first_token=0.2)
    clock.now += 200
    answer(stats, "a", 0.1, 0.001, 100)
    fit = stats.answer_fit("a")
    assert fit is not None
    assert fit.seconds == pytest.approx(0.2)


# ---------------------------------------------------------------------------- strategies


@pytest.mark.parametrize("stream", [False, True])
def test_stats_of_users_are_ranked_as_before(stream: bool) -> None:
    """A user's own DeploymentStats needs only the protocol's three methods: stats without the
    tracker's two kinds are asked as they always were, streamed request or not."""

    class Plain:
        def latency(self, alias: str) -> float | None:
            return {"a": 2.0, "b": 1.0}.get(alias)

        def in_flight(self, alias: str) -> int:
            return 0

        def is_available(self, alias: str) -> bool:
            return True

    class Ranked(Plain):
        def ranking_latency(self, alias: str) -> float | None:
            return {"a": 0.5, "b": 1.0}.get(alias)

    assert fastest(Plain(), "a", "b", stream=stream) == ["b", "a"]
    assert fastest(Ranked(), "a", "b", stream=stream) == ["a", "b"]
    assert ranking_latency(Ranked(), stream=True)("a") == 0.5


def test_routing_ranks_a_streamed_request_by_first_token_and_says_so() -> None:
    compiled = compile_policy(
        policy([route("default", "pool")], groups=[group("pool", ("a", "b"), "fastest")])
    )
    stats = DeploymentStatsTracker()
    stats.record_latency("a", 0.4, first_token=0.3)
    stats.record_latency("b", 2.0, first_token=0.1)
    answer(stats, "a", 0.1, 0.001, 300)
    answer(stats, "b", 0.5, 0.001, 300)
    streamed = compiled.route({"messages": "x", "stream": True}, stats=stats)
    assert [c.alias for c in streamed.candidates] == ["b", "a"]
    assert "group 'pool' (fastest): b 100ms to first token, a 300ms to first token" in (
        streamed.trace
    )
    unstreamed = compiled.route({"messages": "x"}, stats=stats, trace=False)
    assert [c.alias for c in unstreamed.candidates] == ["a", "b"]


def test_recording_and_ranking_from_many_threads() -> None:
    stats = DeploymentStatsTracker(alpha=0.1)
    errors: list[BaseException] = []

    def record(seed: int) -> None:
        try:
            for i in range(500):
                alias = "ab"[(seed + i) % 2]
                stats.start(alias)
                if i % 3:
                    stats.finish(alias, 1.0 + i % 7, output_tokens=i % 50)
                else:
                    stats.finish(alias, 2.0, first_token=0.1 * (1 + i % 4))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(2000):
                for stream in (False, True):
                    figure = stats.ranking_latency("a", stream=stream)
                    assert figure is None or 0.0 <= figure < math.inf
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(s,)) for s in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stats.in_flight("a") == stats.in_flight("b") == 0
    assert 0.1 <= (stats.time_to_first_token("a") or 0.0) <= 0.4
    assert 0.0 < stats.typical_output_tokens < 50
