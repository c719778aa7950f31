"""A misspelt request field is refused with the closest field it may mean.

``explain --request`` and a policy tests file refused ``metdata`` with the list of every field
and no word on which one was meant; validation of policies already says "did you mean".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: hints
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - {name: code, when: {metadata.task: code}, to: mini}
  - {name: default, to: mini}
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("field", "meant"),
    [("metdata", "metadata"), ("mesages", "messages"), ("temprature", "temperature")],
)
def test_explain_names_the_field_a_typo_most_likely_meant(
    policy: Path, capsys: pytest.CaptureFixture[str], field: str, meant: str
) -> None:
    request = policy.parent / "request.json"
    request.write_text(json.dumps({field: {"task": "code"}}), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request)]) == 1
    err = capsys.readouterr().err
    assert f"unknown request field(s) '{field}' (did you mean '{meant}'?);" in err


def test_a_field_like_none_is_named_without_a_guess(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = policy.parent / "request.json"
    request.write_text(json.dumps({"messages": "hi", "zzz": 1}), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request)]) == 1
    err = capsys.readouterr().err
    assert "unknown request field(s) 'zzz'; expected some of messages, metadata" in err
    assert "did you mean" not in err


def test_a_policy_test_case_names_the_field_a_typo_most_likely_meant(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy.parent / "policy.tests.yaml"
    tests.write_text(
        "policy: policy.yaml\ncases:\n"
        "  - name: typo in the request\n"
        "    request: {metdata: {task: code}, messages: hi}\n"
        "    expect: {route: code}\n"
        "  - name: typo in the case\n"
        "    reqest: {messages: hi}\n"
        "    expect: {route: default}\n"
        "  - name: typo in expect\n"
        "    request: {messages: hi}\n"
        "    expect: {rout: default}\n",
        encoding="utf-8",
    )
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert "unknown request field(s) 'metdata' (did you mean 'metadata'?);" in out
    assert "unknown case key(s) reqest (did you mean 'request'?);" in out
    assert "unknown expect key(s) rout (did you mean 'route'?);" in out


@pytest.mark.parametrize("field", ["web_search_options", "thinking"])
def test_a_call_parameter_of_its_own_at_the_top_level_is_told_to_go_under_params(
    policy: Path, capsys: pytest.CaptureFixture[str], field: str
) -> None:
    request = policy.parent / "request.json"
    request.write_text(json.dumps({"messages": "hi", field: {}}), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request)]) == 1
    err = capsys.readouterr().err
    assert f"other call parameters go under 'params' (params: {{{field}: ...}})" in err
    # ... where it is taken
    request.write_text(json.dumps({"messages": "hi", "params": {field: {}}}), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request)]) == 0


def test_a_typo_is_not_told_to_go_under_params(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = policy.parent / "request.json"
    request.write_text(json.dumps({"mesages": "hi"}), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request)]) == 1
    assert "go under 'params'" not in capsys.readouterr().err
