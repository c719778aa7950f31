"""The circuit breaker state machine, driven by an injected clock."""

from __future__ import annotations

import threading

import pytest

from policyroute.execution.breaker import CircuitBreakers
from policyroute.policy.model import CircuitBreakerSpec


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cb(clock: Clock) -> CircuitBreakers:
    return CircuitBreakers(CircuitBreakerSpec(failures=3, cooldown=10.0), clock=clock)


@pytest.mark.timeout(20)
def test_opens_after_consecutive_failures(cb: CircuitBreakers) -> None:
    for _ in range(2):
        cb.record_failure("a", "server_error")
    assert cb.state("a") == "closed"
    assert cb.allow("a")
    cb.record_failure("a", "timeout")
    assert cb.state("a") == "open"
    assert not cb.allow("a")
    assert not cb.is_available("a")
    assert cb.state("b") == "closed"


@pytest.mark.timeout(20)
def test_success_resets_the_count(cb: CircuitBreakers) -> None:
    cb.record_failure("a", "server_error")
    cb.record_failure("a", "server_error")
    cb.record_success("a")
    cb.record_failure("a", "server_error")
    cb.record_failure("a", "server_error")
    assert cb.state("a") == "closed"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("cls", ["bad_request", "context_window", "content_policy"])
def test_caller_faults_do_not_count(cb: CircuitBreakers, cls: str) -> None:
    for _ in range(5):
        cb.record_failure("a", cls)  # type: ignore[arg-type]
    assert cb.state("a") == "closed"


@pytest.mark.timeout(20)
def test_half_open_lets_one_probe_through(cb: CircuitBreakers, clock: Clock) -> None:
    for _ in range(3):
        cb.record_failure("a", "connection")
    clock.now += 9.9
    assert not cb.allow("a")
    clock.now += 0.1
    assert cb.state("a") == "half_open"
    assert cb.is_available("a")
    assert cb.allow("a")
    assert not cb.allow("a")
    assert not cb.is_available("a")
    cb.record_success("a")
    assert cb.state("a") == "closed"
    assert cb.allow("a")


@pytest.mark.timeout(20)
def test_failed_probe_reopens_for_a_full_cooldown(cb: CircuitBreakers, clock: Clock) -> None:
    for _ in range(3):
        cb.record_failure("a", "rate_limit")
    clock.now += 10
    assert cb.allow("a")
    cb.record_failure("a", "rate_limit")
    assert cb.state("a") == "open"
    assert cb.opened_at("a") == clock.now
    clock.now += 5
    assert not cb.allow("a")
    clock.now += 5
    assert cb.allow("a")


@pytest.mark.timeout(20)
def test_released_probe_can_be_taken_again(cb: CircuitBreakers, clock: Clock) -> None:
    for _ in range(3):
        cb.record_failure("a", "server_error")
    clock.now += 10
    assert cb.allow("a")
    cb.release("a")
    assert cb.allow("a")


@pytest.mark.timeout(20)
def test_manual_reset(cb: CircuitBreakers) -> None:
    for alias in ("a", "b"):
        for _ in range(3):
            cb.record_failure(alias, "server_error")
    cb.reset("a")
    assert cb.state("a") == "closed"
    assert cb.state("b") == "open"
    cb.reset()
    assert cb.state("b") == "closed"


@pytest.mark.timeout(20)
def test_only_one_probe_across_threads(cb: CircuitBreakers, clock: Clock) -> None:
    for _ in range(3):
        cb.record_failure("a", "server_error")
    clock.now += 10
    barrier = threading.Barrier(8)
    granted: list[bool] = []

    def contend() -> None:
        barrier.wait()
        granted.append(cb.allow("a"))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 1
