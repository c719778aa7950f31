"""Fixtures for the executor tests: a fake provider on loopback, one event loop per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from exec_support import close_shared_loop, open_shared_loop

from policyroute.testing import FakeProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fp(provider: FakeProvider) -> Iterator[FakeProvider]:
    provider.reset()
    yield provider
    provider.reset()


@pytest.fixture(scope="session", autouse=True)
def _shared_loop() -> Iterator[None]:
    open_shared_loop()
    yield
    close_shared_loop()
