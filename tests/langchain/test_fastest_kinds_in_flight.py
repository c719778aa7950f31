"""Through a chat model: a call in flight on a deployment that has only ever been measured for
the other kind of request does not keep a request from exploring it. ``fastest`` keeps its
figures by kind (time to first token, time to a whole answer), and the executor counts its
calls in flight by kind too."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from policyroute import ChatPolicyRoute
from policyroute.execution.hooks import NullAccounting
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: kinds
models:
  a:
    model: openai/fake-a
    api_base: "{base}"
    api_key: "${{PR_KINDS_KEY}}"
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
  b:
    model: openai/fake-b
    api_base: "{base}"
    api_key: "${{PR_KINDS_KEY}}"
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
groups:
  pool: {{strategy: fastest, models: [a, b]}}
routes:
  - name: default
    to: pool
"""


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeProvider, ChatPolicyRoute]]:
    """A fastest group of a and b; a measured for both kinds of request, b for none yet."""
    monkeypatch.setenv("PR_KINDS_KEY", "sk-test")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="one two three four five six"))
        policy = POLICY.format(base=fp.openai_base)
        llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
        llm.executor.stats.record_latency("a", 1.0, output_tokens=10)
        llm.executor.stats.record_latency("a", 1.0, first_token=0.9)
        yield fp, llm


def test_a_stream_in_flight_does_not_hold_back_an_unstreamed_request(
    served: tuple[FakeProvider, ChatPolicyRoute],
) -> None:
    fp, llm = served
    llm.executor.stats.record_latency("b", 0.5, first_token=0.1)  # b has only streamed
    held = iter(llm.stream("first"))
    next(held)  # b is the faster to a first token: the stream's attempt on b is in flight
    assert fp.requests[-1].body["model"] == "fake-b"
    llm.invoke("second")
    assert fp.requests[-1].body["model"] == "fake-b"  # explored: unmeasured for answers
    list(held)


def test_an_unstreamed_call_in_flight_does_not_hold_back_a_stream(
    served: tuple[FakeProvider, ChatPolicyRoute],
) -> None:
    fp, llm = served
    llm.executor.stats.record_latency("b", 0.1, output_tokens=10)  # b has only answered
    fp.script("fake-b", Reply(text="slow", delay=1.0))
    thread = threading.Thread(target=llm.invoke, args=("first",))
    thread.start()
    try:
        fp.wait_for_requests(1)
        assert fp.requests[-1].body["model"] == "fake-b"  # in flight on b
        list(llm.stream("second"))
        assert fp.requests[-1].body["model"] == "fake-b"  # explored: unmeasured for streams
    finally:
        thread.join(5)
