"""A policy, tests file or request saved as UTF-16 or UTF-32 (with a byte-order mark, as
Windows editors save "Unicode") is named as such, with what to do, not as bad byte 0."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import run_tests_file

POLICY = """policyroute: 1
name: demo
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
"""


@pytest.mark.parametrize(("encoding", "name"), [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_validate_names_the_encoding_of_a_policy_with_a_byte_order_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str, name: str
) -> None:
    (tmp_path / "p.yaml").write_bytes(POLICY.encode(encoding))
    assert main(["validate", str(tmp_path / "p.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"the file is {name} text, not UTF-8 (save it as UTF-8) [PR001]" in out


def test_a_file_that_is_merely_not_utf8_still_names_the_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.yaml").write_bytes(b"name: caf\xe9\n")
    assert main(["validate", str(tmp_path / "p.yaml")]) == 1
    assert "the file is not UTF-8 text (byte 9) [PR001]" in capsys.readouterr().out


def test_a_utf16_tests_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    tests = tmp_path / "p.tests.yaml"
    tests.write_bytes(b"policy: p.yaml\ncases: []\n".decode().encode("utf-16"))
    problems = run_tests_file(tests).problems
    assert problems == (f"{tests}: the tests file is UTF-16 text, not UTF-8 (save it as UTF-8)",)


def test_a_utf16_request_on_stdin_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    stdin = io.TextIOWrapper(io.BytesIO('{"messages": "hi"}'.encode("utf-16")))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["explain", str(tmp_path / "p.yaml"), "--request", "-"]) == 1
    err = capsys.readouterr().err
    assert "the request is UTF-16 text, not UTF-8 (save it as UTF-8)" in err
