"""`policyroute test`: a policy that a case's ``env`` makes invalid fails that case alone.

The policy is loaded with each case's ``env`` (``${VAR}`` expands at load). A value that made
it invalid reported the whole tests file as an invalid policy, dropping every other case's
result and never saying which case set the value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: env-base
models:
  a: {model: openai/gpt-4o-mini, api_base: "${POLICYROUTE_TEST_BASE}"}
routes:
  - name: default
    to: a
"""

GOOD = '{POLICYROUTE_TEST_BASE: "http://localhost:1234/v1"}'
BAD = '{POLICYROUTE_TEST_BASE: "not a url"}'


def _run(tmp_path: Path, envs: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    cases = "".join(
        f"  - name: case {i}\n    env: {env}\n    request: {{messages: hi}}\n"
        "    expect: {route: default}\n"
        for i, env in enumerate(envs, 1)
    )
    tests = tmp_path / "p.tests.yaml"
    tests.write_text("policy: p.yaml\ncases:\n" + cases, encoding="utf-8")
    code = main(["test", str(tests)])
    return code, capsys.readouterr().out


def test_the_case_whose_env_breaks_the_policy_fails_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLICYROUTE_TEST_BASE", raising=False)
    code, out = _run(tmp_path, [GOOD, BAD, GOOD], capsys)
    assert code == 1
    assert f"FAILED {tmp_path / 'p.tests.yaml'}:7 case 2" in out
    assert "the policy is invalid with this case's env:" in out
    assert "models.a.api_base" in out
    assert "[PR136]" in out
    assert "not a url" not in out  # a variable's value is never shown
    assert out.rstrip().endswith("2 passed, 1 failed")


def test_a_policy_invalid_whatever_the_env_is_one_file_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYROUTE_TEST_BASE", "not a url either")
    code, out = _run(tmp_path, [BAD, BAD], capsys)
    assert code == 1
    assert f"{tmp_path / 'p.yaml'}: the policy is invalid" in out
    assert "this case's env" not in out
    assert out.rstrip().endswith("0 passed, 0 failed, 1 file with errors")
