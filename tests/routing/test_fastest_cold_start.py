"""``fastest`` does not rank a deployment by the process's set-up: litellm imports a provider's
code and builds its clients during the first call of each kind (a second or more), and an
attempt during which the process imported code leaves its deployment unmeasured, to be tried
again, instead of ranked last for minutes by a figure that was never the deployment's."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import pytest

from policyroute.execution.attempt import AttemptRun
from policyroute.execution.executor import Executor
from policyroute.execution.result import StreamDone
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Fault, Reply

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)

_names = itertools.count()


def _ask() -> Request:
    return Request(messages=[{"role": "user", "content": "hello"}])


class SetUp:
    """Completion callables whose first call imports a module never imported before, as
    litellm's first call of a kind imports a provider's code."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.done = False

    def _import(self) -> None:
        if not self.done:
            self.done = True
            name = f"policyroute_set_up_{os.getpid()}_{next(_names)}"
            (self.folder / f"{name}.py").write_text("LOADED = True\n")
            importlib.invalidate_caches()
            assert importlib.import_module(name).LOADED

    def completion(self, **params: Any) -> Any:
        self._import()
        return litellm.completion(**params)

    async def acompletion(self, **params: Any) -> Any:
        self._import()
        return await litellm.acompletion(**params)


def _executor(fp: FakeProvider, set_up: SetUp | None = None) -> Executor:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    policy = load_policy_text(pool_policy(fp.openai_base, "cold-start", ["a", "b"]))
    if set_up is None:
        return Executor(policy)
    return Executor(policy, completion=set_up.completion, acompletion=set_up.acompletion)


def _call(ex: Executor, mode: str) -> str:
    if mode == "complete":
        return ex.complete(_ask()).deployment
    if mode == "acomplete":
        return asyncio.run(ex.acomplete(_ask())).deployment
    if mode == "stream":
        done = list(ex.stream(_ask()))[-1]
    else:

        async def consume() -> list[object]:
            return [event async for event in ex.astream(_ask())]

        done = asyncio.run(consume())[-1]
    assert isinstance(done, StreamDone)
    return done.result.deployment


@pytest.fixture(autouse=True)
def _warm(fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kind of call made once, so that only the tests' own imports are set-up."""
    monkeypatch.syspath_prepend(str(tmp_path))
    fp.reset()
    fp.set_default("*", Reply(text="one two three"))
    warm = _executor(fp)
    for mode in ("complete", "acomplete", "stream", "astream"):
        _call(warm, mode)


@pytest.mark.parametrize("mode", ["complete", "acomplete", "stream", "astream"])
def test_an_attempt_that_imported_code_leaves_its_deployment_unmeasured(
    fp: FakeProvider, tmp_path: Path, mode: str
) -> None:
    ex = _executor(fp, SetUp(tmp_path))
    stream = mode in ("stream", "astream")
    assert _call(ex, mode) == "a"
    assert ex.stats.ranking_latency("a", stream=stream) is None
    assert ex.stats.latency("a") is None
    assert ex.stats.in_flight("a") == 0
    # still unmeasured: explored again, measured this time, then b is explored
    assert [_call(ex, mode) for _ in range(2)] == ["a", "b"]
    assert ex.stats.ranking_latency("a", stream=stream) is not None
    assert ex.stats.ranking_latency("b", stream=stream) is not None


def test_a_failure_while_code_was_imported_still_counts_against_the_deployment(
    fp: FakeProvider, tmp_path: Path
) -> None:
    fp.script("a", Fault.status(503))
    ex = _executor(fp, SetUp(tmp_path))
    assert _call(ex, "complete") == "b"  # a failed, b answered
    assert ex.stats.ranking_latency("a") == float("inf")
    assert ex.stats.ranking_latency("b") is not None  # measured: b imported nothing


def test_an_attempt_knows_whether_code_was_imported_while_it_ran(tmp_path: Path) -> None:
    run = AttemptRun(None)  # type: ignore[arg-type]
    assert not run.set_up_meanwhile()
    SetUp(tmp_path)._import()
    assert run.set_up_meanwhile()
    assert not AttemptRun(None).set_up_meanwhile()  # type: ignore[arg-type]
