"""Fixtures for the LangChain adapter tests: a fake provider on loopback and policies for it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pytest
from lc_support import policy_text

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider


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
