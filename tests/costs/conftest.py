"""Fixtures for the cost and receipt tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policyroute.execution.hooks import AttemptInfo, CallInfo
from policyroute.policy.compile import CompiledPolicy
from policyroute.request import Request

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
