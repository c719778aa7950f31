"""Fixtures for the routing tests that call through a fake provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from policyroute.testing import FakeProvider


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    """One fake provider for the test module; tests reset it as they need."""
    with FakeProvider() as provider:
        yield provider
