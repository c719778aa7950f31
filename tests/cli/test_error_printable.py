"""A store path from the policy file reaches `policyroute budget status`'s error and note lines
escaped: an escape sequence in it reached the terminal as it was, and a bidirectional override
reordered the line, where every other name and value from a user's files is shown escaped.
The JSON error document keeps the exact text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: printable-store
models:
  m: {{model: openai/gpt-4o-mini}}
budgets:
  - {{name: daily, limit_usd: 1, window: day}}
routes:
  - {{name: default, to: m}}
store: {{backend: sqlite, path: "{store}"}}
"""

NAME = "s\x1b[31m\u202ered"
SHOWN = "s\\x1b[31m\\u202ered"


def _policy(tmp_path: Path) -> Path:
    store = str(tmp_path / NAME).encode("unicode_escape").decode("ascii")
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(store=store), encoding="utf-8")
    return path


def test_the_error_naming_the_store_is_escaped_and_the_json_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / NAME).mkdir()  # a folder where the store file should be

    status = main(["budget", "status", str(_policy(tmp_path)), "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 1
    assert "\x1b" not in err
    assert "\u202e" not in err
    assert f"error: budget store {tmp_path}/{SHOWN} is a directory" in err
    assert json.loads(out)["error"]["message"].startswith(
        f"budget store {tmp_path}/{NAME} is a directory"
    )


def test_the_note_naming_a_missing_store_is_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["budget", "status", str(_policy(tmp_path))])

    err = capsys.readouterr().err
    assert status == 0
    assert "\x1b" not in err
    assert "\u202e" not in err
    assert f"note: budget store {tmp_path}/{SHOWN} does not exist" in err
