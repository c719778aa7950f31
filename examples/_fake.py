"""Shared by the examples: start the fake provider and load the examples' policy against it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from policyroute import ChatPolicyRoute
from policyroute.testing import FakeProvider

POLICY = Path(__file__).with_name("fake-provider.policy.yaml")


@contextmanager
def fake_llm() -> Iterator[tuple[ChatPolicyRoute, FakeProvider]]:
    """A ChatPolicyRoute on the examples' policy, its models served by a fake provider."""
    # Behind a proxy (HTTPS_PROXY, ALL_PROXY), httpx would send the calls to the fake provider
    # on 127.0.0.1 through it, and the proxy cannot reach this machine's loopback.
    hosts = [os.environ.get("no_proxy"), os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = ",".join(h for h in hosts if h)
    with FakeProvider() as fp:
        os.environ["FAKE_PROVIDER_URL"] = fp.base_url
        # The fake provider ignores keys, but litellm's clients refuse to run without one.
        os.environ.setdefault("EXAMPLES_API_KEY", "not-a-real-key")
        yield ChatPolicyRoute(policy=POLICY), fp
