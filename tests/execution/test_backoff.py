"""Backoff: Retry-After wins (capped), else exponential with full jitter."""

from __future__ import annotations

import random

import pytest

from policyroute.execution.backoff import backoff_delay
from policyroute.policy.model import BackoffSpec, RetrySpec

SPEC = RetrySpec(backoff=BackoffSpec(initial=0.5, max=8.0, multiplier=2.0, jitter=False))


@pytest.mark.timeout(20)
def test_exponential_without_jitter_is_capped() -> None:
    assert [backoff_delay(SPEC, n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.timeout(20)
def test_huge_retry_counts_do_not_overflow() -> None:
    assert backoff_delay(SPEC, 10_000) == 8.0


@pytest.mark.timeout(20)
def test_full_jitter_draws_below_the_ceiling() -> None:
    spec = RetrySpec(backoff=BackoffSpec(initial=1.0, max=4.0, multiplier=2.0, jitter=True))
    draws = [backoff_delay(spec, 1, rng=random.Random(seed)) for seed in range(200)]
    assert all(0.0 <= d <= 2.0 for d in draws)
    assert max(draws) > 1.5
    assert min(draws) < 0.5


@pytest.mark.timeout(20)
def test_jitter_is_reproducible_with_an_injected_rng() -> None:
    spec = RetrySpec()
    expected = random.Random(42).uniform(0.0, 1.0)
    assert backoff_delay(spec, 1, rng=random.Random(42)) == expected


@pytest.mark.timeout(20)
def test_retry_after_wins_and_is_capped() -> None:
    spec = RetrySpec(retry_after_max=30.0)
    assert backoff_delay(spec, 0, retry_after=3.0) == 3.0
    assert backoff_delay(spec, 5, retry_after=0.0) == 0.0
    assert backoff_delay(spec, 0, retry_after=120.0) == 30.0
