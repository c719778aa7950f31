"""A failing receipt callable is named without the credentials it was made with.

Forwarders are often ``functools.partial(post, url, headers={"Authorization": ...})`` or a
bound method of a client holding a key: their ``repr`` shows those. The error and the log
record of each receipt the callable refuses name the function, never its bound arguments,
and what the callable's exception says is scrubbed of anything shaped like a credential.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink, MultiSink
from policyroute.costs.unwritten import describe_sink
from policyroute.errors import ReceiptError

from .helpers import make_policy
from .test_accounting import _ok

TOKEN = "sk-live-0123456789abcdefghij"
HEADER_KEY = "hdr-4f9c2b7e1a"


def post(url: str, record: Mapping[str, Any], *, headers: Mapping[str, str]) -> None:
    raise ConnectionError(f"POST {url}?api_key={TOKEN} refused")


class Client:
    """A client whose repr shows its key, as some SDKs' do."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"Client(key={self.key!r})"

    def send(self, record: Mapping[str, Any]) -> None:
        raise ConnectionError("collector down")

    def __call__(self, record: Mapping[str, Any]) -> None:
        raise ConnectionError("collector down")


def forwarder() -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": HEADER_KEY}
    return functools.partial(post, "https://collector.example/ingest", headers=headers)


@pytest.mark.parametrize(
    ("fn", "named"),
    [
        (forwarder(), "post"),
        (Client(HEADER_KEY).send, "Client.send"),
        (Client(HEADER_KEY), "Client"),
    ],
    ids=["partial", "bound-method", "callable-object"],
)
def test_the_error_names_the_callable_without_its_credentials(fn: Any, named: str) -> None:
    sink = CallableSink(fn)

    with pytest.raises(ReceiptError) as raised:
        sink.write({"kind": "call"})

    for text in (str(raised.value), describe_sink(sink)):
        assert named in text
        assert TOKEN not in text
        assert HEADER_KEY not in text


def test_the_log_of_a_refused_receipt_carries_no_credential(
    make_attempt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    policy = make_policy()
    sinks = [CallableSink(forwarder()), MultiSink([CallableSink(Client(HEADER_KEY).send)])]
    acct = PolicyAccounting(policy, guard=None, sinks=sinks)
    attempt = make_attempt(policy)

    with caplog.at_level(logging.WARNING, logger="policyroute.accounting"):
        acct.settle(attempt, acct.admit(attempt), _ok())
        acct.resend_unwritten()

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4  # two refusals, two still refused on resend
    for message in messages:
        assert TOKEN not in message
        assert HEADER_KEY not in message
