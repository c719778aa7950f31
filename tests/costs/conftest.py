"""Fixtures for the cost and receipt tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policyroute.accounting import _clear_default_cache
from policyroute.api import clear_cache
from policyroute.execution.hooks import AttemptInfo, CallInfo
from policyroute.policy.compile import CompiledPolicy
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply, Usage

from .helpers import MESSAGES

AttemptFactory = Callable[..., AttemptInfo]


@pytest.fixture
def make_attempt() -> Callable[..., AttemptInfo]:
    def build(
        policy: CompiledPolicy,
        *,
        alias: str = "mini",
        number: int = 1,
        call: CallInfo | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AttemptInfo:
        if call is None:
            request = Request(
                messages=MESSAGES,
                metadata=metadata or {"user_id": "u-1", "team": "x"},
                tags=("prod",),
                run_id="run-1",
            )
            call = CallInfo(request=request, policy=policy, decision=policy.route(request))
        cand = next(c for c in call.decision.candidates if c.alias == alias)
        return AttemptInfo(
            call=call,
            candidate=cand,
            params={"max_tokens": 100},
            number=number,
            route=call.decision.route,
        )

    return build


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake_a(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The provider of ``helpers.FAKE_A_POLICY``: answers "hi" for 7 prompt and 3 completion
    tokens ($0.013 at the policy's prices)."""
    monkeypatch.setenv("PR_FAKE_A_KEY", "sk-fake-a-0123456789")
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield provider
    # Nothing cached for a policy naming this provider's port outlives it: executors and
    # default accountings (with what they opened) are closed and forgotten.
    clear_cache()
    _clear_default_cache()


@pytest.fixture
def quiet_accounting() -> Iterator[None]:
    """Accounting's log silenced, for tests whose sinks refuse receipts on purpose."""
    logger = logging.getLogger("policyroute.accounting")
    logger.disabled = True
    yield
    logger.disabled = False
