"""Fixtures the API tests share: a fake provider per module, the same provider with clean
API caches for one test, and a record of compilations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyroute import api
from policyroute.policy import compile as compile_module
from policyroute.policy.compile import CompiledPolicy
from policyroute.testing import FakeProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    """One fake provider for the test module; tests reset it as they need."""
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def served(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeProvider]:
    """The module's fake provider, reset, with the test run from ``tmp_path`` (where a policy's
    relative store and receipts land) and no policy cached by the API before or after it."""
    monkeypatch.chdir(tmp_path)
    provider.reset()
    api.clear_cache()
    yield provider
    api.clear_cache()
    provider.reset()


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the policies compiled during the test, in order."""
    names: list[str] = []
    real = compile_module.compile_policy

    def counting(spec: Any, **kwargs: Any) -> CompiledPolicy:
        names.append(spec.name)
        return real(spec, **kwargs)

    monkeypatch.setattr(compile_module, "compile_policy", counting)
    return names


HEADER_POLICY = """
policyroute: 1
name: headers
models:
  o:
    model: openai/gpt-4o-mini
    api_base: {openai}
    api_key: ${{PR_HEADER_KEY}}
  c:
    model: anthropic/claude-haiku-4-5
    api_base: {anthropic}
    api_key: ${{PR_HEADER_KEY}}
routes:
  - name: default
    to: [o, c]
receipts: {{sink: none}}
defaults: {{max_tokens: 50, retry: {{attempts: 0}}}}
"""


@pytest.fixture
def header_policy(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A policy falling over from OpenAI's wire to Anthropic's on the module's fake provider,
    keyed ``sk-policy``, with no receipts and no retry; provider and API cache clean."""
    monkeypatch.setenv("PR_HEADER_KEY", "sk-policy")
    provider.reset()
    api.clear_cache()
    yield HEADER_POLICY.format(openai=provider.openai_base, anthropic=provider.anthropic_base)
    api.clear_cache()
    provider.reset()
