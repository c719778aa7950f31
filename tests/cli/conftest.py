"""Fixtures for the CLI tests: a small valid policy, a broken one, and a tests file."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import policyroute.policy.validate as validate_module

REPO = Path(__file__).resolve().parents[2]

VALID_POLICY = """\
policyroute: 1
name: cli-fixture
models:
  mini: {model: openai/gpt-4o-mini}
  sonnet: {model: anthropic/claude-sonnet-4-5-20250929}
  local:
    model: ollama/llama3.1
    api_base: http://localhost:11434
    price: {input_per_mtok: 0, output_per_mtok: 0}
groups:
  cheap: {strategy: cheapest, models: [mini, local]}
budgets:
  - name: per-user-daily
    per: metadata.user_id
    limit_usd: 2
    window: day
    warn_at: [0.75, 0.9]
routes:
  - name: code
    description: code goes to the strong model
    when: {metadata.task: code}
    to: [sonnet, mini]
    params: {temperature: 0}
  - name: offline
    when: {metadata.offline: true}
    to: local
  - name: default
    to: cheap
defaults: {max_tokens: 1000}
"""

# one error (unknown model 'sonnet', PR101) and one warning (model 'sonet' unused, PR105)
BROKEN_POLICY = """\
policyroute: 1
name: broken
models:
  mini: {model: openai/gpt-4o-mini}
  sonet: {model: anthropic/claude-sonnet-4-5-20250929}
routes:
  - name: code
    when: {metadata.task: code}
    to: sonnet
  - name: default
    to: mini
"""

# valid, but with one warning: an unset environment variable (PR119)
WARNING_POLICY = """\
policyroute: 1
name: warns
models:
  mini: {model: openai/gpt-4o-mini, api_key: "${POLICYROUTE_TEST_UNSET_KEY}"}
routes:
  - name: default
    to: mini
"""

PASSING_TESTS = """\
policy: policy.yaml
cases:
  - name: code goes to sonnet
    request: {metadata: {task: code}, messages: "write a function"}
    expect: {route: code, model: sonnet, candidates: [sonnet, mini], params: {temperature: 0}}
  - name: the rest is cheap
    request: {messages: "hi", metadata: {user_id: u1}}
    expect: {route: default, candidates: [local, mini], budgets: [per-user-daily]}
  - name: an image offline has nowhere to go
    request:
      metadata: {offline: true}
      messages: [{role: user, content: [{type: image_url, image_url: {url: "https://x/y.png"}}]}]
    expect: {error: NoCandidateError}
"""


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    """A valid policy with no diagnostics at all."""
    path = tmp_path / "policy.yaml"
    path.write_text(VALID_POLICY, encoding="utf-8")
    return path


@pytest.fixture
def broken_path(tmp_path: Path) -> Path:
    """A policy with one error and one warning."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_POLICY, encoding="utf-8")
    return path


@pytest.fixture
def warning_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid policy whose only diagnostic is an unset-variable warning."""
    monkeypatch.delenv("POLICYROUTE_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "warns.yaml"
    path.write_text(WARNING_POLICY, encoding="utf-8")
    return path


@pytest.fixture
def tests_path(policy_path: Path) -> Path:
    """A tests file whose cases all pass against ``policy_path``."""
    path = policy_path.parent / "policy.tests.yaml"
    path.write_text(PASSING_TESTS, encoding="utf-8")
    return path


class TTYBuffer(io.StringIO):
    """A stdout stand-in that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty_stdout(monkeypatch: pytest.MonkeyPatch) -> Callable[[], io.StringIO]:
    """Call inside a test: stdout becomes a buffer that claims to be a terminal.

    (pytest installs its own capture for the test's call phase, after fixtures ran, so the
    swap has to happen in the test itself.) ``NO_COLOR`` starts unset.
    """
    monkeypatch.delenv("NO_COLOR", raising=False)

    def install() -> io.StringIO:
        buffer = TTYBuffer()
        monkeypatch.setattr("sys.stdout", buffer)
        return buffer

    return install


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every policy file validate_file reads, in order."""
    seen: list[str] = []
    real = validate_module.read_at_most

    def counting(path: str, limit: int) -> bytes:
        seen.append(os.path.realpath(path))
        return real(path, limit)

    monkeypatch.setattr(validate_module, "read_at_most", counting)
    return seen
