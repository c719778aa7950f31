"""`policyroute explain` says which candidates a call would send nothing.

A model whose ``api_base`` or ``api_key`` reads a variable the environment does not set still
routes as written, but every attempt on it fails as ``authentication`` before anything is sent.
Explain showed it as the deployment that would answer; it now says, for each such candidate,
which variable is missing, without changing the route or the candidates. ``policyroute test``
asserts routing, which the variables do not change: its cases still pass without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: unset-vars
models:
  gateway:
    model: openai/gpt-4o-mini
    api_base: "${PR_TEST_GATEWAY_URL}/v1"
    api_key: "${PR_TEST_GATEWAY_KEY}"
  mini: {model: openai/gpt-4o-mini, api_key: "${PR_TEST_MINI_KEY}"}
  local:
    model: ollama/llama3.1
    api_base: http://localhost:11434
    price: {input_per_mtok: 0, output_per_mtok: 0}
routes:
  - {name: gateway, when: {metadata.via: gateway}, to: [gateway, mini]}
  - {name: default, to: [mini, local]}
defaults: {max_tokens: 100}
"""

TESTS = """\
policy: policy.yaml
cases:
  - name: the gateway first
    request: {metadata: {via: gateway}, messages: hi}
    expect: {route: gateway, model: gateway, candidates: [gateway, mini]}
  - name: the rest
    request: {messages: hi}
    expect: {route: default, candidates: [mini, local]}
"""

VARIABLES = ("PR_TEST_GATEWAY_URL", "PR_TEST_GATEWAY_KEY", "PR_TEST_MINI_KEY")


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def _explain(policy: Path, request: str, *extra: str) -> None:
    file = policy.with_name("request.yaml")
    file.write_text(request, encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(file), *extra]) == 0


def test_text_names_each_refused_candidate_and_its_variable(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(policy, "messages: hi\n")
    out = capsys.readouterr().out

    assert "route   default" in out
    assert (
        "  mini would be refused at call time: api_key reads ${PR_TEST_MINI_KEY}, which is not"
        " set (every attempt on it fails as authentication, nothing sent)\n" in out
    )
    assert "local would be refused" not in out
    assert "no candidate can answer" not in out  # local answers


def test_text_names_every_variable_and_says_when_no_candidate_can_answer(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _explain(policy, "metadata: {via: gateway}\nmessages: hi\n")
    out = capsys.readouterr().out

    assert "route   gateway" in out
    assert (
        "  gateway would be refused at call time: api_base reads ${PR_TEST_GATEWAY_URL} and"
        " api_key reads ${PR_TEST_GATEWAY_KEY}, which are not set" in out
    )
    assert "  mini would be refused at call time: api_key reads ${PR_TEST_MINI_KEY}" in out
    assert "  no candidate can answer: a call would be refused on every one\n" in out


def test_json_carries_the_refusal_per_candidate_and_the_same_candidates(
    policy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    request = "metadata: {via: gateway}\nmessages: hi\n"
    _explain(policy, request, "--format", "json")
    unset = json.loads(capsys.readouterr().out)

    assert unset["route"] == "gateway"
    assert [c["alias"] for c in unset["candidates"]] == ["gateway", "mini"]
    gateway, mini = (c["refused_at_call_time"] for c in unset["candidates"])
    assert gateway == {
        "error_class": "authentication",
        "unset": [
            {"field": "api_base", "variable": "PR_TEST_GATEWAY_URL"},
            {"field": "api_key", "variable": "PR_TEST_GATEWAY_KEY"},
        ],
    }
    assert mini == {
        "error_class": "authentication",
        "unset": [{"field": "api_key", "variable": "PR_TEST_MINI_KEY"}],
    }

    # With the variables set, the same decision and nothing refused.
    monkeypatch.setenv("PR_TEST_GATEWAY_URL", "http://localhost:4000")
    monkeypatch.setenv("PR_TEST_GATEWAY_KEY", "sk-gateway")
    monkeypatch.setenv("PR_TEST_MINI_KEY", "sk-mini")
    _explain(policy, request, "--format", "json")
    every = json.loads(capsys.readouterr().out)
    assert [c["refused_at_call_time"] for c in every["candidates"]] == [None, None]
    for doc in (unset, every):
        for candidate in doc["candidates"]:
            del candidate["refused_at_call_time"]
    assert every == unset


def test_policy_tests_still_pass_without_the_variables(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy.with_name("policy.tests.yaml")
    tests.write_text(TESTS, encoding="utf-8")

    assert main(["test", str(tests)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n2 passed, 0 failed\n")
    assert "refused" not in out
