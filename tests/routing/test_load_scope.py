"""What ``least_busy`` counts, as the policy language documents it: the calls in flight of one
executor, which every model and completion call on the same policy and accounting share, and
not every call of the process: a model on another accounting counts apart."""

from __future__ import annotations

import os
import threading

import pytest

from policyroute import ChatPolicyRoute
from policyroute.execution.hooks import NullAccounting
from policyroute.testing import FakeProvider, Reply

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)


def test_calls_in_flight_count_per_policy_and_accounting(fp: FakeProvider) -> None:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    fp.reset()
    fp.set_default("*", Reply(text="fine"))
    fp.script("a", Reply(text="slow", delay=1.0))
    policy = pool_policy(fp.openai_base, "load-scope", ["a", "b"], strategy="least_busy")
    mine, theirs = NullAccounting(), NullAccounting()
    first = ChatPolicyRoute(policy=policy, accounting=mine)
    held = threading.Thread(target=first.invoke, args=("first",))
    held.start()
    try:
        fp.wait_for_requests(1)
        assert first.executor.stats.in_flight("a") == 1
        # Same policy, same accounting: the same executor, which sees a busy.
        ChatPolicyRoute(policy=policy, accounting=mine).invoke("second")
        # Same policy, another accounting: an executor of its own, which sees nothing in flight.
        other = ChatPolicyRoute(policy=policy, accounting=theirs)
        assert other.executor is not first.executor
        other.invoke("third")
    finally:
        held.join(10)
    assert [r.body["model"] for r in fp.requests] == ["a", "b", "a"]
    fp.reset()
