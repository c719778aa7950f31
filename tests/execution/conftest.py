"""Fixtures for the executor tests: a fake provider on loopback, one event loop per session."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="module", autouse=True)
def _litellm_sockets_collected_here() -> Iterator[None]:
    """Collect each module's garbage when it ends, with ResourceWarning ignored meanwhile.

    litellm keeps HTTP clients of its own (for its logging and for event loops it starts in
    worker threads) that it never closes; their sockets reach the garbage collector whenever
    it happens to run, and with warnings as errors the ResourceWarning fails whichever test is
    running then (the thread and task tests, which make the most garbage, most often). The
    sockets are litellm's, not ours: collecting them here, ignored, keeps them from failing an
    unrelated test later.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` as the working directory, where a policy file's relative receipts path
    points; policyroute's cached executors and accounting are dropped afterwards."""
    from policyroute.accounting import _clear_default_cache
    from policyroute.api import clear_cache

    monkeypatch.chdir(tmp_path)
    yield tmp_path
    clear_cache()
    _clear_default_cache()


@pytest.fixture
def shared_loop_kept() -> Iterator[None]:
    """For tests that call ``asyncio.run()``, which leaves no current loop behind: makes the
    shared loop current again afterwards, as the other tests expect."""
    yield
    asyncio.set_event_loop(open_shared_loop())


METERED_POLICY = """
policyroute: 1
name: metered
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{METERED_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
    capabilities: {{tools: true}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: sqlite, path: budgets.db}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes: [{{name: default, to: a}}]
defaults: {{max_tokens: 64, retry: {{attempts: 0}}}}
"""


@pytest.fixture
def metered_policy(fp: FakeProvider, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policy file in the working directory: one deployment ``a`` on the fake provider, priced
    and taking tools, under a $100 day budget (SQLite store), with JSON-lines receipts beside
    it."""
    monkeypatch.setenv("METERED_KEY", "sk-test")
    path = workdir / "policy.yaml"
    path.write_text(METERED_POLICY.format(base=fp.openai_base), encoding="utf-8")
    return path
