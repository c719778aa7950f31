"""Fixtures of the fake provider tests; litellm's Anthropic calls kept offline (it fetches a
beta-headers config on first use)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from policyroute.testing import FakeProvider

os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    """One fake provider per module."""
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fp(provider: FakeProvider) -> FakeProvider:
    """The module's fake provider, scripts and recordings cleared (modules with a fake provider
    per test define their own ``fp``)."""
    provider.reset()
    return provider
