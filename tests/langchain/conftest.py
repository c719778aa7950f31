"""Fixtures for the LangChain adapter tests: a fake provider on loopback and policies for it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator

import pytest
from lc_support import policy_text

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider


@pytest.fixture(autouse=True)
def _closed_sync_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give sync tests a current event loop and close it afterwards.

    litellm's sync stream wrapper calls ``asyncio.get_event_loop()``, which in the main thread
    creates a loop that nobody closes (a ResourceWarning, an error here). Async tests run on
    pytest-asyncio's loop and need nothing.
    """
    if request.node.get_closest_marker("asyncio") is not None:
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def make_policy(fp: FakeProvider) -> Callable[..., str]:
    """:func:`policy_text` bound to the fake provider's address."""
    return functools.partial(policy_text, fp.openai_base)


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fp(fake_provider: FakeProvider) -> FakeProvider:
    """The module's fake provider, with scripts and recordings cleared."""
    fake_provider.reset()
    return fake_provider


@pytest.fixture
def llm(fp: FakeProvider) -> ChatPolicyRoute:
    return ChatPolicyRoute(policy=policy_text(fp.openai_base), accounting=NullAccounting())
