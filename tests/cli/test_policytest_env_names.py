"""A tests file whose case ``env`` the operating system cannot set fails that case, by name.

``env: {"A=B": x}``, an empty name or a NUL character is valid YAML, but os.environ refuses
it: ``policyroute test`` stopped the whole run with an internal error (exit 70) or a bare
"[Errno 22] Invalid argument", and the other cases never ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: env-names
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
"""

TESTS = """\
policy: p.yaml
cases:
  - name: bad env
    env: {env}
    request: {{messages: hi}}
    expect: {{route: default}}
  - name: fine
    request: {{messages: hi}}
    expect: {{route: default}}
"""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ('{"A=B": x}', "'env' variable name 'A=B' is not valid"),
        ('{"": x}', "'env' variable name '' is not valid"),
        ('{"A\\0": x}', "'env' variable name 'A\\x00' is not valid"),
        ('{PR_ENV_NUL: "a\\0b"}', "'env.PR_ENV_NUL' holds a NUL character"),
    ],
)
def test_an_env_the_os_refuses_fails_its_case_and_the_rest_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: str, message: str
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    tests = tmp_path / "t.tests.yaml"
    tests.write_text(TESTS.format(env=env), encoding="utf-8")
    before = dict(os.environ)

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert f"FAILED {tests}:3 bad env\n  {message}" in out
    assert out.rstrip().endswith("1 passed, 1 failed")
    assert dict(os.environ) == before
