"""``fastest`` fed by real calls: the executor tells routing about failures, not only answers."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from policyroute.errors import ProviderError
from policyroute.execution.executor import Executor
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Fault

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)


def _executor(fp: FakeProvider) -> Executor:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    return Executor(load_policy_text(pool_policy(fp.openai_base, "fastest-fed", ["a", "b"])))


def _ask() -> Request:
    return Request(messages=[{"role": "user", "content": "hello"}])


def test_a_deployment_that_keeps_failing_is_not_tried_first_again(fp: FakeProvider) -> None:
    """a answers 503 every time, below the breaker's threshold. Its failures left no trace in
    the stats, so a stayed 'unmeasured' and every call paid a failed attempt on it first."""
    fp.reset()
    fp.set_default("a", Fault.status(503))
    ex = _executor(fp)
    first = ex.complete(_ask())
    assert first.deployment == "b"
    assert [r.alias for r in first.attempts] == ["a", "b"]
    for _ in range(3):
        again = ex.complete(_ask())
        assert [r.alias for r in again.attempts] == ["b"]
    assert ex.stats.latency("a") is None  # failures are still not latencies
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0


def test_a_request_error_does_not_count_against_the_deployment(fp: FakeProvider) -> None:
    """A 400 is the request's fault: a stays unmeasured, not failing."""
    fp.reset()
    fp.script("a", Fault.status(400))
    ex = _executor(fp)
    with pytest.raises(ProviderError):
        ex.complete(_ask())
    assert ex.stats.ranking_latency("a") is None
    assert ex.complete(_ask()).deployment == "a"
